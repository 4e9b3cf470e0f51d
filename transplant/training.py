"""What every training loop here shares: the accelerator, per-step randomness, checkpoints, logs.

Exact resume rests on two rules. All randomness of a step (which text, which tokenizer, dropout
noise) comes from ``step_generator(seed, step)``, so step N draws the same batch whether or not
the run was interrupted before it. And a checkpoint holds everything else that changes
(trainable weights, optimizer, scheduler, global RNG states) through accelerate's own
``save_state``, written to a temporary directory and renamed, so a kill -9 leaves either the old
checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from .errors import TransplantError

CHECKPOINTS = "checkpoints"
STATE_FILE = "state.json"
KEEP_CHECKPOINTS = 2


def process_state():
    """This process's place among those ``accelerate launch`` started (one, when run directly)."""
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def computes_bf16_natively() -> bool:
    """Whether this machine multiplies bfloat16 in hardware: a GPU that supports it, or a CPU with
    AVX512-BF16 or AMX. Elsewhere bfloat16 is emulated and slower than float32."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    cpu = torch.cpu
    return any(getattr(cpu, probe, lambda: False)() for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


def make_accelerator(seed: int, mixed_precision: str | None = None):
    """An Accelerator for this machine: bf16 on GPUs that support it, full precision on CPU."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import set_seed

    # accelerate keeps one state per process; a pipeline that trains twice (say, fp32 then bf16)
    # needs a fresh one each time. The process group (PartialState) is kept.
    AcceleratorState._reset_state(reset_partial_state=False)
    if mixed_precision is None:
        mixed_precision = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
    # Schedules here count optimizer steps of the global batch, whatever the number of processes
    # (accelerate would otherwise advance a prepared scheduler once per process each step).
    accelerator = Accelerator(mixed_precision=mixed_precision, cpu=not torch.cuda.is_available(), step_scheduler_with_optimizer=False)
    set_seed(seed)
    return accelerator


def step_generator(seed: int, step: int) -> torch.Generator:
    """A generator that depends only on (seed, step): the step's randomness survives a restart."""
    generator = torch.Generator()
    generator.manual_seed(seed * 1_000_003 + step)
    return generator


def _step_dirs(run_dir: Path) -> list[Path]:
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    done = [p for p in root.iterdir() if p.name.startswith("step-") and (p / STATE_FILE).is_file()]
    return sorted(done, key=lambda p: int(p.name.split("-")[1]))


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    steps = _step_dirs(Path(run_dir))
    return steps[-1] if steps else None


def save_checkpoint(accelerator, run_dir: str | Path, step: int, state: dict) -> Path:
    """Save model, optimizer, scheduler and RNG states plus ``state`` (JSON) for ``step``, atomically.

    Every process calls it (each saves its own RNG state); the main one alone renames and prunes.
    """
    root = Path(run_dir) / CHECKPOINTS
    final = root / f"step-{step}"
    partial = root / f".step-{step}.partial"
    main = accelerator.is_main_process
    if main:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(partial, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial), safe_serialization=True)
    accelerator.wait_for_everyone()
    if main:
        # state.json is written last: a directory without it is never taken as a checkpoint
        (partial / STATE_FILE).write_text(json.dumps({**state, "step": step}, indent=1))
        if final.exists():
            shutil.rmtree(final)
        os.replace(partial, final)
        for old in _step_dirs(Path(run_dir))[:-KEEP_CHECKPOINTS]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator, path: str | Path) -> dict:
    """Restore what ``save_checkpoint`` wrote into the prepared objects; return its state dict.

    A checkpoint that cannot be restored (truncated files, another model or training mode)
    is one clear error, never a traceback halfway through a resumed run.
    """
    try:
        accelerator.load_state(str(path))
        return json.loads((Path(path) / STATE_FILE).read_text())
    except Exception as error:  # noqa: BLE001 - safetensors, torch and accelerate raise many types
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise TransplantError(
            f"cannot resume from {path} ({first[:200]}); it was written for another model or setting, "
            "or is damaged: pass --overwrite to start over"
        ) from None


class JsonlLog:
    """Append-only training log, one JSON object a line; survives restarts (old lines past the
    resumed step are dropped so a curve never shows a step twice)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def truncate_after(self, step: int) -> None:
        kept = [r for r in self.read() if r.get("step", 0) <= step]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))

    def write(self, **record) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")

    def read(self) -> list[dict]:
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
