"""Tokenizer quality numbers: hand-checkable cases and the command."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tiny import byte_level_bpe, lines, sentencepiece_bpe, wordpiece
from transplant.cli import main
from transplant.tokenizer_report import measure


def test_numbers_on_a_text_the_tokenizer_knows_word_by_word():
    text = "der die das\nder die das\n"
    tokenizer = byte_level_bpe(text=["der die das"] * 50, vocab_size=300)
    assert tokenizer.tokenize("der die das") == ["der", "Ġdie", "Ġdas"]
    result = measure(tokenizer, text)
    assert result.words == 6 and result.tokens == 6 + 2  # each line's newline is a token
    assert result.fertility == pytest.approx(8 / 6)
    assert result.continued_words == 0.0
    assert result.whole_word_tokens == pytest.approx(6 / 8)
    assert result.bytes_per_token == pytest.approx(len(text.encode()) / 8)
    ordinary = sum(1 for t, i in tokenizer.get_vocab().items() if t not in tokenizer.all_special_tokens)
    assert result.vocabulary_used == pytest.approx(4 / ordinary)  # der, Ġdie, Ġdas, Ċ


def test_a_split_word_is_continued(tmp_path):
    tokenizer = byte_level_bpe(text=["ab ab ab"] * 30, vocab_size=270)
    result = measure(tokenizer, "abx abx\n")
    assert result.continued_words == 1.0 and result.whole_word_tokens == 0.0


@pytest.mark.parametrize("build", [byte_level_bpe, sentencepiece_bpe, wordpiece])
def test_every_family_gives_sane_numbers(build):
    result = measure(build(), "\n".join(lines(3000, 40)))
    assert result.fertility >= 1 and 0 < result.continued_words < 1 and 0 < result.whole_word_tokens < 1 and 0 < result.vocabulary_used < 1


def test_cli_table_json_and_report_directory(tmp_path):
    for name, build in (("bbpe", byte_level_bpe), ("sp", sentencepiece_bpe)):
        build().save_pretrained(tmp_path / name)
    (tmp_path / "de.txt").write_text("\n".join(lines(3000, 40)) + "\n", encoding="utf-8")
    (tmp_path / "mixed.txt").write_text("Über 100 Gäste 😀 kamen.\nLe garçon a mangé.\n", encoding="utf-8")
    args = ["tokenizer-report", str(tmp_path / "bbpe"), str(tmp_path / "sp"), "--text", str(tmp_path / "de.txt"), "--text", str(tmp_path / "mixed.txt")]
    runner = CliRunner()
    result = runner.invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [(r["tokenizer"].split("/")[-1], r["text"]) for r in rows] == [("bbpe", "de"), ("bbpe", "mixed"), ("sp", "de"), ("sp", "mixed")]
    result = runner.invoke(main, [*args, "-o", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    assert "bytes/token" in result.output
    assert {p.name for p in (tmp_path / "report").iterdir()} == {"report.md", "report.json", "tokenizers.png"}
    assert (tmp_path / "report" / "tokenizers.png").read_bytes()[:4] == b"\x89PNG"
    again = runner.invoke(main, [*args, "-o", str(tmp_path / "report")])
    assert again.exit_code == 1 and "exists" in again.output
    inside = runner.invoke(main, [*args, "-o", str(tmp_path / "de.txt")])
    assert inside.exit_code == 1 and inside.output.startswith("Error:")
