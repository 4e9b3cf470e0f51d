"""Distillation and hypernetwork training on two CPU processes (``torchrun --nproc_per_node 2``, which accelerate sees as
MULTI_CPU: DDP over gloo): the same global batch, shared across processes, gives the same weights
as one process; only the main process writes; a killed run resumes to the uninterrupted result.

(``accelerate launch --num_processes 2 --cpu`` starts one process only: accelerate's own multi-CPU
launcher needs MPI. torchrun is what accelerate documents as the alternative.)"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import tiny
import torch
from safetensors.torch import load_file

from transplant import convert
from transplant.distill import DistillConfig, distill
from transplant.distill.trainer import run_directory

SETTINGS = dict(loss="alm+ce", max_steps=4, max_tokens=10**9, batch_size=2, grad_accum=2, checkpoint_every=2, eval_every=0, learning_rate=1e-2)


@pytest.fixture(scope="module")
def setup(tmp_path_factory, llama, target_tokenizer):
    root = tmp_path_factory.mktemp("multiprocess")
    target_tokenizer.save_pretrained(root / "tok")
    convert(llama, root / "tok", root / "student", progress=False)
    (root / "train.txt").write_text("\n".join(tiny.lines(0, 200)) + "\n")
    return root


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(processes: int, args: list[str], program: list[str] | None = None, **popen) -> subprocess.Popen:
    """``program`` (default: ``transplant distill``) with ``args`` on ``processes`` torchrun ranks."""
    program = program or [shutil.which("transplant"), "distill"]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes), "--master_port", str(free_port()),
               *program, *args]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def cli_args(setup, llama, train: str, out) -> list[str]:
    return ["--teacher", str(llama), "--student", str(setup / "student"), "--text", str(setup / "train.txt"), "-o", str(out),
            "--train", train, "--loss", SETTINGS["loss"], "--max-steps", "4", "--max-tokens", str(10**9), "--batch-size", "2",
            "--grad-accum", "2", "--checkpoint-every", "2", "--eval-every", "0", "--lr", "1e-2", "--quiet"]


def weights(directory):
    return load_file(directory / "model.safetensors")


@pytest.mark.parametrize("train", ["embeddings", "lora", "full"])
def test_two_processes_give_the_weights_of_one(setup, llama, tmp_path, train):
    distill(llama, setup / "student", [setup / "train.txt"], tmp_path / "one", DistillConfig(train=train, **SETTINGS), progress=False)
    process = launch(2, cli_args(setup, llama, train, tmp_path / "two"))
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]
    assert stdout.count("-> ") == 1, stdout  # one process reports, one writes
    one, two = weights(tmp_path / "one"), weights(tmp_path / "two")
    assert one.keys() == two.keys()
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-5, atol=1e-6, msg=name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]  # no run directory, no partial


def test_a_grad_accum_the_processes_cannot_share_is_refused(setup, llama, tmp_path):
    args = cli_args(setup, llama, "embeddings", tmp_path / "out")
    args[args.index("--grad-accum") + 1] = "1"
    process = launch(2, args)
    _, stderr = process.communicate(timeout=600)
    assert process.returncode != 0 and "must be a multiple of the 2 processes" in stderr
    assert "Traceback" not in "\n".join(line for line in stderr.splitlines() if "Error:" in line)
    assert not (tmp_path / "out").exists()


def interrupted_two_process_run(setup, llama, out, kill_after_step: int, whole_group: bool) -> list[str]:
    """Start a 12-step two-process run checkpointing every step; once step ``kill_after_step`` is
    saved, SIGKILL one rank (the launcher then ends the other) or both."""
    args = cli_args(setup, llama, "embeddings", out)
    args[args.index("--checkpoint-every") + 1] = "1"
    args[args.index("--max-steps") + 1] = "12"
    process = launch(2, args, start_new_session=True)
    kill_once_saved(process, run_directory(out) / "checkpoints" / f"step-{kill_after_step}", whole_group)
    assert not out.exists(), "the run finished before it could be killed"
    return args


def kill_once_saved(launcher: subprocess.Popen, checkpoint, whole_group: bool) -> None:
    """Once ``checkpoint`` is complete, SIGKILL the launcher's last rank (torchrun then ends the
    other) or every rank, and wait for the launcher."""
    deadline = time.time() + 300
    while not (checkpoint / "state.json").is_file() and launcher.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    ranks = open(f"/proc/{launcher.pid}/task/{launcher.pid}/children").read().split()  # the launcher's workers
    assert len(ranks) == 2, ranks
    for rank in ranks if whole_group else ranks[-1:]:
        os.kill(int(rank), signal.SIGKILL)
    launcher.communicate(timeout=300)


def test_kill_9_of_one_rank_then_resume_matches_the_uninterrupted_run(setup, llama, tmp_path):
    reference = tmp_path / "reference"
    distill(llama, setup / "student", [setup / "train.txt"], reference, DistillConfig(train="embeddings", **{**SETTINGS, "max_steps": 12}), progress=False)
    args = interrupted_two_process_run(setup, llama, tmp_path / "killed", kill_after_step=2, whole_group=False)
    resumed = launch(2, args + ["--resume"])
    _, stderr = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, stderr[-3000:]
    a, b = weights(reference), weights(tmp_path / "killed")
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=1e-5, atol=1e-6, msg=name)


def test_a_resume_on_another_number_of_processes_is_one_line(setup, llama, tmp_path):
    args = interrupted_two_process_run(setup, llama, tmp_path / "again", kill_after_step=1, whole_group=True)
    single = subprocess.run([shutil.which("transplant"), "distill", *args, "--resume"], capture_output=True, text=True)
    assert single.returncode == 1 and "started on 2 process(es), not 1" in single.stderr, single.stderr
    assert single.stderr.count("Error:") == 1 and "Traceback" not in single.stderr


def test_hypernet_training_on_two_processes_gives_the_weights_of_one(setup, llama, tmp_path):
    import hypernet

    options = dict(max_steps=6, identity_steps=2, batch_size=2, block_size=16, sampled_vocab_size=300)
    args = [str(llama), "--corpus", str(setup / "train.txt"), "-o", str(tmp_path / "two"), "--max-steps", "6", "--identity-steps", "2",
            "--batch-size", "2", "--block-size", "16", "--sampled-vocab-size", "300", "--quiet"]
    hypernet.train(llama, [setup / "train.txt"], tmp_path / "one", progress=False, **options)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()), shutil.which("transplant"), "hypernet", "train", *args]
    result = subprocess.run(command, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("wrote ") == 1, result.stdout
    one, two = load_file(tmp_path / "one" / "hypernet.safetensors"), load_file(tmp_path / "two" / "hypernet.safetensors")
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-5, atol=1e-6, msg=name)


HYPERNET_SCRIPT = """import json, sys
import hypernet
options = json.loads(sys.argv[4])
hypernet.train(sys.argv[1], [sys.argv[2]], sys.argv[3], resume="--resume" in sys.argv, progress=False, **options)
"""


def test_kill_9_of_one_rank_during_hypernet_training_then_resume_matches_the_uninterrupted_run(setup, llama, tmp_path):
    # checkpoint_every is no CLI option of `hypernet train`, so the ranks run hypernet.train from a script
    import json

    import hypernet

    options = dict(max_steps=10, identity_steps=2, batch_size=2, block_size=16, sampled_vocab_size=300, checkpoint_every=1, eval_every=100)
    hypernet.train(llama, [setup / "train.txt"], tmp_path / "reference", progress=False, **options)
    script = tmp_path / "train_hypernet.py"
    script.write_text(HYPERNET_SCRIPT)
    out = tmp_path / "killed"
    args = [str(llama), str(setup / "train.txt"), str(out), json.dumps(options)]
    program = [str(script)]
    checkpoint = out.with_name("killed.run") / "checkpoints" / "step-3"
    kill_once_saved(launch(2, args, program, start_new_session=True), checkpoint, whole_group=False)
    assert not out.exists(), "the run finished before it could be killed"
    assert (checkpoint / "state.json").is_file()  # so the resume continues from a checkpoint
    resumed = launch(2, args + ["--resume"], program)
    _, stderr = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, stderr[-3000:]
    reference, killed = load_file(tmp_path / "reference" / "hypernet.safetensors"), load_file(out / "hypernet.safetensors")
    assert reference.keys() == killed.keys()
    for name in reference:
        torch.testing.assert_close(killed[name], reference[name], rtol=1e-5, atol=1e-6, msg=name)
    steps = [[json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()] for run in (out, tmp_path / "reference")]
    assert steps[0] == steps[1] and steps[0][-1] == 10  # the resumed log continues, no step twice
