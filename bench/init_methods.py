"""Zero-shot bits per byte of every initialiser: SmolLM2-135M onto a German tokenizer.

    python bench/init_methods.py                      # shared corpus, 32k tokenizer, 50 KB scored
    python bench/init_methods.py --vocab-size 16384 --eval-bytes 100000 --methods fvt,mean

The tokenizer is trained on ../shared/corpus/de.train.txt; scoring uses the held-out
../shared/corpus/de.test.txt (technical documentation plus Bible text). Prints a table and
writes bench/out/init_methods.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer

import transplant
from transplant.checkpoint import resolve_model_dir
from transplant.demo import smollm2_gguf
from transplant.evaluate import bits_per_byte, read_text
from transplant.table import format_table, markdown_table
from transplant.tokenizer_training import train_tokenizer

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "corpus"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--language", default="de")
    parser.add_argument("--vocab-size", type=int, default=32768)
    parser.add_argument("--train-bytes", type=int, default=8_000_000)
    parser.add_argument("--eval-bytes", type=int, default=50_000)
    parser.add_argument("--methods", default="fvt,mean,random,mvn")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "bench" / "out" / "init_methods")
    args = parser.parse_args()

    train_file, test_file = SHARED / f"{args.language}.train.txt", SHARED / f"{args.language}.test.txt"
    model_dir = resolve_model_dir(smollm2_gguf())
    source_tokenizer = AutoTokenizer.from_pretrained(model_dir)
    held_out = read_text(test_file, args.eval_bytes)

    clock = time.perf_counter()
    lines = [l for l in read_text(train_file, args.train_bytes).splitlines() if l.strip()]
    tokenizer = train_tokenizer(source_tokenizer, lines, args.vocab_size, progress=False)
    tokenizer_dir = args.work_dir / "tokenizer"
    tokenizer.save_pretrained(tokenizer_dir)
    print(f"tokenizer: {len(tokenizer)} tokens in {time.perf_counter() - clock:.1f} s")

    rows = []
    original = bits_per_byte(AutoModelForCausalLM.from_pretrained(model_dir).eval(), source_tokenizer, held_out, label="original", file=test_file.name)
    rows.append({"method": "original tokenizer", "vocab": len(source_tokenizer), "bits_per_byte": original.bits_per_byte, "bytes_per_token": original.bytes_per_token, "convert_s": None, "rules": ""})
    for method in args.methods.split(","):
        out = args.work_dir / f"model-{method}"
        report = transplant.convert(model_dir, tokenizer_dir, out, method=method, overwrite=True, progress=False)
        result = bits_per_byte(AutoModelForCausalLM.from_pretrained(out).eval(), AutoTokenizer.from_pretrained(out), held_out, label=method, file=test_file.name)
        rules = ", ".join(f"{k} {v}" for k, v in sorted(report.rules["input"].items(), key=lambda kv: -kv[1]))
        rows.append({"method": method, "vocab": len(tokenizer), "bits_per_byte": result.bits_per_byte, "bytes_per_token": result.bytes_per_token, "convert_s": round(report.seconds, 1), "rules": rules})
        print(f"{method}: {result.bits_per_byte:.4f} bits/byte")

    headers = ["method", "vocab", "bits/byte", "bytes/token", "convert s", "init rules (tokens)"]
    table = [[r["method"], r["vocab"], r["bits_per_byte"], r["bytes_per_token"], r["convert_s"], r["rules"]] for r in rows]
    print(f"\nSmolLM2-135M -> {args.language} BPE tokenizer; scored {original.bytes:,} bytes of {test_file.name}")
    print(format_table(headers, table))
    args.work_dir.parent.mkdir(parents=True, exist_ok=True)
    (args.work_dir.parent / "init_methods.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=2))
    (args.work_dir.parent / "init_methods.md").write_text(markdown_table(headers, table) + "\n")


if __name__ == "__main__":
    main()
