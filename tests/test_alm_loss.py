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
