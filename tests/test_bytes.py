"""The byte-level view: covering probabilities, their identities, ensembles and generation."""

from __future__ import annotations

import json
import math

import pytest
import torch
from click.testing import CliRunner
from transformers import AutoModelForCausalLM

from tiny import byte_level_bpe, sentencepiece_bpe, tiny_model, vocab_tokenizer, wordpiece
from transplant.bytes import END, ByteEnsemble, ByteLevelModel, byte_log_likelihood, ensemble_bits_per_byte, generate, next_byte_distribution, split_incomplete_utf8
from transplant.cli import main
from transplant.errors import TransplantError

TEXT = "Über den Wolken 😀 muss die Freiheit 日本 wohl grenzenlos sein."
FAMILIES = {
    "byte_level_bpe": byte_level_bpe,
    "sentencepiece_byte_fallback": sentencepiece_bpe,
    "splits_utf8_characters": lambda: vocab_tokenizer("byte_bpe"),  # mixed scripts: partial-character tokens
}


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family(request, tmp_path_factory):
    tokenizer = FAMILIES[request.param]()
    directory = tiny_model(tmp_path_factory.mktemp(request.param), tokenizer, seed=3)
    model = AutoModelForCausalLM.from_pretrained(directory).eval()
    return request.param, directory, ByteLevelModel(model, tokenizer, label=request.param)


def _token_log_likelihood(byte_model: ByteLevelModel, ids: list[int]) -> float:
    """The plain token-level log-likelihood of ``[start] + ids``, one forward pass."""
    full = [byte_model.start, *ids]
    with torch.no_grad():
        logits = byte_model.model(input_ids=torch.tensor([full])).logits[0].double()
    log_probs = torch.log_softmax(logits, dim=-1)
    return sum(float(log_probs[p, full[p + 1]]) for p in range(len(full) - 1))


def _brute_force_next_byte(byte_model: ByteLevelModel, prefix: bytes) -> torch.Tensor:
    """The covering sum written out: one forward pass per history, every vocabulary id checked."""
    text, incomplete = split_incomplete_utf8(prefix)
    tokens = byte_model.tokenize(text)
    ids = tokens.ids + [byte_model.vocab.surface_index[bytes([b])] for b in incomplete]
    stream = tokens.stream + incomplete
    masses = torch.zeros(257, dtype=torch.float64)
    for i in range(len(ids) + 1):
        history = ids[:i]
        begin = len(b"".join(byte_model.vocab.surface(t) for t in history))
        tail = stream[begin:]
        weight = math.exp(_token_log_likelihood(byte_model, history))
        full = [byte_model.start, *history]
        with torch.no_grad():
            probs = torch.softmax(byte_model.model(input_ids=torch.tensor([full])).logits[0, -1].double(), dim=-1)
        for token in range(len(byte_model.vocab)):
            if byte_model.vocab.canonical[token] is None:
                continue
            surface = byte_model.vocab.surface(token)
            if len(surface) > len(tail) and surface.startswith(tail):
                masses[surface[len(tail)]] += weight * float(probs[token])
        if i == len(ids) and not incomplete:
            masses[END] += weight * float(probs[byte_model.eos])
    return masses / masses.sum()


def test_the_families_cover_what_they_claim(family):
    name, _, byte_model = family
    surfaces = [byte_model.vocab.surface(i) for i in range(len(byte_model.vocab)) if byte_model.vocab.canonical[i] is not None]
    if name == "splits_utf8_characters":
        tokens = byte_model.tokenize(TEXT)
        pieces = [byte_model.vocab.surface(i) for i in tokens.ids]
        assert any(_not_utf8(p) for p in pieces), "the test text must be tokenized across a character"
        assert any(_not_utf8(s) and len(s) > 1 for s in surfaces), "a multi-byte token that splits a character"
    if name == "sentencepiece_byte_fallback":
        assert byte_model.vocab.style.byte_fallback and byte_model.tokenize(TEXT).lead == 1


def _not_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return False
    except UnicodeDecodeError:
        return True


def test_byte_log_likelihood_equals_token_log_likelihood_at_the_end_of_text(family):
    """Exact (1e-5) for any model: the byte chain with its end term is log P(T) + log P(eos | T)."""
    _, _, byte_model = family
    for text in (TEXT, "Hallo", "a b  c\nd"):
        values, tokens = byte_model.byte_log_probs(text, end=True)
        assert len(values) == len(tokens.stream) + 1
        expected = _token_log_likelihood(byte_model, tokens.ids + [byte_model.eos])
        assert float(values.sum()) == pytest.approx(expected, abs=1e-5)
        # the function form scores the text's own bytes: the lead (SentencePiece's " ") is given
        lead = float(values[: tokens.lead].sum())
        assert byte_log_likelihood(byte_model.model, byte_model.tokenizer, text, end=True) + lead == pytest.approx(expected, abs=1e-5)


def test_without_the_end_the_byte_likelihood_adds_the_tokens_that_run_past_the_text(family):
    _, _, byte_model = family
    gaps = []
    for text in (TEXT, "Über den Wol", "Die Sonne sch", "und d"):
        values, tokens = byte_model.byte_log_probs(text)
        assert (values <= 1e-12).all()  # every conditional is a probability
        gaps.append(float(values.sum()) - _token_log_likelihood(byte_model, tokens.ids))
    # P(text starts with these bytes) = P(T) + tokens running past its end
    assert min(gaps) >= -1e-9 and max(gaps) > 1e-3


