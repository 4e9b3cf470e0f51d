"""Built-in hypernetworks: found by the model's embedding rows, listed by `hypernet list`, used by
`--method hypernet` without `--hypernet`; a model none was trained for gets a one-line Error."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import tiny
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

import hypernet
from hypernet.builtin import PACKAGE_DIR, SEARCH_PATH_VARIABLE, builtin_hypernets, matching_builtin
from transplant.cli import main
from transplant.core import convert
from transplant.errors import TransplantError
from transplant.loading import load_model

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(width=32, layers=1, heads=2, batch_size=4, block_size=32, sampled_vocab_size=400, tokenizer_text_bytes=6000,
            reconstruction_tokens=256, vocab_subsample=64, eval_bytes=1500, warmup_steps=2)


@pytest.fixture(scope="module")
def qwen(tmp_path_factory, source_tokenizer):
    return tiny.tiny_model(tmp_path_factory.mktemp("qwen"), source_tokenizer, "qwen2")


@pytest.fixture(scope="module")
def registry(tmp_path_factory, llama):
    """A search-path directory holding one hypernetwork trained for the tiny Llama."""
    root = tmp_path_factory.mktemp("registry")
    corpus = tiny.text_file(root.parent / "corpus.txt", 0, 900)
    hypernet.train(llama, [corpus], root / "tiny-llama", max_steps=6, identity_steps=2, learning_rate=3e-3, eval_every=100, progress=False, **TINY)
    return root


@pytest.fixture
def registered(monkeypatch, registry):
    monkeypatch.setenv(SEARCH_PATH_VARIABLE, str(registry))
    return registry / "tiny-llama"


def read_safetensors(directory):
    tensors = {}
    for file in sorted(directory.glob("*.safetensors")):
        tensors.update(load_file(str(file)))
    return tensors


def test_convert_without_hypernet_uses_the_matching_builtin(tmp_path, registered, llama, target_tokenizer):
    assert [h.name for h in builtin_hypernets()][0] == "tiny-llama"
    report = convert(llama, target_tokenizer, tmp_path / "builtin", "hypernet", progress=False)
    convert(llama, target_tokenizer, tmp_path / "given", "hypernet", hypernet=registered, progress=False)
    convert(llama, target_tokenizer, tmp_path / "fvt", "fvt", progress=False)
    assert report.rules["input"].get("hypernet", 0) > 100
    builtin, given, fvt = (read_safetensors(tmp_path / name) for name in ("builtin", "given", "fvt"))
    for name in given:
        assert torch.equal(builtin[name], given[name]), name
    key = next(k for k in given if "embed_tokens" in k)
    assert not torch.allclose(builtin[key], fvt[key])  # a trained one, not fvt


def test_the_rows_decide_not_the_path(tmp_path, registered, llama, qwen, target_tokenizer):
    """A copy of the model elsewhere matches; a model with other rows gets one clear error."""
    import shutil

    copy = tmp_path / "renamed"
    shutil.copytree(llama, copy)
    assert matching_builtin(load_model(copy).get_input_embeddings().weight.detach()).name == "tiny-llama"
    with pytest.raises(TransplantError, match="no built-in hypernetwork matches this model's input embeddings"):
        matching_builtin(load_model(qwen).get_input_embeddings().weight.detach())
    target_dir = tmp_path / "target"
    target_tokenizer.save_pretrained(target_dir)
    result = CliRunner().invoke(main, ["convert", str(qwen), str(target_dir), "-o", str(tmp_path / "out"), "--method", "hypernet", "--quiet"])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert lines[0].startswith("Error: no built-in hypernetwork matches") and "tiny-llama" in lines[0] and "--hypernet DIR" in lines[0]
    assert not (tmp_path / "out").exists()


def test_hypernet_list_shows_builtins(registered):
    result = CliRunner().invoke(main, ["hypernet", "list"])
    assert result.exit_code == 0, result.output
    config = json.loads((registered / "hypernet.json").read_text())
    row = next(line for line in result.output.splitlines() if line.lstrip("| ").startswith("tiny-llama"))
    assert config["fingerprints"]["input"] in row and f"{config['source_rows']} x {config['embedding_dim']}" in row


def test_shipped_hypernetwork_is_package_data():
    """The SmolLM2 hypernetwork ships: package data in pyproject, finite weights of a few MB,
    trained for the SmolLM2-135M rows (49152 x 576) and no other."""
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["hypernet"]
    shipped = [h for h in builtin_hypernets() if h.directory.parent == PACKAGE_DIR]
    assert [h.name for h in shipped] == ["smollm2-135m"]
    (smollm2,) = shipped
    for pattern in package_data:
        assert list(PACKAGE_DIR.parent.glob(pattern)), pattern
    assert 1 << 20 < smollm2.weight_bytes < 16 << 20
    assert (smollm2.config["source_rows"], smollm2.config["embedding_dim"]) == (49152, 576)
    net = hypernet.load(smollm2.directory)  # checks every weight is finite
    assert any(head.weight.abs().sum() > 0 for head in net.heads.values())  # trained, not fvt


@pytest.mark.slow
def test_smollm2_converts_with_its_builtin_hypernetwork(tmp_path):
    """The real model: `convert SMOLLM2 TOK --method hypernet` with no --hypernet."""
    from transplant.checkpoint import resolve_model_dir
    from transplant.demo import SAMPLE, smollm2_gguf
    from transplant.loading import load_tokenizer
    from transplant.tokenizer_training import train_tokenizer

    model = resolve_model_dir(smollm2_gguf())
    lines = [line for line in SAMPLE.read_text(encoding="utf-8").splitlines()[:3000] if line.strip()]
    target = tmp_path / "tokenizer"
    train_tokenizer(load_tokenizer(model), lines, 4000, progress=False).save_pretrained(target)
    result = CliRunner().invoke(main, ["convert", str(model), str(target), "-o", str(tmp_path / "out"), "--method", "hypernet", "--quiet"])
    assert result.exit_code == 0, result.output
    converted = load_model(tmp_path / "out")
    assert converted.get_input_embeddings().weight.shape[0] == 4000
    assert torch.isfinite(converted.get_input_embeddings().weight).all()


def test_demo_adds_a_hypernet_row_beside_fvt():
    from transplant.demo import with_builtin_hypernet

    assert with_builtin_hypernet(("fvt",)) == ("fvt", "hypernet")
    assert with_builtin_hypernet(("mean", "fvt", "random")) == ("mean", "fvt", "hypernet", "random")
    assert with_builtin_hypernet(("fvt", "hypernet")) == ("fvt", "hypernet")  # asked for: not twice
    assert with_builtin_hypernet(("mean",)) == ("mean",)  # no fvt row to stand beside
