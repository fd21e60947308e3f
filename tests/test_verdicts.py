"""The verdict rules (kdlib.analysis.verdicts): each decides on the numbers a plausible bug would change."""
import numpy as np
import pytest

from kdlib.analysis import verdicts as v


def test_count_within_two_sd_of_the_seeds_replicates():
    assert v.count_verdict([140, 133, 143], 146)["verdict"] == "yes"  # 138.7 ± 2 x 5.1
    out = v.count_verdict([108, 106, 112], 67)
    assert out["verdict"] == "no (ours higher)" and out["low"] == pytest.approx(102.6, abs=0.1)
    assert v.count_verdict([30.0, 32.0, 34.0], 47.3)["verdict"] == "no (ours lower)"


def test_count_needs_three_seeds_and_uses_the_sample_sd():
    assert v.count_verdict([100, 110], 105)["verdict"].startswith("not testable")
    # population sd (ddof=0) would be 0.82 and exclude 98; the sample sd 1.0 includes it
    assert v.count_verdict([99, 100, 101], 98)["verdict"] == "yes"
    assert v.count_verdict([99, 100, 101], 97.9)["verdict"] == "no (ours higher)"


def _correct(n_wrong, n=1000, offset=0):
    c = np.ones(n, dtype=bool)
    c[offset:offset + n_wrong] = False
    return c


def test_better_needs_significance_pooled_over_seeds():
    # 60 vs 40 errors per seed on disjoint examples: each seed alone p ~ 0.06, pooled p < 0.01
    a = [_correct(40, offset=0) for _ in range(3)]
    b = [_correct(60, offset=100) for _ in range(3)]
    out = v.better_verdict(a, b)
    assert out["verdict"] == "yes" and out["errors_a"] == 120 and out["p_value"] < 0.01
    assert v.better_verdict(b, a)["verdict"] == "no"  # worse is never "better"
    same = v.better_verdict(a, [c.copy() for c in a])
    assert same["verdict"] == "no" and same["p_value"] == 1.0


def test_best_in_range_must_beat_both_sides():
    wrong = {1.0: 265, 2.5: 260, 3.0: 275, 4.0: 294, 8.0: 330, 20.0: 344}
    # each setting errs on its own (overlapping) examples, as real runs do
    grid = {t: [_correct(e, n=10000, offset=int(10 * t)) for _ in range(3)]
            for t, e in wrong.items()}
    out = v.best_in_range_verdict(grid, 2.5, 4.0)
    # T=2.5 beats T=1 by only 5 errors per seed (of ~30 discordant): not significant
    assert out["best_inside"] == 2.5 and out["below"]["setting"] == 1.0
    assert out["verdict"] == "no"
    grid[1.0] = [_correct(400, n=10000) for _ in range(3)]
    assert v.best_in_range_verdict(grid, 2.5, 4.0)["verdict"] == "yes"


def test_similar_compares_the_spread_with_seed_noise():
    flat = {8.0: [100, 104, 96], 10.0: [101, 97, 105], 20.0: [99, 103, 98]}
    assert v.similar_verdict(flat)["verdict"] == "yes"
    steep = {8.0: [100, 104, 96], 20.0: [120, 124, 116]}
    out = v.similar_verdict(steep)
    assert out["verdict"] == "no" and out["spread"] == 20.0 and out["bound"] == pytest.approx(6.5, abs=0.1)
    assert v.similar_verdict({8.0: [1], 9.0: [2]})["verdict"].startswith("not testable")
