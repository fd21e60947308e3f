"""The omitted-digit bias shift of Section 3: errors before and after moving class biases.

A student distilled on a transfer set without 3s (or with only 7s and 8s) under-scores the
missing classes; the paper raises the bias of the 3 by 3.5 (lowers those of 7 and 8 by 7.6)
and counts the errors again. Adding ``shift`` to the logits of the chosen classes is the
same as adding it to their output biases, so no retraining is needed. The paper tuned the
shift on the test set (``shift_tuned_on_test_set``); ``prior_matching_shift`` chooses one
from the training labels' class frequencies alone.
"""
from __future__ import annotations

import numpy as np
import torch

from ..core.data import _check_classes
from ..core.evaluate import _as_tensor, per_class_errors
from ..runs.experiments import RunResult, seed_of

#: Bias shifts searched: raise the 3 (omit3), lower the 7 and 8 (only78).
OMIT3_SHIFTS = np.round(np.arange(0.0, 10.0001, 0.1), 1)
ONLY78_SHIFTS = np.round(np.arange(-12.0, 0.0001, 0.1), 1)



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


def shifted_errors(logits, labels, classes, shift: float, of_class: int | None = None):
    """(errors, errors on ``of_class``) after adding ``shift`` to the biases of ``classes``."""
    shifted = shift_biases(logits, classes, shift)
    per_class = per_class_errors(shifted, np.asarray(labels))
    return int(sum(per_class)), (None if of_class is None else int(per_class[of_class]))


def shift_tuned_on_test_set(logits, labels, classes, shifts) -> float:
    """The paper's protocol: the shift with the fewest errors *on the test set itself*."""
    return best_bias_shift(logits, labels, classes, shifts)[0]


def prior_matching_shift(train_logits, train_labels, classes, shifts) -> float:
    """A shift chosen without the test set and without pairing images with labels.

    The student predicts on every training image (those left out of its transfer set
    included); the shift is the one (smallest in magnitude among ties) whose fraction of
    predictions in ``classes`` comes closest to those classes' share of the training labels,
    i.e. only the class frequencies are used.
    """
    train_logits = np.asarray(train_logits, dtype=np.float32)
    train_labels = np.asarray(train_labels)
    if len(train_logits) != len(train_labels) or len(train_labels) == 0:
        raise ValueError(f"train_logits ({len(train_logits)}) and train_labels "
                         f"({len(train_labels)}) must describe the same, non-empty set of images")
    target = float(np.isin(train_labels, classes).mean())
    shifts = np.asarray(shifts, dtype=np.float64)
    cols = list(classes)
    gaps = []
    for s in shifts:
        bumped = train_logits.copy()
        bumped[:, cols] += np.float32(s)
        gaps.append(abs(float(np.isin(bumped.argmax(-1), cols).mean()) - target))
    best = min(range(len(shifts)), key=lambda i: (round(gaps[i], 12), abs(shifts[i])))
    return float(shifts[best])


def train_labels_of(run: RunResult, train_labels) -> np.ndarray:
    """The labels of the training images a run's ``train_logits`` were computed on."""
    labels = np.asarray(train_labels)
    if run.config.get("validation"):
        labels = labels[:50000]
    if run.config.get("train_size"):
        labels = labels[:run.config["train_size"]]
    return labels


def shift_study(run: RunResult, test_labels, train_labels, classes, shifts,
                of_class: int | None = None, paper_shift: float | None = None) -> dict:
    """Errors before and after a bias shift: chosen on the test set, the paper's value, and
    (when the artifact holds training-set logits) chosen by prior matching on training images.

    Error entries are (errors, errors on ``of_class``); ``curve`` is errors against ``shifts``.
    """
    logits = run.logits()
    out = {"seed": seed_of(run), "errors": shifted_errors(logits, test_labels, classes, 0.0, of_class)}
    if paper_shift is not None:
        out["paper_shifted"] = shifted_errors(logits, test_labels, classes, paper_shift, of_class)
    s_test = shift_tuned_on_test_set(logits, test_labels, classes, shifts)
    out["test_shift"] = s_test
    out["test_shifted"] = shifted_errors(logits, test_labels, classes, s_test, of_class)
    train_logits = run.train_logits()
    if train_logits is None:
        out["prior_shift"], out["prior_shifted"] = None, None
    else:
        s_prior = prior_matching_shift(train_logits, train_labels_of(run, train_labels), classes,
                                       shifts)
        out["prior_shift"] = s_prior
        out["prior_shifted"] = shifted_errors(logits, test_labels, classes, s_prior, of_class)
    out["curve"] = errors_against_shift(logits, np.asarray(test_labels), classes, shifts)
    if of_class is not None:
        mask = np.asarray(test_labels) == of_class
        out["class_curve"] = errors_against_shift(logits[mask], np.asarray(test_labels)[mask],
                                                  classes, shifts)
    return out
