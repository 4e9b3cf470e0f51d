"""Text streamed from a Hugging Face hub dataset (``datasets``), for users with internet."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from .files import atomic_file, cache_dir
from .errors import TransplantError


def hub_lines(dataset: str, config: str | None, budget: int, progress: bool = True, option: str = "--hub", local: str = "--corpus PATH") -> list[str]:
    """Lines of the ``text`` field of a hub dataset, streamed until ``budget`` bytes. Errors name
    ``option`` and the ``local`` option that gives text without the hub."""
    label = f"{dataset}" + (f" ({config})" if config else "")
    if importlib.util.find_spec("datasets") is None:
        raise TransplantError(f"{option} needs the datasets package: pip install 'transplant[hub]'; or give local text with {local}")
    import datasets
    from tqdm.auto import tqdm

    lines, size = [], 0
    try:
        datasets.logging.set_verbosity_error()
        stream = datasets.load_dataset(dataset, config, split="train", streaming=True)
        with tqdm(total=budget, unit="B", unit_scale=True, desc=f"streaming {label}", disable=not progress) as bar:
            for row in stream:
                text = row.get("text") or ""
                for line in text.splitlines():
                    if line.strip():
                        lines.append(line)
                        size += len(line.encode("utf-8")) + 1
                bar.update(min(size, budget) - bar.n)
                if size >= budget:
                    break
    except TransplantError:
        raise
    except Exception as error:  # noqa: BLE001 - offline, unknown dataset, auth: all end the same way
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise TransplantError(f"could not stream {label} from the Hugging Face hub ({reason[:200]}); without internet, give local text with {local}") from None
    if not lines:
        raise TransplantError(f"{label} gave no text (no 'text' field?); give local text with {local}")
    return lines


def hub_text_file(dataset: str, config: str | None, budget: int, progress: bool = True, option: str = "--hub", local: str = "--text FILE") -> Path:
    """The streamed text saved once under the cache (a resumed run must see the same text)."""
    key = hashlib.sha256(f"{dataset}\0{config}\0{budget}".encode()).hexdigest()[:16]
    path = cache_dir() / "hub-text" / f"{key}.txt"
    if not path.is_file():
        lines = hub_lines(dataset, config, budget, progress, option, local)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as partial:
            partial.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
