"""Counting errors: test errors, per-class errors, confusion matrices (Section 3), and the
test examples that show dark knowledge (Section 2: a 2 that looks like a 3 or like a 7).

The bias shift of the omitted-digit experiments is in ``kdlib.analysis.bias_shift``.
"""
from __future__ import annotations

import numpy as np
import torch

from .data import NUM_CLASSES


def _as_tensor(x):
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def count_errors(logits, labels):
    """Misclassified examples: an int for logits (N, C), one per member for a stack's (K, N, C).

    The one error count of kdlib (training history, artifacts, notebooks, tests)."""
    logits, labels = _as_tensor(logits), _as_tensor(labels)
    return (logits.argmax(-1) != labels.to(logits.device)).sum(-1).tolist()


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


def contrasting_examples(logits, labels, true_class: int, a: int, b: int,
                         min_confidence: float = 0.9) -> tuple[int, int]:
    """Two test examples of ``true_class`` the model gets right with probability at least
    ``min_confidence``: the one it finds most like ``a`` rather than ``b`` and the one most
    like ``b`` rather than ``a`` (by the difference of their logits)."""
    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels)
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    confidence = (shifted / shifted.sum(-1, keepdims=True)).max(-1)
    candidates = np.flatnonzero((labels == true_class) & (logits.argmax(-1) == true_class)
                                & (confidence >= min_confidence))
    if len(candidates) == 0:
        raise ValueError(f"no test example of class {true_class} is classified correctly with "
                         f"probability >= {min_confidence}")
    gap = logits[candidates, a] - logits[candidates, b]
    return int(candidates[gap.argmax()]), int(candidates[gap.argmin()])
