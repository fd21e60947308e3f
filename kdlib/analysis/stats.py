"""Paired comparisons of two classifiers on one test set, and mean ± sd over seeds.

Two models evaluated on the same 10,000 test digits are compared per example: only the
digits that exactly one of them gets right carry information (McNemar 1947). The exact
test conditions on their number and asks whether they split 50/50 (a binomial test).
The paper (Section 3) reports single runs without any such test; these are ours.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.stats import binomtest, norm


def _paired_correct(correct_a, correct_b) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(correct_a), np.asarray(correct_b)
    for name, x in (("correct_a", a), ("correct_b", b)):
        if x.ndim != 1 or x.dtype != bool:
            raise ValueError(f"{name} must be a 1-D boolean array (one entry per test example), "
                             f"got dtype {x.dtype} and shape {x.shape}")
    if a.shape != b.shape:
        raise ValueError(f"correct_a {a.shape} and correct_b {b.shape} must describe the same "
                         "test examples")
    if a.size == 0:
        raise ValueError("no test examples to compare")
    return a, b


def discordant_counts(correct_a, correct_b) -> tuple[int, int]:
    """(b, c): examples only model A gets right, and examples only model B gets right."""
    a, b = _paired_correct(correct_a, correct_b)
    return int((a & ~b).sum()), int((~a & b).sum())


def mcnemar_exact(correct_a, correct_b) -> tuple[int, int, float]:
    """Exact two-sided McNemar test of equal error rates: (b, c, p_value).

    ``b`` counts examples only A classifies correctly, ``c`` those only B does. Under the null
    hypothesis each of the ``b + c`` discordant examples is equally likely to go either way,
    so ``p`` is the two-sided binomial test of ``b`` successes in ``b + c`` at 1/2
    (1.0 when there are no discordant examples).
    """
    b, c = discordant_counts(correct_a, correct_b)
    if b + c == 0:
        return b, c, 1.0
    return b, c, float(binomtest(b, b + c, 0.5, alternative="two-sided").pvalue)


def paired_difference_ci(correct_a, correct_b, confidence: float = 0.95
                         ) -> tuple[float, float, float]:
    """Error rate of A minus error rate of B with its Wald confidence interval (paired).

    With ``n`` examples and the discordant counts ``b`` (only A right) and ``c`` (only B right)
    the difference is ``d = (c - b) / n`` and its variance ``((b + c) - (c - b)**2 / n) / n**2``
    (Agresti, *Categorical Data Analysis*, Section 10.1). Returns ``(d, low, high)``
    as fractions; multiply by ``n`` for error counts.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    a, _ = _paired_correct(correct_a, correct_b)
    b, c = discordant_counts(correct_a, correct_b)
    n = a.size
    d = (c - b) / n
    se = math.sqrt(max((b + c) - (c - b) ** 2 / n, 0.0)) / n
    z = float(norm.ppf(0.5 + confidence / 2))
    return d, d - z * se, d + z * se


def mean_sd(values, decimals: int = 1) -> tuple[float, float | None]:
    """Mean and sample standard deviation (ddof=1) of seeds' results; sd is None for one value."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"need a non-empty 1-D list of values, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"values must be finite, got {x.tolist()}")
    mean = round(float(x.mean()), decimals)
    sd = round(float(x.std(ddof=1)), decimals) if x.size > 1 else None
    return mean, sd


def format_mean_sd(values, decimals: int = 1, count: bool = True) -> str:
    """'74.3 ± 2.1 (3 seeds)', or '74 (1 seed)' for a single run; ``count=False`` drops the
    parenthesis."""
    x = list(values)
    mean, sd = mean_sd(x, decimals)
    if sd is None:
        text = str(int(x[0])) if isinstance(x[0], (int, np.integer)) else f"{mean:.{decimals}f}"
        return f"{text} (1 seed)" if count else text
    text = f"{mean:.{decimals}f} ± {sd:.{decimals}f}"
    return f"{text} ({len(x)} seeds)" if count else text
