"""Contexts for Token Distillation: where each new token occurs in real text, in source pieces.

The target text is tokenized once with the new tokenizer. A new token (not shared with the
source vocabulary, spelled by at least two source pieces) is chosen by how often it occurs, most
frequent first. Each chosen occurrence becomes a snippet in the *source* vocabulary: every
target token of the surrounding window is replaced by the source token with its bytes (shared
tokens) or by its decomposition (new tokens), so the teacher sees the original pieces
everywhere and the student differs only at the one token being learned.

Only token ids and positions are kept (int32 arrays); a snippet's source ids are built when its
batch is drawn, so memory grows with the text, not with snippets x length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..evaluate import segments
from ..vocab import VocabMapping

SEGMENT_BYTES = 4096  # text is tokenized in line-aligned pieces of this size; snippets never cross them


@dataclass
class Snippet:
    """One context in source ids: ``ids[start : start + pieces]`` spell the new token."""

    ids: list[int]
    start: int
    pieces: int

    def student(self, placeholder: int) -> list[int]:
        """The same context with the pieces replaced by one position (holding ``placeholder``)."""
        return self.ids[: self.start] + [placeholder] + self.ids[self.start + self.pieces :]


@dataclass
class TokenizedText:
    """The target text as one id array; ``bounds[i]`` is the end of segment i."""

    ids: np.ndarray  # int32
    segment_of: np.ndarray  # int32, segment index of each position
    bounds: np.ndarray  # int64, cumulative ends

    @classmethod
    def from_text(cls, text: str, tokenizer, progress: bool = True) -> "TokenizedText":
        pieces = segments(text, SEGMENT_BYTES)
        encoded = tokenizer(pieces, add_special_tokens=False)["input_ids"]
        lengths = np.array([len(ids) for ids in encoded], dtype=np.int64)
        ids = np.fromiter((i for row in encoded for i in row), dtype=np.int32, count=int(lengths.sum()))
        segment_of = np.repeat(np.arange(len(encoded), dtype=np.int32), lengths)
        return cls(ids, segment_of, np.cumsum(lengths))

    def segment_range(self, position: int) -> tuple[int, int]:
        segment = int(self.segment_of[position])
        return (int(self.bounds[segment - 1]) if segment else 0), int(self.bounds[segment])


def start_of_text(tokenizer) -> list[int]:
    """The token every snippet starts with, as in scoring (bos, else eos): it anchors attention."""
    for token_id in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return [token_id]
    return []


def source_spelling(mapping: VocabMapping, source_rows: int) -> list[list[int]]:
    """Target id -> the source ids that stand for it in a teacher context ([] where none can)."""
    out = []
    for target_id in range(len(mapping.target)):
        match = mapping.matches[target_id] if target_id < len(mapping.matches) else -1
        if 0 <= match < source_rows:
            out.append([match])
        else:
            pieces = mapping.pieces[target_id] if target_id < len(mapping.pieces) else []
            out.append(list(pieces) if pieces and all(p < source_rows for p in pieces) else [])
    return out


def distillable(spelling: list[list[int]], target_ids: list[int]) -> list[int]:
    """The requested ids Token Distillation can learn: spelled by two or more source pieces.

    A token spelled by one source token already has that token's row; one without pieces has
    no original to distill from.
    """
    return [t for t in target_ids if len(spelling[t]) >= 2]


def by_frequency(text: TokenizedText, candidates: list[int]) -> list[tuple[int, int]]:
    """(token, count) for candidates that occur, most frequent first (ties: lower id first)."""
    counts = np.bincount(text.ids, minlength=max(candidates, default=0) + 1)
    found = [(t, int(counts[t])) for t in candidates if t < len(counts) and counts[t] > 0]
    return sorted(found, key=lambda item: (-item[1], item[0]))


def occurrences(text: TokenizedText, tokens: list[int], per_token: int, seed: int) -> dict[int, np.ndarray]:
    """Up to ``per_token`` positions of each token, drawn without replacement by ``seed``."""
    wanted = np.isin(text.ids, np.asarray(tokens, dtype=np.int32))
    positions = np.nonzero(wanted)[0]
    grouped: dict[int, list[int]] = {}
    order = np.argsort(text.ids[positions], kind="stable")
    ids_sorted, positions_sorted = text.ids[positions][order], positions[order]
    starts = np.searchsorted(ids_sorted, tokens, side="left")
    ends = np.searchsorted(ids_sorted, tokens, side="right")
    for token, start, end in zip(tokens, starts, ends):
        found = positions_sorted[start:end]
        if len(found) > per_token:
            generator = torch.Generator().manual_seed(seed * 1_000_003 + int(token))
            chosen = torch.randperm(len(found), generator=generator)[:per_token].numpy()
            found = np.sort(found[chosen])
        grouped[int(token)] = found
    return grouped


def make_snippet(text: TokenizedText, spelling: list[list[int]], position: int, length: int, prefix: list[int]) -> Snippet:
    """The context of the token at ``position``: about half of ``length`` source ids before it,
    the rest after, within its segment, stopping at a token without source spelling."""
    first, last = text.segment_range(position)
    pieces = spelling[int(text.ids[position])]
    room = max(length - len(pieces) - len(prefix), 0)
    left: list[int] = []
    cursor = position - 1
    while cursor >= first and spelling[int(text.ids[cursor])]:
        piece = spelling[int(text.ids[cursor])]
        if len(left) + len(piece) > room // 2:
            break
        left[:0] = piece
        cursor -= 1
    right: list[int] = []
    cursor = position + 1
    while cursor < last and spelling[int(text.ids[cursor])]:
        piece = spelling[int(text.ids[cursor])]
        if len(left) + len(right) + len(piece) > room:
            break
        right += piece
        cursor += 1
    ids = prefix + left + pieces + right
    return Snippet(ids, len(prefix) + len(left), len(pieces))
