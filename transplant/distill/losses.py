"""Approximate likelihood matching (ALM): compare teacher and student chunk by chunk.

A chunk's log-likelihood is the sum of its tokens' log-probabilities. With y = exp(logp / T)
(T = 100 by default, so y stays away from 0 where gradients vanish), each chunk is treated as a
Bernoulli event with probability y, and the teacher's and student's events are compared:

- ``binary_ce``: cross-entropy −[y_t·log y_s + (1−y_t)·log(1−y_s)], minimal where y_s = y_t;
- ``binary_kl``: the same minus the teacher's entropy, so it is 0 exactly where y_s = y_t.

log(1−y) is computed as log1mexp(logp / T), which stays finite as y → 1.
"""

from __future__ import annotations

import torch

DEFAULT_TEMPERATURE = 100.0


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 − exp(x)) for x ≤ 0, stable on both sides of −log 2 (Mächler, 2012)."""
    x = x.clamp(max=-1e-12)
    return torch.where(x > -0.6931471805599453, torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def chunk_log_likelihoods(token_logprobs: torch.Tensor, chunk_of_token: torch.Tensor, num_chunks: int) -> torch.Tensor:
    """Sum token log-probs into chunks: ``chunk_of_token[i]`` is token i's chunk, or −1 for none.

    Both arguments are [batch, tokens]; the result is [batch, num_chunks], clipped at ≤ 0.
    """
    batch = token_logprobs.shape[0]
    sums = token_logprobs.new_zeros(batch, num_chunks + 1)
    index = torch.where(chunk_of_token >= 0, chunk_of_token, torch.full_like(chunk_of_token, num_chunks))
    sums = sums.scatter_add(1, index, token_logprobs)
    return sums[:, :num_chunks].clamp(max=0.0)


def alm_loss(
    teacher_chunk_logp: torch.Tensor,
    student_chunk_logp: torch.Tensor,
    chunk_mask: torch.Tensor,
    temperature: float = DEFAULT_TEMPERATURE,
    kind: str = "binary_kl",
) -> torch.Tensor:
    """Mean over valid chunks of the binarised divergence between teacher and student."""
    t = teacher_chunk_logp.detach() / temperature
    s = student_chunk_logp / temperature
    y_t = t.exp()
    cross_entropy = -(y_t * s + (1 - y_t) * log1mexp(s))
    if kind == "binary_ce":
        per_chunk = cross_entropy
    elif kind == "binary_kl":
        entropy = -(y_t * t + (1 - y_t) * log1mexp(t))
        per_chunk = cross_entropy - entropy
    else:
        raise ValueError(f"unknown ALM divergence '{kind}' (binary_kl or binary_ce)")
    mask = chunk_mask.to(per_chunk.dtype)
    return (per_chunk * mask).sum() / mask.sum().clamp_min(1.0)
