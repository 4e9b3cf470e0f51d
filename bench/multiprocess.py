"""Distillation on one CPU process and on two (torchrun, DDP over gloo) at the same global batch:
held-out bits per byte after the run and wall time per step.

    python bench/multiprocess.py --steps 12     # SmolLM2 -> 32k German BPE (fvt), embeddings

Each process gets one thread (2 cores: one process, one thread vs two processes, one thread each),
so the comparison is the same compute split two ways. Writes bench/out/multiprocess/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"
OUT = ROOT / "bench" / "out" / "multiprocess"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run(processes: int, args: list[str], out: Path) -> tuple[dict, float]:
    transplant = shutil.which("transplant")
    prefix = [transplant] if processes == 1 else [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes), "--master_port", str(free_port()), transplant]
    started = time.perf_counter()
    subprocess.run([*prefix, "distill", *args, "-o", str(out), "--overwrite"], check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    wall = time.perf_counter() - started
    return json.loads((out / "distill_report.json").read_text()), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=2, help="examples per micro-batch; 2 micro-batches a step")
    parser.add_argument("--eval-bytes", type=int, default=10_000)
    args = parser.parse_args()

    from bench.distill import prepare_student
    from transplant.checkpoint import resolve_model_dir
    from transplant.demo import smollm2_gguf

    OUT.mkdir(parents=True, exist_ok=True)
    model_dir = resolve_model_dir(smollm2_gguf())
    student = prepare_student(ROOT / "bench" / "out" / "distill", model_dir, "de", 32000, 2_000_000)
    text = OUT / "train.txt"
    if not text.is_file():
        data = (SHARED / "corpus" / "de.train.txt").read_bytes()[:400_000]
        text.write_bytes(data[: data.rfind(b"\n") + 1])
    held_out = OUT / "eval.txt"
    if not held_out.is_file():
        data = (SHARED / "corpus" / "de.test.txt").read_bytes()[: args.eval_bytes]
        held_out.write_bytes(data[: data.rfind(b"\n") + 1])
    common = ["--teacher", str(model_dir), "--student", str(student), "--text", str(text), "--eval-text", str(held_out),
              "--max-steps", str(args.steps), "--max-tokens", str(10**12), "--batch-size", str(args.batch_size), "--grad-accum", "2",
              "--checkpoint-every", "0", "--eval-every", "0", "--lr", "1e-3", "--quiet"]
    results = {}
    for processes in (1, 2):
        report, wall = run(processes, common, OUT / f"student-{processes}")
        steps = [json.loads(line) for line in (OUT / f"student-{processes}" / "log.jsonl").read_text().splitlines()]
        step_seconds = [r["tokens"] - p["tokens"] for p, r in zip(steps, steps[1:])]  # tokens per step
        per_step = [n / r["tokens_per_s"] for n, r in zip(step_seconds, steps[1:])]
        results[processes] = {"bits_per_byte_after": report["bits_per_byte_after"], "bits_per_byte_before": report["bits_per_byte_before"],
                              "seconds_per_step": sum(per_step[1:]) / max(len(per_step) - 1, 1), "wall_seconds": wall}
    (OUT / "results.json").write_text(json.dumps(results, indent=1))
    print(f"{'processes':>9s} {'bits/byte before':>17s} {'after':>8s} {'s/step':>7s} {'wall s':>7s}")
    for processes, row in results.items():
        print(f"{processes:9d} {row['bits_per_byte_before']:17.4f} {row['bits_per_byte_after']:8.4f} {row['seconds_per_step']:7.1f} {row['wall_seconds']:7.0f}")


if __name__ == "__main__":
    main()
