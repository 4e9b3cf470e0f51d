"""The README's architecture table: every family of the matrix (tests/architecture_matrix.py)
through convert, transplant, the hypernetwork and distillation, with the checks the tests run.

    PYTHONPATH=$PWD python bench/architecture_table.py            # prints the Markdown table

A cell is ✅ when every check passed for each head layout of the family (tied, untied), 🚫
followed by the one-line refusal when the entry point refuses that model kind, ❌ with the error
otherwise. Run on one thread: the models are tiny.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# this directory's hypernet.py would shadow the hypernet package the matrix trains with
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import torch  # noqa: E402

import architecture_matrix as matrix  # noqa: E402
import tiny  # noqa: E402


def outcome(source: matrix.Source, column: str, out: Path, corpus: Path) -> str:
    try:
        refusal = matrix.run_checked(source, column, out, corpus)
    except Exception as error:  # noqa: BLE001 - the table reports any failure
        return f"❌ {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    return "✅" if refusal is None else f"🚫 {refusal.split(';')[0]}"


def table() -> str:
    torch.set_num_threads(1)
    root = Path(tempfile.mkdtemp(prefix="architecture-table-"))
    corpus = tiny.write_lines(root / "de.txt", 400)
    rows = ["| family | task | tokenizer | heads | " + " | ".join(matrix.COLUMNS) + " | notes |",
            "|---|---|---|---|" + "---|" * len(matrix.COLUMNS) + "---|"]
    for family, spec in tiny.FAMILIES.items():
        results = {column: [] for column in matrix.COLUMNS}
        for head in spec.heads:
            cell = matrix.Cell(family, head)
            source = matrix.build_source(root / cell.id / "source", cell)
            for column in matrix.COLUMNS:
                results[column].append(outcome(source, column, root / cell.id / column, corpus))
        cells = []
        for column in matrix.COLUMNS:
            distinct = list(dict.fromkeys(results[column]))
            cells.append(" / ".join(distinct))
        tokenizer = tiny.MATRIX_TOKENIZERS_DESCRIBED[spec.tokenizer]
        rows.append(f"| {family} | {spec.task} | {tokenizer} | {', '.join(spec.heads)} | " + " | ".join(cells) + f" | {spec.note} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
