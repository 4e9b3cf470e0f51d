"""Bilingual dictionaries and the orthogonal Procrustes map between two static vector spaces.

WECHSEL aligns the source-language space onto the target-language one with the orthogonal matrix
W that best maps the source vectors of dictionary words onto the target vectors of their
translations: W = argmin ||X W - Y||_F over orthogonal W, which is U V^T for the SVD
X^T Y = U S V^T. Each dictionary entry is tried as written, lower-cased and title-cased on both
sides (so ``house<TAB>haus`` also finds ``Haus``), and every distinct word pair present in both
models is used once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from ..errors import TransplantError
from .vectors import StaticVectors, check_dimension


def read_dictionary(path: str | os.PathLike) -> list[tuple[str, str]]:
    """``(source word, target word)`` pairs from ``word<TAB>translation`` lines.

    Lines without a tab are split on whitespace (MUSE dictionaries are ``word translation``);
    lines that do not give exactly two fields are skipped.
    """
    path = Path(path)
    if not path.is_file():
        raise TransplantError(f"dictionary not found: {path}")
    pairs, skipped = [], 0
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            line = line.strip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t") if "\t" in line else line.split()
            fields = [field.strip() for field in fields]
            if len(fields) != 2 or not all(fields):
                skipped += 1
                continue
            pairs.append((fields[0], fields[1]))
    if not pairs:
        raise TransplantError(f"dictionary {path} has no word pairs (expected `word<TAB>translation` lines; {skipped} malformed)")
    return pairs


def case_variants(word: str) -> list[str]:
    """The word as written, lower-cased and title-cased, without repeats."""
    return list(dict.fromkeys((word, word.lower(), word.title())))


def dictionary_vectors(vectors: StaticVectors, words: Iterable[str]) -> dict[str, np.ndarray]:
    """Vectors of those ``words`` (and their case variants) that are in the model's vocabulary.

    Only trained words count, not n-gram compositions: a pair must be known on both sides.
    """
    found = {}
    for word in words:
        for variant in case_variants(word):
            if variant not in found and vectors.has_word(variant):
                vector = vectors.vector(variant)
                if vector is not None:
                    found[variant] = vector
    return found


def dictionary_pairs(
    dictionary: list[tuple[str, str]], source: dict[str, np.ndarray], target: dict[str, np.ndarray]
) -> list[tuple[str, str]]:
    """Distinct (source word, target word) pairs, case variants included, known on both sides."""
    pairs = {}
    for source_word, target_word in dictionary:
        for s in case_variants(source_word):
            if s not in source:
                continue
            for t in case_variants(target_word):
                if t in target:
                    pairs[(s, t)] = None
    return list(pairs)


def procrustes(source: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray) -> torch.Tensor:
    """The orthogonal [dim, dim] matrix W minimising ||source @ W - target|| (rows are pairs)."""
    x = torch.as_tensor(source, dtype=torch.float64)
    y = torch.as_tensor(target, dtype=torch.float64)
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(f"procrustes needs two [pairs, dim] matrices of one shape, not {tuple(x.shape)} and {tuple(y.shape)}")
    u, _, vh = torch.linalg.svd(x.T @ y)
    return (u @ vh).float()


def alignment_from_lookups(
    dictionary: list[tuple[str, str]],
    source: dict[str, np.ndarray],
    target: dict[str, np.ndarray],
    label: str = "dictionary",
) -> tuple[torch.Tensor, int]:
    """(W, number of pairs used) from dictionary word vectors found on each side."""
    pairs = dictionary_pairs(dictionary, source, target)
    if not pairs:
        raise TransplantError(
            f"no pair of {label} ({len(dictionary)} entries) has both words in the vectors: "
            f"{len(source)} source-side and {len(target)} target-side dictionary words were found; "
            "is it the right language pair (source<TAB>target, source language first)?"
        )
    x = np.stack([source[s] for s, _ in pairs])
    y = np.stack([target[t] for _, t in pairs])
    if x.shape[1] != y.shape[1]:
        raise TransplantError(f"static vectors differ in dimension: source {x.shape[1]}, target {y.shape[1]}; use vectors of the same dimension on both sides")
    return procrustes(x, y), len(pairs)


def align(source: StaticVectors, target: StaticVectors, dictionary: list[tuple[str, str]]) -> tuple[torch.Tensor, int]:
    """(W, pairs used): source vectors @ W lie in the target space. Both models in memory at once."""
    check_dimension(target, None, other=source)
    source_words = dictionary_vectors(source, (s for s, _ in dictionary))
    target_words = dictionary_vectors(target, (t for _, t in dictionary))
    return alignment_from_lookups(dictionary, source_words, target_words)
