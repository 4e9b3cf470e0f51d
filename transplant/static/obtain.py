"""Vectors as the initialisers' options name them: a file or language code, else a corpus to train on."""

from __future__ import annotations

import os

from ..errors import TransplantError
from .download import resolve_vectors
from .training import FastTextParams, train_fasttext
from .vectors import StaticVectors, load_vectors


def obtain_vectors(
    vectors: str | os.PathLike | None,
    corpus: str | os.PathLike | None,
    params: FastTextParams,
    *,
    side: str,
    method: str,
    tokenizer=None,
    words: str = "as-is",
    threads: int | None = None,
) -> StaticVectors:
    """``vectors`` if given (a ``.bin``/``.vec`` path or a language code), else fastText trained on
    ``corpus`` (cached). ``side`` ("source"/"target") and ``method`` only shape the error message."""
    if vectors is not None:
        return resolve_vectors(vectors)
    if corpus is not None:
        return load_vectors(train_fasttext(corpus, params, tokenizer=tokenizer, words=words, threads=threads), params.dim)
    raise TransplantError(f"{method} needs --{side}-vectors (a fastText .bin/.vec file or a language code) or --{side}-corpus (text to train fastText on)")
