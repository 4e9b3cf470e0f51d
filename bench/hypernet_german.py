"""Hypernetwork on SmolLM2-135M, on a CPU budget: train on German text, then move the model
zero-shot onto a German 32k BPE tokenizer that training never used, and compare with fvt.

    python bench/hypernet_german.py                     # the README numbers (one thread; 54 min of training on a loaded 2-core machine)
    python bench/hypernet_german.py --lm-steps 20 --identity-steps 20   # a quick look

Prints a table (held-out bits per byte of both conversions, training throughput, peak memory,
the cost of a training step relative to the base model's own forward+backward on the same
batch) and writes the learning curve to bench/hypernet.png. Outputs go to bench/out/.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's transplant, not an installed one

import hypernet  # noqa: E402
from transplant.core import convert  # noqa: E402
from transplant.demo import smollm2_gguf  # noqa: E402
from transplant.evaluate import bits_per_byte, read_text  # noqa: E402
from transplant.loading import load_model, load_tokenizer  # noqa: E402
from transplant.table import format_table  # noqa: E402
from transplant.tokenizer_training import corpus_lines, train_tokenizer  # noqa: E402

SHARED = ROOT.parent / "shared" / "corpus"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path, default=SHARED / "de.train.txt")
    parser.add_argument("--test", type=Path, default=SHARED / "de.test.txt")
    parser.add_argument("--test-bytes", type=int, default=50_000)
    parser.add_argument("--identity-steps", type=int, default=300)
    parser.add_argument("--lm-steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--block-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--reconstruction-weight", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "hypernet")
    parser.add_argument("--png", type=Path, default=ROOT / "bench" / "hypernet.png")
    parser.add_argument("--predict-only", action="store_true", help="Only time predicting a 150k-token vocabulary with the trained hypernetwork.")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)

    model = str(smollm2_gguf())
    tokenizer_dir = args.out.parent / "de32k"
    if not (tokenizer_dir / "tokenizer.json").is_file():  # = transplant train-tokenizer --like MODEL --corpus de.train --vocab-size 32000
        new = train_tokenizer(load_tokenizer(model), corpus_lines([args.train]), 32000, "bpe", progress=False)
        new.save_pretrained(tokenizer_dir)
    if args.predict_only:
        time_prediction(model, tokenizer_dir, args.out / "hypernet")
        return

    # --- training
    hypernet_dir = args.out / "hypernet"
    for stale in (hypernet_dir, hypernet_dir.with_name("hypernet.run")):
        shutil.rmtree(stale, ignore_errors=True)
    settings = dict(
        max_steps=args.identity_steps + args.lm_steps,
        identity_steps=args.identity_steps,
        batch_size=args.batch_size,
        block_size=args.block_size,
        learning_rate=args.learning_rate,
        reconstruction_weight=args.reconstruction_weight,
        warmup_steps=30,
        sampled_vocab_size=16384,
        vocab_subsample=4096,
        eval_every=50,
        eval_bytes=4000,
        checkpoint_every=100,
    )
    started = time.perf_counter()
    hypernet.train(model, [args.train], hypernet_dir, eval_tokenizer=tokenizer_dir, progress=True, **settings)
    training_seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    log = [json.loads(line) for line in (hypernet_dir / "log.jsonl").read_text().splitlines()]
    lm_steps = [r for r in log if "lm_loss" in r]
    tokens_per_second = sum(r["tokens"] for r in lm_steps) / max(sum(r["seconds"] for r in lm_steps), 1e-9)
    step_seconds = statistics.median(r["seconds"] for r in lm_steps) if lm_steps else float("nan")
    base_seconds = base_forward_backward_seconds(model, args.train, args.batch_size, args.block_size)

    # --- zero-shot on held-out text with the unseen German tokenizer
    text = read_text(args.test, args.test_bytes)
    rows = []
    for method, options in (("fvt", {}), ("hypernet", {"hypernet": hypernet_dir})):
        converted = args.out / f"smollm2-de32k-{method}"
        convert(model, tokenizer_dir, converted, method, overwrite=True, progress=False, **options)
        result = bits_per_byte(load_model(converted), load_tokenizer(converted), text, progress=False)
        rows.append([method, result.bits_per_byte, result.bytes_per_token, result.tokens])
    table = format_table(["method", "bits/byte (de.test)", "bytes/token", "tokens"], rows)
    print(table)
    summary = {
        "settings": {**settings, "threads": args.threads, "test_bytes": len(text.encode("utf-8"))},
        "bits_per_byte": {row[0]: row[1] for row in rows},
        "training_seconds": training_seconds,
        "lm_tokens_per_second": tokens_per_second,
        "median_lm_step_seconds": step_seconds,
        "base_forward_backward_seconds": base_seconds,
        "step_over_base": step_seconds / base_seconds,
        "median_identity_step_seconds": statistics.median(r["seconds"] for r in log if "reconstruction" in r and "lm_loss" not in r) if args.identity_steps else None,
        "peak_rss_mib_training": peak_mib,
    }
    print(json.dumps(summary, indent=1))
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    plot(log, rows, args.png, args.identity_steps)


def time_prediction(model: str, tokenizer_dir: Path, hypernet_dir: Path, size: int = 150_000) -> None:
    """Seconds to predict ``size`` tokens: the German tokenizer's real decompositions, repeated."""
    from hypernet.model import predict
    from transplant.vocab import Vocabulary, build_mapping

    net = hypernet.load(hypernet_dir)
    source = load_model(model).get_input_embeddings().weight.detach()
    mapping = build_mapping(Vocabulary.from_tokenizer(load_tokenizer(model)), Vocabulary.from_tokenizer(load_tokenizer(tokenizer_dir)), progress=False)
    spelled = [p for p in mapping.pieces if p]
    decompositions = (spelled * (size // len(spelled) + 1))[:size]
    begin = time.perf_counter()
    predicted = predict(net, mapping.source, decompositions, source)
    seconds = time.perf_counter() - begin
    print(f"predicted {len(predicted)} tokens in {seconds:.1f} s with {torch.get_num_threads()} thread(s) "
          f"(width {net.config.width}, {net.config.layers} layers, at most {net.config.max_pieces} pieces)")


def base_forward_backward_seconds(model_spec: str, corpus: Path, batch_size: int, block_size: int, repeats: int = 3) -> float:
    """The base model's own training step on a batch of the same shape: forward, loss, backward
    through every weight (median of ``repeats``)."""
    model = load_model(model_spec)
    model.train()
    tokenizer = load_tokenizer(model_spec)
    lines = corpus_lines([corpus])[:2000]
    ids = tokenizer(" ".join(lines), add_special_tokens=False)["input_ids"]
    batch = torch.tensor(ids[: batch_size * block_size]).reshape(batch_size, block_size)
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        model(input_ids=batch, labels=batch).loss.backward()
        times.append(time.perf_counter() - begin)
        model.zero_grad(set_to_none=True)
    return statistics.median(times)


def plot_held_out_curve(axis, log: list[dict], identity_steps: int, label: str, title: str) -> None:
    """The training log's periodic held-out bits per byte, against fvt (step 0)."""
    evals = [r for r in log if "eval_bits_per_byte" in r]
    axis.plot([r["step"] for r in evals], [r["eval_bits_per_byte"] for r in evals], marker="o", label=label)
    axis.axhline(evals[0]["eval_bits_per_byte"], color="grey", ls="--", lw=0.8, label="step 0 = fvt")
    axis.axvline(identity_steps, color="grey", ls=":", lw=0.8)
    axis.set_xlabel("step")
    axis.set_ylabel("bits per byte")
    axis.set_title(title)
    axis.legend()


def plot(log: list[dict], rows: list, path: Path, identity_steps: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    lm = [r for r in log if "lm_loss" in r]
    rebuilt = [r for r in log if "reconstruction" in r]
    left.plot([r["step"] for r in lm], [r["lm_loss"] for r in lm], lw=0.8, label="LM loss (sampled tokenizers)")
    left.plot([r["step"] for r in rebuilt], [r["reconstruction"] for r in rebuilt], lw=0.8, label="reconstruction (relative MSE)")
    left.axvline(identity_steps, color="grey", ls=":", lw=0.8)
    left.set_xlabel("step")
    left.set_title("training losses")
    left.legend()
    plot_held_out_curve(right, log, identity_steps, "hypernet (held-out train lines, de32k)", "held-out bits per byte, unseen German 32k BPE")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
