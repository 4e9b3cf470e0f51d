"""Interrupting training runs for the resume tests: in process, or a CLI child killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def killed_after(cli_args: list[str], checkpoint: Path, timeout: float = 120) -> None:
    """Run ``transplant CLI_ARGS`` in a child and SIGKILL it once ``checkpoint`` is complete."""
    command = [sys.executable, "-m", "transplant.cli", *cli_args]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + timeout
    while not (checkpoint / "state.json").is_file() and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def interrupted_after(save, step: int):
    """A ``save_checkpoint`` that stops the run (KeyboardInterrupt) right after writing ``step``."""

    def save_then_stop(accelerator, run_dir, at, state):
        path = save(accelerator, run_dir, at, state)
        if at == step:
            raise KeyboardInterrupt  # as if killed right after the checkpoint
        return path

    return save_then_stop
