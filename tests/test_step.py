"""The hand-written step (kdlib.core.step) against autograd and torch.optim: one update, every option."""
import pytest
import torch
from torch import nn

from kdlib.core.losses import distillation_loss_and_grad, stacked_distillation_loss
from kdlib.core.models import MLP
from kdlib.core.step import Step, clip_grad_norm_


def _batch(k=2, b=16, c=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(k, b, c, generator=g) * 3, torch.randn(b, c, generator=g) * 8,
            torch.randint(0, c, (b,), generator=g))


@pytest.mark.parametrize("soft,hard", [(1.0, 0.0), (0.0, 1.0), (1.0, 0.3)])
def test_written_out_loss_gradient_equals_autograd(soft, hard):
    z, v, y = _batch()
    t = torch.tensor([20.0, 2.5])
    sw, hw = torch.tensor([soft, soft]), torch.tensor([hard, hard * 2])
    loss, grad = distillation_loss_and_grad(z, v if soft else None, y if hard else None, t, sw, hw)
    z_ = z.clone().requires_grad_(True)
    ref = stacked_distillation_loss(z_, v if soft else None, y if hard else None, t, sw, hw)
    (ref_grad,) = torch.autograd.grad(ref.sum(), z_)
    torch.testing.assert_close(loss, ref.detach(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-5, atol=1e-7)


def _reference(model: MLP, x, v, y, t, sw, hw):
    """The same member as an nn.Sequential, loss through autograd."""
    layers = []
    for i, (w, b) in enumerate(zip(model.weights, model.biases)):
        lin = nn.Linear(w.shape[1], w.shape[2])
        with torch.no_grad():
            lin.weight.copy_(w[0].T)
            lin.bias.copy_(b[0, 0])
        layers += [lin] + ([nn.ReLU()] if i < len(model.weights) - 1 else [])
    net = nn.Sequential(*layers)

    def loss_fn():
        z = net(x).unsqueeze(0)
        return stacked_distillation_loss(z, v, y, t, sw, hw).sum()
    return net, loss_fn


def _as_stack(net):
    lins = [m for m in net if isinstance(m, nn.Linear)]
    return [lin.weight.detach().T for lin in lins] + [lin.bias.detach() for lin in lins]


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("clip", [None, 0.05])
def test_three_steps_equal_autograd_and_torch_optim(optimizer, clip):
    torch.manual_seed(0)
    model = MLP((32, 24), in_features=20, out_features=10, seeds=[3])
    x = torch.rand(16, 20)
    _, v, y = _batch(k=1)
    t, sw, hw = torch.tensor([4.0]), torch.tensor([1.0]), torch.tensor([0.5])
    net, loss_fn = _reference(model, x, v, y, t, sw, hw)
    opt = (torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9) if optimizer == "sgd"
           else torch.optim.Adam(net.parameters(), lr=1e-3))
    step = Step(model, "float32", optimizer=optimizer, lr=0.05 if optimizer == "sgd" else 1e-3,
                momentum=0.9, max_grad_norm=clip)
    for _ in range(3):
        step(x, v, y, t, sw, hw, None)
        opt.zero_grad()
        loss_fn().backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
        opt.step()
    ours = [p[0].reshape(r.shape) for p, r in zip(step.params, _as_stack(net))]
    for a, b in zip(ours, _as_stack(net)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    if clip is not None:
        assert step.clipped_share() == [1.0]  # a bound of 0.05 clips every one of these steps


def test_bfloat16_step_stays_within_its_tolerance_of_float32():
    """bfloat16 GEMMs with float32 master weights: after 3 SGD steps the weights differ from the
    float32 step's by less than a tenth of the update itself (measured: 4.5%; bfloat16 keeps
    8 bits of mantissa, about 0.4% per GEMM input)."""
    x = torch.rand(64, 784)
    _, v, y = _batch(k=1, b=64)
    t, sw, hw = torch.tensor([20.0]), torch.tensor([1.0]), torch.tensor([0.1])
    runs = {}
    for precision in ("float32", "bfloat16"):
        model = MLP((128, 128), seeds=[0])
        start = [p.detach().clone() for p in model.parameters()]
        step = Step(model, precision, lr=0.05, momentum=0.9)
        for _ in range(3):
            step(x, v, y, t, sw, hw, None)
        runs[precision] = ([p.detach() for p in model.parameters()], start)
    (f32, start), (bf16, _) = runs["float32"], runs["bfloat16"]
    for a, b, s in zip(f32, bf16, start):
        change = (a - s).norm()
        assert change > 0
        assert (a - b).norm() <= 0.1 * change


def test_clip_grad_norm_is_per_member():
    grads = [torch.ones(2, 3, 4), torch.ones(2, 1, 4)]
    grads[0][1] *= 0.01
    grads[1][1] *= 0.01
    norms = clip_grad_norm_(grads, 1.0)
    assert norms[0] == pytest.approx(4.0) and norms[1] == pytest.approx(0.04)
    member0 = torch.cat([g[0].flatten() for g in grads]).norm()
    assert member0 == pytest.approx(1.0, rel=1e-5)
    assert grads[0][1].max() == pytest.approx(0.01)  # under the bound: untouched


def test_unknown_optimizer_is_named():
    with pytest.raises(ValueError, match="optimizer must be one of sgd, adam"):
        Step(MLP((8,), seeds=[0]), optimizer="rmsprop")


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_the_compiled_update_computes_what_the_eager_update_computes(optimizer):
    """``compile=True`` fuses the update with torch.compile: three steps give the eager step's
    weights, losses and optimiser state (float32; fusion may change the last bits)."""
    x = torch.rand(32, 40)
    _, v, y = _batch(k=2, b=32)
    t, sw, hw = torch.tensor([20.0, 4.0]), torch.tensor([1.0, 1.0]), torch.tensor([10.0, 0.1])
    runs = {}
    for compiled in (False, True):
        model = MLP((24, 16), num_models=2, in_features=40, out_features=10, seeds=[0, 1])
        step = Step(model, "float32", optimizer=optimizer, lr=0.03 if optimizer == "sgd" else 1e-3,
                    compile=compiled)
        losses = [step(x, v, y, t, sw, hw, None) for _ in range(3)]
        assert step.compiled == compiled and step.updates == 3
        runs[compiled] = ([p.detach().clone() for p in step.params], losses,
                          [s.clone() for s in step.velocity + step.second_moment])
    for a, b in zip(*(runs[c][0] + runs[c][2] for c in (False, True))):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    for a, b in zip(runs[False][1], runs[True][1]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
