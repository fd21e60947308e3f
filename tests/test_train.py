"""The training loop: learning, determinism, checkpoints and resumption."""
from dataclasses import replace

import pytest
import torch

from kdlib.core.models import MLP, parameter_count
from kdlib.core.evaluate import count_errors
from kdlib.core.spec import Member, TrainSpec
from kdlib.core.train import predict_logits, train

SMALL = TrainSpec(widths=(64, 64), epochs=3, batch_size=50, lr=0.1, checkpoint_every=1)


def _subset(mnist, n=2000):
    return mnist.train_images[:n], mnist.train_labels[:n]


def test_learns_real_mnist(mnist):
    x, y = _subset(mnist, 5000)
    res = train(x, y, SMALL, eval_images=mnist.test_images[:2000],
                eval_labels=mnist.test_labels[:2000], progress=False)
    errors = res.history["test_errors"]
    assert len(errors) == 3 and errors[-1][0] < errors[0][0] + 50
    assert errors[-1][0] < 260  # > 87% on held-out digits after 3 small epochs (seen: 184)
    losses = [loss[0] for loss in res.history["train_loss"]]
    assert losses[-1] < losses[0]


def test_eval_every_records_the_curve_at_its_points_and_the_last_epoch(mnist):
    x, y = _subset(mnist, 500)
    spec = replace(SMALL, epochs=7)
    eval_x, eval_y = mnist.test_images[:300], mnist.test_labels[:300]
    sparse = train(x, y, spec, eval_images=eval_x, eval_labels=eval_y, progress=False, eval_every=3)
    dense = train(x, y, spec, eval_images=eval_x, eval_labels=eval_y, progress=False)
    assert len(sparse.history["train_loss"]) == 7
    # epochs 3, 6 and 7; evaluating does not change the training
    assert sparse.history["test_errors"] == [dense.history["test_errors"][i] for i in (2, 5, 6)]
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="eval_every"):
            train(x, y, spec, progress=False, eval_every=bad)


def test_same_seed_same_numbers_other_seed_other_numbers(mnist):
    x, y = _subset(mnist, 1000)
    spec = replace(SMALL, input_dropout=0.2, hidden_dropout=0.5, max_norm=2.0, jitter=2, epochs=2)
    a = train(x, y, spec, [Member(seed=3)], progress=False).model
    b = train(x, y, spec, [Member(seed=3)], progress=False).model
    c = train(x, y, spec, [Member(seed=4)], progress=False).model
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.weights[0], c.weights[0])


def test_resume_from_checkpoint_equals_uninterrupted(mnist, tmp_path):
    x, y = _subset(mnist, 1000)
    spec = replace(SMALL, input_dropout=0.2, hidden_dropout=0.5, max_norm=2.0, jitter=2)
    full = train(x, y, spec, [Member(seed=1)], progress=False)
    ckpt = tmp_path / "run.pt"
    part = train(x, y, spec, [Member(seed=1)], checkpoint_path=ckpt, stop_after_epoch=1, progress=False)
    assert len(part.history["train_loss"]) == 1 and ckpt.exists()
    resumed = train(x, y, spec, [Member(seed=1)], checkpoint_path=ckpt, progress=False)
    assert resumed.resumed_from_epoch == 1
    assert all(torch.equal(p, q) for p, q in zip(full.model.parameters(), resumed.model.parameters()))
    assert resumed.history["train_loss"] == full.history["train_loss"]


def test_max_norm_is_enforced(mnist):
    x, y = _subset(mnist, 500)
    res = train(x, y, replace(SMALL, max_norm=0.5, epochs=1, lr=0.5), progress=False)
    for w in res.model.weights:
        assert w.norm(dim=1).max() <= 0.5 + 1e-5


def test_distillation_needs_teacher_logits(mnist):
    x, y = _subset(mnist, 200)
    with pytest.raises(ValueError, match="teacher_logits"):
        train(x, y, SMALL, [Member(temperature=2.0, soft_weight=1.0, hard_weight=0.0)], progress=False)


def test_distilled_student_follows_its_teacher(mnist):
    """A student trained on soft targets alone (no labels) learns the teacher's function."""
    x, y = _subset(mnist, 5000)
    teacher = train(x, y, SMALL, progress=False).model
    cached = predict_logits(teacher, x)[0]
    student = train(x, y, replace(SMALL, widths=(32, 32)),
                    [Member(temperature=4.0, soft_weight=1.0, hard_weight=0.0)],
                    teacher_logits=cached, progress=False).model
    te_x, te_y = mnist.test_images[:2000], mnist.test_labels[:2000]
    agree = (predict_logits(student, te_x).argmax(-1) == predict_logits(teacher, te_x).argmax(-1))
    assert agree.float().mean() > 0.85
    assert count_errors(predict_logits(student, te_x), te_y)[0] < 360  # seen: 279


