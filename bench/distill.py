"""Recovery by distillation at an equal token budget: ALM vs plain cross-entropy (and both).

SmolLM2-135M (teacher, its own tokenizer) is transplanted onto a 32k-token German BPE trained
on ../shared/corpus/de.train.txt with fvt (the student); then each objective trains the student's
embeddings on the same German text, the same batches and the same number of student tokens.
Held-out bits per byte are measured on the first --eval-bytes of de.test.txt every --eval-every
steps. Throughput is student tokens per second of a whole step, and CPU milliseconds per student
token (steadier than wall time while other jobs share the cores); the ``ce`` run, which never
runs the teacher, is the student's own forward+backward, so alm/ce is the cost of distilling.

    python bench/distill.py --threads 1    # alm, ce, alm+ce and alm+ce with alm weighted 100
    python bench/distill.py --threads 1 --losses ce,alm,alm+ce:alm=100/bfloat16   # ... with a bf16 teacher

Writes bench/out/distill/{results.json,results.md} and bench/distill.png.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"
OUT = ROOT / "bench" / "out" / "distill"


def file_name(loss: str) -> str:
    return loss.replace("/", "@")  # the teacher's dtype follows a slash


def prepare_student(work: Path, model_dir: Path, language: str, vocab_size: int, train_bytes: int) -> Path:
    import transplant
    from transplant.evaluate import read_text
    from transplant.loading import load_tokenizer
    from transplant.tokenizer_training import train_tokenizer

    tokenizer_dir = work / f"tokenizer-{language}-{vocab_size}"
    if not (tokenizer_dir / "tokenizer.json").is_file():
        lines = read_text(SHARED / "corpus" / f"{language}.train.txt", max_bytes=train_bytes).splitlines()
        train_tokenizer(load_tokenizer(model_dir), lines, vocab_size, progress=False).save_pretrained(tokenizer_dir)
    student = work / "student-fvt"
    if not (student / "config.json").is_file():
        transplant.convert(model_dir, tokenizer_dir, student, method="fvt", add_missing_special_tokens=True, progress=False)
    return student


def chunk_comparison(teacher: Path, student: Path, text: str, max_examples: int = 24) -> dict:
    """On held-out text: the share of aligned chunks the student finds more likely than the teacher
    does, and the mean chunk log-likelihood gap (student - teacher, nats). ALM pulls those chunks
    back down toward the teacher; cross-entropy keeps raising them."""
    import torch

    from transplant.distill.data import collate, make_examples
    from transplant.distill.logprobs import position_logprobs
    from transplant.distill.losses import chunk_log_likelihoods
    from transplant.loading import load_model, load_tokenizer
    from transplant.vocab import Vocabulary

    teacher_vocab, student_vocab = Vocabulary.from_tokenizer(load_tokenizer(teacher)), Vocabulary.from_tokenizer(load_tokenizer(student))
    examples = make_examples(text, teacher_vocab, student_vocab, 1024, 512)[:max_examples]
    teacher_model, student_model = load_model(teacher), load_model(student)
    ahead, gaps = [], []
    with torch.inference_mode():
        for start in range(0, len(examples), 4):
            batch = collate(examples[start : start + 4])
            chunks = batch.chunk_mask.shape[1]
            sides = []
            for model, ids, mask, chunk in ((teacher_model, batch.teacher_ids, batch.teacher_mask, batch.teacher_chunk), (student_model, batch.student_ids, batch.student_mask, batch.student_chunk)):
                logits = model(input_ids=ids, attention_mask=mask).logits
                sides.append(chunk_log_likelihoods(position_logprobs(logits, ids)[0], chunk, chunks)[batch.chunk_mask])
            gap = sides[1] - sides[0]
            ahead.append(gap > 0)
            gaps.append(gap)
    ahead, gaps = torch.cat(ahead), torch.cat(gaps)
    return {"chunks": len(gaps), "student_ahead": ahead.float().mean().item(), "mean_gap": gaps.mean().item(), "gap_where_ahead": gaps[ahead].sum().item() / len(gaps)}


def plot(runs: dict[str, dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, run in runs.items():
        points = [(r["tokens"], r["eval_bpb"]) for r in run["curve"] if r.get("eval_bpb") is not None]
        ax.plot(*zip(*points), marker="o", label=name)
    ax.axhline(runs[next(iter(runs))]["teacher_bpb"], color="grey", linestyle="--", label="teacher (original tokenizer)")
    ax.set_xlabel("student tokens trained")
    ax.set_ylabel("held-out bits per byte")
    ax.set_title(title, fontsize=8)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--language", default="de")
    parser.add_argument("--vocab-size", type=int, default=32000)
    parser.add_argument("--losses", default="alm,ce,alm+ce,alm+ce:alm=100", help="comma-separated --loss values to compare, each optionally with weights and the teacher's dtype: alm+ce:alm=100/bfloat16")
    parser.add_argument("--train", default="embeddings", choices=["embeddings", "lora", "full"])
    parser.add_argument("--budget-tokens", type=int, default=30_000, help="student tokens per run")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--eval-bytes", type=int, default=20_000)
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--train-text-bytes", type=int, default=2_000_000)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--work-dir", type=Path, default=OUT)
    parser.add_argument("--no-chunk-comparison", action="store_true", help="skip the held-out chunk table (timing runs)")
    parser.add_argument("--reuse", action="store_true", help="take runs already measured with the same settings from --work-dir")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from transplant.checkpoint import resolve_model_dir
    from transplant.demo import smollm2_gguf
    from transplant.distill import DistillConfig, distill
    from transplant.evaluate import bits_per_byte, read_text
    from transplant.loading import load_model, load_tokenizer

    work = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    teacher = resolve_model_dir(smollm2_gguf())
    student = prepare_student(work, teacher, args.language, args.vocab_size, 8_000_000)
    train_text = work / f"{args.language}.train-slice.txt"
    train_text.write_text(read_text(SHARED / "corpus" / f"{args.language}.train.txt", max_bytes=args.train_text_bytes))
    eval_text = SHARED / "corpus" / f"{args.language}.test.txt"
    teacher_bpb = bits_per_byte(load_model(teacher), load_tokenizer(teacher), read_text(eval_text, max_bytes=args.eval_bytes), progress=False).bits_per_byte

    runs = {}
    for loss in [name.strip() for name in args.losses.split(",") if name.strip()]:
        spec, _, teacher_dtype = loss.partition("/")
        objectives, _, weight_text = spec.partition(":")
        weights = {k: float(v) for k, v in (item.split("=") for item in weight_text.split(";") if item)}
        settings = {"train": args.train, "lr": args.lr, "budget": args.budget_tokens, "batch": args.batch_size, "eval_bytes": args.eval_bytes}
        saved = work / f"run-{file_name(loss)}.json"
        if args.reuse and saved.is_file() and json.loads(saved.read_text())["settings"] == settings:
            runs[loss] = json.loads(saved.read_text())
            print(f"{loss}: reused {saved}")
            continue
        config = DistillConfig(
            loss=objectives, loss_weights=weights, train=args.train, learning_rate=args.lr, max_tokens=args.budget_tokens, batch_size=args.batch_size,
            eval_every=args.eval_every, eval_bytes=args.eval_bytes, checkpoint_every=0, teacher_dtype=teacher_dtype or "float32",
        )
        started = time.perf_counter()
        result = distill(teacher, student, [train_text], work / f"student-{file_name(loss)}", config, eval_text=eval_text, overwrite=True, progress=True)
        steps = [r for r in result.curve if "tokens_per_s" in r]
        runs[loss] = {
            "loss": loss,
            "steps": result.steps,
            "student_tokens": result.student_tokens,
            "seconds": time.perf_counter() - started,
            "bpb_before": result.bits_per_byte_before,
            "bpb_after": result.bits_per_byte_after,
            "tokens_per_s": sum(r["tokens_per_s"] for r in steps) / len(steps),
            "cpu_ms_per_token": 1000 * sum(r["cpu_s"] for r in steps) / sum(r["step_tokens"] for r in steps),
            "teacher_bpb": teacher_bpb,
            "curve": result.curve,
            "settings": settings,
        }
        saved.write_text(json.dumps(runs[loss]))
        print(f"{loss}: {result.bits_per_byte_before:.4f} -> {result.bits_per_byte_after:.4f} bits/byte, {runs[loss]['tokens_per_s']:.1f} tok/s", flush=True)

    held_out_text = read_text(eval_text, max_bytes=args.eval_bytes)
    comparisons = {}
    if not args.no_chunk_comparison:
        comparisons["fvt init"] = chunk_comparison(teacher, student, held_out_text)
        for loss in runs:
            comparisons[loss] = chunk_comparison(teacher, work / f"student-{file_name(loss)}", held_out_text)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    reference = runs.get("ce")
    lines = [
        f"SmolLM2-135M -> {args.vocab_size}-token {args.language} BPE (fvt init), train={args.train}, lr={args.lr}, "
        f"{args.budget_tokens:,} student tokens per run, batch {args.batch_size} x ~1 KB, threads={torch.get_num_threads()}; "
        f"teacher {teacher_bpb:.4f} bits/byte on {args.eval_bytes:,} bytes of {eval_text.name}; peak RSS {peak_mib:,.0f} MiB",
        "",
        "| objective | bits/byte before | after | steps | student tok/s | step time vs ce | CPU ms per student token | CPU time vs ce |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for loss, run in runs.items():
        ratio = f"{reference['tokens_per_s'] / run['tokens_per_s']:.2f}x" if reference else "-"
        cpu_ratio = f"{run['cpu_ms_per_token'] / reference['cpu_ms_per_token']:.2f}x" if reference else "-"
        lines.append(f"| {loss} | {run['bpb_before']:.4f} | {run['bpb_after']:.4f} | {run['steps']} | {run['tokens_per_s']:.1f} | {ratio} | {run['cpu_ms_per_token']:.1f} | {cpu_ratio} |")
    if comparisons:
        lines += ["", "| student | chunks where student > teacher | mean gap (nats/chunk) | gain from those chunks (nats/chunk) |", "|---|---|---|---|"]
    for name, c in comparisons.items():
        lines.append(f"| {name} | {c['student_ahead']:.1%} of {c['chunks']:,} | {c['mean_gap']:+.3f} | {c['gap_where_ahead']:+.3f} |")
    table = "\n".join(lines)
    print(table)
    (work / "results.md").write_text(table + "\n")
    (work / "results.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "peak_rss_mib": peak_mib, "runs": runs, "chunk_comparison": comparisons}, indent=1))
    plot(runs, ROOT / "bench" / "distill.png", f"SmolLM2-135M -> {args.vocab_size}-token {args.language} BPE (fvt init), {args.train}, {args.budget_tokens:,} tokens per run")


if __name__ == "__main__":
    main()
