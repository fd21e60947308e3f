"""Ensembles of stored logits and their soft targets (Section 4, and the Introduction).

The paper's Introduction: "When the cumbersome model is a large ensemble of simpler models,
we can use an arithmetic or geometric mean of their individual predictive distributions as
the soft targets." Section 4 reports "the averaged predictions of the ensemble". We use the
**arithmetic mean of the members' distributions**, for two reasons: it is what "averaged
predictions" says, and it is the distribution q that minimises sum_m KL(p_m, q), the
combination rule of Section 5.4 (Eq. 5) when every model covers every class. (The
normalised geometric mean is softmax of the mean logit, minimising sum_m KL(q, p_m).)

Soft targets at temperature T are the mean of the members' *softened* distributions,
mean_m softmax(z_m / T). That is not softmax(log(mean_m softmax(z_m)) / T), the ensemble's
T = 1 distribution softened afterwards; ``ensemble_teacher_logits`` returns logits v whose
softmax(v / T) is exactly the former, so the ordinary training loop distils from them.
"""
from __future__ import annotations

import math

import torch


def _stack(logits) -> torch.Tensor:
    z = torch.as_tensor(logits)
    if z.dim() != 3 or z.shape[0] < 1:
        raise ValueError(f"need member logits (M, N, C), got shape {tuple(z.shape)}")
    return z.to(torch.float64)


def ensemble_log_probabilities(logits, temperature: float = 1.0) -> torch.Tensor:
    """log of mean_m softmax(z_m / T) for member logits (M, N, C); float64, (N, C), finite."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    z = _stack(logits)
    return torch.logsumexp(torch.log_softmax(z / temperature, dim=-1), dim=0) - math.log(len(z))


def ensemble_probabilities(logits, temperature: float = 1.0) -> torch.Tensor:
    """The ensemble's distribution: mean over members of softmax(z_m / T), (N, C)."""
    return ensemble_log_probabilities(logits, temperature).exp()


def ensemble_teacher_logits(logits, temperature: float) -> torch.Tensor:
    """Teacher logits v (N, C), float32, with softmax(v / T) = mean_m softmax(z_m / T).

    v = T log(mean_m softmax(z_m / T)): give them to ``kdlib.core.train.train`` as
    ``teacher_logits`` with members at the same temperature T.
    """
    return (temperature * ensemble_log_probabilities(logits, temperature)).to(torch.float32)
