"""Test errors, per-class errors, confusion matrices and class-bias shifts (Section 3).

The omitted-digit experiments change the bias of chosen output units after training:
adding ``shift`` to the logits of the chosen classes is the same as adding it to their
biases. ``best_bias_shift`` searches a grid of shifts for the fewest errors on the data it
is given (the paper tuned on the test set; pass held-out training data to avoid that).
"""
from __future__ import annotations

import numpy as np
import torch

from .data import NUM_CLASSES, _check_classes


def _as_tensor(x):
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def error_count(logits, labels) -> int:
    logits, labels = _as_tensor(logits), _as_tensor(labels)
    return int((logits.argmax(-1) != labels.to(logits.device)).sum())


def per_class_errors(logits, labels, num_classes: int = NUM_CLASSES) -> list[int]:
    """Errors on the test examples of each true class."""
    logits, labels = _as_tensor(logits), _as_tensor(labels).to(_as_tensor(logits).device)
    wrong = logits.argmax(-1) != labels
    return torch.bincount(labels[wrong], minlength=num_classes).tolist()


def confusion_matrix(logits, labels, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """(true, predicted) counts."""
    logits, labels = _as_tensor(logits), _as_tensor(labels).to(_as_tensor(logits).device)
    flat = labels * num_classes + logits.argmax(-1)
    return torch.bincount(flat, minlength=num_classes ** 2).reshape(num_classes, num_classes).cpu().numpy()


def shift_biases(logits, classes, shift: float):
    """Logits with ``shift`` added to the chosen classes (= adding it to their output biases)."""
    logits = _as_tensor(logits).clone()
    logits[..., _check_classes(classes)] += shift
    return logits


def errors_against_shift(logits, labels, classes, shifts) -> np.ndarray:
    """Error count for each bias shift in ``shifts`` (one vectorised pass)."""
    logits, labels = _as_tensor(logits).float(), _as_tensor(labels)
    shifts_t = torch.as_tensor(np.asarray(shifts, dtype=np.float32))
    bumped = logits.unsqueeze(0).repeat(len(shifts_t), 1, 1)
    bumped[..., _check_classes(classes)] += shifts_t[:, None, None]
    return (bumped.argmax(-1) != labels.to(bumped.device)).sum(-1).cpu().numpy()


def best_bias_shift(logits, labels, classes, shifts) -> tuple[float, int]:
    """The shift with the fewest errors (the smallest in magnitude among ties) and its errors."""
    shifts = np.asarray(shifts, dtype=np.float64)
    errors = errors_against_shift(logits, labels, classes, shifts)
    best = min(range(len(shifts)), key=lambda i: (errors[i], abs(shifts[i])))
    return float(shifts[best]), int(errors[best])
