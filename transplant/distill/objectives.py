"""The distillation objectives, computed from one teacher and one student forward pass.

- ``alm``: approximate likelihood matching over aligned chunks (see :mod:`.losses`). Chunks are
  first merged until the teacher expects a word boundary after them (probability above
  ``merge_threshold``), and each chunk's likelihood gets the log-probability that the next token
  starts a word appended, on both sides. Without this, a chunk that ends inside a word for one
  tokenizer ("Hau" + "s" vs "Haus") compares likelihoods of different events: the teacher's
  "Hau" also covers "Haus", "Haut", ... (tokenization bias).
- ``ce``: next-token cross-entropy of the student on its own tokenization (the baseline).
- ``latents``: squared distance of last hidden states at chunk ends, per channel scaled by the
  teacher's second moment, for students whose width equals the teacher's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import TransplantError
from .data import NO_CHUNK, Batch
from .logprobs import position_logprobs
from .losses import DEFAULT_TEMPERATURE, alm_loss, chunk_log_likelihoods

OBJECTIVES = ("alm", "ce", "latents")


@dataclass
class AlmOptions:
    temperature: float = DEFAULT_TEMPERATURE
    divergence: str = "binary_ce"
    merge_threshold: float = 0.1  # 0 keeps the smallest chunks
    append_boundary: bool = True


def merge_chunks(closed: torch.Tensor, chunk_mask: torch.Tensor, token_chunk: torch.Tensor):
    """Merge each run of chunks up to and including a closed one.

    ``closed`` [batch, chunks] says where a merged chunk may end. Returns the token→merged-chunk
    map, the merged chunk mask and, per merged chunk, the original chunk it ends with. Chunks
    after the last closed one belong to no merged chunk.
    """
    closed = closed & chunk_mask
    merged_index = closed.long().cumsum(1) - closed.long()  # closed chunks before this one
    count = closed.sum(1)
    merged_mask = torch.arange(closed.shape[1], device=closed.device)[None, :] < count[:, None]
    mapped = merged_index.gather(1, token_chunk.clamp(min=0))
    valid = (token_chunk != NO_CHUNK) & (mapped < count[:, None])
    token_merged = torch.where(valid, mapped, torch.full_like(mapped, NO_CHUNK))
    # the original chunk that closes merged chunk m; open chunks go to a spare column, dropped
    chunks = closed.shape[1]
    source = torch.arange(chunks, device=closed.device).expand_as(closed)
    slot = torch.where(closed, merged_index, torch.full_like(merged_index, chunks))
    ends = torch.zeros(closed.shape[0], chunks + 1, dtype=torch.long, device=closed.device)
    ends = ends.scatter(1, slot, source)[:, :chunks]
    return token_merged, merged_mask, ends


@dataclass
class SidePass:
    """What the objectives need from one side's forward pass, per position [batch, length]."""

    token_logp: torch.Tensor | None  # log p(token t | tokens < t), 0 at the start token
    space_logp: torch.Tensor | None  # log p(the token after t starts a word); None where unused
    hidden: torch.Tensor | None = None  # last hidden state [batch, length, width], for latents


def student_pass(output, ids: torch.Tensor, boundary: torch.Tensor | None, hidden: bool, *, logprobs: bool = True) -> SidePass:
    token_logp, space_logp = position_logprobs(output.logits, ids, boundary) if logprobs else (None, None)
    return SidePass(token_logp, space_logp, output.hidden_states[-1] if hidden else None)


