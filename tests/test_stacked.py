"""A stack of K members computes what K separate runs compute (kdlib.core.train, kdlib.core.models).

Sweeps (Section 3: temperatures, hard-label weights, seeds) train as one stacked model; the
results are only valid if each member is exactly the network it would have been alone.
kdlib trains in float32 only, so weights are compared with a tight tolerance and test
error counts exactly.
"""
from dataclasses import replace

import pytest
import torch

from kdlib.core.models import MLP
from kdlib.core.spec import Member, TrainSpec
from kdlib.core.train import predict_logits, train

N_TRAIN, N_TEST = 600, 1000
#: Shared by every member: the teacher recipe's dropout, max-norm and jitter, scaled down.
#: Two epochs: a stack's bmm and one member's mm round differently, and SGD amplifies it (on
#: an Intel Xeon with AMX the weights differed by 3e-3 after three epochs, 1e-5 after two).
REGULARISED = TrainSpec(widths=(64, 32), epochs=2, batch_size=20, lr=0.1, momentum=0.9,
                        input_dropout=0.2, hidden_dropout=0.2, max_norm=2.0, jitter=2)
PLAIN = replace(REGULARISED, input_dropout=0.0, hidden_dropout=0.0, max_norm=None, jitter=0)
WEIGHT_ATOL = 1e-4  # bmm of a stack and of one member may block the GEMM differently


@pytest.fixture(scope="module")
def small(mnist):
    """A few hundred real MNIST images, the test images, and a small teacher's logits."""
    x, y = mnist.train_images[:N_TRAIN], mnist.train_labels[:N_TRAIN]
    tx, ty = mnist.test_images[:N_TEST], mnist.test_labels[:N_TEST]
    teacher = train(x, y, replace(PLAIN, widths=(128,), epochs=4), progress=False).model
    return x, y, tx, ty, predict_logits(teacher, x)[0]


def _run(small, spec, members):
    x, y, tx, ty, teacher_logits = small
    return train(x, y, spec, members, teacher_logits=teacher_logits, eval_images=tx,
                 eval_labels=ty, progress=False)


def _assert_stack_equals_separate_runs(small, spec, members):
    stack = _run(small, spec, members)
    assert stack.model.num_models == len(members)
    for k, member in enumerate(members):
        alone = _run(small, spec, [member])
        for name, expected in alone.model.state_dict().items():
            got = stack.model.member(k).state_dict()[name]
            assert torch.allclose(got, expected, rtol=0, atol=WEIGHT_ATOL), \
                f"member {k} ({member}): {name} differs by {(got - expected).abs().max():.2e}"
        assert [e[k] for e in stack.history["test_errors"]] == \
            [e[0] for e in alone.history["test_errors"]], f"member {k}: test errors differ"
        assert [e[k] for e in stack.history["train_loss"]] == \
            pytest.approx([e[0] for e in alone.history["train_loss"]], rel=1e-5)
    return stack


def _assert_members_differ(stack):
    flat = [torch.cat([p.flatten() for p in stack.model.member(k).parameters()])
            for k in range(stack.model.num_models)]
    for k in range(1, len(flat)):
        assert not torch.allclose(flat[0], flat[k], atol=1e-3), \
            f"members 0 and {k} ended with the same weights: the comparison would prove nothing"


def test_stack_of_seeds_temperatures_and_weights_equals_separate_runs(small):
    """Different seeds (own data order, dropout masks and jitter), temperatures and weights."""
    members = [Member(seed=0, temperature=1.0, soft_weight=0.0, hard_weight=1.0),
               Member(seed=1, temperature=4.0, soft_weight=1.0, hard_weight=0.1),
               Member(seed=2, temperature=20.0, soft_weight=1.0, hard_weight=0.0),
               Member(seed=1, temperature=2.0, soft_weight=0.5, hard_weight=0.5)]
    stack = _assert_stack_equals_separate_runs(small, REGULARISED, members)
    _assert_members_differ(stack)
    # the members learned (chance is 90% errors), so equal weights are not equal noise
    assert max(stack.history["test_errors"][-1]) < 0.6 * N_TEST


def test_stack_of_one_seed_equals_separate_runs(small):
    """A temperature sweep from one seed (shared data order: the batch is broadcast)."""
    members = [Member(seed=3, temperature=t, soft_weight=1.0, hard_weight=0.1)
               for t in (1.0, 3.0, 20.0)]
    stack = _assert_stack_equals_separate_runs(small, PLAIN, members)
    _assert_members_differ(stack)


def test_stack_of_one_seed_with_dropout_and_jitter_equals_separate_runs(small):
    members = [Member(seed=5, temperature=t, soft_weight=1.0, hard_weight=h)
               for t, h in ((2.0, 0.0), (8.0, 0.3))]
    stack = _assert_stack_equals_separate_runs(small, REGULARISED, members)
    _assert_members_differ(stack)


def test_member_copies_weights_and_recipe():
    stack = MLP((20, 10), num_models=3, input_dropout=0.2, hidden_dropout=0.5, max_norm=3.0,
                seeds=[7, 8, 9])
    for k, seed in enumerate((7, 8, 9)):
        single = stack.member(k)
        assert single.num_models == 1
        assert (single.input_dropout, single.hidden_dropout, single.max_norm) == (0.2, 0.5, 3.0)
        for got, full in zip(single.parameters(), stack.parameters()):
            assert torch.equal(got, full[k:k + 1])
        # member k of a stack is initialised as a single model of its seed
        alone = MLP((20, 10), seeds=[seed])
        for got, expected in zip(single.parameters(), alone.parameters()):
            assert torch.equal(got, expected)
    # a copy, not a view: training the copy leaves the stack alone
    single = stack.member(0)
    with torch.no_grad():
        single.weights[0].add_(1.0)
    assert not torch.equal(single.weights[0], stack.weights[0][:1])


def test_stacked_forward_equals_each_members_forward():
    stack = MLP((40, 30), num_models=4, seeds=[0, 1, 2, 3]).eval()
    x = torch.rand(16, 784, generator=torch.Generator().manual_seed(0))
    shared = stack(x)                         # one batch for every member
    own = stack(x.expand(4, *x.shape) * torch.arange(1, 5.0)[:, None, None])  # a batch each
    assert shared.shape == own.shape == (4, 16, 10)
    for k in range(4):
        single = stack.member(k).eval()
        assert torch.allclose(shared[k], single(x)[0], rtol=0, atol=1e-6)
        assert torch.allclose(own[k], single(x * (k + 1))[0], rtol=0, atol=1e-6)
    assert not torch.allclose(shared[0], shared[1], atol=1e-3)


def test_stacked_dropout_draws_each_members_masks_from_its_generator():
    stack = MLP((40, 30), num_models=3, input_dropout=0.2, hidden_dropout=0.5,
                seeds=[0, 1, 2]).train()
    x = torch.rand(16, 784, generator=torch.Generator().manual_seed(0))
    gens = [torch.Generator().manual_seed(100 + k) for k in range(3)]
    out = stack(x, gens)
    for k in range(3):
        single = stack.member(k).train()
        expected = single(x, [torch.Generator().manual_seed(100 + k)])[0]
        assert torch.allclose(out[k], expected, rtol=0, atol=1e-6)
    # masks really are drawn: another generator state gives other outputs
    again = stack.member(0).train()(x, [torch.Generator().manual_seed(999)])[0]
    assert not torch.allclose(out[0], again, atol=1e-3)
    with pytest.raises(ValueError, match="one torch.Generator per member"):
        stack(x, gens[:2])
