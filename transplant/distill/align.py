"""Aligning two tokenizations of the same text into chunks that cover the same bytes.

A chunk is the smallest run of teacher tokens and of student tokens that end at the same byte:
two pointers walk both sequences of byte ends and close a chunk whenever they meet. The chunks
partition both token sequences in order; tokens after the last common end (e.g. trailing
whitespace one tokenizer drops) belong to no chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..vocab import Vocabulary
from ..vocab.offsets import token_byte_ends


@dataclass(frozen=True)
class Chunk:
    teacher: tuple[int, int]  # token index range [start, end)
    student: tuple[int, int]
    byte_end: int  # where both runs end in the text


def align_chunks(teacher_ends: list[int], student_ends: list[int]) -> list[Chunk]:
    chunks: list[Chunk] = []
    i = j = teacher_start = student_start = 0
    while i < len(teacher_ends) and j < len(student_ends):
        if teacher_ends[i] == student_ends[j]:
            # zero-width tokens (specials) that end at the same byte join this chunk
            while i + 1 < len(teacher_ends) and teacher_ends[i + 1] == teacher_ends[i]:
                i += 1
            while j + 1 < len(student_ends) and student_ends[j + 1] == student_ends[j]:
                j += 1
            chunks.append(Chunk((teacher_start, i + 1), (student_start, j + 1), teacher_ends[i]))
            i, j = i + 1, j + 1
            teacher_start, student_start = i, j
        elif teacher_ends[i] < student_ends[j]:
            i += 1
        else:
            j += 1
    return chunks


def align_text(text: str, teacher: Vocabulary, student: Vocabulary) -> tuple[list[int], list[int], list[Chunk]]:
    """Tokenize ``text`` with both tokenizers (no special tokens) and align the results."""
    sides = []
    for vocab in (teacher, student):
        encoding = vocab.tokenizer.backend_tokenizer.encode(text, add_special_tokens=False)
        ids = [i for i, keep in zip(encoding.ids, encoding.attention_mask) if keep]
        sides.append((ids, token_byte_ends(vocab, text, ids, encoding.offsets[: len(ids)])))
    (teacher_ids, teacher_ends), (student_ids, student_ends) = sides
    return teacher_ids, student_ids, align_chunks(teacher_ends, student_ends)
