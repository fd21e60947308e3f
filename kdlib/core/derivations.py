"""Independent checks of the derivations of Section 2 and Section 2.1 of Hinton, Vinyals &
Dean (2015): a symbolic softmax for ``sympy`` (written out again on purpose, so the check of
the gradient does not reuse the code it checks), the exact soft-target gradient in numbers,
and the size of a loss's gradient with respect to the student's logits.
"""
from __future__ import annotations

import numpy as np
import torch

from .losses import softmax_with_temperature


def symbolic_softmax(logits, temperature) -> list:
    """Eq. 1 as ``sympy`` expressions: ``q_i = exp(z_i/T) / sum_j exp(z_j/T)``.

    Deliberately independent of ``kdlib.core.losses.softmax_with_temperature`` (which is torch
    code): chapter 1 differentiates it symbolically to check Eq. 2 from first principles.
    """
    import sympy as sp

    e = [sp.exp(x / temperature) for x in logits]
    return [ei / sum(e) for ei in e]


def exact_gradient(student_logits, teacher_logits, temperature) -> np.ndarray:
    """Eq. 2: ``dC/dz_i = (1/T)(q_i - p_i)`` per case, from ``kdlib.core.losses``'s softmax."""
    q = softmax_with_temperature(torch.as_tensor(student_logits), temperature)
    p = softmax_with_temperature(torch.as_tensor(teacher_logits), temperature)
    return ((q - p) / temperature).numpy()


def relative_error(approx, exact) -> float:
    """``||approx - exact|| / ||exact||`` (Frobenius norm over all cases and classes), the
    error of the high-temperature approximation of Section 2.1."""
    return np.linalg.norm(np.asarray(approx) - exact) / np.linalg.norm(exact)


def gradient_norm(loss_of, student_logits: torch.Tensor) -> float:
    """Mean norm, per case, of the gradient of ``loss_of(logits)`` with respect to the logits
    (Section 2: the soft-target gradient scales as 1/T^2 without the T^2 factor).

    ``loss_of`` returns a batch mean, so the norm is multiplied back by the batch size.
    """
    student = student_logits.clone().requires_grad_()
    loss_of(student).backward()
    return float(student.grad.norm(dim=1).mean() * len(student))
