"""Token Distillation on the German 32k shared task: budgeted runs, head options, learning curve.

    python bench/tokendistill.py run --name fvt-20min --max-seconds 1200          # distill (1 thread)
    python bench/tokendistill.py score --name fvt-20min --init-model bench/out/tokendistill/fvt --curve 0,100,300
    python bench/tokendistill.py plot --name fvt-20min,fvt-20min-layer8 --reference fvt=2.4084

``run`` converts SmolLM2-135M onto the German 32k tokenizer of bench/compare_methods.py (trained
there on the first 8 MB of ../shared/corpus/de.train.txt) with ``--method tokendistill`` on
de.train.txt, in one thread, and keeps the model under bench/out/tokendistill/NAME. ``score``
scores it on the first --eval-bytes of de.test.txt (never trained on), as compare_methods does:
the head as converted and the other heads built around the same learned input rows (``tied``:
the head is the input matrix; ``init``: the init method's rows, given --init-model), and
for the learning curve the model with only the first k distilled tokens (most frequent first:
exactly what a run stopped after k tokens holds; the run's log gives when that was). Results
go to bench/out/tokendistill/NAME.json; ``plot`` draws the named runs' curves into
bench/tokendistill.png. ``--init-model`` is the fvt conversion
(``transplant convert MODEL TOKENIZER -o bench/out/tokendistill/fvt --add-missing-special-tokens``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
OUT = ROOT / "bench" / "out" / "tokendistill"
TOKENIZER = ROOT / "bench" / "out" / "compare_methods" / "tokenizer-de-32768"


def model_dir() -> Path:
    from transplant.checkpoint import resolve_model_dir
    from transplant.demo import smollm2_gguf

    return resolve_model_dir(smollm2_gguf())


def run(args) -> None:
    import transplant

    options = dict(target_corpus=[str(SHARED / "corpus" / f"{args.language}.train.txt")], init=args.init, snippets_per_token=args.snippets_per_token,
                   snippet_length=args.snippet_length, tokens_per_step=args.tokens_per_step, learning_rate=args.learning_rate,
                   distill_layer=args.layer, head=args.head, head_learning_rate=args.head_learning_rate, max_seconds=args.max_seconds, max_distilled_tokens=args.max_tokens)
    if args.hypernet:
        options["hypernet"] = args.hypernet
    options = {k: v for k, v in options.items() if v is not None}
    started = time.perf_counter()
    report = transplant.convert(model_dir(), args.tokenizer, OUT / args.name, method="tokendistill", overwrite=True, resume=args.resume,
                                add_missing_special_tokens=True, progress=not args.quiet, **options)
    print(json.dumps({"seconds": time.perf_counter() - started, "rules": report.rules, **{k: v for k, v in report.details.items() if k not in ("log", "distilled_tokens")}}))


def score(args) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from transplant.evaluate import bits_per_byte, read_text

    test_file = SHARED / "corpus" / f"{args.language}.test.txt"
    held_out = read_text(test_file, args.eval_bytes)
    out = OUT / args.name
    report = json.loads((out / "transplant_report.json").read_text())
    details = report["details"]
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    init_model = AutoModelForCausalLM.from_pretrained(args.init_model).eval() if args.init_model else None
    learned = model.get_input_embeddings().weight.detach().clone()
    head = model.get_output_embeddings().weight.detach().clone()
    results = {"name": args.name, "details": {k: v for k, v in details.items() if k != "distilled_tokens"}, "eval_bytes": len(held_out.encode()), "scores": {}}

    def bpb(label):
        started = time.perf_counter()
        value = bits_per_byte(model, tokenizer, held_out, progress=False).bits_per_byte
        print(f"{label}: {value:.4f} bits/byte ({time.perf_counter() - started:.0f} s)", flush=True)
        results["scores"][label] = value
        return value

    converted = bpb(f"as converted (head {details['head']})")
    if not model.config.tie_word_embeddings and args.variants:
        # the same learned input rows under the other heads: tied (the whole head is the input
        # matrix, as a tied model has it) and, for a run that learned its head, the init rows
        variants = {"tied": learned}
        if details["head"] != "init" and init_model is not None:
            variants["init"] = init_model.get_input_embeddings().weight.detach()
        for name, rows in variants.items():
            model.get_output_embeddings().weight.data.copy_(rows)
            bpb(f"head {name}")
        model.get_output_embeddings().weight.data.copy_(head)
    if init_model is not None and args.curve:
        init_input = init_model.get_input_embeddings().weight.detach()
        order = details["distilled_tokens"]
        log = details["log"]
        curve = []
        for point in args.curve.split(","):
            k = min(int(point), len(order))
            rows = init_input.clone()
            rows[order[:k]] = learned[order[:k]]
            model.get_input_embeddings().weight.data.copy_(rows)
            seconds = next((r["seconds"] for r in log if r["tokens"] >= k), 0.0) if k else 0.0
            curve.append({"tokens": k, "seconds": seconds, "bits_per_byte": bpb(f"first {k} distilled")})
        model.get_input_embeddings().weight.data.copy_(learned)
        if details["head"] == "init":  # the converted model is the curve's last point
            curve.append({"tokens": details["distilled"], "seconds": details["seconds"], "bits_per_byte": converted})
        results["curve"] = curve
    (OUT / f"{args.name}.json").write_text(json.dumps(results, indent=2))


def plot(args) -> None:
    """Every named run's curve in one PNG: bits per byte against tokens distilled and wall time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for name in args.name.split(","):
        results = json.loads((OUT / f"{name}.json").read_text())
        curve, settings = results["curve"], results["details"]["settings"]
        layer = "final output" if settings["layer"] == -1 else f"layer {settings['layer']}"
        label = f"MSE at {layer}, {settings['snippets_per_token']} x {settings['snippet_length']}-token snippets"
        values = [c["bits_per_byte"] for c in curve]
        left.plot([c["tokens"] for c in curve], values, "o-", label=label)
        right.plot([c["seconds"] / 60 for c in curve], values, "o-", label=label)
    left.set_xlabel("new tokens distilled (most frequent first)")
    left.set_ylabel(f"bits per byte, first {results['eval_bytes']:,} bytes of {args.language}.test.txt")
    right.set_xlabel("distillation wall time (minutes, 1 CPU thread)")
    for axis in (left, right):
        for label, value in args.reference_lines:
            axis.axhline(value, ls="--", lw=1, color="#888")
            axis.annotate(label, (0, value), xytext=(2, 3), textcoords="offset points", fontsize=8, color="#555")
        axis.grid(alpha=0.3)
    left.legend(fontsize=8)
    figure.suptitle("Token Distillation from fvt, SmolLM2-135M -> German 32k BPE (untied head: init rows)", fontsize=10)
    figure.tight_layout()
    figure.savefig(ROOT / "bench" / "tokendistill.png", dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["run", "score", "plot"])
    parser.add_argument("--name", required=True, help="the run (plot: comma-separated runs)")
    parser.add_argument("--language", default="de")
    parser.add_argument("--tokenizer", type=Path, default=TOKENIZER)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--init", default=None)
    parser.add_argument("--hypernet", default=None)
    parser.add_argument("--snippets-per-token", type=int, default=None)
    parser.add_argument("--snippet-length", type=int, default=None)
    parser.add_argument("--tokens-per-step", type=int, default=None)
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--layer", type=int, default=None)
    parser.add_argument("--head", default=None)
    parser.add_argument("--head-learning-rate", type=float, default=None)
    parser.add_argument("--max-seconds", type=float, default=None)
    parser.add_argument("--max-tokens", type=int, default=None)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--eval-bytes", type=int, default=50_000)
    parser.add_argument("--variants", action=argparse.BooleanOptionalAction, default=True, help="also score the tied-head variant")
    parser.add_argument("--init-model", default=None, help="the init method's converted model (for the learning curve)")
    parser.add_argument("--curve", default=None, help="comma-separated distilled-token counts (the converted model is added as the last point)")
    parser.add_argument("--reference", action="append", default=[], metavar="LABEL=BPB", help="horizontal line on the curve")
    args = parser.parse_args()
    args.reference_lines = [(item.split("=")[0], float(item.split("=")[1])) for item in args.reference]
    torch.set_num_threads(args.threads)
    {"run": run, "score": score, "plot": plot}[args.command](args)


if __name__ == "__main__":
    main()
