"""Static word vectors behind one small interface: fastText ``.bin`` models and ``.vec`` text files.

A ``.bin`` model composes a vector for any string from its character n-grams (fastText subword
information); a ``.vec`` file only knows the words it lists. Either way a vector that is all
zeros (nothing known about the string) is reported as ``None``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import TransplantError


class StaticVectors:
    """Word -> vector. Subclasses set ``path``, ``dim`` and ``subwords``."""

    path: str
    dim: int
    subwords: bool  # whether unseen strings get a vector from their character n-grams

    def has_word(self, word: str) -> bool:
        """Whether ``word`` is in the trained vocabulary (not merely composable from n-grams)."""
        raise NotImplementedError

    def raw_vector(self, word: str) -> np.ndarray | None:
        raise NotImplementedError

    def vector(self, word: str) -> np.ndarray | None:
        """The vector of ``word`` (float32), or None when nothing is known about it."""
        found = self.raw_vector(word)
        if found is None or not np.any(found):
            return None
        return np.asarray(found, dtype=np.float32)

    def words(self) -> list[str]:
        raise NotImplementedError


class FastTextVectors(StaticVectors):
    """A loaded fastText model (``fasttext.load_model`` or ``train_unsupervised``)."""

    subwords = True

    def __init__(self, model, path: str = "<in memory>"):
        self.model = model
        self.path = path
        self.dim = int(model.get_dimension())

    def has_word(self, word: str) -> bool:
        return self.model.get_word_id(word) != -1

    def raw_vector(self, word: str) -> np.ndarray | None:
        return self.model.get_word_vector(word)

    def words(self) -> list[str]:
        return list(self.model.get_words(on_unicode_error="replace"))


class TextVectors(StaticVectors):
    """Vectors read from a ``.vec`` / word2vec text file: exact words only, no composition."""

    subwords = False

    def __init__(self, vocabulary: dict[str, int], matrix: np.ndarray, path: str = "<in memory>"):
        self.index = vocabulary
        self.matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        self.path = path
        self.dim = int(self.matrix.shape[1])

    def has_word(self, word: str) -> bool:
        return word in self.index

    def raw_vector(self, word: str) -> np.ndarray | None:
        row = self.index.get(word)
        return None if row is None else self.matrix[row]

    def words(self) -> list[str]:
        return list(self.index)


def read_text_vectors(path: Path, max_words: int | None = None) -> TextVectors:
    """Read a ``.vec`` file: an optional ``count dim`` header, then ``word v1 ... vd`` per line.

    Lines of the wrong length (a word with a space in it, a truncated last line) are skipped.
    """
    words: dict[str, int] = {}
    rows: list[np.ndarray] = []
    dim = None
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle):
            parts = line.rstrip("\n\r").rstrip(" ").split(" ")
            if number == 0 and len(parts) == 2 and all(p.isdigit() for p in parts):
                dim = int(parts[1])  # fastText / word2vec header: count and dimension
                continue
            if len(parts) < 2:
                continue
            if dim is None:
                dim = len(parts) - 1
            if len(parts) != dim + 1 or parts[0] in words:
                continue
            try:
                values = np.asarray(parts[1:], dtype=np.float32)
            except ValueError:
                continue
            words[parts[0]] = len(rows)
            rows.append(values)
            if max_words is not None and len(rows) >= max_words:
                break
    if not rows:
        raise TransplantError(f"{path} has no word vectors (expected `word v1 ... vN` lines, as in fastText .vec files)")
    return TextVectors(words, np.stack(rows), str(path))


def load_vectors(path: str | os.PathLike, expected_dim: int | None = None, max_words: int | None = None) -> StaticVectors:
    """Load a fastText ``.bin`` model or a ``.vec`` text file; check its dimension if one is expected."""
    path = Path(path)
    if not path.is_file():
        raise TransplantError(f"vectors file not found: {path}")
    if path.suffix == ".bin":
        import fasttext

        try:
            vectors: StaticVectors = FastTextVectors(fasttext.load_model(str(path)), str(path))
        except Exception as error:  # noqa: BLE001 - fastText raises ValueError/RuntimeError for bad files
            raise TransplantError(f"cannot read fastText model {path}: {error}") from None
    else:
        vectors = read_text_vectors(path, max_words)
    check_dimension(vectors, expected_dim)
    return vectors


def check_dimension(vectors: StaticVectors, expected_dim: int | None, other: StaticVectors | None = None) -> None:
    """One-line errors for vectors of a dimension other than expected, or than the other side's."""
    if expected_dim is not None and vectors.dim != expected_dim:
        raise TransplantError(f"{vectors.path} has {vectors.dim}-dimensional vectors, expected {expected_dim}")
    if other is not None and vectors.dim != other.dim:
        raise TransplantError(
            f"static vectors differ in dimension: {other.path} has {other.dim}, {vectors.path} has {vectors.dim}; "
            "use vectors of the same dimension on both sides"
        )
