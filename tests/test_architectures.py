"""The architecture matrix (tests/architecture_matrix.py): every family, tied and untied, through
convert, transplant, the hypernetwork and distillation. The README table is generated from the
same checks by bench/architecture_table.py."""

from __future__ import annotations

import architecture_matrix as matrix
import pytest
import tiny
import torch
import transformers

CELLS = matrix.cells()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Models this small run fastest on one thread; more only contend (2.6x slower on 2 busy cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "de.txt"
    path.write_text("\n".join(tiny.lines(0, 400)) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Each cell's tiny model, built once for the module on first use."""
    built: dict[matrix.Cell, matrix.Source] = {}

    def get(cell: matrix.Cell) -> matrix.Source:
        if cell not in built:
            built[cell] = matrix.build_source(tmp_path_factory.mktemp(cell.id), cell)
        return built[cell]

    return get


def test_every_family_is_in_the_installed_transformers():
    """A family that transformers lacks would have to be listed as skipped in the README table."""
    missing = [spec.model_type for spec in tiny.FAMILIES.values() if spec.model_type not in transformers.CONFIG_MAPPING]
    assert not missing


def test_cells_have_the_head_they_are_named_for(sources):
    for cell in CELLS:
        model = sources(cell).model
        tied = model.get_output_embeddings().weight is model.get_input_embeddings().weight
        assert tied == (cell.head == "tied"), cell


def test_one_source_is_sharded(sources):
    for family, head in matrix.SHARDED:
        directory = sources(matrix.Cell(family, head)).directory
        assert (directory / "model.safetensors.index.json").is_file() and len(list(directory.glob("*.safetensors"))) > 1


@pytest.mark.parametrize("column", matrix.COLUMNS)
@pytest.mark.parametrize("cell", CELLS, ids=lambda cell: cell.id)
def test_matrix(cell, column, sources, corpus, tmp_path):
    """Every cell passes its checks; the hypernetwork and distillation refuse a masked or
    sequence-to-sequence model in one line (checked inside ``run_checked``)."""
    refusal = matrix.run_checked(sources(cell), column, tmp_path, corpus)
    assert (refusal is not None) == matrix.refused(cell, column)
