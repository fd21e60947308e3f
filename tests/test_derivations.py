"""kdlib.core.derivations: the independent checks chapter 1 runs on Section 2 and Section 2.1."""
import math

import numpy as np
import pytest
import sympy as sp
import torch

from kdlib.core import derivations


def test_symbolic_softmax_hand_values():
    z = [0, sp.log(2), sp.log(4)]
    assert [sp.nsimplify(sp.simplify(q)) for q in derivations.symbolic_softmax(z, 1)] == [
        sp.Rational(1, 7), sp.Rational(2, 7), sp.Rational(4, 7)]
    # at T = 2 the weights are 1, sqrt(2), 2: the temperature divides the logits
    q = derivations.symbolic_softmax(z, 2)
    w = [1, math.sqrt(2), 2]
    assert [float(x) for x in q] == pytest.approx([x / sum(w) for x in w])


def test_symbolic_softmax_gradient_is_eq_2():
    """d/dz_1 of the soft cross-entropy is (q_1 - p_1)/T, as chapter 1 checks."""
    t = sp.symbols("T", positive=True)
    z, v = sp.symbols("z1:3", real=True), sp.symbols("v1:3", real=True)
    q, p = derivations.symbolic_softmax(z, t), derivations.symbolic_softmax(v, t)
    c = -sum(pj * sp.log(qj) for pj, qj in zip(p, q))
    assert sp.simplify(sp.diff(c, z[0]) - (q[0] - p[0]) / t) == 0


def test_exact_gradient_hand_values():
    z = np.zeros((1, 2))
    v = np.array([[math.log(3.0), 0.0]])           # p = (3/4, 1/4) at T = 1
    assert derivations.exact_gradient(z, v, 1.0) == pytest.approx(np.array([[-0.25, 0.25]]))
    # at T = 2: p = (sqrt3, 1) / (1 + sqrt3), and the gradient is divided by T
    p0 = math.sqrt(3.0) / (1 + math.sqrt(3.0))
    assert derivations.exact_gradient(z, v, 2.0) == pytest.approx(
        np.array([[(0.5 - p0) / 2, (p0 - 0.5) / 2]]))


def test_relative_error_is_relative_to_the_exact_value():
    exact = np.array([[3.0, 0.0], [0.0, 4.0]])     # norm 5
    approx = np.array([[3.0, 1.0], [0.0, 4.0]])    # off by norm 1
    assert derivations.relative_error(approx, exact) == pytest.approx(0.2)
    assert derivations.relative_error(exact, exact) == 0


def test_gradient_norm_is_per_case():
    logits = torch.tensor([[3.0, 4.0], [0.0, 1.0]], dtype=torch.float64)
    # gradient of mean_b 1/2 ||s_b||^2 is s_b / B; per case (times B) its norms are 5 and 1
    norm = derivations.gradient_norm(lambda s: 0.5 * (s ** 2).sum(1).mean(), logits)
    assert norm == pytest.approx(3.0)
    assert logits.grad is None and not logits.requires_grad      # the input is left alone
