"""Static vectors for the tokens of a vocabulary, at word level (WECHSEL) or token level (FOCUS).

- Word level: a token stands for the text of its canonical bytes, whitespace stripped
  (``Ġüber``, ``▁über`` and ``über`` all ask for ``über``), and a fastText model composes its
  vector from character n-grams. Tokens whose bytes are empty after stripping or not valid
  UTF-8 (a piece of a multi-byte character) get no vector.
- Token level: fastText was trained on text written as tokens (see
  :func:`transplant.static.training.train_fasttext` with a tokenizer); a token has a vector only
  if it occurred often enough to be in that model's vocabulary, as in FOCUS.
"""

from __future__ import annotations

import numpy as np

from ..vocab import Vocabulary
from .vectors import StaticVectors

LEVELS = ("word", "token")

# fastText splits words on exactly these characters; a token string must not contain them.
_FASTTEXT_SEPARATORS = " \t\n\v\f\r\0"


def token_string(vocabulary: Vocabulary, index: int) -> str | None:
    """The stable string a token is written as in token-level fastText training text.

    It is the tokenizer's own spelling of the token (``Ġüber``, ``▁über``, ``##ung``, ``<0x0A>``),
    as FOCUS writes it, so models trained by ``deepfocus`` work here too and fastText's n-grams
    see real characters. Only where that spelling holds a character fastText splits on (an added
    token with a space) is it escaped, with ``\\xNN`` for those characters and ``\\\\`` for a
    backslash. Special tokens and unused ids have no string.
    """
    if vocabulary.canonical[index] is None:
        return None
    text = vocabulary.strings[index]
    if text is None:
        return None
    if any(char in _FASTTEXT_SEPARATORS for char in text):
        text = text.replace("\\", "\\\\")
        for char in _FASTTEXT_SEPARATORS:
            text = text.replace(char, f"\\x{ord(char):02x}")
    return text


def token_text(vocabulary: Vocabulary, index: int) -> str | None:
    """The word-level text of a token: its canonical bytes as UTF-8, whitespace stripped."""
    key = vocabulary.canonical[index]
    if key is None:
        return None
    try:
        text = key[0].decode("utf-8").strip()
    except UnicodeDecodeError:
        return None
    return text or None


def token_vectors(vocabulary: Vocabulary, vectors: StaticVectors, level: str = "word") -> tuple[np.ndarray, np.ndarray]:
    """([len(vocabulary), dim] float32 vectors, bool [len(vocabulary)] which tokens have one).

    Rows without a vector are zeros. ``level`` is ``"word"`` or ``"token"`` (see module doc).
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
    matrix = np.zeros((len(vocabulary), vectors.dim), dtype=np.float32)
    known = np.zeros(len(vocabulary), dtype=bool)
    for index in range(len(vocabulary)):
        if level == "word":
            text = token_text(vocabulary, index)
        else:
            text = token_string(vocabulary, index)
            if text is not None and not vectors.has_word(text):
                text = None  # too rare to be in the model: FOCUS leaves such tokens without a vector
        if text is None:
            continue
        found = vectors.vector(text)
        if found is not None:
            matrix[index] = found
            known[index] = True
    return matrix, known
