"""ALM loss: minimal (and zero for the divergence form) when student equals teacher; gradients flow."""

from __future__ import annotations

import math

import pytest
import torch

from transplant.distill.losses import alm_loss, chunk_log_likelihoods, log1mexp


def test_log1mexp_matches_direct_formula_and_stays_finite():
    x = -torch.logspace(-8, 3, 200, dtype=torch.float64)
    assert torch.allclose(log1mexp(x), torch.log(1 - torch.exp(x)), rtol=1e-6)
    tiny = log1mexp(torch.tensor([-1e-20, -1e-7], dtype=torch.float32))
    assert torch.isfinite(tiny).all()
    assert tiny[1].item() == pytest.approx(math.log(1e-7), rel=1e-3)


def test_chunk_sums_and_ignored_tokens():
    logp = torch.tensor([[-1.0, -2.0, -3.0, -4.0]])
    chunk = torch.tensor([[0, 0, 1, -1]])
    assert torch.equal(chunk_log_likelihoods(logp, chunk, 2), torch.tensor([[-3.0, -3.0]]))


def test_divergence_is_zero_with_zero_gradient_at_the_teacher():
    teacher = -torch.rand(3, 7, dtype=torch.float64) * 50
    student = teacher.clone().requires_grad_(True)
    mask = torch.ones(3, 7, dtype=torch.bool)
    loss = alm_loss(teacher, student, mask, kind="binary_kl")
    loss.backward()
    assert abs(loss.item()) < 1e-12
    assert student.grad.abs().max().item() < 1e-10
    student_ce = teacher.clone().requires_grad_(True)
    alm_loss(teacher, student_ce, mask, kind="binary_ce").backward()
    assert student_ce.grad.abs().max().item() < 1e-10  # the cross-entropy form has its minimum there too


def test_loss_grows_away_from_the_teacher_and_gradient_points_back():
    teacher = torch.full((1, 4), -20.0, dtype=torch.float64)
    mask = torch.ones(1, 4, dtype=torch.bool)
    losses = []
    for shift in (0.0, 2.0, 8.0):
        student = (teacher - shift).requires_grad_(True)
        loss = alm_loss(teacher, student, mask)
        loss.backward()
        losses.append(loss.item())
        if shift:
            assert (student.grad < 0).all()  # increasing the student's log-likelihood lowers the loss
    assert losses[0] < losses[1] < losses[2]


def test_masked_chunks_do_not_count():
    teacher = torch.tensor([[-1.0, -5.0]])
    student = torch.tensor([[-1.0, -50.0]], requires_grad=True)
    loss = alm_loss(teacher, student, torch.tensor([[True, False]]))
    loss.backward()
    assert abs(loss.item()) < 1e-6 and student.grad[0, 1] == 0


def reference_token_logprobs(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """The direct formula (one logsumexp per use) that position_logprobs replaces."""
    logits = logits[:, :-1].float()
    picked = logits.gather(-1, ids[:, 1:, None]).squeeze(-1) - logits.logsumexp(-1)
    return torch.nn.functional.pad(picked, (1, 0))


def reference_boundary_logprobs(logits: torch.Tensor, boundary: torch.Tensor) -> torch.Tensor:
    logits = logits.float()
    return logits[..., boundary].logsumexp(-1) - logits.logsumexp(-1)


@pytest.mark.parametrize("with_boundary", [True, False])
def test_position_logprobs_and_their_gradient_equal_the_direct_formulas(with_boundary):
    from transplant.distill.logprobs import position_logprobs

    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 11, 300, generator=generator) * 6
    logits[1, 4] -= 300 * torch.rand(300, generator=generator)  # wide spread: many exponentials underflow
    boundary = torch.rand(300, generator=generator) < 0.4
    logits[0, 2, boundary] -= 200  # the boundary mass there is ~e^-200, below float32's range
    ids = torch.randint(0, 300, (3, 11), generator=generator)
    weights = torch.randn(2, 3, 11, generator=generator, dtype=torch.float64)

    fast_input, direct_input = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    token, space = position_logprobs(fast_input, ids, boundary if with_boundary else None)
    direct_token = reference_token_logprobs(direct_input, ids)
    torch.testing.assert_close(token, direct_token, rtol=1e-6, atol=2e-5)
    fast_objective, direct_objective = (token.double() * weights[0]).sum(), (direct_token.double() * weights[0]).sum()
    if with_boundary:
        direct_space = reference_boundary_logprobs(direct_input, boundary)
        torch.testing.assert_close(space, direct_space, rtol=1e-6, atol=2e-5)
        assert space[0, 2].item() < -150  # exact where a plain sum of exponentials gives log(0)
        fast_objective = fast_objective + (space.double() * weights[1]).sum()
        direct_objective = direct_objective + (direct_space.double() * weights[1]).sum()
    else:
        assert space is None
    fast_objective.backward()
    direct_objective.backward()
    torch.testing.assert_close(fast_input.grad, direct_input.grad, rtol=1e-5, atol=1e-6)
    assert fast_input.grad.abs().sum() > 0
