"""SuperBPE: subword merges first, then merges across spaces, in the source tokenizer's style."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tiny import byte_level_bpe, lines, sentencepiece_bpe
from transplant.cli import main
from transplant.errors import TransplantError
from transplant.evaluate import tokenizer_stats
from transplant.tokenizer_training import train_tokenizer

TRAIN, HELD_OUT = list(lines(0, 2000)), "\n".join(lines(2000, 500))


@pytest.fixture(scope="module")
def pair():
    like = byte_level_bpe()
    return like, train_tokenizer(like, TRAIN, 1500, "bpe", progress=False), train_tokenizer(like, TRAIN, 1500, "superbpe", progress=False, transition=1000)


def test_superbpe_keeps_size_style_and_specials_and_needs_fewer_tokens(pair):
    like, bpe, superbpe = pair
    assert len(superbpe) == len(bpe) == 1500
    for token in ("<|im_start|>", "<|im_end|>", "<|endoftext|>"):
        assert superbpe.convert_tokens_to_ids(token) == like.convert_tokens_to_ids(token)
    assert superbpe.bos_token == like.bos_token and superbpe.chat_template == like.chat_template
    assert tokenizer_stats(superbpe, HELD_OUT)["tokens"] < tokenizer_stats(bpe, HELD_OUT)["tokens"]
    spanning = [t for t in superbpe.get_vocab() if "Ġ" in t[1:] and t.strip("Ġ")]
    assert spanning, "superword tokens contain an inner space"
    for text in HELD_OUT.splitlines()[:50]:
        assert superbpe.decode(superbpe(text)["input_ids"]) == text


def test_superbpe_stage_one_is_the_bpe_of_the_transition_size(pair):
    like = pair[0]
    stage1 = train_tokenizer(like, TRAIN, 1000, "bpe", progress=False)
    superbpe = pair[2]
    merges = json.loads(superbpe.backend_tokenizer.to_str())["model"]["merges"]
    first = json.loads(stage1.backend_tokenizer.to_str())["model"]["merges"]
    assert merges[: len(first)] == first
    assert all(superbpe.convert_tokens_to_ids(t) == i for t, i in stage1.get_vocab().items())


def test_superbpe_refusals():
    like = byte_level_bpe()
    with pytest.raises(TransplantError, match="needs --transition"):
        train_tokenizer(like, TRAIN, 1500, "superbpe", progress=False)
    with pytest.raises(TransplantError, match="must lie between"):
        train_tokenizer(like, TRAIN, 1500, "superbpe", progress=False, transition=1500)
    with pytest.raises(TransplantError, match="byte-level BPE"):
        train_tokenizer(sentencepiece_bpe(), TRAIN, 1500, "superbpe", progress=False, transition=1000)
    with pytest.raises(TransplantError, match="is for --type superbpe"):
        train_tokenizer(like, TRAIN, 1500, "bpe", progress=False, transition=1000)


def test_cli_trains_superbpe(tmp_path):
    like = byte_level_bpe()
    like.save_pretrained(tmp_path / "like")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(TRAIN), encoding="utf-8")
    result = CliRunner().invoke(main, ["train-tokenizer", "--like", str(tmp_path / "like"), "--corpus", str(corpus), "--vocab-size", "1200",
                                       "--type", "superbpe", "--transition", "900", "-o", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "1200 tokens (superbpe)" in result.output
    bad = CliRunner().invoke(main, ["train-tokenizer", "--like", str(tmp_path / "like"), "--corpus", str(corpus), "--vocab-size", "1200",
                                    "--type", "superbpe", "-o", str(tmp_path / "out2")])
    assert bad.exit_code == 1 and bad.output.startswith("Error:") and "--transition" in bad.output
