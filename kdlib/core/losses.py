"""Softmax with temperature and the distillation objective (Hinton et al. 2015, Section 2).

``q_i = exp(z_i / T) / sum_j exp(z_j / T)`` (Eq. 1). The distillation loss is

    soft_weight * T^2 * mean_b CE(p_teacher(T), q_student(T)) + hard_weight * mean_b CE(y, q_student(1))

with cross-entropy against soft targets as in the paper. Its gradient with respect to a
student logit is ``soft_weight * T * (q_i - p_i) / B`` for the soft part (Eq. 2 times T^2,
averaged over the batch). The weights are named; ``alpha`` of other libraries is
``soft_weight = alpha, hard_weight = 1 - alpha``. The batch mean is over examples only,
never over classes too (the ``KLDivLoss(reduction='mean')`` bug).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _check_temperature(temperature) -> None:
    t = torch.as_tensor(temperature)
    if not torch.is_floating_point(t) and t.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    if not bool(torch.isfinite(t).all()) or not bool((t > 0).all()):
        raise ValueError(f"temperature must be positive and finite, got {temperature!r}")


def _check_logits(logits: torch.Tensor, name: str) -> None:
    if not isinstance(logits, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(logits).__name__}")
    if not torch.is_floating_point(logits):
        raise ValueError(f"{name} must be floating point, got dtype {logits.dtype}")
    if logits.dim() < 2:
        raise ValueError(f"{name} must have shape (batch, classes), got {tuple(logits.shape)}")


def check_weights(soft_weight: float, hard_weight: float) -> None:
    for name, w in (("soft_weight", soft_weight), ("hard_weight", hard_weight)):
        if not math.isfinite(float(w)) or float(w) < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {w}")
    if float(soft_weight) == 0 and float(hard_weight) == 0:
        raise ValueError("soft_weight and hard_weight are both 0: the loss would be constant")


def softmax_with_temperature(logits: torch.Tensor, temperature) -> torch.Tensor:
    """Eq. 1: softmax of ``logits / T`` over the last dimension."""
    _check_temperature(temperature)
    _check_logits(logits, "logits")
    return torch.softmax(logits / temperature, dim=-1)


def soft_cross_entropy(student_logits, teacher_logits, temperature) -> torch.Tensor:
    """Per-example CE between the teacher's and the student's softmax at T, shape (..., B)."""
    targets = torch.softmax(teacher_logits.detach() / temperature, dim=-1)
    return -(targets * torch.log_softmax(student_logits / temperature, dim=-1)).sum(-1)


def stacked_distillation_loss(student_logits, teacher_logits, labels, temperature,
                              soft_weight, hard_weight) -> torch.Tensor:
    """Loss of each member of a stack: logits (K, B, C), temperature/weights (K,) -> (K,).

    Also works for one model, (B, C) with scalars -> scalar. The soft term is skipped when
    ``teacher_logits`` is None, the hard term when ``labels`` is None. No validation (this
    is the training loop's); ``distillation_loss`` is the checked public API.
    """
    t = torch.as_tensor(temperature, dtype=student_logits.dtype, device=student_logits.device)
    t_b = t.reshape(-1, *([1] * (student_logits.dim() - 1))) if t.dim() else t
    loss = student_logits.new_zeros(())
    if teacher_logits is not None:
        soft = soft_cross_entropy(student_logits, teacher_logits, t_b).mean(-1)
        loss = loss + soft_weight * t ** 2 * soft
    if labels is not None:
        ce = F.cross_entropy(student_logits.reshape(-1, student_logits.shape[-1]),
                             labels.expand(student_logits.shape[:-1]).reshape(-1),
                             reduction="none").reshape(student_logits.shape[:-1]).mean(-1)
        loss = loss + hard_weight * ce
    return loss


def distillation_loss_and_grad(student_logits, teacher_logits, labels, temperature,
                               soft_weight, hard_weight):
    """``stacked_distillation_loss`` (K,) and its gradient dloss/dlogits (K, B, C), written out.

    Eq. 2 times T^2: the soft term's gradient is ``soft_weight * T * (q_i - p_i) / B``; the
    hard term's ``hard_weight * (softmax(z)_i - [i = y]) / B``. No autograd: the training step
    calls this on every batch (tests check it against autograd of the loss above).
    """
    k, b, c = student_logits.shape
    t = temperature.reshape(k, 1, 1)
    loss = student_logits.new_zeros(k)
    grad = torch.zeros_like(student_logits)
    if teacher_logits is not None:
        p = torch.softmax(teacher_logits / t, dim=-1)
        log_q = torch.log_softmax(student_logits / t, dim=-1)
        w = soft_weight.reshape(k, 1, 1)
        loss = loss + soft_weight * temperature ** 2 * -(p * log_q).sum(-1).mean(-1)
        grad += (w * t / b) * (log_q.exp_() - p)
    if labels is not None:
        log_q1 = torch.log_softmax(student_logits, dim=-1)
        y = labels.expand(k, b).unsqueeze(-1)
        loss = loss + hard_weight * -log_q1.gather(-1, y).squeeze(-1).mean(-1)
        q1 = log_q1.exp_().scatter_add_(-1, y, torch.full_like(y, -1, dtype=log_q1.dtype))
        grad += (hard_weight.reshape(k, 1, 1) / b) * q1
    return loss, grad


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      labels: torch.Tensor | None, *, temperature: float,
                      soft_weight: float = 1.0, hard_weight: float = 0.0) -> torch.Tensor:
    """Section 2: ``soft_weight * T^2 * CE_soft(T) + hard_weight * CE_hard(T=1)``, batch mean.

    ``student_logits`` and ``teacher_logits``: (B, C) floats of the same shape and dtype;
    the teacher is detached. ``labels``: (B,) int64 in [0, C), may be None if
    ``hard_weight == 0``.
    """
    _check_temperature(temperature)
    check_weights(soft_weight, hard_weight)
    _check_logits(student_logits, "student_logits")
    _check_logits(teacher_logits, "teacher_logits")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student_logits {tuple(student_logits.shape)} and teacher_logits "
                         f"{tuple(teacher_logits.shape)} must have the same shape")
    if student_logits.dtype != teacher_logits.dtype:
        raise ValueError(f"student_logits ({student_logits.dtype}) and teacher_logits "
                         f"({teacher_logits.dtype}) must have the same dtype")
    if hard_weight:
        _check_labels(labels, student_logits)
    return stacked_distillation_loss(student_logits, teacher_logits,
                                     labels if hard_weight else None, float(temperature),
                                     float(soft_weight), float(hard_weight))


def _check_labels(labels, logits) -> None:
    if labels is None:
        raise ValueError("labels are required when hard_weight > 0")
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64:
        raise ValueError(f"labels must be an int64 tensor, got "
                         f"{getattr(labels, 'dtype', type(labels).__name__)}")
    if labels.shape != logits.shape[:-1]:
        raise ValueError(f"labels {tuple(labels.shape)} must have shape {tuple(logits.shape[:-1])}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= logits.shape[-1]):
        raise ValueError(f"labels must lie in [0, {logits.shape[-1]}), got "
                         f"[{int(labels.min())}, {int(labels.max())}]")


def logit_matching_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Section 2.1, the high-T limit: ``mean_b 1/2 * sum_i (z_i - v_i)^2`` (Caruana et al.)."""
    _check_logits(student_logits, "student_logits")
    _check_logits(teacher_logits, "teacher_logits")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student_logits {tuple(student_logits.shape)} and teacher_logits "
                         f"{tuple(teacher_logits.shape)} must have the same shape")
    return 0.5 * (student_logits - teacher_logits.detach()).pow(2).sum(-1).mean()
