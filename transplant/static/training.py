"""Training fastText on a corpus, once: models are cached under ``cache_dir()/fasttext``.

The cache key hashes the corpus (absolute path, size, modification time), the tokenizer the
text was written in (its ``tokenizer.json``), and every training parameter except the thread
count. Text is written either as words (as they are, or with punctuation split off) or, for
token-level vectors (FOCUS), as the tokens of a tokenizer, each as its
:func:`~transplant.static.tokens.token_string`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..files import atomic_file, cache_dir
from ..errors import TransplantError
from ..vocab import Vocabulary
from .tokens import token_string

MODELS = ("cbow", "skipgram")
WORDS = ("as-is", "split-punctuation")
CACHE_VERSION = 1
_LINES_PER_BATCH = 2000
_WORD_OR_SYMBOL = re.compile(r"\w+(?:['’\-]\w+)*|[^\w\s]", re.UNICODE)

# Each model is trained in a fresh Python process. fastText keeps state from one training to the
# next inside a process: a second training there gives other vectors than the same training in
# a fresh process, or fails with "Encountered NaN" (seen with fasttext-numpy2 0.10.4 and
# fasttext-modern). In a fresh process, training with one thread is deterministic.
_TRAIN = (
    "import json, sys\n"
    "import fasttext\n"
    "fasttext.train_unsupervised(**json.loads(sys.argv[1])).save_model(sys.argv[2])\n"
)


@dataclass(frozen=True)
class FastTextParams:
    """fastText training parameters (fastText's own names in comments)."""

    model: str = "cbow"
    dim: int = 100
    epochs: int = 5  # -epoch
    min_count: int = 5  # -minCount
    minn: int = 3
    maxn: int = 6
    neg: int = 10
    window: int = 5  # -ws
    bucket: int = 2_000_000  # hash buckets for n-grams; the model has (words + bucket) rows
    lr: float = 0.05

    def check(self) -> None:
        if self.model not in MODELS:
            raise TransplantError(f"fastText model must be one of {', '.join(MODELS)}, not '{self.model}'")
        for name in ("dim", "epochs", "min_count", "bucket", "window", "neg"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TransplantError(f"fastText {name} must be an integer >= 1, not {value!r}")


def default_threads() -> int:
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def tokenizer_hash(tokenizer) -> str:
    """A stable hash of a fast tokenizer: its serialised ``tokenizer.json``."""
    return hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode("utf-8")).hexdigest()


def cache_key(corpus: Path, params: FastTextParams, tokenizer=None, words: str = "as-is") -> str:
    stat = corpus.stat()
    description = {
        "version": CACHE_VERSION,
        "corpus": str(corpus.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "tokenizer": tokenizer_hash(tokenizer) if tokenizer is not None else None,
        "words": words if tokenizer is None else None,
        "params": dataclasses.asdict(params),
    }
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:24]


def split_words(line: str) -> list[str]:
    """Words and single punctuation marks: ``"Gott, der Herr."`` -> ``Gott , der Herr .``"""
    return _WORD_OR_SYMBOL.findall(line)


def _line_batches(corpus: Path) -> Iterator[list[str]]:
    batch = []
    with open(corpus, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            batch.append(line.rstrip("\n"))
            if len(batch) >= _LINES_PER_BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def write_tokenized(corpus: Path, tokenizer, out: Path) -> None:
    """``corpus`` line by line as the tokens of ``tokenizer``, space-separated; special tokens dropped."""
    vocabulary = Vocabulary.from_tokenizer(tokenizer)
    strings = [token_string(vocabulary, index) for index in range(len(vocabulary))]
    backend = tokenizer.backend_tokenizer
    with open(out, "w", encoding="utf-8") as handle:
        for batch in _line_batches(corpus):
            for encoding in backend.encode_batch(batch, add_special_tokens=False):
                tokens = [strings[i] for i, keep in zip(encoding.ids, encoding.attention_mask) if keep and i < len(strings) and strings[i]]
                handle.write(" ".join(tokens) + "\n")


def write_words(corpus: Path, out: Path) -> None:
    with open(out, "w", encoding="utf-8") as handle:
        for batch in _line_batches(corpus):
            handle.writelines(" ".join(split_words(line)) + "\n" for line in batch)


def train_fasttext(
    corpus: str | os.PathLike,
    params: FastTextParams = FastTextParams(),
    *,
    tokenizer=None,
    words: str = "as-is",
    threads: int | None = None,
    directory: Path | None = None,
) -> Path:
    """Path of a fastText ``.bin`` model trained on ``corpus`` (trained now, or found in the cache).

    With ``tokenizer`` the text is written as that tokenizer's tokens (token-level vectors);
    otherwise as words: ``words="as-is"`` hands the file to fastText unchanged (it splits on
    whitespace), ``"split-punctuation"`` separates punctuation marks from words first.
    """
    corpus = Path(corpus)
    if not corpus.is_file():
        raise TransplantError(f"corpus not found: {corpus}")
    if corpus.stat().st_size == 0:
        raise TransplantError(f"corpus {corpus} is empty")
    if words not in WORDS:
        raise TransplantError(f"words must be one of {', '.join(WORDS)}, not '{words}'")
    params.check()
    directory = Path(directory) if directory is not None else cache_dir() / "fasttext"
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{corpus.stem}-{cache_key(corpus, params, tokenizer, words)}.bin"
    if target.is_file():
        return target

    text_file = None
    try:
        if tokenizer is not None or words != "as-is":
            handle, name = tempfile.mkstemp(prefix=".corpus-", suffix=".txt", dir=directory)
            os.close(handle)
            text_file = Path(name)
            if tokenizer is not None:
                write_tokenized(corpus, tokenizer, text_file)
            else:
                write_words(corpus, text_file)
        arguments = {
            "input": str(text_file or corpus),
            "model": params.model,
            "dim": params.dim,
            "epoch": params.epochs,
            "minCount": params.min_count,
            "minn": params.minn,
            "maxn": params.maxn,
            "neg": params.neg,
            "ws": params.window,
            "bucket": params.bucket,
            "lr": params.lr,
            "thread": threads or default_threads(),
            "verbose": 0,
        }
        with atomic_file(target) as partial:  # a cached model is always complete
            result = subprocess.run([sys.executable, "-c", _TRAIN, json.dumps(arguments), str(partial)], capture_output=True, text=True, check=False)
            if result.returncode != 0 or not partial.is_file():
                lines = [line for line in (result.stderr or "").strip().splitlines() if line.strip()]
                reason = lines[-1] if lines else f"exit status {result.returncode}"
                if "NaN" in reason:
                    reason += " (training diverged: use a lower lr, or more hash buckets than the corpus has n-grams)"
                raise TransplantError(f"fastText training on {corpus} failed: {reason}")
    finally:
        if text_file is not None:
            text_file.unlink(missing_ok=True)
    return target
