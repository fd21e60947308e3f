"""Transfer subsets: a class-stratified, seeded fraction of the training set (Section 6).

Section 6 of the paper ("Soft Targets as Regularizers") trains the speech model on 3% of its
data: "with hard targets" it "quickly overfits", while "with soft targets" (from a model
trained on all the data) it "recovers almost all the information in the full training set".
The MNIST analogue keeps the same fraction of every digit, so a 1% subset still holds every
class in its proportion of the training set.
"""
from __future__ import annotations

import torch


def stratified_subset(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Sorted indices of ``round(fraction * n_c)`` (at least 1) examples of every class c.

    One permutation per class is drawn from ``torch.Generator().manual_seed(seed)``, in class
    order, independent of ``fraction``; the subset takes its first examples. So for one seed
    the subsets are nested (the 1% subset lies inside the 3% one) and ``fraction == 1`` is the
    whole set.
    """
    fraction = float(fraction)
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    labels = torch.as_tensor(labels).cpu()
    g = torch.Generator().manual_seed(int(seed))
    chosen = []
    for c in torch.unique(labels).tolist():
        members = torch.nonzero(labels == c).flatten()
        order = members[torch.randperm(len(members), generator=g)]
        chosen.append(order[:max(1, round(fraction * len(members)))])
    return torch.sort(torch.cat(chosen)).values