def teacher_pass(
    teacher, batch: Batch, boundary: torch.Tensor | None, hidden: bool, *, logprobs: bool = True, row_by_row: bool | None = None
) -> SidePass:
    """The teacher's forward, storing nothing for backward.

    On a CPU the cost is proportional to the tokens it runs, padding included (11-19% of the teacher
    tokens in bench/distill.py's batches of German text), so by default each row runs alone at its own length
    there; on an accelerator one padded call keeps the device busy instead.
    """
    ids, mask = batch.teacher_ids, batch.teacher_mask
    if ids.device.type == "cpu" if row_by_row is None else row_by_row:
        calls = [(ids[row : row + 1, : int(mask[row].sum())], None) for row in range(ids.shape[0])]
    else:
        calls = [(ids, mask)]
    pieces = []
    with torch.inference_mode():
        for call_ids, call_mask in calls:
            output = teacher(input_ids=call_ids, attention_mask=call_mask, output_hidden_states=hidden, use_cache=False)
            token, space = position_logprobs(output.logits, call_ids, boundary) if logprobs else (None, None)
            pieces.append((token, space, output.hidden_states[-1] if hidden else None))
    # concatenated outside inference mode: tensors that may enter the student's graph
    return SidePass(*(_padded_rows([piece[i] for piece in pieces], ids.shape[1]) for i in range(3)))


def _padded_rows(rows: list, length: int) -> torch.Tensor | None:
    """Rows [1 or batch, own length, ...] right-padded with zeros to ``length`` and stacked."""
    if rows[0] is None:
        return None
    padded = []
    for row in rows:
        shape = (row.shape[0], length - row.shape[1], *row.shape[2:])
        padded.append(torch.cat([row, row.new_zeros(shape)], 1))
    return torch.cat(padded)


def alm_objective(batch: Batch, teacher: SidePass, student: SidePass, options: AlmOptions) -> torch.Tensor:
    teacher_logp, student_logp = teacher.token_logp, student.token_logp
    teacher_space, student_space = teacher.space_logp, student.space_logp
    teacher_chunk, student_chunk, chunk_mask = batch.teacher_chunk, batch.student_chunk, batch.chunk_mask
    teacher_end, student_end = batch.teacher_chunk_end, batch.student_chunk_end
    if options.merge_threshold > 0:
        at_end = teacher_space.gather(1, teacher_end)
        closed = at_end > math.log(options.merge_threshold)
        teacher_chunk, chunk_mask, ends = merge_chunks(closed, chunk_mask, teacher_chunk)
        student_chunk, _, _ = merge_chunks(closed, batch.chunk_mask, batch.student_chunk)
        teacher_end = teacher_end.gather(1, ends)
        student_end = student_end.gather(1, ends)
    chunks = chunk_mask.shape[1]
    teacher_chunk_logp = chunk_log_likelihoods(teacher_logp, teacher_chunk, chunks)
    student_chunk_logp = chunk_log_likelihoods(student_logp, student_chunk, chunks)
    if options.append_boundary:
        teacher_chunk_logp = teacher_chunk_logp + teacher_space.gather(1, teacher_end)
        student_chunk_logp = student_chunk_logp + student_space.gather(1, student_end)
    return alm_loss(teacher_chunk_logp, student_chunk_logp, chunk_mask, options.temperature, options.divergence)


def ce_objective(batch: Batch, student: SidePass) -> torch.Tensor:
    """Mean next-token cross-entropy over the student's real tokens."""
    real = batch.student_mask[:, 1:].to(student.token_logp.dtype)
    return -(student.token_logp[:, 1:] * real).sum() / real.sum().clamp_min(1.0)


def latent_objective(batch: Batch, teacher_hidden, student_hidden) -> torch.Tensor:
    if teacher_hidden.shape[-1] != student_hidden.shape[-1]:
        raise TransplantError(f"--loss latents needs a student as wide as its teacher (hidden size {student_hidden.shape[-1]} vs {teacher_hidden.shape[-1]})")
    width = teacher_hidden.shape[-1]
    t = teacher_hidden.float().gather(1, batch.teacher_chunk_end[..., None].expand(-1, -1, width))
    s = student_hidden.float().gather(1, batch.student_chunk_end[..., None].expand(-1, -1, width))
    mask = batch.chunk_mask[..., None].float()
    scale = ((t.detach() ** 2) * mask).sum((0, 1)) / mask.sum().clamp_min(1.0) + 1e-6
    return (((s - t.detach()) ** 2 / scale) * mask).sum() / (mask.sum() * width).clamp_min(1.0)
