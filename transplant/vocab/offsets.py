"""Where each token of an encoding ends in the text, in UTF-8 bytes.

The tokenizer's own offset mapping is exact at character level for every family (it maps
normalisation back to the original text). Byte-level tokens can split one character over several
tokens, which then all report the same character span; there the canonical bytes of the pieces
(this package's other half) place each end at its exact byte.
"""

from __future__ import annotations

from .vocabulary import Vocabulary


def char_to_byte_positions(text: str) -> list[int]:
    """``positions[c]`` = byte offset of character ``c`` (and of the end, at ``len(text)``)."""
    positions, total = [0], 0
    for char in text:
        total += len(char.encode("utf-8"))
        positions.append(total)
    return positions


def token_byte_ends(vocab: Vocabulary, text: str, ids: list[int], offsets: list[tuple[int, int]]) -> list[int]:
    """Non-decreasing byte end of every token; special/empty tokens end where the previous did."""
    positions = char_to_byte_positions(text)
    ends = [positions[min(char_end, len(text))] for _, char_end in offsets]
    ends = _refine_split_characters(vocab, ids, offsets, ends)
    for index in range(1, len(ends)):  # keep order: zero-width tokens end where the last one did
        ends[index] = max(ends[index], ends[index - 1])
    return ends


def _refine_split_characters(vocab: Vocabulary, ids, offsets, ends: list[int]) -> list[int]:
    """Tokens sharing one character end: the last keeps it, earlier ones end bytes before it."""
    refined = list(ends)
    index = 0
    while index < len(ids):
        group_end = index
        while group_end + 1 < len(ids) and offsets[group_end + 1][1] == offsets[index][1] and offsets[index][1] > offsets[index][0]:
            group_end += 1
        if group_end > index:
            remaining = 0
            for member in range(group_end, index, -1):
                key = vocab.canonical[ids[member]] if ids[member] < len(vocab) else None
                remaining += len(key[0]) if key is not None else 0
                refined[member - 1] = ends[group_end] - remaining
        index = group_end + 1
    return refined
