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


def launch(processes: int, args: list[str], **popen) -> subprocess.Popen:
    transplant = shutil.which("transplant")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes), "--master_port", str(free_port()),
               transplant, "distill", *args]
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


def test_kill_9_of_one_rank_then_resume_matches_the_uninterrupted_run(setup, llama, tmp_path):
    reference = tmp_path / "reference"
    distill(llama, setup / "student", [setup / "train.txt"], reference, DistillConfig(train="embeddings", **{**SETTINGS, "max_steps": 12}), progress=False)
    out = tmp_path / "killed"
    args = cli_args(setup, llama, "embeddings", out)
    args[args.index("--checkpoint-every") + 1] = "1"
    args[args.index("--max-steps") + 1] = "12"
    process = launch(2, args, start_new_session=True)
    checkpoint = run_directory(out) / "checkpoints" / "step-2" / "state.json"
    deadline = time.time() + 300
    while not checkpoint.is_file() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    ranks = open(f"/proc/{process.pid}/task/{process.pid}/children").read().split()  # the launcher's workers
    assert len(ranks) == 2, ranks
    os.kill(int(ranks[-1]), signal.SIGKILL)  # one rank dies; the launcher ends the other
    process.communicate(timeout=300)
    assert not out.exists(), "the run finished before a rank could be killed"

    resumed = launch(2, args + ["--resume"])
    _, stderr = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, stderr[-3000:]
    a, b = weights(reference), weights(out)
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=1e-5, atol=1e-6, msg=name)

    # and a resume with another number of processes is refused in one line
    again = tmp_path / "again"
    args = cli_args(setup, llama, "embeddings", again)
    args[args.index("--checkpoint-every") + 1] = "1"
    args[args.index("--max-steps") + 1] = "12"
    process = launch(2, args, start_new_session=True)
    checkpoint = run_directory(again) / "checkpoints" / "step-1" / "state.json"
    deadline = time.time() + 300
    while not checkpoint.is_file() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=300)
    if not again.exists():
        single = subprocess.run([shutil.which("transplant"), "distill", *args, "--resume"], capture_output=True, text=True)
        assert single.returncode == 1 and "process" in single.stderr and single.stderr.count("Error:") == 1, single.stderr


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
