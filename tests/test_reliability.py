"""Nothing lost, nothing run, nothing silently wrong (issue #10): each numbered case of the issue,
as the hostile or careless user who found it would meet it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tiny
import torch
from click.testing import CliRunner
from safetensors.torch import load_file, save_file

import transplant
from transplant.cli import main
from transplant.distill import DistillConfig, distill
from transplant.distill import trainer as trainer_module
from transplant.distill.trainer import run_directory
from transplant.errors import TransplantError
from transplant.files import OutputClaim, leftovers
from transplant.loading import load_model


def one_error_line(args, exit_codes=(1, 2)) -> str:
    """Run the CLI; it must fail (1: bad input, 2: a bad option value) with exactly one line,
    starting with ``Error:``."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code in exit_codes, result.output
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.output
    return lines[0]


def tree(directory: Path) -> dict[str, bytes]:
    """Every file below ``directory`` with its bytes (hidden ones too)."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def files(tmp_path_factory, source_tokenizer, target_tokenizer):
    root = tmp_path_factory.mktemp("reliability")
    model = tiny.tiny_model(root / "models" / "model", source_tokenizer, "llama")
    target_tokenizer.save_pretrained(root / "tok")
    (root / "train.txt").write_text("\n".join(tiny.lines(0, 150)) + "\n")
    (root / "eval.txt").write_text("\n".join(tiny.lines(300, 40)) + "\n")
    transplant.convert(model, root / "tok", root / "student", progress=False)
    return {"root": root, "model": model, "tok": root / "tok", "train": root / "train.txt", "eval": root / "eval.txt", "student": root / "student"}


# ---------------------------------------------------------------------------------------------
# 1. --overwrite never destroys an input


def test_overwrite_refuses_every_output_that_touches_an_input(files):
    root, model = files["root"], files["model"]
    before = tree(root / "models")
    assert "contains the input" in one_error_line(["convert", model, files["tok"], "-o", root / "models", "--overwrite", "--quiet"])
    assert "is the input" in one_error_line(["convert", model, files["tok"], "-o", model, "--overwrite", "--quiet"])
    assert "lies inside the input" in one_error_line(["convert", model, files["tok"], "-o", model / "sub", "--overwrite", "--quiet"])
    assert "is the input" in one_error_line(["convert", model, files["tok"], "-o", files["tok"], "--overwrite", "--quiet"])
    assert "is the input" in one_error_line(
        ["train-tokenizer", "--like", model, "--corpus", files["train"], "--vocab-size", 400, "-o", model, "--overwrite", "--quiet"]
    )
    assert "is the input" in one_error_line(
        ["distill", "--teacher", model, "--student", files["student"], "--text", files["train"], "-o", model, "--overwrite", "--quiet"]
    )
    assert "is the input" in one_error_line(
        ["distill", "--teacher", model, "--student", files["student"], "--text", files["train"], "-o", files["student"], "--overwrite", "--quiet"]
    )
    assert "is the input" in one_error_line(
        ["hypernet", "train", model, "--corpus", files["train"], "-o", model, "--overwrite", "--quiet"]
    )
    # a path that reaches the input through a symbolic link is the input too
    (root / "link").symlink_to(model)
    assert "is the input" in one_error_line(["convert", model, files["tok"], "-o", root / "link", "--overwrite", "--quiet"])
    assert tree(root / "models") == before


# ---------------------------------------------------------------------------------------------
# 2. What appears at the output during a run is never replaced


def _appearing_during_the_write(monkeypatch, tokenizer, out: Path, content: str):
    """Make ``out`` appear (with a file in it) while the conversion writes its tokenizer."""
    original = type(tokenizer).save_pretrained

    def save_and_meanwhile(self, directory, *args, **kwargs):
        out.mkdir(exist_ok=True)
        (out / "precious.txt").write_text(content)
        return original(self, directory, *args, **kwargs)

    monkeypatch.setattr(type(tokenizer), "save_pretrained", save_and_meanwhile)


def test_an_output_that_appears_during_the_run_is_left_alone(files, tmp_path, monkeypatch):
    tokenizer = transplant.load_tokenizer(files["tok"])
    out = tmp_path / "out"
    _appearing_during_the_write(monkeypatch, tokenizer, out, "someone else's")
    with pytest.raises(TransplantError, match="appeared while"):
        transplant.convert(files["model"], tokenizer, out, progress=False)
    assert tree(out) == {"precious.txt": b"someone else's"}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no partial, no lock file


def test_overwrite_replaces_only_what_was_there_when_the_run_started(files, tmp_path, monkeypatch):
    out = tmp_path / "out"
    transplant.convert(files["model"], files["tok"], out, progress=False)
    tokenizer = transplant.load_tokenizer(files["tok"])
    original = type(tokenizer).save_pretrained

    def replaced_meanwhile(self, directory, *args, **kwargs):
        os.rename(out, tmp_path / "moved")
        out.mkdir()
        (out / "precious.txt").write_text("new")
        return original(self, directory, *args, **kwargs)

    monkeypatch.setattr(type(tokenizer), "save_pretrained", replaced_meanwhile)
    with pytest.raises(TransplantError, match="appeared while"):
        transplant.convert(files["model"], tokenizer, out, overwrite=True, progress=False)
    assert tree(out) == {"precious.txt": b"new"}
    monkeypatch.undo()
    # and an untouched one is replaced whole, atomically
    (tmp_path / "again").mkdir()
    (tmp_path / "again" / "stale.txt").write_text("old")
    transplant.convert(files["model"], files["tok"], tmp_path / "again", overwrite=True, progress=False)
    assert not (tmp_path / "again" / "stale.txt").exists() and (tmp_path / "again" / "config.json").is_file()


def test_two_runs_for_one_output_cannot_race(files, tmp_path):
    out = tmp_path / "out"
    with OutputClaim(out, inputs=[files["model"]]):  # as another process holding it mid-run
        message = one_error_line(["convert", files["model"], files["tok"], "-o", out, "--quiet"])
        assert "another run" in message and str(os.getpid()) in message
    assert not out.exists()
    result = CliRunner().invoke(main, ["convert", str(files["model"]), str(files["tok"]), "-o", str(out), "--quiet"])
    assert result.exit_code == 0, result.output  # once released, the output is free again


def test_concurrent_processes_one_wins_the_other_refuses(files, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "transplant.cli", "convert", str(files["model"]), str(files["tok"]), "-o", str(out), "--quiet"]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = [p.communicate(timeout=300) + (p.returncode,) for p in (first, second)]
    codes = sorted(code for _, _, code in results)
    assert codes == [0, 1], results
    loser = next(err for _, err, code in results if code == 1)
    assert loser.strip().startswith("Error:") and ("another run" in loser or "exists" in loser), loser
    assert (out / "config.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# ---------------------------------------------------------------------------------------------
# 3. Killed runs leave nothing that the next run does not clean


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_partials_of_dead_runs_are_removed_and_live_ones_kept(files, tmp_path):
    out = tmp_path / "out"
    dead = tmp_path / f".out.partial-{_dead_pid()}-abc123"
    dead.mkdir()
    (dead / "model.safetensors").write_bytes(b"x" * 1000)
    alive = tmp_path / f".out.partial-{os.getppid()}-def456"  # a live process (pytest's parent)
    alive.mkdir()
    other = tmp_path / f".other.partial-{_dead_pid()}-ghi789"  # another output's: not ours to judge
    other.mkdir()
    assert leftovers(out) == [dead]
    transplant.convert(files["model"], files["tok"], out, progress=False)
    assert not dead.exists() and alive.exists() and other.exists()


def test_dot_as_output_leaves_no_dot_dot_partials(files, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "transplant.cli", "convert", str(files["model"]), str(files["tok"]), "-o", ".", "--quiet"],
        cwd=work, capture_output=True, text=True,
    )
    assert result.returncode == 1 and result.stderr.strip().startswith("Error:") and "exists" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]
    result = subprocess.run(
        [sys.executable, "-m", "transplant.cli", "convert", str(files["model"]), str(files["tok"]), "-o", ".", "--overwrite", "--quiet"],
        cwd=work, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert (work / "config.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]  # no ..partial-*, ..old-*


@pytest.fixture(scope="module")
def wider_model(tmp_path_factory, source_tokenizer):
    """A model with enough tensors (in many small shards) that a kill lands in the writing too."""
    directory = tmp_path_factory.mktemp("wide") / "model"
    tiny.tiny_model(directory, source_tokenizer, "llama")
    config = json.loads((directory / "config.json").read_text())
    config.update(num_hidden_layers=8, hidden_size=128, intermediate_size=512, num_attention_heads=4, num_key_value_heads=2)
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(**config))
    model.save_pretrained(directory, max_shard_size="200KB")
    return directory


def _convert_command(model: Path, tokenizer: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "transplant.cli", "convert", str(model), str(tokenizer), "--max-shard-size", "64KB", "--quiet", "-o", str(out)]


@pytest.fixture(scope="module")
def uninterrupted(wider_model, files, tmp_path_factory):
    """The reference: one conversion that nothing interrupted, and how long it took."""
    out = tmp_path_factory.mktemp("uninterrupted") / "out"
    started = time.perf_counter()
    subprocess.run(_convert_command(wider_model, files["tok"], out), check=True, capture_output=True)
    return out, time.perf_counter() - started


@pytest.mark.parametrize("seed", range(4))
def test_kill_9_at_a_random_point_then_rerun_gives_the_uninterrupted_result(wider_model, files, uninterrupted, tmp_path, seed):
    """Even seeds kill anywhere in the run; odd seeds kill while shards are being written."""
    import random
    import signal

    straight_dir, duration = uninterrupted
    killed = tmp_path / "killed"
    draw = random.Random(seed)
    process = subprocess.Popen(_convert_command(wider_model, files["tok"], killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if seed % 2 == 0:
        time.sleep(draw.uniform(0.2, 1.0) * duration)
    else:  # once a random number of the ~130 shards is written
        shards = draw.randint(1, 40)
        while process.poll() is None and len(list(tmp_path.glob(".killed.partial-*/shard-*"))) < shards:
            time.sleep(0.002)
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait()
    if seed % 2:
        assert not killed.exists() and leftovers(killed), "the kill was meant to land mid-write"
    if killed.exists():  # finished before the kill: then it must already be whole
        assert (killed / "config.json").is_file()
    else:
        rerun = subprocess.run(_convert_command(wider_model, files["tok"], killed), capture_output=True, text=True)
        assert rerun.returncode == 0, rerun.stderr

    straight, resumed = tree(straight_dir), tree(killed)
    assert set(straight) == set(resumed)
    for name in straight:
        if name == "transplant_report.json":  # holds the run's wall time; the rest must match
            a, b = json.loads(straight[name]), json.loads(resumed[name])
            a.pop("seconds"), b.pop("seconds")
            assert a == b
        else:
            assert straight[name] == resumed[name], name
    assert [p.name for p in tmp_path.iterdir()] == ["killed"]  # no partial, no lock left


# ---------------------------------------------------------------------------------------------
# 4. No code from a model or tokenizer directory runs unasked

CUSTOM_CODE = """
from pathlib import Path
Path(__file__).with_name("CODE_RAN").write_text("yes")
from transformers import PretrainedConfig, PreTrainedModel
class CustomConfig(PretrainedConfig):
    model_type = "custom-thing"
