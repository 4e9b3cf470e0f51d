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
import torch.nn.functional as F

from ..errors import TransplantError
from .data import NO_CHUNK, Batch
from .losses import DEFAULT_TEMPERATURE, alm_loss, chunk_log_likelihoods

OBJECTIVES = ("alm", "ce", "latents")


@dataclass
class AlmOptions:
    temperature: float = DEFAULT_TEMPERATURE
    divergence: str = "binary_ce"
    merge_threshold: float = 0.1  # 0 keeps the smallest chunks
    append_boundary: bool = True


def token_logprobs(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """[batch, length]: log p(ids[t] | ids[<t]); position 0 (the start token) gets 0."""
    logits = logits[:, :-1].float()
    picked = logits.gather(-1, ids[:, 1:, None]).squeeze(-1) - logits.logsumexp(-1)
    return F.pad(picked, (1, 0))


def boundary_logprobs(logits: torch.Tensor, boundary: torch.Tensor) -> torch.Tensor:
    """[batch, length]: log p(the token after position t starts a word)."""
    logits = logits.float()
    return logits[..., boundary].logsumexp(-1) - logits.logsumexp(-1)


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


def alm_objective(batch: Batch, teacher_logits, student_logits, teacher_boundary, student_boundary, options: AlmOptions) -> torch.Tensor:
    teacher_logp = token_logprobs(teacher_logits, batch.teacher_ids)
    student_logp = token_logprobs(student_logits, batch.student_ids)
    teacher_chunk, student_chunk, chunk_mask = batch.teacher_chunk, batch.student_chunk, batch.chunk_mask
    teacher_end, student_end = batch.teacher_chunk_end, batch.student_chunk_end
    if options.append_boundary or options.merge_threshold > 0:
        with torch.no_grad():
            teacher_space = boundary_logprobs(teacher_logits, teacher_boundary)
    if options.append_boundary:
        student_space = boundary_logprobs(student_logits, student_boundary)
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


def ce_objective(batch: Batch, student_logits) -> torch.Tensor:
    targets = batch.student_ids[:, 1:].masked_fill(batch.student_mask[:, 1:] == 0, -100)
    logits = student_logits[:, :-1].float()
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)


def latent_objective(batch: Batch, teacher_hidden, student_hidden) -> torch.Tensor:
    if teacher_hidden.shape[-1] != student_hidden.shape[-1]:
        raise TransplantError(f"--loss latents needs a student as wide as its teacher (hidden size {student_hidden.shape[-1]} vs {teacher_hidden.shape[-1]})")
    width = teacher_hidden.shape[-1]
    t = teacher_hidden.float().gather(1, batch.teacher_chunk_end[..., None].expand(-1, -1, width))
    s = student_hidden.float().gather(1, batch.student_chunk_end[..., None].expand(-1, -1, width))
    mask = batch.chunk_mask[..., None].float()
    scale = ((t.detach() ** 2) * mask).sum((0, 1)) / mask.sum().clamp_min(1.0) + 1e-6
    return (((s - t.detach()) ** 2 / scale) * mask).sum() / (mask.sum() * width).clamp_min(1.0)
