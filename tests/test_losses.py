"""The distillation objective of Section 2, its gradient (Eq. 2) and its high-T limit (Section 2.1)."""
import math

import pytest
import torch

from kdlib.core.losses import distillation_loss, logit_matching_loss, softmax_with_temperature


def test_softmax_with_temperature_hand_values():
    z = torch.tensor([[0.0, math.log(2.0), math.log(4.0)]])
    # at T=1: weights 1, 2, 4 -> 1/7, 2/7, 4/7
    assert torch.allclose(softmax_with_temperature(z, 1.0), torch.tensor([[1, 2, 4]]) / 7.0)
    # at T=2: weights 1, sqrt2, 2
    w = torch.tensor([1.0, math.sqrt(2.0), 2.0])
    assert torch.allclose(softmax_with_temperature(z, 2.0), (w / w.sum())[None])
    # T -> infinity flattens, T -> 0 sharpens
    assert torch.allclose(softmax_with_temperature(z, 1e6), torch.full((1, 3), 1 / 3), atol=1e-5)
    assert softmax_with_temperature(z, 0.01)[0, 2] > 0.999


def test_distillation_loss_hand_computed():
    student = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    teacher = torch.tensor([[3.0, 2.0, 1.0], [0.0, 1.0, 0.0]])
    labels = torch.tensor([2, 1])
    t = 2.0
    # by hand, with plain Python math
    def softmax(v):
        e = [math.exp(x / t) for x in v]
        return [x / sum(e) for x in e]
    soft = 0.0
    for s, te in zip(student.tolist(), teacher.tolist()):
        p, q = softmax(te), softmax(s)
        soft += -sum(pi * math.log(qi) for pi, qi in zip(p, q))
    soft /= 2  # batch mean, not a mean over classes too
    hard = (-math.log(math.exp(3) / (math.exp(1) + math.exp(2) + math.exp(3)))
            - math.log(1 / 3)) / 2
    got = distillation_loss(student, teacher, labels, temperature=t, soft_weight=0.7, hard_weight=0.3)
    assert got.item() == pytest.approx(0.7 * t * t * soft + 0.3 * hard, rel=1e-6)
    only_soft = distillation_loss(student, teacher, None, temperature=t, soft_weight=1.0, hard_weight=0.0)
    assert only_soft.item() == pytest.approx(t * t * soft, rel=1e-6)


def test_gradient_is_soft_weight_T_q_minus_p_over_B_plus_hard_term():
    torch.manual_seed(0)
    b, c, t, sw, hw = 5, 10, 4.0, 0.9, 0.2
    z = torch.randn(b, c, dtype=torch.float64, requires_grad=True)
    v = torch.randn(b, c, dtype=torch.float64)
    y = torch.randint(0, c, (b,))
    distillation_loss(z, v, y, temperature=t, soft_weight=sw, hard_weight=hw).backward()
    q = torch.softmax(z.detach() / t, -1)
    p = torch.softmax(v / t, -1)
    q1 = torch.softmax(z.detach(), -1)
    expected = sw * t * (q - p) / b + hw * (q1 - torch.nn.functional.one_hot(y, c)) / b
    assert torch.allclose(z.grad, expected, atol=1e-12)


def test_teacher_logits_are_detached():
    z = torch.randn(3, 4, requires_grad=True)
    v = torch.randn(3, 4, requires_grad=True)
    distillation_loss(z, v, None, temperature=3.0, soft_weight=1.0, hard_weight=0.0).backward()
    assert v.grad is None and z.grad is not None


@pytest.mark.parametrize("t", [10.0, 100.0, 1000.0])
def test_high_temperature_limit_is_logit_matching(t):
    """Section 2.1: for zero-mean logits dC/dz_i -> (z_i - v_i) / (N T^2) (per example)."""
    torch.manual_seed(1)
    n = 10
    z = torch.randn(1, n, dtype=torch.float64)
    v = torch.randn(1, n, dtype=torch.float64)
    z, v = (z - z.mean()).requires_grad_(), v - v.mean()
    # the unscaled soft cross-entropy: divide the T^2-weighted loss by T^2
    (distillation_loss(z, v, None, temperature=t, soft_weight=1.0, hard_weight=0.0) / t ** 2).backward()
    approx = (z.detach() - v) / (n * t ** 2)
    rel_err = ((z.grad - approx).norm() / approx.norm()).item()
    assert rel_err < 5.0 / t  # the error of the expansion is O(1/T)
    # and with the T^2 factor the gradient matches the gradient of logit matching / N
    z2 = z.detach().clone().requires_grad_()
    logit_matching_loss(z2, v).backward()
    assert torch.allclose(z.grad * t ** 2, z2.grad / n, rtol=5.0 / t)


def test_loss_is_a_batch_mean():
    z, v = torch.randn(4, 10), torch.randn(4, 10)
    one = distillation_loss(z, v, None, temperature=2.0, soft_weight=1.0)
    twice = distillation_loss(torch.cat([z, z]), torch.cat([v, v]), None, temperature=2.0, soft_weight=1.0)
    assert torch.allclose(one, twice)


@pytest.mark.parametrize("kwargs, match", [
    (dict(temperature=0.0), "temperature"),
    (dict(temperature=-1.0), "temperature"),
    (dict(temperature=float("nan")), "temperature"),
    (dict(temperature=2.0, soft_weight=-1.0), "soft_weight"),
    (dict(temperature=2.0, hard_weight=-0.5), "hard_weight"),
    (dict(temperature=2.0, soft_weight=0.0, hard_weight=0.0), "both 0"),
    (dict(temperature=2.0, hard_weight=1.0), "labels are required"),
])
def test_bad_arguments_raise_clear_errors(kwargs, match):
    z, v = torch.randn(2, 3), torch.randn(2, 3)
    kwargs = {"soft_weight": 1.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        distillation_loss(z, v, None, **kwargs)


def test_shape_dtype_and_label_mismatch():
    z = torch.randn(2, 3)
    with pytest.raises(ValueError, match="same shape"):
        distillation_loss(z, torch.randn(2, 4), None, temperature=1.0)
    with pytest.raises(ValueError, match="same dtype"):
        distillation_loss(z, torch.randn(2, 3, dtype=torch.float64), None, temperature=1.0)
    with pytest.raises(ValueError, match="floating point"):
        distillation_loss(torch.ones(2, 3, dtype=torch.long), z, None, temperature=1.0)
    with pytest.raises(ValueError, match=r"lie in \[0, 3\)"):
        distillation_loss(z, z, torch.tensor([0, 3]), temperature=1.0, hard_weight=1.0)
    with pytest.raises(ValueError, match="int64"):
        distillation_loss(z, z, torch.tensor([0.0, 1.0]), temperature=1.0, hard_weight=1.0)
    with pytest.raises(ValueError, match="same shape"):
        logit_matching_loss(z, torch.randn(3, 3))
