"""Error counts, confusion matrices and class-bias shifts (Section 3)."""
import numpy as np
import pytest
import torch

from kdlib.analysis.bias_shift import best_bias_shift, errors_against_shift, shift_biases
from kdlib.core.evaluate import confusion_matrix, count_errors, per_class_errors


def test_counts_on_a_hand_made_case():
    logits = torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [0, 0, 5.0], [5.0, 0, 0]])
    labels = torch.tensor([0, 2, 2, 1])
    assert count_errors(logits, labels) == 2
    assert per_class_errors(logits, labels, 3) == [0, 1, 1]
    assert confusion_matrix(logits, labels, 3).tolist() == [[1, 0, 0], [1, 0, 0], [0, 1, 1]]


def test_bias_shift_recovers_an_omitted_class():
    # class 2 is always under-scored by 3: raising its bias by > 3 fixes it
    rng = np.random.default_rng(0)
    labels = torch.as_tensor(rng.integers(0, 3, 300))
    logits = torch.nn.functional.one_hot(labels, 3).float() * 2.0
    logits[:, 2] -= 3.0
    assert per_class_errors(logits, labels, 3)[2] == int((labels == 2).sum())
    shifts = np.arange(-5, 5.01, 0.5)
    errors = errors_against_shift(logits, labels, [2], shifts)
    assert errors.shape == shifts.shape
    best, err = best_bias_shift(logits, labels, [2], shifts)
    assert err == 0 and 1.0 < best < 5.0
    assert count_errors(shift_biases(logits, [2], best), labels) == 0
    # shifting only touches the chosen classes
    assert torch.equal(shift_biases(logits, [2], 1.0)[:, :2], logits[:, :2])


def test_bad_classes():
    with pytest.raises(ValueError, match="digits"):
        shift_biases(torch.zeros(2, 10), [11], 1.0)