def test_a_teacher_labelling_every_batch_equals_its_cached_logits_when_nothing_is_jittered(mnist):
    """The jittered transfer set's path (``train(teacher=...)``) without jitter: the same
    soft targets batch by batch as the cached logits, so the same student (float32)."""
    x, y = _subset(mnist, 1000)
    teacher = train(x, y, replace(SMALL, epochs=1), progress=False).model
    student = replace(SMALL, widths=(32, 32), epochs=2)
    members = [Member(seed=s, temperature=4.0, soft_weight=1.0, hard_weight=0.5) for s in (0, 1)]
    cached = train(x, y, student, members, teacher_logits=predict_logits(teacher, x)[0],
                   progress=False).model
    live = train(x, y, student, members, teacher=teacher, progress=False).model
    for p, q in zip(cached.parameters(), live.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)
    # with jitter every batch is labelled as the student sees it: other targets, other weights
    jittered = train(x, y, replace(student, jitter=2), members, teacher=teacher, progress=False).model
    assert not torch.allclose(jittered.weights[0], live.weights[0], atol=1e-3)


def test_training_time_adds_up_over_resumed_stretches(mnist, tmp_path):
    x, y = _subset(mnist, 1000)
    ckpt = tmp_path / "run.pt"
    first = train(x, y, SMALL, checkpoint_path=ckpt, stop_after_epoch=2, progress=False)
    resumed = train(x, y, SMALL, checkpoint_path=ckpt, progress=False)
    assert first.wall_time > 0 and resumed.resumed_from_epoch == 2
    assert resumed.wall_time > first.wall_time  # the first stretch is counted, not forgotten


def test_mlp_shapes_and_parameter_count():
    m = MLP((1200, 1200))
    assert sum(p.numel() for p in m.parameters()) == parameter_count((1200, 1200)) == 2395210
    assert m(torch.zeros(5, 784)).shape == (1, 5, 10)  # one shape: (K, B, C), K = 1
    assert predict_logits(m, torch.zeros(7, 784)).shape == (1, 7, 10)
    stack = MLP((30, 30), num_models=4, seeds=[0, 1, 2, 3])
    assert stack(torch.zeros(5, 784)).shape == (4, 5, 10)
    with pytest.raises(ValueError, match="widths"):
        MLP(())
    with pytest.raises(ValueError, match="widths"):
        MLP((800, 0))
    with pytest.raises(ValueError, match="hidden_dropout"):
        MLP((10,), hidden_dropout=1.0)


def test_learning_rate_schedule():
    from kdlib.core.spec import learning_rate
    spec = TrainSpec(epochs=4, lr=0.2, warmup_epochs=1)
    lrs = [learning_rate(spec, s, 10) for s in range(40)]
    assert lrs[0] == pytest.approx(0.02) and lrs[9] == pytest.approx(0.2)  # linear warm-up
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))  # then cosine decay
    assert lrs[-1] < 0.001
    plain = TrainSpec(epochs=4, lr=0.2)
    assert learning_rate(plain, 0, 10) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="warmup_epochs"):
        TrainSpec(epochs=4, warmup_epochs=4)


def test_training_from_initial_weights_copies_them_and_keeps_their_output_units(mnist):
    x, y = _subset(mnist, 500)
    start = MLP((64, 64), out_features=4, seeds=[7])
    before = [p.detach().clone() for p in start.parameters()]
    spec = replace(SMALL, epochs=2)
    res = train(x, y % 4, spec, [Member(seed=1)], initial=start, progress=False)
    assert res.model.weights[-1].shape == start.weights[-1].shape  # 4 outputs, not 10
    assert all(torch.equal(p, b) for p, b in zip(start.parameters(), before))  # not trained in place
    assert not torch.equal(res.model.weights[0], start.weights[0])
    again = train(x, y % 4, spec, [Member(seed=1)], initial=start, progress=False)
    assert all(torch.equal(p, q) for p, q in zip(res.model.parameters(), again.model.parameters()))
    with pytest.raises(ValueError, match="initial model"):
        train(x, y, spec, [Member(seed=1), Member(seed=2)], initial=start, progress=False)
