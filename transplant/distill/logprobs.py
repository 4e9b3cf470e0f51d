"""Per-position log-probabilities from a causal LM's logits, with one softmax over the vocabulary.

Distillation needs two numbers per position t: log p(token t+1) and log p(the next token starts a
word), the log of the probability mass on the word-initial ("boundary") tokens; cross-entropy is
the mean of the first. Computed one by one (two logsumexps, a copy of the boundary columns, each
with its own backward) they sweep the [batch, length, vocabulary] logits about ten times, which
on SmolLM2 cost more than the teacher's attention. Here the forward takes the exponentials
once, keeps them for backward in place of the logits (same size), and backward turns them into
the gradient in place: two sweeps forward, two back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

# A boundary mass below this share of the largest exponential is summed again from the logits:
# tokens more than ~87 nats below the maximum underflow in float32, so such a sum loses digits.
_SMALL_BOUNDARY_MASS = 1e-25


class _PositionLogprobs(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: torch.Tensor, next_ids: torch.Tensor, boundary: torch.Tensor | None):
        top = logits.amax(-1, keepdim=True)
        exps = (logits - top).exp_()
        total = exps.sum(-1)
        log_total = total.log()
        token = logits.gather(-1, next_ids[..., None]).squeeze(-1) - top.squeeze(-1) - log_total
        space = boundary_mass = small = small_logits = small_exact = None
        if boundary is not None:
            boundary_mass = exps @ boundary.to(exps.dtype)
            space = boundary_mass.log() - log_total
            small = boundary_mass < _SMALL_BOUNDARY_MASS
            if small.any():  # rare: sum these positions' boundary logits exactly
                small_logits = logits[small].masked_fill(~boundary, float("-inf"))
                small_exact = small_logits.logsumexp(-1)
                space[small] = small_exact - top.squeeze(-1)[small] - log_total[small]
        ctx.save_for_backward(exps, total, next_ids, boundary, boundary_mass, small, small_logits, small_exact)
        return token, space

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_token, grad_space):
        exps, total, next_ids, boundary, boundary_mass, small, small_logits, small_exact = ctx.saved_tensors
        grad_token = torch.zeros_like(total) if grad_token is None else grad_token
        if boundary is None or grad_space is None:
            # d token / d logits = onehot - softmax
            grad = exps.mul_((-grad_token / total)[..., None])
        else:
            # d space / d logits = softmax restricted to the boundary tokens (renormalised) - softmax
            own = -(grad_token + grad_space) / total
            on_boundary = torch.where(small, torch.zeros_like(grad_space), grad_space / boundary_mass)
            grad = exps.mul_(torch.where(boundary, (own + on_boundary)[..., None], own[..., None]))
            if small is not None and small.any():
                grad[small] += grad_space[small, None] * (small_logits - small_exact[:, None]).exp()
        grad.scatter_add_(-1, next_ids[..., None], grad_token[..., None])
        return grad, None, None


def position_logprobs(logits: torch.Tensor, ids: torch.Tensor, boundary: torch.Tensor | None = None):
    """From logits [batch, length, vocabulary] of the sequences ``ids`` [batch, length]:

    - token log-probs [batch, length]: log p(ids[t] | ids[<t]), 0 at position 0 (the start token);
    - with a boolean ``boundary`` [vocabulary]: [batch, length], log p(the token after position t
      starts a word); else None.

    Differentiable in ``logits``; backward may run once.
    """
    next_ids = F.pad(ids[:, 1:], (0, 1))  # the last position predicts nothing: its value is dropped
    token, space = _PositionLogprobs.apply(logits.float(), next_ids, boundary)
    return F.pad(token[:, :-1], (1, 0)), space