@pytest.mark.parametrize("prefix", ["Über den Wol", "Über den Wolken", "Über den Wolken ", "", TEXT[:20]])
def test_next_byte_distribution_matches_the_written_out_sum(family, prefix):
    _, _, byte_model = family
    data = prefix.encode("utf-8")
    distribution = byte_model.next_byte_distribution(data)
    assert torch.equal(distribution, next_byte_distribution(byte_model.model, byte_model.tokenizer, data))
    assert distribution.shape == (257,)
    assert float(distribution.sum()) == pytest.approx(1.0, abs=1e-12)
    assert torch.allclose(distribution, _brute_force_next_byte(byte_model, data), atol=1e-10)


def test_a_prefix_ending_inside_a_character_continues_it(family):
    _, _, byte_model = family
    data = "Freiheit 日".encode("utf-8")[:-2]  # first byte of 日
    distribution = byte_model.next_byte_distribution(data)
    assert float(distribution.sum()) == pytest.approx(1.0, abs=1e-12)
    assert torch.allclose(distribution, _brute_force_next_byte(byte_model, data), atol=1e-10)
    assert float(distribution[END]) == 0.0  # the text cannot end inside a character


def test_an_ensemble_of_a_model_with_itself_is_the_model(family):
    _, _, byte_model = family
    single = byte_model.next_byte_distribution("Über den W")
    pair = ByteEnsemble([byte_model, byte_model], [0.3, 0.7]).next_byte_distribution("Über den W")
    assert torch.allclose(single, pair, atol=1e-12)
    result = ensemble_bits_per_byte(ByteEnsemble([byte_model, byte_model]), TEXT + "\n", segment_bytes=64, progress=False)
    assert result.ensemble == pytest.approx(result.members[0][1], abs=1e-9)


def test_ensemble_across_tokenizers_is_a_distribution_and_mixes_the_members(tmp_path):
    first = ByteLevelModel(AutoModelForCausalLM.from_pretrained(tiny_model(tmp_path / "a", byte_level_bpe(), seed=1)).eval(), byte_level_bpe())
    second = ByteLevelModel(AutoModelForCausalLM.from_pretrained(tiny_model(tmp_path / "b", sentencepiece_bpe(), seed=2)).eval(), sentencepiece_bpe())
    ensemble = ByteEnsemble([first, second], [1, 3])
    mixed = ensemble.next_byte_distribution("Die Sonne sch")
    expected = 0.25 * first.next_byte_distribution("Die Sonne sch") + 0.75 * second.next_byte_distribution("Die Sonne sch")
    assert torch.allclose(mixed, expected, atol=1e-12)
    assert float(mixed.sum()) == pytest.approx(1.0, abs=1e-12)
    result = ensemble_bits_per_byte(ensemble, "Die Sonne scheint.\n", segment_bytes=64, progress=False, other_weights=([1, 0], [0, 2], [1, 3]))
    assert [value for _, value in result.other_weights] == pytest.approx([result.members[0][1], result.members[1][1], result.ensemble], abs=1e-12)
    mixture, members = ensemble.text_log_probs("Die Sonne scheint.")
    assert all(len(m) == len("Die Sonne scheint.".encode()) for m in members)  # the lead " " is not scored
    # the mixture of two probabilities lies between them
    assert (mixture <= torch.maximum(*members) + 1e-12).all() and (mixture >= torch.minimum(*members) - 1e-12).all()


def test_greedy_generation_takes_the_most_likely_byte_and_stays_utf8(family):
    _, _, byte_model = family
    produced = generate(byte_model, "Über den W", 12)
    distribution = byte_model.next_byte_distribution("Über den W")
    if produced:
        assert produced[0] == int(distribution.argmax())
    split_incomplete_utf8(produced)  # raises on invalid UTF-8
    assert generate(byte_model, "Über den W", 12, temperature=1.0, seed=5) == generate(byte_model, "Über den W", 12, temperature=1.0, seed=5)


def test_wordpiece_and_missing_start_tokens_are_refused(tmp_path):
    tokenizer = wordpiece()
    model = AutoModelForCausalLM.from_pretrained(tiny_model(tmp_path / "wp", byte_level_bpe(), seed=0))
    with pytest.raises(TransplantError, match="spell the text"):
        ByteLevelModel(model, tokenizer)
    with pytest.raises(TransplantError, match="no bos or eos"):
        ByteLevelModel(model, byte_level_bpe(bos_token=None, eos_token=None, pad_token=None))


def test_cli_generate_and_eval_ensemble(family, tmp_path):
    name, directory, byte_model = family
    runner = CliRunner()
    result = runner.invoke(main, ["generate", str(directory), str(directory), "--prompt", "Über den W", "--max-bytes", "8", "--quiet"])
    assert result.exit_code == 0, result.output
    expected = generate(byte_model, "Über den W", 8).decode("utf-8", errors="replace")
    assert result.output == "Über den W" + expected + "\n"
    text = tmp_path / "held_out.txt"
    text.write_text(TEXT + "\nDie Sonne scheint.\n", encoding="utf-8")
    result = runner.invoke(main, ["eval", str(directory), str(directory), "--text", str(text), "--ensemble", "--weights", "1,2", "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.output.splitlines()[0])
    assert row["ensemble"] == pytest.approx(row["members"][0]["bits_per_byte"], abs=1e-9)
    bad = runner.invoke(main, ["eval", str(directory), "--text", str(text), "--ensemble", "--weights", "1,2"])
    assert bad.exit_code != 0 and "Error:" in bad.output and "Traceback" not in bad.output
