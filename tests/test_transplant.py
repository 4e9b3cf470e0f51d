"""Checkpoint surgery and initialisers on tiny random models of several architectures."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from tiny import CHAT_TEMPLATE, lines, permuted, sentencepiece_bpe, tiny_model, wordpiece
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

import transplant
from transplant.checkpoint import open_checkpoint, read_tensor
from transplant.errors import TransplantError
from transplant.evaluate import bits_per_byte
from transplant.vocab import Vocabulary, build_mapping

HELD_OUT = "\n".join(lines(3000, 40)) + "\n"


def _load(path):
    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


def test_permuted_own_tokenizer_gives_identical_bits_per_byte(tmp_path, llama, source_tokenizer):
    shuffled, new_to_old = permuted(source_tokenizer)
    report = transplant.convert(llama, shuffled, tmp_path / "out", method="random", progress=False)
    assert report.rules["input"].get("random", 0) == 0  # every token found by its bytes
    before = bits_per_byte(*_load(llama), HELD_OUT, progress=False)
    after = bits_per_byte(*_load(tmp_path / "out"), HELD_OUT, progress=False)
    assert before.tokens == after.tokens
    assert after.bits_per_byte == pytest.approx(before.bits_per_byte, abs=1e-4)
    source = read_tensor(open_checkpoint(llama), "model.embed_tokens.weight")
    moved = read_tensor(open_checkpoint(tmp_path / "out"), "model.embed_tokens.weight")
    assert torch.equal(moved, source[new_to_old])


def test_in_memory_api_matches_on_disk_convert(tmp_path, llama, target_tokenizer):
    model, tokenizer, report = transplant.transplant(llama, target_tokenizer, method="fvt", progress=False)
    transplant.save(model, tokenizer, tmp_path / "saved", report)
    transplant.convert(llama, target_tokenizer, tmp_path / "converted", method="fvt", progress=False)
    saved = read_tensor(open_checkpoint(tmp_path / "saved"), "model.embed_tokens.weight")
    converted = read_tensor(open_checkpoint(tmp_path / "converted"), "model.embed_tokens.weight")
    assert torch.allclose(saved, converted, atol=1e-6)
    assert model.config.vocab_size == len(tokenizer) == saved.shape[0]
    assert json.loads((tmp_path / "saved" / "transplant_report.json").read_text())["method"] == "fvt"


def test_fvt_rows_are_means_of_their_decomposition(tmp_path, llama, source_tokenizer, target_tokenizer):
    for weighting in ("mean", "length"):
        report = transplant.convert(llama, target_tokenizer, tmp_path / weighting, method="fvt", weighting=weighting, progress=False)
        new = read_tensor(open_checkpoint(tmp_path / weighting), "model.embed_tokens.weight")
        old = read_tensor(open_checkpoint(llama), "model.embed_tokens.weight")
        mapping = build_mapping(Vocabulary.from_tokenizer(source_tokenizer), Vocabulary.from_tokenizer(target_tokenizer), progress=False)
        checked = 0
        for index, rule in enumerate(report.token_rules):
            if rule == "exact":
                assert torch.equal(new[index], old[mapping.matches[index]])
            elif rule == "fvt":
                pieces = mapping.pieces[index]
                weights = torch.tensor([len(mapping.source.surface(p)) if weighting == "length" else 1.0 for p in pieces], dtype=torch.float32)
                expected = (old[pieces] * weights[:, None]).sum(0) / weights.sum()
                assert torch.allclose(new[index], expected, atol=1e-5)
                checked += 1
        assert checked > 20


@pytest.mark.parametrize("method", ["mean", "random", "mvn"])
def test_statistical_methods(tmp_path, llama, target_tokenizer, method):
    report = transplant.convert(llama, target_tokenizer, tmp_path / "out", method=method, progress=False)
    new = read_tensor(open_checkpoint(tmp_path / "out"), "model.embed_tokens.weight")
    old = read_tensor(open_checkpoint(llama), "model.embed_tokens.weight")
    rows = torch.tensor([r == method for r in report.token_rules])
    assert rows.sum() > 100
    assert torch.allclose(new[rows].mean(0), old[3:].mean(0), atol=0.05)
    spread = new[rows].std(0).mean()
    if method == "random":
        assert spread == pytest.approx(old[3:].std(0).mean().item(), rel=0.2)
    else:
        assert spread < 1e-3


def test_report_names_a_rule_for_every_token(tmp_path, llama, target_tokenizer):
    report = transplant.convert(llama, target_tokenizer, tmp_path / "out", method="fvt", progress=False)
    saved = json.loads((tmp_path / "out" / "transplant_report.json").read_text())
    assert len(saved["token_rules"]) == len(target_tokenizer)
    assert sum(saved["rules"]["input"].values()) == len(target_tokenizer)
    assert saved["rules"]["input"]["special"] == 3
    assert saved["vocabulary"]["shared_tokens"] == report.mapping["shared_tokens"] > 100


@pytest.mark.parametrize("architecture", ["llama", "qwen2", "gpt2", "gemma"])
def test_architectures_convert_load_and_generate(tmp_path, source_tokenizer, target_tokenizer, architecture):
    source = tiny_model(tmp_path / "src", source_tokenizer, architecture)
    checkpoint = open_checkpoint(source)
    transplant.convert(source, target_tokenizer, tmp_path / "out", method="fvt", progress=False)
    out = open_checkpoint(tmp_path / "out")
    assert out.tied == checkpoint.tied == (architecture != "qwen2")
    assert set(out.tensor_files) == set(checkpoint.tensor_files)
    model, tokenizer = _load(tmp_path / "out")
    assert model.get_input_embeddings().weight.shape[0] == len(target_tokenizer)
    if not checkpoint.tied:
        head = read_tensor(out, out.output_key)
        old_head = read_tensor(checkpoint, checkpoint.output_key)
        index = tokenizer.convert_tokens_to_ids("Ġund")
        assert torch.equal(head[index], old_head[source_tokenizer.convert_tokens_to_ids("Ġund")])
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Hallo"}], add_generation_prompt=True, return_tensors="pt", return_dict=True)
    generated = model.generate(**prompt, max_new_tokens=5, do_sample=False)
    assert generated.shape[1] > prompt["input_ids"].shape[1]
    assert model.config.eos_token_id == tokenizer.convert_tokens_to_ids("<|im_end|>")


def test_bert_masked_lm_remaps_head_bias(tmp_path):
    source_tokenizer, target_tokenizer = wordpiece(500), wordpiece(400, start=2500)
    source = tiny_model(tmp_path / "src", source_tokenizer, "bert")
    checkpoint = open_checkpoint(source)
    assert checkpoint.auto_class == "AutoModelForMaskedLM" and checkpoint.output_bias_key
    transplant.convert(source, target_tokenizer, tmp_path / "out", method="fvt", progress=False)
    model = AutoModelForMaskedLM.from_pretrained(tmp_path / "out")
    old_bias = read_tensor(checkpoint, checkpoint.output_bias_key)
    new_bias = model.get_output_embeddings().bias.detach()
    token = next(t for t in target_tokenizer.get_vocab() if t in source_tokenizer.get_vocab() and len(t) > 3)
    assert new_bias[target_tokenizer.convert_tokens_to_ids(token)] == old_bias[source_tokenizer.convert_tokens_to_ids(token)]
    assert model.config.vocab_size == len(target_tokenizer)
    assert model.config.pad_token_id == target_tokenizer.pad_token_id


def test_cross_family_overlap_beats_string_matching(tmp_path, llama):
    report = transplant.convert(llama, sentencepiece_bpe(), tmp_path / "sp", method="fvt", add_missing_special_tokens=True, progress=False)
    assert report.mapping["shared_tokens"] > report.mapping["shared_tokens_naive_string_match"] + 50
    assert set(report.added_special_tokens) == {"<|im_start|>", "<|im_end|>"}
    model, tokenizer = _load(tmp_path / "sp")
    assert tokenizer.apply_chat_template([{"role": "user", "content": "Hallo"}], tokenize=False).startswith("<|im_start|>user")
    assert tokenizer.chat_template == CHAT_TEMPLATE


def test_missing_special_tokens_is_a_clear_error(tmp_path, llama):
    with pytest.raises(TransplantError, match="--add-missing-special-tokens"):
        transplant.convert(llama, wordpiece(), tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_failed_write_leaves_no_output(tmp_path, llama, target_tokenizer, monkeypatch):
    def broken(directory):
        raise OSError("disk full")

    monkeypatch.setattr(type(target_tokenizer), "save_pretrained", lambda self, d: broken(d))
    with pytest.raises(OSError):
        transplant.convert(llama, target_tokenizer, tmp_path / "out", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_sharded_output_respects_shard_size(tmp_path, llama, target_tokenizer):
    limit = 20_000
    transplant.convert(llama, target_tokenizer, tmp_path / "out", max_shard_bytes=limit, progress=False)
    index = json.loads((tmp_path / "out" / "model.safetensors.index.json").read_text())
    shards = set(index["weight_map"].values())
    assert len(shards) > 3
    for shard in shards:  # a shard only exceeds the limit when it holds one oversized tensor
        with safe_open(tmp_path / "out" / shard, "pt") as handle:
            sizes = [handle.get_tensor(k).nbytes for k in handle.keys()]
        assert sum(sizes) <= limit or len(sizes) == 1
    source = open_checkpoint(llama)
    for name, shard in index["weight_map"].items():
        if name == "model.embed_tokens.weight":
            continue
        with safe_open(tmp_path / "out" / shard, "pt") as handle:
            assert torch.equal(handle.get_tensor(name), read_tensor(source, name))
    model, _ = _load(tmp_path / "out")
    assert model.get_input_embeddings().weight.shape[0] == len(target_tokenizer)
    # a sharded checkpoint is also a valid source: back onto the original tokenizer
    transplant.convert(tmp_path / "out", llama, tmp_path / "back", progress=False)
    back = read_tensor(open_checkpoint(tmp_path / "back"), "model.embed_tokens.weight")
    original = read_tensor(source, "model.embed_tokens.weight")
    shared = [i for i, rule in enumerate(json.loads((tmp_path / "back" / "transplant_report.json").read_text())["token_rules"]) if rule == "exact"]
    assert len(shared) > 300 and torch.equal(back[shared], original[shared])


def test_unknown_method_and_option_fail_before_work(tmp_path, llama, target_tokenizer):
    with pytest.raises(TransplantError, match="unknown method"):
        transplant.convert(llama, target_tokenizer, tmp_path / "a", method="nope")
    with pytest.raises(TransplantError, match="has no option"):
        transplant.convert(llama, target_tokenizer, tmp_path / "b", method="mean", weighting="length")
