"""Transfer subsets (Section 6) and ensembles of stored logits (Section 4): hand-computed cases."""
import math

import pytest
import torch

from kdlib.core.ensembles import ensemble_log_probabilities, ensemble_probabilities, ensemble_teacher_logits
from kdlib.core.subsets import stratified_subset


def labels_10_20_70():
    order = torch.randperm(100, generator=torch.Generator().manual_seed(3))
    return torch.tensor([0] * 10 + [1] * 20 + [2] * 70)[order]


def test_stratified_subset_keeps_each_class_share():
    y = labels_10_20_70()
    idx = stratified_subset(y, 0.3, seed=0)
    assert torch.bincount(y[idx]).tolist() == [3, 6, 21]
    assert torch.equal(idx, torch.sort(idx).values) and len(set(idx.tolist())) == 30
    # at least one example of a class even when the fraction rounds to zero
    assert torch.bincount(y[stratified_subset(y, 0.01, seed=0)]).tolist() == [1, 1, 1]
    assert torch.equal(stratified_subset(y, 1.0, seed=5), torch.arange(100))


def test_stratified_subset_is_seeded_and_nested():
    y = labels_10_20_70()
    a, b = stratified_subset(y, 0.1, seed=1), stratified_subset(y, 0.1, seed=1)
    assert torch.equal(a, b)
    assert not torch.equal(a, stratified_subset(y, 0.1, seed=2))
    small, large = set(stratified_subset(y, 0.1, 4).tolist()), set(stratified_subset(y, 0.5, 4).tolist())
    assert small < large


def test_stratified_subset_rejects_bad_fractions():
    for f in (0, -0.1, 1.5):
        with pytest.raises(ValueError, match="fraction"):
            stratified_subset(torch.zeros(5, dtype=torch.long), f, 0)


def test_ensemble_averages_probabilities_not_logits():
    # two members, one example, two classes: softmax([0, 0]) = (.5, .5), softmax([log 3, 0]) = (.75, .25)
    z = torch.tensor([[[0.0, 0.0]], [[math.log(3.0), 0.0]]])
    p = ensemble_probabilities(z)
    assert torch.allclose(p, torch.tensor([[0.625, 0.375]], dtype=torch.float64))
    # the mean logit (normalised geometric mean) would give softmax([log 3 / 2, 0]) = (.634, .366)
    assert not torch.allclose(p, torch.softmax(z.mean(0).double(), -1), atol=1e-3)


def test_ensemble_at_temperature_softens_each_member_first():
    z = torch.tensor([[[4.0, 0.0, -2.0]], [[0.0, 3.0, 1.0]], [[1.0, 1.0, 5.0]]])
    t = 4.0
    expected = torch.stack([torch.softmax(m.double() / t, -1) for m in z]).mean(0)
    assert torch.allclose(ensemble_probabilities(z, t), expected)
    v = ensemble_teacher_logits(z, t)
    assert v.dtype == torch.float32
    assert torch.allclose(torch.softmax(v.double() / t, -1), expected, atol=1e-6)
    # softening the T = 1 average afterwards is a different target
    later = torch.softmax(torch.log(ensemble_probabilities(z, 1.0)) / t, -1)
    assert (later - expected).abs().max() > 0.01


def test_ensemble_log_probabilities_stay_finite_and_reject_bad_shapes():
    z = torch.tensor([[[2000.0, 0.0]], [[0.0, 2000.0]]])
    lp = ensemble_log_probabilities(z)
    assert torch.isfinite(lp).all()
    assert torch.allclose(lp.exp(), torch.tensor([[0.5, 0.5]], dtype=torch.float64))
    with pytest.raises(ValueError, match="M, N, C"):
        ensemble_probabilities(torch.zeros(4, 10))
