"""The trainers on one GPU, in bf16: throughput (student tokens/s) and peak GPU memory.

    bash bench/gpu_check.sh                # or: python bench/gpu_check.py --steps 40

SmolLM2-135M is moved onto a 32k German BPE with fvt (the student, as in bench/distill.py), then
``distill`` runs --steps steps with embeddings and with LoRA training, and ``hypernet train`` runs
--steps steps; each reports tokens per second of its last half (after warm-up) and the peak of
torch.cuda.max_memory_allocated. CPU figures from README (2 cores) are printed beside them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"
OUT = ROOT / "bench" / "out" / "gpu_check"
# measured on the 2-core CPU machine (README: distillation and hypernetwork sections)
CPU_TOKENS_PER_SECOND = {"distill embeddings": None, "distill lora": None, "hypernet train": 18.3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        raise SystemExit("no GPU here: this check is for a machine with one")
    from bench.distill import prepare_student
    from hypernet import train as train_hypernet
    from transplant.checkpoint import resolve_model_dir
    from transplant.demo import smollm2_gguf
    from transplant.distill import DistillConfig, distill

    OUT.mkdir(parents=True, exist_ok=True)
    model_dir = resolve_model_dir(smollm2_gguf())
    student = prepare_student(OUT, model_dir, "de", 32000, 2_000_000)
    text = SHARED / "corpus" / "de.train.txt"
    results = {"device": torch.cuda.get_device_name(0)}

    for train in ("embeddings", "lora"):
        torch.cuda.reset_peak_memory_stats()
        config = DistillConfig(train=train, max_steps=args.steps, max_tokens=10**12, batch_size=args.batch_size, checkpoint_every=0,
                               eval_every=0, mixed_precision="bf16", teacher_dtype="bfloat16")
        started = time.perf_counter()
        result = distill(model_dir, student, [text], OUT / f"distill-{train}", config, overwrite=True, progress=False)
        late = [r["tokens_per_s"] for r in result.curve if r.get("step", 0) > args.steps // 2]
        results[f"distill {train}"] = {"tokens_per_s": sum(late) / len(late), "peak_gpu_gb": torch.cuda.max_memory_allocated() / 2**30, "seconds": time.perf_counter() - started}

    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    out = train_hypernet(model_dir, [text], OUT / "hypernet", max_steps=args.steps, identity_steps=args.steps // 4, overwrite=True, progress=False)
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    late = [r["tokens"] / r["seconds"] for r in log if r.get("tokens") and r.get("step", 0) > args.steps // 2]
    results["hypernet train"] = {"tokens_per_s": sum(late) / max(len(late), 1), "peak_gpu_gb": torch.cuda.max_memory_allocated() / 2**30, "seconds": time.perf_counter() - started}

    (OUT / "results.json").write_text(json.dumps(results, indent=1))
    print(f"device: {results['device']}")
    print(f"{'run':20s} {'GPU tokens/s':>13s} {'CPU tokens/s':>13s} {'peak GPU GB':>12s}")
    for name, row in results.items():
        if name != "device":
            cpu = CPU_TOKENS_PER_SECOND.get(name)
            print(f"{name:20s} {row['tokens_per_s']:13.0f} {cpu if cpu is not None else '-':>13} {row['peak_gpu_gb']:12.2f}")


if __name__ == "__main__":
    main()
