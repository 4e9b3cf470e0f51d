"""Text files in, text for training and scoring out: UTF-8 reading with one-line errors,
deduplication, byte budgets, and the one held-out split the demo, the recipes and hypernetwork
training share (the last lines: a contiguous tail, so no passage is both trained on and scored).
"""

from __future__ import annotations

from pathlib import Path

from transplant.errors import TransplantError


def dedupe(lines) -> tuple[list[str], int]:
    """Non-empty lines (trailing whitespace stripped) in order, each once; and how many repeats went."""
    seen, out, repeats = set(), [], 0
    for line in lines:
        line = line.rstrip()
        if not line.strip():
            continue
        if line in seen:
            repeats += 1
            continue
        seen.add(line)
        out.append(line)
    return out, repeats


def take_bytes(lines: list[str], budget: int | None) -> list[str]:
    """The leading lines that fit in ``budget`` UTF-8 bytes (newlines counted); all when None."""
    if budget is None:
        return lines
    out, size = [], 0
    for line in lines:
        size += len(line.encode("utf-8")) + 1
        if size > budget:
            break
        out.append(line)
    return out


def read_lines(path: Path, option: str) -> list[str]:
    if not path.is_file():
        raise TransplantError(f"text not found: {path}; {option}")
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise TransplantError(f"{path} is not UTF-8 text (bad byte at offset {error.start}); {option}") from None


def held_out_tail(lines: list, fraction: float | None = None, max_bytes: int | None = None) -> tuple[list, list]:
    """(train, held-out): the last lines held out, a contiguous tail, so that no passage is both
    trained on and scored. ``fraction``: that share of the lines; ``max_bytes``: lines from the
    end until they reach that many UTF-8 bytes (newlines counted). At least one line always stays
    for training. Lines may keep their line ends or not; they are not changed."""
    if (fraction is None) == (max_bytes is None):
        raise ValueError("give either fraction or max_bytes")
    if fraction is not None:
        cut = max(1, int(len(lines) * (1 - fraction)))
    else:
        cut, size = len(lines), 0
        while cut > 1 and size < max_bytes:
            cut -= 1
            size += len(lines[cut].encode("utf-8")) + (0 if lines[cut].endswith("\n") else 1)
    return list(lines[:cut]), list(lines[cut:])
