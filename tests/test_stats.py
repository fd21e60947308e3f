"""Paired comparisons and seed summaries (kdlib.analysis.stats) against hand-computed values."""
import math

import numpy as np
import pytest

from kdlib.analysis.stats import (discordant_counts, format_mean_sd, mcnemar_exact, mean_sd,
                         paired_difference_ci)


def paired(only_a: int, only_b: int, both: int, neither: int):
    """Correctness vectors with the given numbers of each kind of example."""
    a = [True] * only_a + [False] * only_b + [True] * both + [False] * neither
    b = [False] * only_a + [True] * only_b + [True] * both + [False] * neither
    return np.array(a), np.array(b)


def test_discordant_counts():
    a, b = paired(7, 2, 80, 11)
    assert discordant_counts(a, b) == (7, 2)
    assert discordant_counts(b, a) == (2, 7)


def test_mcnemar_exact_matches_the_binomial_by_hand():
    # 7 of 9 discordant examples favour A: p = 2 * (C(9,7) + C(9,8) + C(9,9)) / 2^9 = 92/512
    b, c, p = mcnemar_exact(*paired(7, 2, 80, 11))
    assert (b, c) == (7, 2)
    assert p == pytest.approx(92 / 512, rel=1e-12)
    # 0 of 5: p = 2 / 2^5
    assert mcnemar_exact(*paired(0, 5, 50, 0))[2] == pytest.approx(2 / 32, rel=1e-12)
    # symmetric split: p = 1
    assert mcnemar_exact(*paired(4, 4, 10, 0))[2] == pytest.approx(1.0)


def test_mcnemar_without_discordant_examples_is_one():
    assert mcnemar_exact(*paired(0, 0, 30, 3)) == (0, 0, 1.0)


def test_paired_difference_ci_by_hand():
    # n = 100, b = 7 (only A right), c = 2: d = (c - b) / n = -0.05,
    # var = ((b + c) - (c - b)^2 / n) / n^2 = (9 - 0.25) / 10^4
    d, lo, hi = paired_difference_ci(*paired(7, 2, 80, 11))
    se = math.sqrt(8.75) / 100
    assert d == pytest.approx(-0.05)
    assert lo == pytest.approx(-0.05 - 1.959963985 * se, rel=1e-8)
    assert hi == pytest.approx(-0.05 + 1.959963985 * se, rel=1e-8)
    # a wider confidence gives a wider interval around the same difference
    d99, lo99, hi99 = paired_difference_ci(*paired(7, 2, 80, 11), confidence=0.99)
    assert d99 == d and lo99 < lo and hi99 > hi


def test_paired_difference_of_identical_models_is_zero_width():
    assert paired_difference_ci(*paired(0, 0, 90, 10)) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize("a, b, match", [
    (np.array([1, 0, 1]), np.array([True, False, True]), "boolean"),
    (np.array([True, False]), np.array([True, False, True]), "same test examples"),
    (np.array([], dtype=bool), np.array([], dtype=bool), "no test examples"),
    (np.ones((2, 2), dtype=bool), np.ones((2, 2), dtype=bool), "1-D"),
])
def test_bad_inputs_are_named(a, b, match):
    with pytest.raises(ValueError, match=match):
        mcnemar_exact(a, b)


def test_confidence_must_be_a_probability():
    with pytest.raises(ValueError, match="confidence"):
        paired_difference_ci(*paired(1, 1, 1, 1), confidence=95)


def test_mean_sd_uses_the_sample_standard_deviation():
    assert mean_sd([70, 74, 78]) == (74.0, 4.0)
    assert mean_sd([1, 2], decimals=3) == (1.5, 0.707)
    assert mean_sd([67]) == (67.0, None)
    with pytest.raises(ValueError, match="non-empty"):
        mean_sd([])
    with pytest.raises(ValueError, match="finite"):
        mean_sd([1.0, float("nan")])


def test_format_mean_sd():
    assert format_mean_sd([70, 74, 78]) == "74.0 ± 4.0 (3 seeds)"
    assert format_mean_sd([70, 74, 78], count=False) == "74.0 ± 4.0"
    assert format_mean_sd([67]) == "67 (1 seed)"
    assert format_mean_sd([np.int64(67)], count=False) == "67"
    assert format_mean_sd([47.25]) == "47.2 (1 seed)"
    assert format_mean_sd([3.5, 2.5], decimals=2) == "3.00 ± 0.71 (2 seeds)"


def test_a_p_value_near_the_level_is_never_printed_as_the_level_itself():
    from kdlib.analysis.results import p_text
    assert p_text(0.0123) == "0.012" and p_text(0.5, with_p=True) == "p = 0.5"
    assert p_text(0.0497) == "0.0497" and p_text(0.0503) == "0.0503"
    assert p_text(0.049996) == "0.049996" and p_text(0.05) == "0.05"
