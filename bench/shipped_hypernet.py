"""The hypernetwork shipped for SmolLM2-135M: how it is trained, and how it does zero-shot.

    python bench/shipped_hypernet.py train              # start or continue the long run (one thread, resumable)
    python bench/shipped_hypernet.py finish             # the last checkpoint -> bench/out/shipped/hypernet -> package data
    python bench/shipped_hypernet.py measure            # the table in README (bits per byte, 8 languages + other family)
    python bench/shipped_hypernet.py predict-time       # seconds to predict a 150k-token vocabulary (2 threads)
    python bench/shipped_hypernet.py curve              # bench/shipped_hypernet.png from the run's log

Training: every language's ``*.train.txt`` in ../shared/corpus (``*.test.txt`` is never read
here except by ``measure``), mixed per step with p ~ bytes ** 0.3 (hypernet/corpora.py); every
step samples a tokenizer of one of the five families of ``transplant.vocab.families``. The
held-out curve is German text cut from the end of de.train.txt (never trained on) with a German
32k byte-level BPE that training never uses. ``train`` runs until ``--max-steps`` or until killed
(``kill -INT``); run it again and it resumes bit-identically from the last checkpoint (every 25
steps). ``finish`` takes the last checkpoint as the result.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's transplant, not an installed one

import hypernet  # noqa: E402
from transplant.demo import smollm2_gguf  # noqa: E402
from transplant.loading import load_tokenizer  # noqa: E402
from transplant.tokenizer_training import corpus_lines, train_tokenizer  # noqa: E402
from transplant.vocab.families import FAMILIES  # noqa: E402

SHARED = ROOT.parent / "shared" / "corpus"
LANGUAGES = ("de", "en", "fr", "es", "ru", "ar", "ja", "zh")  # German first: its tail is the curve's held-out text
OUT = ROOT / "bench" / "out" / "shipped"
TOKENIZERS = ROOT / "bench" / "out" / "tokenizers"
SETTINGS = dict(
    max_steps=800,
    identity_steps=200,
    batch_size=4,
    block_size=64,
    learning_rate=1e-3,
    reconstruction_weight=0.5,
    warmup_steps=30,
    sampled_vocab_size=16384,
    vocab_subsample=4096,
    families=list(FAMILIES),
    corpus_alpha=0.3,
    eval_every=50,
    eval_bytes=4000,
    checkpoint_every=25,
)


def language_tokenizer(language: str, kind: str = "bpe", size: int = 32000) -> Path:
    """``transplant train-tokenizer --like SMOLLM2 --corpus LANG.train.txt --vocab-size SIZE --type KIND``, cached."""
    directory = TOKENIZERS / (f"{language}32k" if (kind, size) == ("bpe", 32000) else f"{language}{size // 1000}k-{kind}")
    if not (directory / "tokenizer.json").is_file():
        extra = {"transition": size * 5 // 8} if kind == "superbpe" else {}
        new = train_tokenizer(load_tokenizer(str(smollm2_gguf())), corpus_lines([SHARED / f"{language}.train.txt"]), size, kind, progress=False, **extra)
        new.save_pretrained(directory)
    return directory


def run_train(args) -> None:
    torch.set_num_threads(1)
    model = str(smollm2_gguf())
    corpora = [SHARED / f"{language}.train.txt" for language in LANGUAGES]
    out = OUT / "hypernet"
    resume = (OUT / "hypernet.run").is_dir()
    settings = {**SETTINGS, "max_steps": args.max_steps or SETTINGS["max_steps"]}
    started = time.perf_counter()
    hypernet.train(model, corpora, out, eval_tokenizer=language_tokenizer("de"), resume=resume, progress=True, **settings)
    print(f"finished in {time.perf_counter() - started:.0f} s")


def run_finish(args) -> None:
    """Write the hypernetwork of the last checkpoint (a resume whose last step is that checkpoint)."""
    from transplant.training import STATE_FILE, latest_checkpoint

    run_dir = OUT / "hypernet.run"
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        raise SystemExit(f"no checkpoint in {run_dir}")
    step = json.loads((checkpoint / STATE_FILE).read_text())["step"]
    model = str(smollm2_gguf())
    corpora = [SHARED / f"{language}.train.txt" for language in LANGUAGES]
    torch.set_num_threads(args.threads)
    hypernet.train(model, corpora, OUT / "hypernet", eval_tokenizer=language_tokenizer("de"), resume=True, overwrite=True, progress=False, **{**SETTINGS, "max_steps": step})
    print(f"wrote {OUT / 'hypernet'} from step {step}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["train", "finish", "measure", "predict-time", "curve"])
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--test-bytes", type=int, default=50_000)
    args = parser.parse_args()
    {"train": run_train, "finish": run_finish}[args.command](args)


if __name__ == "__main__":
    main()
