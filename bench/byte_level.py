"""SuperBPE vs BPE on German, and byte-level ensembles of SmolLM2-135M with its transplants.

    python bench/byte_level.py                       # everything below, single-threaded
    python bench/byte_level.py --vocab-size 32768 --transition 16384 --eval-bytes 20000

1. Tokenizers in SmolLM2's style trained on ../shared/corpus/de.train.txt: plain BPE and SuperBPE
   of the same size (`transplant train-tokenizer --type superbpe --transition N`); tokens needed
   for the first --token-bytes of the held-out de.test.txt.
2. SmolLM2 transplanted (fvt, zero-shot) onto each; bits per byte on the first --eval-bytes of
   de.test.txt (`transplant eval`).
3. For each of --languages: a BPE tokenizer for that language, the fvt transplant onto it, and
   the byte-level ensemble original + transplant (equal weights, and 3:1 and 1:3 from the same
   predictions) against each member alone (`transplant eval --ensemble`), on the first
   --eval-bytes of LANG.test.txt.

Writes bench/out/byte_level.json (a part skipped keeps its earlier numbers there) and prints each
step's numbers.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "corpus"
OUT = ROOT / "bench" / "out"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab-size", type=int, default=32768)
    parser.add_argument("--transition", type=int, default=16384)
    parser.add_argument("--eval-bytes", type=int, default=20_000)
    parser.add_argument("--token-bytes", type=int, default=50_000)
    parser.add_argument("--languages", default="de,fr")
    parser.add_argument("--work-dir", type=Path, default=OUT / "byte_level")
    parser.add_argument("--skip-superbpe", action="store_true")
    parser.add_argument("--skip-ensemble", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)

    import transplant
    from transplant.bytes import ByteEnsemble, ByteLevelModel, ensemble_bits_per_byte
    from transplant.checkpoint import resolve_model_dir
    from transplant.demo import smollm2_gguf
    from transplant.evaluate import bits_per_byte, read_text, tokenizer_stats
    from transplant.loading import load_model, load_tokenizer
    from transplant.tokenizer_training import corpus_lines, train_tokenizer

    work = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    smol = resolve_model_dir(smollm2_gguf())
    like = load_tokenizer(smol)
    out_file = OUT / "byte_level.json"
    # a run that skips a part keeps that part's earlier numbers
    results: dict = json.loads(out_file.read_text()) if out_file.is_file() else {}
    results.update({"vocab_size": args.vocab_size, "transition": args.transition, "eval_bytes": args.eval_bytes})

    def save():
        out_file.write_text(json.dumps(results, indent=2))

    def tokenizer_for(language: str, kind: str):
        directory = work / f"{language}-{kind}-{args.vocab_size}"
        if not (directory / "tokenizer.json").is_file():
            started = time.perf_counter()
            lines = corpus_lines([SHARED / f"{language}.train.txt"])
            transition = args.transition if kind == "superbpe" else None
            tokenizer = train_tokenizer(like, lines, args.vocab_size, kind, progress=False, transition=transition)
            tokenizer.save_pretrained(directory)
            print(f"trained {directory.name} in {time.perf_counter() - started:.0f} s", flush=True)
        return directory

    def transplanted(language: str, kind: str):
        directory = work / f"smollm2-{language}-{kind}-{args.vocab_size}-fvt"
        if not (directory / "config.json").is_file():
            transplant.convert(smollm2_gguf(), tokenizer_for(language, kind), directory, method="fvt", overwrite=True, progress=False)
        return directory

    if not args.skip_superbpe:
        test = read_text(SHARED / "de.test.txt", args.token_bytes)
        held = read_text(SHARED / "de.test.txt", args.eval_bytes)
        rows = {}
        for kind in ("bpe", "superbpe"):
            tokenizer = load_tokenizer(tokenizer_for("de", kind))
            stats = tokenizer_stats(tokenizer, test)
            model_dir = transplanted("de", kind)
            score = bits_per_byte(load_model(model_dir), load_tokenizer(model_dir), held, label=kind, progress=False)
            rows[kind] = {**stats, "bits_per_byte": score.bits_per_byte}
            print(kind, rows[kind], flush=True)
        rows["token_reduction"] = 1 - rows["superbpe"]["tokens"] / rows["bpe"]["tokens"]
        results["superbpe_vs_bpe_de"] = rows
        save()

    if not args.skip_ensemble:
        original = ByteLevelModel(load_model(smol), like, label="SmolLM2-135M")
        results["ensemble"] = {}
        for language in args.languages.split(","):
            model_dir = transplanted(language, "bpe")
            student = ByteLevelModel(load_model(model_dir), load_tokenizer(model_dir), label=f"fvt transplant ({language} BPE {args.vocab_size})")
            text = read_text(SHARED / f"{language}.test.txt", args.eval_bytes)
            started = time.perf_counter()
            result = ensemble_bits_per_byte(ByteEnsemble([original, student]), text, segment_bytes=2048, file=f"{language}.test.txt", progress=False,
                                            other_weights=([3, 1], [1, 3]))
            token_level = {
                label: bits_per_byte(member.model, member.tokenizer, text, progress=False).bits_per_byte
                for label, member in (("original", original), ("transplant", student))
            }
            results["ensemble"][language] = {**result.to_json(), "token_level": token_level, "seconds": time.perf_counter() - started}
            print(language, results["ensemble"][language], flush=True)
            save()
    save()


if __name__ == "__main__":
    main()
