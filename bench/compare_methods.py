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
`tokendistill` learns new rows from ../shared/corpus/LANG.train.txt within --tokendistill-seconds
(default 1200: 20 minutes) starting from fvt; with --hypernet DIR (or `builtin`, the shipped one)
a second row starts from that hypernetwork (same budget).
The fastText models are trained (or found in transplant's cache) before the timed conversions,
so "convert s" never includes that one-off training.

Where the reference packages `wechsel` and `deepfocus` are installed, `wechsel` and `focus` are
each followed by the reference implementation on the same inputs (same embedding matrix,
tokenizers, fastText models and dictionary; bench/reference_methods.py), converted, timed and
scored the same way, and our row gets "time vs reference" (our wall time / the reference's).
--no-references leaves them out. Prints a table and writes bench/out/compare_methods.{json,md,png}
(or into --out-dir).
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
ALL_METHODS = "fvt,mean,random,mvn,topk,tokenadapt,wechsel,focus,omp,tokendistill"

# Runs in a child process: one conversion, then its own wall time and peak RSS as JSON. A module
# named in "register" (from bench/) is imported first: reference_methods adds the reference methods.
# Peak RSS is VmHWM, the child's own high-water mark: Linux starts a child's ru_maxrss at the
# parent's RSS when it was spawned (here several GB after scoring), so that would hide the method.
CHILD = """
import importlib, json, resource, sys, time
import transplant
args = json.loads(sys.argv[1])
sys.path.insert(0, args.pop("bench"))
register = args.pop("register")
if register:
    importlib.import_module(register)
started = time.perf_counter()
report = transplant.convert(args.pop("model"), args.pop("tokenizer"), args.pop("out"), overwrite=True, progress=False, **args)
seconds = time.perf_counter() - started
try:
    peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")) / 1024
except (OSError, StopIteration):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_rss_mb": peak, "rules": report.rules["input"]}))
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
    if method == "tokendistill":
        return {"target_corpus": [str(SHARED / "corpus" / f"{lang}.train.txt")], "max_seconds": args.tokendistill_seconds}
    return {}


def convert_in_child(model_dir: Path, tokenizer_dir: Path, out: Path, method: str, options: dict, register: str | None = None) -> dict:
    payload = json.dumps({"model": str(model_dir), "tokenizer": str(tokenizer_dir), "out": str(out), "method": method, "bench": str(ROOT / "bench"), "register": register, "add_missing_special_tokens": True, **options})
    completed = subprocess.run([sys.executable, "-c", CHILD, payload], capture_output=True, text=True, check=False)
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
    colors = ["#888" if n == "original" else "#c83" if "(reference" in n else "#3a7" for n in names[::-1]]
    bars = axis.barh(names[::-1], values[::-1], color=colors)
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
    parser.add_argument("--tokendistill-seconds", type=float, default=1200, help="tokendistill: distillation budget per conversion")
    parser.add_argument("--hypernet", default=None, help="tokendistill: also run it from this trained hypernetwork directory, or 'builtin' for the shipped one (a row of its own)")
    parser.add_argument("--tokenizer", type=Path, default=None, help="use this target tokenizer instead of training one (its missing special tokens are added)")
    parser.add_argument("--work-dir", type=Path, default=OUT / "compare_methods")
    parser.add_argument("--out-dir", type=Path, default=OUT, help="where compare_methods.{json,md,png} go")
    parser.add_argument("--references", action=argparse.BooleanOptionalAction, default=True, help="also run the reference packages after wechsel and focus (when installed)")
    args = parser.parse_args()

    from reference_methods import REFERENCES, static_vectors, unavailable
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
    tokenizer_dir = args.tokenizer or args.work_dir / f"tokenizer-{args.language}-{args.vocab_size}"
    if not (tokenizer_dir / "tokenizer.json").is_file():
        lines = [line for line in read_text(SHARED / "corpus" / f"{args.language}.train.txt", args.train_bytes).splitlines() if line.strip()]
        train_tokenizer(source_tokenizer, lines, args.vocab_size, progress=False).save_pretrained(tokenizer_dir)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)

    def score(model, tok, label):
        return bits_per_byte(model, tok, held_out, label=label, file=test_file.name, progress=False)

    def convert_and_score(name: str, method: str, options: dict, register: str | None = None) -> dict:
        out = args.work_dir / f"model-{name.replace(' ', '-').replace('(', '').replace(')', '').replace(':', '')}"
        run = convert_in_child(model_dir, tokenizer_dir, out, method, options, register)
        result = score(AutoModelForCausalLM.from_pretrained(out).eval(), AutoTokenizer.from_pretrained(out), name)
        rules = ", ".join(f"{k} {v}" for k, v in sorted(run["rules"].items(), key=lambda kv: -kv[1]))
        print(f"{name}: {result.bits_per_byte:.4f} bits/byte, {run['seconds']:.1f} s, {run['peak_rss_mb']:.0f} MB")
        return {"method": name, "bits_per_byte": result.bits_per_byte, "bytes_per_token": result.bytes_per_token, "seconds": run["seconds"], "peak_rss_mb": run["peak_rss_mb"], "time_vs_reference": None, "rules": rules}

    started = time.perf_counter()
    original = score(AutoModelForCausalLM.from_pretrained(model_dir).eval(), source_tokenizer, "original")
    rows = [{"method": "original", "bits_per_byte": original.bits_per_byte, "bytes_per_token": original.bytes_per_token, "seconds": None, "peak_rss_mb": None, "time_vs_reference": None, "rules": ""}]
    print(f"original: {original.bits_per_byte:.4f} bits/byte ({time.perf_counter() - started:.0f} s)")
    skipped, static = [], {}
    for method in [m.strip() for m in args.methods.split(",") if m.strip()]:
        options = method_options(method, args)
        if method not in available() or options is None:
            skipped.append(method)
            continue
        if method in REFERENCES:  # fastText first, untimed: the models our run loads and the reference is given
            static[method], seconds = static_vectors(method, options, tokenizer_dir)
            print(f"{method}: fastText models ready in {seconds:.0f} s ({', '.join(Path(v).name for k, v in static[method].items() if k.endswith('_vectors'))})")
        row = convert_and_score(method, method, options)
        rows.append(row)
        if method == "tokendistill" and args.hypernet:
            hypernet = {} if args.hypernet == "builtin" else {"hypernet": args.hypernet}  # no directory: the built-in one
            rows.append(convert_and_score("tokendistill (hypernet init)", method, {**options, "init": "hypernet", **hypernet}))
        reference = REFERENCES.get(method) if args.references else None
        if reference is None:
            continue
        reason = unavailable(method)
        if reason:
            skipped.append(f"{reference.label} ({reason})")
            continue
        reference_row = convert_and_score(reference.label, reference.method, static[method], register="reference_methods")
        row["time_vs_reference"] = row["seconds"] / reference_row["seconds"]
        rows.append(reference_row)

    headers = ["method", "bits/byte", "bytes/token", "convert s", "time vs reference", "peak RSS MB", "init rules (tokens)"]
    table = [
        [
            r["method"], r["bits_per_byte"], r["bytes_per_token"],
            None if r["seconds"] is None else f"{r['seconds']:.1f}",
            None if r["time_vs_reference"] is None else f"{r['time_vs_reference']:.2f}x",
            None if r["peak_rss_mb"] is None else f"{r['peak_rss_mb']:.0f}",
            r["rules"],
        ]
        for r in rows
    ]
    title = f"SmolLM2-135M -> {len(tokenizer)}-token {args.language} BPE; {original.bytes:,} bytes of {test_file.name}"
    print("\n" + title)
    print(format_table(headers, table))
    if skipped:
        print(f"skipped (not available or missing inputs): {', '.join(skipped)}")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "compare_methods.json").write_text(json.dumps({"title": title, "args": {k: str(v) for k, v in vars(args).items()}, "rows": rows, "skipped": skipped, "static_vectors": static}, indent=2))
    (args.out_dir / "compare_methods.md").write_text(f"{title}\n\n{markdown_table(headers, table)}\n")
    plot(rows, args.out_dir / "compare_methods.png", title)


if __name__ == "__main__":
    main()
