"""Stopping a run that failed, with a message that says what to change.

Distillation at a high temperature scales the soft-target gradient by T (Section 2, the T^2
factor); with a learning rate set for hard labels a student can diverge (NaN/inf) or lose
every signal and predict one class. Both are checked after every epoch, before the epoch is
checkpointed, so the last checkpoint is always a good one.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch

from .io import ArtifactError, read_torch


class TrainingFailed(RuntimeError):
    """A run that cannot go on; ``members``: the indices of the stack's members that failed
    (the others were still training well)."""

    def __init__(self, message: str, members: list[int] | None = None):
        super().__init__(message)
        self.members = members or []


class TrainingDiverged(TrainingFailed):
    """The loss became NaN or infinite."""


class TrainingCollapsed(TrainingFailed):
    """A member's predictions collapsed onto one class (or mostly one class, mostly wrong)."""


#: Collapse check (``check_collapse``): one class predicted for at least this share of the
#: checked images, while it is under ``COLLAPSE_MINORITY`` of the transfer set's labels ...
COLLAPSE_SHARE, COLLAPSE_MINORITY = 0.95, 0.5
#: ... or, after the first epoch, one class predicted for at least ``COLLAPSE_DOMINANT`` of the
#: images with an error of at least as much, when the transfer set has C >= 3 classes. (The
#: rule was an error of at least 1 - 1.5 / C: a run on synthetic data that predicted class 9
#: for 81.6% of the images with 78.2% error went unflagged.) Images checked: up to
#: ``COLLAPSE_SAMPLE``.
COLLAPSE_DOMINANT, COLLAPSE_SAMPLE = 0.5, 2000
#: No check before this many updates: a barely trained network may still predict one class
#: (benchmark warm-ups of 4 steps, tests on a few hundred random images). 50, not 100: a
#: 3-epoch run on 3,000 images at batch 128 (72 updates) that ended at chance went unchecked.
COLLAPSE_MIN_STEPS = 50


def collapse_check_due(epochs_done: int, steps_per_epoch: int, warmup_epochs: int) -> bool:
    """Whether the collapse check runs after epoch ``epochs_done``: from the
    ``COLLAPSE_MIN_STEPS``-th update on, and only once the learning-rate warm-up is over (a
    network still at a fraction of its learning rate may predict one class: the 1% run of
    chapter 7, 599 images and a 200-epoch warm-up, was stopped at epoch 10, update 50)."""
    return epochs_done * steps_per_epoch >= COLLAPSE_MIN_STEPS and epochs_done > warmup_epochs
#: The clipping value the collapse message suggests (README "Your own data").
RECOMMENDED_MAX_GRAD_NORM = 5.0


def collapse_report(predictions: torch.Tensor, labels: torch.Tensor, transfer_labels: torch.Tensor,
                    epoch: int, what: str = "test") -> list[str | None]:
    """Which members' predictions collapsed: one line per collapsed member, None for the others.

    ``predictions`` (K, N) are the members' classes for N checked images with true ``labels``;
    ``transfer_labels`` are the training labels. Only checked images of classes that occur in
    the transfer set count (a student of only 7s and 8s is judged on the 7s and 8s). A member
    collapsed when one class d gets >= ``COLLAPSE_SHARE`` of its predictions while d is under
    ``COLLAPSE_MINORITY`` of the transfer labels, or, from epoch 2 on, when d gets at least
    ``COLLAPSE_DOMINANT`` of the predictions and the error is at least as high (C >= 3 classes
    in the transfer set; a working network of C classes never has one class take half of its
    predictions while it is wrong on half of the images). Unlearnable data (random labels)
    gives spread-out predictions at chance and is not flagged; a network that lost every
    signal predicts one class.
    """
    num_classes = int(max(predictions.max(), labels.max(), transfer_labels.max())) + 1
    counts = torch.bincount(transfer_labels.cpu(), minlength=num_classes)
    share_in_transfer = counts.float() / counts.sum()
    present = torch.nonzero(counts).flatten()
    keep = torch.isin(labels.cpu(), present)
    if not bool(keep.any()):
        return [None] * len(predictions)
    preds, y = predictions.cpu()[:, keep], labels.cpu()[keep]
    out = []
    for p in preds:
        pred_counts = torch.bincount(p, minlength=num_classes)
        d = int(pred_counts.argmax())
        share, error = float(pred_counts[d]) / len(p), float((p != y).float().mean())
        minority = float(share_in_transfer[d]) < COLLAPSE_MINORITY
        one_class = share >= COLLAPSE_SHARE
        dominant = (epoch >= 2 and len(present) >= 3 and share >= COLLAPSE_DOMINANT
                    and error >= COLLAPSE_DOMINANT)
        out.append(f"class {d} predicted for {share:.1%} of {len(p)} {what} images (it is "
                   f"{float(share_in_transfer[d]):.1%} of the training labels), error {error:.1%}"
                   if minority and (one_class or dominant) else None)
    return out



def check_collapse(predictions: torch.Tensor, labels: torch.Tensor,
                   transfer_labels: torch.Tensor, epoch: int, what: str, members, desc: str,
                   checkpoint_path: Path | None) -> None:
    """Raise TrainingCollapsed if a member's predictions collapsed after ``epoch`` (1-based)."""
    found = collapse_report(predictions, labels, transfer_labels, epoch, what)
    bad = [f"member {k} (seed {members[k].seed}, T {members[k].temperature:g}): {line}"
           for k, line in enumerate(found) if line]
    if bad:
        raise TrainingCollapsed(
            f"{desc}: predictions collapsed in epoch {epoch}: {'; '.join(bad)}; "
            f"{last_checkpoint(checkpoint_path)}. "
            "The network stopped learning: lower the learning rate, use a longer warm-up "
            "(warmup_epochs), a lower temperature, or clip gradients with TrainSpec.max_grad_norm "
            f"(e.g. {RECOMMENDED_MAX_GRAD_NORM:g}).", [k for k, line in enumerate(found) if line])


def check_divergence(parameters, epoch_loss: list[float], epoch: int, desc: str,
                     checkpoint_path: Path | None) -> None:
    """Raise TrainingDiverged if the loss of epoch ``epoch`` (1-based) or a weight is NaN/inf."""
    finite = [math.isfinite(v) for v in epoch_loss]  # per member; parameters are (K, ...)
    finite_loss = all(finite)
    for p in parameters:
        finite = [f and bool(ok) for f, ok in zip(finite, torch.isfinite(p).flatten(1).all(1))]
    if not all(finite):
        raise TrainingDiverged(f"{desc}: {'weights' if finite_loss else 'loss'} became NaN/inf "
                               f"in epoch {epoch} (loss per member: {epoch_loss}); "
                               f"{last_checkpoint(checkpoint_path)}. Lower the learning rate.",
                               [k for k, f in enumerate(finite) if not f])


def last_checkpoint(path: Path | None) -> str:
    """Where a failed run can be resumed from, for its error message."""
    if path and path.exists():
        return f"last good checkpoint: {path} (epoch {start_epoch_saved(path)})"
    return "no checkpoint was written"


def start_epoch_saved(path) -> int:
    try:
        return int(read_torch(path)["epoch"])
    except ArtifactError:
        return -1
