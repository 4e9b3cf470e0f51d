"""The CLI contract: working commands, and one clear line (never a traceback) for bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner
from tiny import byte_level_bpe, lines, tiny_model, wordpiece
from transformers import AutoTokenizer

from transplant.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    model = tiny_model(root / "model", byte_level_bpe(600), "llama")
    corpus = root / "corpus.txt"
    corpus.write_text("\n".join(lines(1000, 800)) + "\n", encoding="utf-8")
    held_out = root / "held_out.txt"
    held_out.write_text("\n".join(lines(3000, 30)) + "\n", encoding="utf-8")
    bert = root / "bert"
    wordpiece().save_pretrained(bert)
    return {"root": root, "model": model, "corpus": corpus, "held_out": held_out, "bert": bert}


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_train_convert_eval_round_trip(files, tmp_path):
    result = run("train-tokenizer", "--like", files["model"], "--corpus", files["corpus"], "--vocab-size", 500, "-o", tmp_path / "tok", "--quiet")
    assert result.exit_code == 0, result.output
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "tok")
    assert len(tokenizer) == 500 and tokenizer.bos_token == "<|im_start|>" and tokenizer.chat_template

    result = run("convert", files["model"], tmp_path / "tok", "-o", tmp_path / "out", "--quiet")
    assert result.exit_code == 0, result.output
    assert "by plain string match" in result.output
    report = json.loads((tmp_path / "out" / "transplant_report.json").read_text())
    assert report["method"] == "fvt" and sum(report["rules"]["input"].values()) == 500

    result = run("eval", files["model"], tmp_path / "out", "--text", files["held_out"], "--json", "--quiet")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert [r["model"] for r in rows] == [str(files["model"]), str(tmp_path / "out")]
    for row in rows:
        assert {"model", "file", "bits_per_byte", "bytes_per_token", "tokens", "bytes"} <= set(row)
        assert row["bits_per_byte"] > 0 and row["bytes"] == rows[0]["bytes"]


def test_unigram_tokenizer_like_a_bpe_model(files, tmp_path):
    result = run("train-tokenizer", "--like", files["model"], "--corpus", files["corpus"], "--vocab-size", 400, "--type", "unigram", "-o", tmp_path / "uni", "--quiet")
    assert result.exit_code == 0, result.output
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "uni")
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    assert spec["model"]["type"] == "Unigram" and spec["pre_tokenizer"]["type"] == "ByteLevel"
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.convert_tokens_to_ids("<|im_end|>") is not None
    text = "Und Gott sprach: Es werde Licht!"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text


def _bad(tmp_path, files):
    root = tmp_path
    (root / "corrupt").mkdir()
    (root / "corrupt" / "config.json").write_text("{not json")
    (root / "noweights").mkdir()
    (root / "noweights" / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (root / "badtok").mkdir()
    (root / "badtok" / "tokenizer.json").write_text("garbage")
    (root / "empty.txt").write_text("  \n")
    (root / "latin1.txt").write_bytes("Größe".encode("latin-1"))
    (root / "exists").mkdir()
    model, tok = files["model"], files["model"]
    return {
        "missing model": (["convert", root / "nope", tok, "-o", root / "o1"], "model not found"),
        "corrupt model": (["convert", root / "corrupt", tok, "-o", root / "o2"], "config.json"),
        "model without weights": (["convert", root / "noweights", tok, "-o", root / "o3"], "no weights"),
        "unreadable tokenizer": (["convert", model, root / "badtok", "-o", root / "o4"], "cannot load tokenizer"),
        "tokenizer lacks specials": (["convert", model, files["bert"], "-o", root / "o5"], "--add-missing-special-tokens"),
        "output exists": (["convert", model, tok, "-o", root / "exists"], "--overwrite"),
        "unknown method": (["convert", model, tok, "-o", root / "o6", "--method", "magic"], "unknown method"),
        "empty corpus": (["train-tokenizer", "--like", model, "--corpus", root / "empty.txt", "--vocab-size", 400, "-o", root / "o8"], "empty"),
        "non-UTF-8 corpus": (["train-tokenizer", "--like", model, "--corpus", root / "latin1.txt", "--vocab-size", 400, "-o", root / "o9"], "not UTF-8"),
        "missing corpus": (["train-tokenizer", "--like", model, "--corpus", root / "nope.txt", "--vocab-size", 400, "-o", root / "o10"], "not found"),
        "vocab too small": (["train-tokenizer", "--like", model, "--corpus", files["corpus"], "--vocab-size", 10, "-o", root / "o11"], "too small"),
        "missing eval text": (["eval", model, "--text", root / "nope.txt"], "not found"),
    }


def test_bad_input_gives_one_clear_line(files, tmp_path):
    for name, (args, expected) in _bad(tmp_path, files).items():
        result = CliRunner().invoke(main, [str(a) for a in args])
        lines_out = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code == 1, (name, result.output)
        assert len(lines_out) == 1 and lines_out[0].startswith("Error: "), (name, result.output)
        assert expected in lines_out[0], (name, lines_out[0])
        assert "Traceback" not in result.output
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("o", ".o")))
    assert leftovers == [], leftovers  # no partial output directories


def test_method_options_are_checked_against_the_chosen_method(files, tmp_path):
    """convert's method flags are shared by all methods; the chosen method's declarations decide
    which may be given and in what range: a usage error (exit 2), one line, nothing written."""
    model, out = files["model"], tmp_path / "out"
    cases = {
        ("--method", "mean", "--weighting", "length"): "--weighting is not an option of method 'mean' (its options: none)",
        ("--method", "fvt", "--k", "3"): "--k is not an option of method 'fvt' (its options: --weighting)",
        ("--method", "tokendistill", "--target-corpus", files["corpus"], "--snippet-length", "3"): "'--snippet-length': 3 is not in the range x>=4",
        ("--method", "focus", "--target-corpus", files["corpus"], "--target-corpus", files["corpus"]): "method 'focus' takes one --target-corpus, not 2",
        ("--method", "tokendistill", "--target-corpus", files["corpus"], "--donor", model): "--donor is not an option of method 'tokendistill'",
        # tokendistill also takes the options of its --init method: topk's, not fvt's
        ("--method", "tokendistill", "--target-corpus", files["corpus"], "--init", "topk", "--weighting", "mean"): "(its options: --k, --temperature, --target-corpus",
    }
    for args, expected in cases.items():
        result = run("convert", model, model, "-o", out, *args)
        lines_out = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code == 2 and len(lines_out) == 1 and lines_out[0].startswith("Error: "), (args, result.output)
        assert expected in lines_out[0], (args, lines_out[0])
    assert not out.exists()


def test_real_process_prints_no_traceback(files, tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "transplant.cli", "convert", str(files["model"]), str(files["bert"]), "-o", str(tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr
    assert completed.stderr.strip().startswith("Error: the new tokenizer lacks the model's special tokens")
    assert not (tmp_path / "out").exists()


def test_help_explains_every_command():
    for command in ("convert", "eval", "train-tokenizer", "demo", "methods"):
        result = run(command, "--help")
        assert result.exit_code == 0 and "Usage:" in result.output
    assert "fvt" in run("methods").output
