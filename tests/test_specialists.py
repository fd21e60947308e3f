"""Specialists (Section 5): groups, dustbin, initialisation from the generalist, combination."""
import math

import numpy as np
import pytest
import torch

from kdlib.core import specialists as sp
from kdlib.core.models import MLP


def test_confusable_groups_from_prediction_covariance():
    # classes 1 and 2 are confused with each other, 3 and 4 likewise; 0 is never confused
    g = torch.Generator().manual_seed(0)
    logits = torch.full((600, 5), -5.0)
    for i in range(600):
        c = i % 5
        logits[i, c] = 5.0
        partner = {1: 2, 2: 1, 3: 4, 4: 3}.get(c)
        if partner is not None:
            logits[i, partner] = 5.0 * float(torch.rand(1, generator=g))
    assert sp.confusable_groups(logits, 3, seed=0) == [(0,), (1, 2), (3, 4)]
    cov = sp.prediction_covariance(logits)
    assert torch.allclose(cov, cov.T) and cov.shape == (5, 5)


def test_kmeans_hand_case():
    pts = torch.tensor([[0.0], [0.1], [10.0], [10.2], [10.1]])
    a = sp.kmeans(pts, 2, seed=1)
    assert a[0] == a[1] and a[2] == a[3] == a[4] and a[0] != a[2]


def test_dustbin_labels_and_enriched_set():
    y = torch.tensor([3, 5, 8, 0, 5, 1, 9, 9, 9, 9])
    assert sp.dustbin_labels(y, [5, 3]).tolist() == [0, 1, 2, 2, 1, 2, 2, 2, 2, 2]
    idx = sp.enriched_indices(y, [3, 5], seed=0)
    assert len(idx) == 6 and (torch.isin(y[idx], torch.tensor([3, 5]))).sum() == 3
    assert torch.equal(idx, sp.enriched_indices(y, [3, 5], seed=0))
    # fewer others than special examples: all of them
    assert len(sp.enriched_indices(torch.tensor([1, 1, 1, 2]), [1], 0)) == 4


def test_dustbin_correction():
    # special classes 20% of the data, 50% of the enriched set: odds 1/4 -> 1, so add log 4
    assert sp.dustbin_correction(0.2, 0.5) == pytest.approx(math.log(4))
    assert sp.dustbin_correction(0.3, 0.3) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        sp.dustbin_correction(0.0, 0.5)


def test_specialist_starts_from_the_generalist():
    gen = MLP((6, 5), in_features=4, seeds=[3])
    spec = sp.specialist_from_generalist(gen, [7, 2])
    x = torch.randn(9, 4, generator=torch.Generator().manual_seed(1))
    zg, zs = gen(x).reshape(-1, 10), spec(x).reshape(-1, 3)
    assert torch.allclose(zs[:, :2], zg[:, [2, 7]])
    others = [c for c in range(10) if c not in (2, 7)]
    # dustbin = mean of the other logits + log 8 (<= their log-sum-exp)
    assert torch.allclose(zs[:, 2], zg[:, others].mean(1) + math.log(8), atol=1e-5)
    assert (zs[:, 2] <= torch.logsumexp(zg[:, others], 1) + 1e-5).all()
    assert torch.equal(spec.weights[0], gen.weights[0])


def test_active_specialists_and_coverage():
    p = torch.tensor([[0.1, 0.6, 0.3, 0.0], [0.7, 0.1, 0.1, 0.1]])
    groups = [(1, 2), (0,), (2, 3)]
    act = sp.active_specialists(torch.nn.functional.pad(p, (0, 6)), groups, top_n=1)
    assert act.tolist() == [[True, False, False], [False, True, False]]
    act2 = sp.active_specialists(torch.nn.functional.pad(p, (0, 6)), groups, top_n=2)
    assert act2.tolist() == [[True, False, True], [True, True, False]]
    assert sp.coverage(torch.tensor([2, 0, 9]), groups).tolist() == [2, 1, 0]


def _random_case(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, 10, generator=g, dtype=torch.float64),
            [torch.randn(n, 3, generator=g, dtype=torch.float64),
             torch.randn(n, 4, generator=g, dtype=torch.float64)])


def test_no_active_specialist_returns_the_generalist():
    zg, zs = _random_case()
    groups = [(0, 1), (2, 3, 4)]
    zg[:, 9] = 10.0  # the generalist's top class (9) is in no group
    q = sp.combine_specialists(zg, zs, groups)
    assert torch.equal(q, torch.softmax(zg, -1))


