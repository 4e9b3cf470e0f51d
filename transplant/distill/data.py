"""Training examples for distillation: one text segment, tokenized by teacher and student, aligned.

Each side starts with its tokenizer's start token (bos, else eos), which is only context: the
first text token is predicted from it. Tokens are numbered from that start token, and every text
token carries the index of its aligned chunk (−1 where it belongs to none, e.g. past the point
where one side was cut at ``max_length``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import TransplantError
from ..evaluate import segments, start_token
from ..vocab import Vocabulary
from .align import align_text

NO_CHUNK = -1


@dataclass
class Example:
    teacher_ids: list[int]
    student_ids: list[int]
    teacher_chunk: list[int]  # per teacher position: chunk index or NO_CHUNK
    student_chunk: list[int]
    num_chunks: int
    num_bytes: int  # bytes covered by the chunks


@dataclass
class Batch:
    teacher_ids: torch.Tensor  # [batch, teacher length]
    teacher_mask: torch.Tensor
    teacher_chunk: torch.Tensor
    teacher_chunk_end: torch.Tensor  # [batch, chunks]: position of each chunk's last teacher token
    student_ids: torch.Tensor
    student_mask: torch.Tensor
    student_chunk: torch.Tensor
    student_chunk_end: torch.Tensor
    chunk_mask: torch.Tensor  # [batch, chunks]: real chunks
    student_tokens: int  # text tokens on the student side (the token budget counts these)
    num_bytes: int

    def to(self, device) -> "Batch":
        fields = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in vars(self).items()}
        return Batch(**fields)


def make_example(text: str, teacher: Vocabulary, student: Vocabulary, max_length: int) -> Example | None:
    teacher_ids, student_ids, chunks = align_text(text, teacher, student)
    # keep the chunks that fit both sides once the start token is added
    chunks = [c for c in chunks if c.teacher[1] < max_length and c.student[1] < max_length]
    if not chunks:
        return None
    teacher_ids = teacher_ids[: chunks[-1].teacher[1]]
    student_ids = student_ids[: chunks[-1].student[1]]
    teacher_chunk = [NO_CHUNK] * (len(teacher_ids) + 1)
    student_chunk = [NO_CHUNK] * (len(student_ids) + 1)
    for index, chunk in enumerate(chunks):
        for position in range(chunk.teacher[0], chunk.teacher[1]):
            teacher_chunk[position + 1] = index
        for position in range(chunk.student[0], chunk.student[1]):
            student_chunk[position + 1] = index
    return Example(
        teacher_ids=[_start(teacher)] + teacher_ids,
        student_ids=[_start(student)] + student_ids,
        teacher_chunk=teacher_chunk,
        student_chunk=student_chunk,
        num_chunks=len(chunks),
        num_bytes=chunks[-1].byte_end,
    )


def _start(vocab: Vocabulary) -> int:
    token = start_token(vocab.tokenizer)
    if token is None:
        raise TransplantError(f"{vocab.tokenizer.name_or_path or 'a tokenizer'} has neither a bos nor an eos token to start a sequence with")
    return token


def make_examples(text: str, teacher: Vocabulary, student: Vocabulary, segment_bytes: int, max_length: int) -> list[Example]:
    """Cut ``text`` into segments of whole lines and align each; segments with no chunk are skipped."""
    examples = (make_example(piece, teacher, student, max_length) for piece in segments(text, segment_bytes))
    return [e for e in examples if e is not None]


def collate(examples: list[Example]) -> Batch:
    """Right-pad a list of examples into tensors (pad id 0 under a zero attention mask)."""
    rows = len(examples)
    teacher_len = max(len(e.teacher_ids) for e in examples)
    student_len = max(len(e.student_ids) for e in examples)
    chunks = max(e.num_chunks for e in examples)
    out = {
        "teacher_ids": torch.zeros(rows, teacher_len, dtype=torch.long),
        "teacher_mask": torch.zeros(rows, teacher_len, dtype=torch.long),
        "teacher_chunk": torch.full((rows, teacher_len), NO_CHUNK, dtype=torch.long),
        "student_ids": torch.zeros(rows, student_len, dtype=torch.long),
        "student_mask": torch.zeros(rows, student_len, dtype=torch.long),
        "student_chunk": torch.full((rows, student_len), NO_CHUNK, dtype=torch.long),
        "chunk_mask": torch.zeros(rows, chunks, dtype=torch.bool),
    }
    for row, e in enumerate(examples):
        for side, ids, chunk in (("teacher", e.teacher_ids, e.teacher_chunk), ("student", e.student_ids, e.student_chunk)):
            out[f"{side}_ids"][row, : len(ids)] = torch.tensor(ids)
            out[f"{side}_mask"][row, : len(ids)] = 1
            out[f"{side}_chunk"][row, : len(chunk)] = torch.tensor(chunk)
        out["chunk_mask"][row, : e.num_chunks] = True
    for side in ("teacher", "student"):
        out[f"{side}_chunk_end"] = chunk_ends(out[f"{side}_chunk"], chunks)
    return Batch(
        **out,
        student_tokens=sum(len(e.student_ids) - 1 for e in examples),
        num_bytes=sum(e.num_bytes for e in examples),
    )


def chunk_ends(token_chunk: torch.Tensor, num_chunks: int) -> torch.Tensor:
    """[batch, chunks]: the position of each chunk's last token (0 for chunks that do not exist)."""
    positions = torch.arange(token_chunk.shape[1]).expand_as(token_chunk)
    index = torch.where(token_chunk >= 0, token_chunk, torch.full_like(token_chunk, num_chunks))
    ends = torch.zeros(token_chunk.shape[0], num_chunks + 1, dtype=torch.long)
    ends = ends.scatter_reduce(1, index, positions, reduce="amax")
    return ends[:, :num_chunks]
