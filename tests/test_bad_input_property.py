"""Random bad input at the command line (hypothesis): whatever it is, the answer is a non-zero exit
with exactly one ``Error:`` line, no traceback, no new file outside the output's place, and every
input byte-identical afterwards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tiny
from click.testing import CliRunner
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import transplant
from transplant.cli import main

BAD_INTS = st.sampled_from(["0", "-1", "-1000", "abc", "1.5", ""])
BAD_FLOATS = st.sampled_from(["nan", "-nan", "0", "-1", "abc", "", "-inf"])


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory, source_tokenizer, target_tokenizer):
    """Inputs good and bad, in one directory whose every byte the test compares before and after."""
    root = tmp_path_factory.mktemp("sandbox")
    model = tiny.tiny_model(root / "model", source_tokenizer, "llama")
    target_tokenizer.save_pretrained(root / "tok")
    transplant.convert(model, root / "tok", root / "student", progress=False)
    (root / "text.txt").write_text("\n".join(tiny.lines(0, 60)) + "\n")
    (root / "empty.txt").write_text("")
    (root / "latin1.txt").write_bytes("Größe\n".encode("latin-1"))
    (root / "junk.bin").write_bytes(bytes(range(256)) * 4)
    junk_model = root / "junk_model"
    junk_model.mkdir()
    (junk_model / "config.json").write_text("{not json")
    (junk_model / "model.safetensors").write_bytes(b"\x00" * 64)
    half_model = root / "half_model"
    half_model.mkdir()
    (half_model / "config.json").write_text((model / "config.json").read_text())
    (half_model / "model.safetensors").write_bytes((model / "model.safetensors").read_bytes()[:500])
    junk_tok = root / "junk_tok"
    junk_tok.mkdir()
    (junk_tok / "tokenizer.json").write_text(json.dumps({"model": {"type": "Nonsense"}}))
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@st.composite
def bad_command(draw, root: Path):
    """A command line with exactly one thing wrong in it, and where its output would go."""
    out = root / "out"
    model, tok, student, text = root / "model", root / "tok", root / "student", root / "text.txt"
    bad_model = draw(st.sampled_from([root / "junk_model", root / "half_model", root / "junk.bin", root / "missing", root / "tok"]))
    bad_tok = draw(st.sampled_from([root / "junk_tok", root / "junk.bin", root / "missing_tok", root / "empty.txt"]))
    bad_text = draw(st.sampled_from([root / "empty.txt", root / "latin1.txt", root / "missing.txt", root / "junk.bin"]))
    kind = draw(st.sampled_from(["convert", "eval", "train-tokenizer", "distill", "hypernet"]))
    inputs = {"convert": [model, tok], "train-tokenizer": [model, text], "distill": [model, student, text], "hypernet": [model, text]}
    # the output is an input, contains one (the sandbox) or lies inside one
    overlapping = draw(st.sampled_from([root, model / "inside", *inputs.get(kind, [model])]))
    fault = draw(st.sampled_from(["model", "tokenizer", "text", "number", "output"]))
    bad_int, bad_float = draw(BAD_INTS), draw(BAD_FLOATS)

    if kind == "convert":
        method = draw(st.sampled_from(["fvt", "mean", "mvn", "topk", "tokenadapt"]))
        args = ["convert", model, tok, "-o", out, "--method", method, "--quiet"]
        if fault == "model":
            args[1] = bad_model
        elif fault in ("tokenizer", "text"):
            args[2] = bad_tok
        elif fault == "number":
            option = {"mvn": "--scale", "topk": "--temperature", "tokenadapt": "--weight"}.get(method, "--seed")
            args += [option, (bad_int if bad_int != "0" else "-1") if option == "--seed" else bad_float]
        else:
            args[4] = overlapping
            args.append("--overwrite")
    elif kind == "eval":
        args = ["eval", model, "--text", text, "--quiet"]
        if fault == "model":
            args[1] = bad_model
        elif fault in ("tokenizer", "text"):
            args[3] = bad_text
        else:
            args += [draw(st.sampled_from(["--context", "--max-bytes", "--segment-bytes"])), bad_int]
    elif kind == "train-tokenizer":
        args = ["train-tokenizer", "--like", model, "--corpus", text, "--vocab-size", "400", "-o", out, "--quiet"]
        if fault == "model":
            args[2] = bad_tok
        elif fault in ("tokenizer", "text"):
            args[4] = bad_text
        elif fault == "number":
            args[6] = bad_int
        else:
            args[8] = overlapping
            args.append("--overwrite")
    elif kind == "distill":
        args = ["distill", "--teacher", model, "--student", student, "--text", text, "-o", out, "--max-steps", "1", "--batch-size", "1", "--quiet"]
        if fault == "model":
            args[draw(st.sampled_from([2, 4]))] = bad_model
        elif fault in ("tokenizer", "text"):
            args[6] = bad_text
        elif fault == "number":
            option = draw(st.sampled_from(["--max-tokens", "--max-steps", "--batch-size", "--grad-accum", "--lr", "--temperature", "--merge-threshold"]))
            args += [option, bad_float if option in ("--lr", "--temperature", "--merge-threshold") else bad_int]
        else:
            args[8] = overlapping
            args.append("--overwrite")
    else:
        args = ["hypernet", "train", model, "--corpus", text, "-o", out, "--max-steps", "1", "--quiet"]
        if fault == "model":
            args[2] = bad_model
        elif fault in ("tokenizer", "text"):
            args[4] = bad_text
        elif fault == "number":
            option = draw(st.sampled_from(["--max-steps", "--batch-size", "--block-size", "--learning-rate", "--sampled-vocab-size"]))
            args += [option, bad_float if option == "--learning-rate" else bad_int]
        else:
            args[6] = overlapping
            args.append("--overwrite")
    return [str(a) for a in args]


@pytest.mark.filterwarnings("ignore")
def test_random_bad_input_fails_cleanly_and_touches_nothing(sandbox):
    before = snapshot(sandbox)

    @settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), report_multiple_bugs=False, phases=[Phase.generate])
    @given(bad_command(sandbox))
    def check(args):
        result = CliRunner().invoke(main, args)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code != 0, (args, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), (args, repr(result.exception))
        assert "Traceback" not in result.output, (args, result.output)
        assert len(lines) == 1 and lines[0].startswith("Error:"), (args, result.output)
        assert snapshot(sandbox) == before, args  # inputs unchanged, nothing new (no partial, no lock)
        assert sorted(p.name for p in sandbox.iterdir()) == sorted({name.split("/")[0] for name in before}), args

    check()