def test_confident_specialist_moves_q_towards_it():
    pg = torch.tensor([[0.02, 0.02, 0.02, 0.43, 0.02, 0.42, 0.02, 0.01, 0.02, 0.02]], dtype=torch.float64)
    # specialist for {3, 5}: 5 with 0.9, 3 with 0.05, dustbin 0.05
    ps = torch.tensor([[0.05, 0.9, 0.05]], dtype=torch.float64)
    q = sp.combine_specialists(pg.log(), [ps.log()], [(3, 5)])
    assert int(q.argmax()) == 5 and float(q[0, 5]) > 0.6 and float(q[0, 3]) < 0.25
    assert float(q.sum()) == pytest.approx(1.0)


def test_full_coverage_gives_the_arithmetic_mean():
    """A specialist whose dustbin is one class is a full distribution: q = (p^g + p^m) / 2."""
    zg, _ = _random_case(n=3, seed=1)
    classes = tuple(range(9))  # dustbin = class 9
    zm = torch.randn(3, 10, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    zg[:, 0] = 4.0  # top class 0 makes the specialist active
    q = sp.combine_specialists(zg, [zm], [classes])
    expected = (torch.softmax(zg, -1) + torch.softmax(zm, -1)) / 2
    assert torch.allclose(q, expected, atol=1e-6)


def test_objective_gradient_closed_form_and_finite_differences():
    """d/dz = (1 + |A|) q - p^g - sum_m t^m, t^m_i = p^m_i on S_m, p^m_dust q_i / Q_dust off it."""
    zg, zs = _random_case(n=3, seed=4)
    groups = [(0, 1), (2, 3, 4)]
    pg = torch.softmax(zg, -1)
    ps = [torch.softmax(s, -1) for s in zs]
    active = torch.tensor([[True, True], [True, False], [False, True]])
    z = torch.randn(3, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    z.requires_grad_(True)
    sp.combination_objective(z, pg, ps, groups, active).sum().backward()
    q = torch.softmax(z.detach(), -1)
    expected = q - pg
    for m, classes in enumerate(groups):
        inside = torch.zeros(10, dtype=torch.bool)
        inside[list(classes)] = True
        dust = q[:, ~inside].sum(1, keepdim=True)
        target = torch.zeros_like(q)
        target[:, inside] = ps[m][:, :-1]
        target[:, ~inside] = ps[m][:, -1:] * q[:, ~inside] / dust
        expected = expected + active[:, m:m + 1] * (q - target)
    assert torch.allclose(z.grad, expected, atol=1e-12)
    assert torch.autograd.gradcheck(
        lambda v: sp.combination_objective(v, pg, ps, groups, active),
        (z.detach().clone().requires_grad_(True),))


def test_bad_groups_are_refused():
    with pytest.raises(ValueError, match="dustbin"):
        sp.group_matrix([tuple(range(10))])
    with pytest.raises(ValueError, match="groups"):
        sp.combine_specialists(torch.zeros(2, 10), [torch.zeros(2, 3)], [(1, 2), (3,)])


def test_the_combination_is_a_minimum_of_eq_5():
    """The fixed point has zero gradient (autograd of the objective) and no random nearby z is lower."""
    zg, zs = _random_case(n=50, seed=7)
    groups = [(0, 1), (2, 3, 4)]
    zg[:25, 0] = 3.0  # half the cases have an active specialist
    zg[25:, 3] = 3.0
    q = sp.combine_specialists(zg, zs, groups)
    pg, ps = torch.softmax(zg, -1), [torch.softmax(s, -1) for s in zs]
    active = sp.active_specialists(pg, groups)
    z = q.log().clone().requires_grad_(True)
    objective = sp.combination_objective(z, pg, ps, groups, active)
    objective.sum().backward()
    assert z.grad.abs().max() < 1e-9
    g = torch.Generator().manual_seed(8)
    for _ in range(5):
        nearby = sp.combination_objective(z.detach() + 1e-3 * torch.randn(z.shape, generator=g,
                                                                           dtype=torch.float64),
                                          pg, ps, groups, active)
        assert (nearby >= objective.detach() - 1e-12).all()
    assert torch.allclose(q.sum(-1), torch.ones(50, dtype=torch.float64))


def test_specialist_claim_rows():
    """Row 1: every specialist against the generalist; row 2: each step of coverage significant."""
    from kdlib.analysis.study_claims import specialist_rows
    n = 400
    generalist = [np.arange(n) >= 100] * 2                     # 100 errors per seed
    better = [np.arange(n) >= 40] * 2                          # fixes 60 per seed
    best = [np.arange(n) >= 5] * 2                             # fixes 35 more
    rows = specialist_rows(generalist, {1: better, 2: best})
    assert [r["replicated"] for r in rows] == ["yes", "yes"]
    assert rows[0]["ours"].startswith("5.0 ± 0.0 vs 100.0 ± 0.0 errors (2 seeds), p = ")
    rows = specialist_rows(generalist, {1: best, 2: best})     # the second step gains nothing
    assert [r["replicated"] for r in rows] == ["yes", "no"]
    assert [r["replicated"] for r in specialist_rows([], {})] == ["not run", "not run"]