"""


def _with_custom_code(source: Path, destination: Path, config_file: str, auto_map: dict) -> Path:
    import shutil

    shutil.copytree(source, destination)
    document = json.loads((destination / config_file).read_text())
    document["auto_map"] = auto_map
    if config_file == "config.json":
        document["model_type"] = "custom-thing"
    else:
        document["tokenizer_class"] = "CustomTokenizer"
    (destination / config_file).write_text(json.dumps(document))
    (destination / "custom.py").write_text(CUSTOM_CODE)
    return destination


def test_remote_code_never_runs_without_the_flag(files, tmp_path):
    model = _with_custom_code(files["model"], tmp_path / "model", "config.json", {"AutoConfig": "custom.CustomConfig"})
    tok = _with_custom_code(files["tok"], tmp_path / "tok", "tokenizer_config.json", {"AutoTokenizer": ["custom.CustomTokenizer", None]})
    for args in (
        ["convert", model, files["tok"], "-o", tmp_path / "out"],
        ["convert", files["model"], tok, "-o", tmp_path / "out"],
        ["eval", model, "--text", files["eval"]],
        ["train-tokenizer", "--like", tok, "--corpus", files["train"], "--vocab-size", 400, "-o", tmp_path / "out"],
    ):
        # no [y/N] prompt: stdin says "y", and still nothing runs
        result = CliRunner().invoke(main, [str(a) for a in args + ["--quiet"]], input="y\n")
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code == 1 and len(lines) == 1, result.output
        assert "--trust-remote-code" in lines[0], result.output
    assert not (model / "CODE_RAN").exists() and not (tok / "CODE_RAN").exists()
    assert not (tmp_path / "out").exists()
    # with the flag, the user's choice is honoured: transformers imports the shipped module
    CliRunner().invoke(main, ["convert", str(model), str(files["tok"]), "-o", str(tmp_path / "out"), "--trust-remote-code", "--quiet"])
    assert (model / "CODE_RAN").exists() or any(p.name == "CODE_RAN" for p in Path(os.environ.get("HF_MODULES_CACHE", Path.home() / ".cache" / "huggingface" / "modules")).rglob("CODE_RAN"))


# ---------------------------------------------------------------------------------------------
# 5. NaN and inf never reach a saved tensor or a printed number


@pytest.fixture()
def poisoned(files, tmp_path):
    """The tiny model with NaN in two rows of its embedding (ids 40 and 41) and inf in id 42."""
    import shutil

    directory = tmp_path / "poisoned"
    shutil.copytree(files["model"], directory)
    weights = load_file(directory / "model.safetensors")
    weights["model.embed_tokens.weight"][40:42] = float("nan")
    weights["model.embed_tokens.weight"][42, 3] = float("inf")
    save_file(weights, directory / "model.safetensors", metadata={"format": "pt"})
    return directory


@pytest.mark.parametrize("method", ["fvt", "mean", "topk"])
def test_a_nonfinite_source_row_stops_the_conversion_naming_it(poisoned, files, tmp_path, method):
    message = one_error_line(["convert", poisoned, files["tok"], "-o", tmp_path / "out", "--method", method, "--quiet"])
    assert "model.embed_tokens.weight" in message and "row 40 and 2 more rows" in message and "--skip-nonfinite-rows" in message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("method", ["fvt", "mean", "topk"])
def test_skip_nonfinite_rows_treats_them_as_missing(poisoned, files, tmp_path, method):
    result = CliRunner().invoke(main, ["convert", str(poisoned), str(files["tok"]), "-o", str(tmp_path / "out"), "--method", method, "--skip-nonfinite-rows", "--quiet"])
    assert result.exit_code == 0, result.output
    weights = load_file(tmp_path / "out" / "model.safetensors")
    assert all(torch.isfinite(tensor).all() for tensor in weights.values())
    source = transplant.load_tokenizer(poisoned)
    bad_tokens = set(source.convert_ids_to_tokens([40, 41, 42]))
    target = transplant.load_tokenizer(files["tok"])
    report = json.loads((tmp_path / "out" / "transplant_report.json").read_text())
    for token in bad_tokens & set(target.get_vocab()):
        assert report["token_rules"][target.get_vocab()[token]] not in ("exact", "special")


def test_nonfinite_new_rows_are_never_written(files, tmp_path, monkeypatch):
    from transplant.init.fvt import FvtInit

    original = FvtInit.rows

    def broken(self, inputs, target_ids):
        values, names = original(self, inputs, target_ids)
        values[5] = float("nan")
        return values, names

    monkeypatch.setattr(FvtInit, "rows", broken)
    with pytest.raises(TransplantError, match="new model.embed_tokens.weight built by 'fvt' has non-finite values"):
        transplant.convert(files["model"], files["tok"], tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_a_hypernetwork_with_nan_weights_is_refused_on_load(files, tmp_path):
    import hypernet

    net = hypernet.create(files["model"], width=32, layers=1, heads=2)
    hypernet.save(net, tmp_path / "hn")
    weights = load_file(tmp_path / "hn" / "hypernet.safetensors")
    name = next(iter(weights))
    weights[name].view(-1)[0] = float("nan")
    save_file(weights, tmp_path / "hn" / "hypernet.safetensors")
    message = one_error_line(["convert", files["model"], files["tok"], "-o", tmp_path / "out", "--method", "hypernet", "--hypernet", tmp_path / "hn", "--quiet"])
    assert "non-finite" in message and name in message


def test_eval_reports_no_nan(files, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(files["model"], broken)
    weights = load_file(broken / "model.safetensors")
    weights["model.norm.weight"][:] = float("nan")  # every logit becomes NaN
    save_file(weights, broken / "model.safetensors", metadata={"format": "pt"})
    for extra in ([], ["--json"]):
        message = one_error_line(["eval", broken, "--text", files["eval"], "--quiet", *extra])
        assert "non-finite" in message


# ---------------------------------------------------------------------------------------------
# 6. Tokenizers that cannot be right are refused by the vocabulary layer


def _tokenizer_from_spec(spec: dict, directory: Path, **roles) -> Path:
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(spec)), **roles).save_pretrained(directory)
    return directory


def test_broken_vocabularies_are_refused(files, target_tokenizer, tmp_path):
    spec = json.loads(target_tokenizer.backend_tokenizer.to_str())
    roles = {"bos_token": target_tokenizer.bos_token, "eos_token": target_tokenizer.eos_token}

    empty = json.loads(json.dumps(spec))
    empty["model"]["vocab"], empty["model"]["merges"] = {}, []
    empty_dir = _tokenizer_from_spec(empty, tmp_path / "empty", **roles)
    assert "no ordinary tokens" in one_error_line(["convert", files["model"], empty_dir, "-o", tmp_path / "out", "--quiet"])

    gap = json.loads(json.dumps(spec))
    token = next(t for t, i in gap["model"]["vocab"].items() if i == 300)
    gap["model"]["vocab"][token] = 100_000
    gap_dir = _tokenizer_from_spec(gap, tmp_path / "gap", **roles)
    assert "not contiguous" in one_error_line(["convert", files["model"], gap_dir, "-o", tmp_path / "out", "--quiet"])

    unigram = tiny.sentencepiece_unigram(600)  # a list vocabulary: the same piece twice is two ids
    duplicate = json.loads(unigram.backend_tokenizer.to_str())
    piece = duplicate["model"]["vocab"][200]
    duplicate["model"]["vocab"][201] = list(piece)
    duplicate_dir = _tokenizer_from_spec(duplicate, tmp_path / "duplicate", eos_token=unigram.eos_token, unk_token=unigram.unk_token)
    message = one_error_line(["convert", files["model"], duplicate_dir, "-o", tmp_path / "out", "--add-missing-special-tokens", "--quiet"])
    assert "id 200 names no token" in message and "duplicated" in message
    assert not (tmp_path / "out").exists()


def test_a_config_role_the_new_tokenizer_lacks_is_refused(tmp_path):
    """A model whose config names bos/eos ids that its tokenizer declares no role for: the new
    tokenizer without those tokens gave a config whose ids pointed at nothing."""
    source = tiny.byte_level_bpe(600, bos_token=None, eos_token=None, pad_token=None, chat_template=None)
    model = tiny.tiny_model(tmp_path / "model", source, "llama")
    config = json.loads((model / "config.json").read_text())
    config.update(bos_token_id=1, eos_token_id=2)  # <|im_start|>, <|im_end|>
    (model / "config.json").write_text(json.dumps(config))
    target = tiny.byte_level_bpe(700, start=2000, bos_token=None, eos_token=None, pad_token=None)
    spec = json.loads(target.backend_tokenizer.to_str())
    kept = [t for t in spec["added_tokens"] if t["content"] not in ("<|im_start|>", "<|im_end|>")]
    spec["added_tokens"] = kept
    for token in ("<|im_start|>", "<|im_end|>"):
        spec["model"]["vocab"].pop(token, None)
    ordered = sorted(spec["model"]["vocab"].items(), key=lambda kv: kv[1])
    spec["model"]["vocab"] = {t: i for i, (t, _) in enumerate(ordered)}
    for position, added in enumerate(sorted(kept, key=lambda t: t["id"])):
        added["id"] = position
    target_dir = _tokenizer_from_spec(spec, tmp_path / "target")
    message = one_error_line(["convert", model, target_dir, "-o", tmp_path / "out", "--quiet"])
    assert "bos_token_id=1" in message or "eos_token_id=2" in message


# ---------------------------------------------------------------------------------------------
# 7. Numeric options are checked where they enter


@pytest.mark.parametrize(
    "args",
    [
        ["--context", "1"], ["--context", "0"], ["--context", "-5"], ["--max-bytes", "-1"], ["--max-bytes", "0"], ["--segment-bytes", "0"],
    ],
)
def test_eval_refuses_impossible_numbers_at_once(files, args):
    started = time.perf_counter()
    message = one_error_line(["eval", files["model"], "--text", files["eval"], *args, "--quiet"])
    assert args[0] in message
    assert time.perf_counter() - started < 30  # it used to never return


def test_bits_per_byte_refuses_a_context_that_cannot_advance(files):
    from transplant.evaluate import bits_per_byte

    model, tokenizer = load_model(files["model"]), transplant.load_tokenizer(files["model"])
    with pytest.raises(TransplantError, match="at least 2"):
        bits_per_byte(model, tokenizer, files["eval"].read_text(), context=1, progress=False)


# ---------------------------------------------------------------------------------------------
# 8. distill: budgets, resume checks, every training mode


def _distill_args(files, **overrides):
    settings = {"--teacher": files["model"], "--student": files["student"], "--text": files["train"], "--batch-size": 2,
                "--max-tokens": 10**9, "--max-steps": 4, "--checkpoint-every": 2, "--lr": "1e-2", "--eval-every": 0}
    settings.update(overrides)
    return [item for key, value in settings.items() for item in (key, str(value))] + ["--quiet"]


@pytest.mark.parametrize("option", [["--max-tokens", "0"], ["--max-tokens", "-3"], ["--max-steps", "0"], ["--batch-size", "0"], ["--lr", "0"], ["--loss-weight", "alm=nan"]])
def test_distill_refuses_budgets_that_train_nothing(files, tmp_path, option):
    message = one_error_line(["distill", *_distill_args(files), *option, "-o", tmp_path / "out"])
    assert option[0] in message
    assert not (tmp_path / "out").exists() and not run_directory(tmp_path / "out").exists()


def _interrupted_run(files, out: Path, monkeypatch, train: str = "embeddings", **overrides):
    save = trainer_module.save_checkpoint

    def killed_after_step_2(accelerator, run_dir, step, state):
        path = save(accelerator, run_dir, step, state)
        if step == 2:
            raise KeyboardInterrupt
        return path

    monkeypatch.setattr(trainer_module, "save_checkpoint", killed_after_step_2)
    config = DistillConfig(loss="ce", train=train, max_steps=4, max_tokens=10**9, batch_size=2, checkpoint_every=2, eval_every=0, learning_rate=1e-2)
    with pytest.raises(KeyboardInterrupt):
        distill(files["model"], files["student"], [files["train"]], out, config, progress=False)
    monkeypatch.setattr(trainer_module, "save_checkpoint", save)
    return config


def test_resume_refuses_other_inputs(files, tmp_path, monkeypatch):
    out = tmp_path / "out"
    _interrupted_run(files, out, monkeypatch)
    other_text = tmp_path / "other.txt"
    other_text.write_text("\n".join(tiny.lines(2000, 150)) + "\n")
    other_student = tmp_path / "other_student"
    transplant.convert(files["model"], files["tok"], other_student, method="mean", progress=False)
    other_teacher = tiny.tiny_model(tmp_path / "other_teacher", tiny.byte_level_bpe(600), "llama", seed=1)
    for option, value, name in (("--text", other_text, "text"), ("--student", other_student, "student"), ("--teacher", other_teacher, "teacher")):
        args = _distill_args(files, **{option: value, "--loss": "ce"})
        message = one_error_line(["distill", *args, "-o", out, "--resume"])
        assert "other inputs" in message and name in message
    # the original inputs still resume
    result = CliRunner().invoke(main, ["distill", *_distill_args(files, **{"--loss": "ce"}), "-o", str(out), "--resume"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("train", ["lora", "full"])
def test_every_training_mode_resumes_to_the_uninterrupted_result(files, tmp_path, monkeypatch, train):
    config = _interrupted_run(files, tmp_path / "resumed", monkeypatch, train=train)
    distill(files["model"], files["student"], [files["train"]], tmp_path / "resumed", config, resume=True, progress=False)
    distill(files["model"], files["student"], [files["train"]], tmp_path / "straight", config, progress=False)
    a, b = load_file(tmp_path / "resumed" / "model.safetensors"), load_file(tmp_path / "straight" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_damaged_or_foreign_checkpoint_is_one_line(files, tmp_path, monkeypatch):
    out = tmp_path / "out"
    _interrupted_run(files, out, monkeypatch)
    step = run_directory(out) / "checkpoints" / "step-2"
    weights = next(step.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    message = one_error_line(["distill", *_distill_args(files, **{"--loss": "ce"}), "-o", out, "--resume"])
    assert "cannot resume" in message and "--overwrite" in message
    # a run started in one mode, resumed in another
    out2 = tmp_path / "out2"
    _interrupted_run(files, out2, monkeypatch)
    message = one_error_line(["distill", *_distill_args(files, **{"--loss": "ce", "--train": "lora"}), "-o", out2, "--resume"])
    assert "--resume" in message or "cannot resume" in message


def test_resuming_with_a_student_of_another_architecture_is_one_line(files, tmp_path, monkeypatch, source_tokenizer):
    out = tmp_path / "out"
    _interrupted_run(files, out, monkeypatch)
    gpt2 = tiny.tiny_model(tmp_path / "gpt2", source_tokenizer, "gpt2")
    message = one_error_line(["distill", *_distill_args(files, **{"--student": gpt2, "--loss": "ce"}), "-o", out, "--resume"])
    assert "other inputs" in message and "student" in message


# ---------------------------------------------------------------------------------------------
# 9. The smaller ones


def test_a_pickle_refusal_is_one_line(files, tmp_path):
    import pickle
    import shutil

    directory = tmp_path / "pickled"
    shutil.copytree(files["model"], directory, ignore=shutil.ignore_patterns("*.safetensors"))

    class Payload:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "PWNED"),))

    with open(directory / "pytorch_model.bin", "wb") as handle:
        pickle.dump({"model.embed_tokens.weight": Payload()}, handle)
    one_error_line(["convert", directory, files["tok"], "-o", tmp_path / "out", "--quiet"])
    assert not (tmp_path / "PWNED").exists()


def test_a_mistyped_local_path_is_not_sent_to_the_hub(files, tmp_path, monkeypatch):
    monkeypatch.chdir(files["root"])
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    started = time.perf_counter()
    assert "not found" in one_error_line(["convert", "models/modle", files["tok"], "-o", tmp_path / "out", "--quiet"])
    assert "not found" in one_error_line(["convert", files["model"], "models/tokk", "-o", tmp_path / "out", "--quiet"])
    assert time.perf_counter() - started < 20


def test_mvn_refuses_a_negative_scale(files, tmp_path):
    assert "scale" in one_error_line(["convert", files["model"], files["tok"], "-o", tmp_path / "out", "--method", "mvn", "--scale", "-1", "--quiet"])


def test_every_written_file_gets_the_users_umask(files, tmp_path):
    old = os.umask(0o022)
    try:
        transplant.convert(files["model"], files["tok"], tmp_path / "out", progress=False, max_shard_bytes=4096)
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "out").iterdir()}
    assert any(name.endswith(".safetensors") for name in modes)
    assert set(modes.values()) == {0o644}, modes
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o755


def test_hypernet_resume_refuses_another_corpus(files, tmp_path):
    import hypernet

    options = dict(max_steps=4, identity_steps=1, batch_size=2, block_size=16, sampled_vocab_size=300, width=32, layers=1, heads=2, checkpoint_every=1)

    def stop_after_2(step, record):
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(TransplantError, match="--resume"):
        hypernet.train(files["model"], [files["train"]], tmp_path / "hn", progress=False, callback=stop_after_2, **options)
    other = tmp_path / "other.txt"
    other.write_text("\n".join(tiny.lines(2000, 150)) + "\n")
    with pytest.raises(TransplantError, match="other inputs.*corpora"):
        hypernet.train(files["model"], [other], tmp_path / "hn", resume=True, progress=False, **options)
    hypernet.train(files["model"], [files["train"]], tmp_path / "hn", resume=True, progress=False, **options)
    assert (tmp_path / "hn" / "hypernet.safetensors").is_file()


def test_nonfinite_rows_are_found_across_scan_blocks():
    from transplant.finite import ROWS_AT_ONCE, nonfinite_rows

    rows = torch.zeros(2 * ROWS_AT_ONCE + 3, 2)
    rows[7, 0], rows[ROWS_AT_ONCE, 1], rows[-1, 0] = float("nan"), float("inf"), float("-inf")
    assert nonfinite_rows(rows).tolist() == [7, ROWS_AT_ONCE, 2 * ROWS_AT_ONCE + 2]
    assert nonfinite_rows(torch.tensor(float("nan"))).tolist() == [0]
    assert nonfinite_rows(torch.arange(4)).tolist() == [] and nonfinite_rows(torch.zeros(0, 3)).tolist() == []


def test_without_renameat2_overwrite_still_replaces_whole_and_leaves_nothing(files, tmp_path, monkeypatch):
    import transplant.files as files_module

    monkeypatch.setattr(files_module, "_renameat2", lambda *args: False)  # a filesystem without it
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    transplant.convert(files["model"], files["tok"], out, overwrite=True, progress=False)
    assert (out / "config.json").is_file() and not (out / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
