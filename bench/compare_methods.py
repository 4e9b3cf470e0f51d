"""Every initialiser side by side: SmolLM2-135M onto a new tokenizer, zero-shot.

    python bench/compare_methods.py                                   # German, all methods
    python bench/compare_methods.py --methods fvt,topk --eval-bytes 20000
    python bench/compare_methods.py --language fr --vocab-size 16384

The target tokenizer is trained on ../shared/corpus/LANG.train.txt in SmolLM2's style; every
method converts the same model to it in its own process (so wall time and peak memory are the
method's own), and each result is scored on the first --eval-bytes of the held-out
../shared/corpus/LANG.test.txt (technical documentation plus Bible text). Methods that need
static vectors get fastText trained on ../shared/corpus/{en,LANG}.train.txt and the dictionary
../shared/dict/en-LANG.tsv; `omp` needs --donor (a model that already uses the new tokenizer).
Prints a table and writes bench/out/compare_methods.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
OUT = ROOT / "bench" / "out"
ALL_METHODS = "fvt,mean,random,mvn,topk,tokenadapt,wechsel,focus,omp"

# Runs in a child process: one conversion, then its own wall time and peak RSS as JSON.
CHILD = """
import json, resource, sys, time
import transplant
args = json.loads(sys.argv[1])
started = time.perf_counter()
report = transplant.convert(args.pop("model"), args.pop("tokenizer"), args.pop("out"), overwrite=True, progress=False, **args)
print(json.dumps({"seconds": time.perf_counter() - started, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rules": report.rules["input"]}))
"""


def method_options(method: str, args) -> dict | None:
    """The inputs each method needs on the shared corpus; None when they are not available."""
    lang = args.language
    if method == "wechsel":
        return {"source_corpus": str(SHARED / "corpus" / "en.train.txt"), "target_corpus": str(SHARED / "corpus" / f"{lang}.train.txt"), "dictionary": str(SHARED / "dict" / f"en-{lang}.tsv")}
    if method == "focus":
        return {"target_corpus": str(SHARED / "corpus" / f"{lang}.train.txt")}
    if method == "omp":
        return {"donor": args.donor} if args.donor else None
    return {}


def convert_in_child(model_dir: Path, tokenizer_dir: Path, out: Path, method: str, options: dict) -> dict:
    payload = json.dumps({"model": str(model_dir), "tokenizer": str(tokenizer_dir), "out": str(out), "method": method, **options})
    completed = subprocess.run([sys.executable, "-c", CHILD, payload], capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"{method} failed:\n{completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["method"] for r in rows]
    values = [r["bits_per_byte"] for r in rows]
    figure, axis = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.2))
    bars = axis.barh(names[::-1], values[::-1], color=["#888" if n == "original" else "#3a7" for n in names[::-1]])
    axis.bar_label(bars, fmt="%.3f", padding=3)
    axis.set_xlabel("bits per byte on held-out text (lower is better)")
    axis.set_title(title, fontsize=10)
    axis.set_xlim(0, max(values) * 1.15)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--language", default="de")
    parser.add_argument("--vocab-size", type=int, default=32768)
    parser.add_argument("--train-bytes", type=int, default=8_000_000, help="tokenizer training text")
    parser.add_argument("--eval-bytes", type=int, default=50_000)
    parser.add_argument("--methods", default=ALL_METHODS)
    parser.add_argument("--donor", default=None, help="omp: a model directory that already uses the new tokenizer")
    parser.add_argument("--work-dir", type=Path, default=OUT / "compare_methods")
    args = parser.parse_args()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from transplant.checkpoint import resolve_model_dir
    from transplant.demo import smollm2_gguf
    from transplant.evaluate import bits_per_byte, read_text
    from transplant.init import available
    from transplant.table import format_table, markdown_table
    from transplant.tokenizer_training import train_tokenizer

    test_file = SHARED / "corpus" / f"{args.language}.test.txt"
    model_dir = resolve_model_dir(smollm2_gguf())
    source_tokenizer = AutoTokenizer.from_pretrained(model_dir)
    held_out = read_text(test_file, args.eval_bytes)
    tokenizer_dir = args.work_dir / f"tokenizer-{args.language}-{args.vocab_size}"
    if not (tokenizer_dir / "tokenizer.json").is_file():
        lines = [l for l in read_text(SHARED / "corpus" / f"{args.language}.train.txt", args.train_bytes).splitlines() if l.strip()]
        train_tokenizer(source_tokenizer, lines, args.vocab_size, progress=False).save_pretrained(tokenizer_dir)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)

    def score(model, tok, label):
        return bits_per_byte(model, tok, held_out, label=label, file=test_file.name, progress=False)

    started = time.perf_counter()
    original = score(AutoModelForCausalLM.from_pretrained(model_dir).eval(), source_tokenizer, "original")
    rows = [{"method": "original", "bits_per_byte": original.bits_per_byte, "bytes_per_token": original.bytes_per_token, "seconds": None, "peak_rss_mb": None, "rules": ""}]
    print(f"original: {original.bits_per_byte:.4f} bits/byte ({time.perf_counter() - started:.0f} s)")
    skipped = []
    for method in [m.strip() for m in args.methods.split(",") if m.strip()]:
        options = method_options(method, args)
        if method not in available() or options is None:
            skipped.append(method)
            continue
        out = args.work_dir / f"model-{method}"
        run = convert_in_child(model_dir, tokenizer_dir, out, method, options)
        result = score(AutoModelForCausalLM.from_pretrained(out).eval(), tokenizer, method)
        rules = ", ".join(f"{k} {v}" for k, v in sorted(run["rules"].items(), key=lambda kv: -kv[1]))
        rows.append({"method": method, "bits_per_byte": result.bits_per_byte, "bytes_per_token": result.bytes_per_token, "seconds": run["seconds"], "peak_rss_mb": run["peak_rss_mb"], "rules": rules})
        print(f"{method}: {result.bits_per_byte:.4f} bits/byte, {run['seconds']:.1f} s, {run['peak_rss_mb']:.0f} MB")

    headers = ["method", "bits/byte", "bytes/token", "convert s", "peak RSS MB", "init rules (tokens)"]
    table = [[r["method"], r["bits_per_byte"], r["bytes_per_token"], None if r["seconds"] is None else f"{r['seconds']:.1f}", None if r["peak_rss_mb"] is None else f"{r['peak_rss_mb']:.0f}", r["rules"]] for r in rows]
    title = f"SmolLM2-135M -> {len(tokenizer)}-token {args.language} BPE; {original.bytes:,} bytes of {test_file.name}"
    print("\n" + title)
    print(format_table(headers, table))
    if skipped:
        print(f"skipped (not available or missing inputs): {', '.join(skipped)}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "compare_methods.json").write_text(json.dumps({"title": title, "args": {k: str(v) for k, v in vars(args).items()}, "rows": rows, "skipped": skipped}, indent=2))
    (OUT / "compare_methods.md").write_text(f"{title}\n\n{markdown_table(headers, table)}\n")
    plot(rows, OUT / "compare_methods.png", title)


if __name__ == "__main__":
    main()
