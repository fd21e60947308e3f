"""One training step of a stack of ReLU MLPs, written out by hand (Section 3 recipes).

The teacher recipe the paper cites (Hinton et al. 2012) is dropout, max-norm and jitter on a
784-1200-1200-10 ReLU net; a step is

    forward    h_0 = x * m_0,   a_l = h_{l-1} W_l + b_l,   h_l = relu(a_l) * m_l
    loss       kdlib.core.losses.distillation_loss_and_grad on the logits a_L (float32)
    backward   g_L = dloss/da_L (written out, Eq. 2);   dW_l = h_{l-1}^T g_l,   db_l = sum_b g_l,
               g_{l-1} = (g_l W_l^T) * [a_{l-1} > 0] * m_{l-1}
    clip       optionally each member's whole gradient to L2 norm <= max_grad_norm
    update     SGD: v = momentum * v + grad,  W -= step * v   (torch.optim.SGD's form), then
               each constrained unit's incoming weight vector is rescaled to norm <= c;
               or Adam (torch.optim.Adam's form)

where the dropout masks ``m`` hold 0 or 1 / (1 - p). ReLU and dropout share one mask, so each
costs one multiply forward and one backward; without dropout the ReLU's output is its own
mask. The input gradient of the first layer is never computed. The GEMMs run in
``precision``: ``float32``, or ``bfloat16`` with float32 master weights, optimiser state,
loss and softmax (autocast's split, done explicitly). Written out rather than left to
autograd because on a small CPU the step spent most of its time outside its GEMMs
(benchmarks/README.md).

The dropout masks are ``kdlib.core.dropout``'s (random bytes from each member's generator).
"""
from __future__ import annotations

import warnings
from functools import lru_cache

import torch

from .dropout import member_masks
from .losses import distillation_loss_and_grad
from .spec import OPTIMIZERS, PRECISIONS


# ----------------------------------------------------------------------------- precision
@lru_cache(maxsize=None)
def _cpu_has_bf16() -> bool:
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return any(f in flags.split() for f in ("avx512_bf16", "amx_bf16"))


def compute_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The GEMM dtype for ``precision`` on ``device``: bfloat16 only where the hardware has it.

    Elsewhere bfloat16 falls back to float32 with a one-line warning (emulated bfloat16 GEMMs
    run many times slower than float32 ones).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "float32":
        return torch.float32
    device = torch.device(device)
    if device.type == "cuda":
        ok = torch.cuda.is_bf16_supported()
    elif device.type == "cpu":
        ok = _cpu_has_bf16()
    else:
        ok = False
    if not ok:
        warnings.warn(f"kdlib: no native bfloat16 matmuls on {device} (AVX-512 BF16, AMX or a "
                      "bf16-capable GPU); training in float32 instead", RuntimeWarning, stacklevel=2)
        return torch.float32
    return torch.bfloat16


# ----------------------------------------------------------------------------- the update
#: Adam's constants (Kingma & Ba 2015; torch.optim.Adam's defaults).
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8


def max_norm_(weight: torch.Tensor, max_norm) -> None:
    """Rescale each unit's incoming weight vector (dim 1 of (K, in, out)) to L2 norm <= max_norm.

    Sum of squares over the incoming dimension: on CPU 7x faster than ``vector_norm`` along a
    non-contiguous dimension.
    """
    norm = weight.square().sum(1, keepdim=True).sqrt()
    weight.mul_(torch.clamp(max_norm / norm, max=1.0))


def sgd_max_norm_update(params, grads, velocity, low_precision, lr, momentum,
                        max_norm, constrained):
    """SGD with momentum, then max-norm, then the GEMM-precision copies of the weights.

    ``v = momentum * v + grad; w -= lr * v`` (torch.optim.SGD's form); each constrained weight
    (K, in, out) gets its units' incoming vectors rescaled to L2 norm <= ``max_norm``; every
    ``low_precision[i]`` that is not None receives ``params[i]`` cast to its dtype. ``lr``,
    ``momentum`` and ``max_norm`` are 0-d tensors so that a compiled version is compiled once.
    """
    for i, (p, g, v) in enumerate(zip(params, grads, velocity)):
        v.mul_(momentum).add_(g.float())
        p.sub_(v * lr)
        if constrained[i]:
            max_norm_(p, max_norm)
        if low_precision[i] is not None:
            low_precision[i].copy_(p)


def adam_update(params, grads, exp_avg, exp_avg_sq, low_precision, lr, bias1, bias2):
    """Adam (torch.optim.Adam's form, no weight decay), then the GEMM-precision copies.

    ``m = b1 m + (1 - b1) g;  s = b2 s + (1 - b2) g^2;  w -= lr (m / bias1) / (sqrt(s / bias2) + eps)``
    with ``bias1 = 1 - b1^t`` and ``bias2 = 1 - b2^t`` after t updates (0-d tensors).
    """
    b1, b2 = ADAM_BETAS
    for i, (p, g, m, s) in enumerate(zip(params, grads, exp_avg, exp_avg_sq)):
        g = g.float()
        m.mul_(b1).add_(g, alpha=1 - b1)
        s.mul_(b2).addcmul_(g, g, value=1 - b2)
        p.sub_(lr * (m / bias1) / ((s / bias2).sqrt() + ADAM_EPS))
        if low_precision[i] is not None:
            low_precision[i].copy_(p)


def clip_grad_norm_(grads, max_norm: float) -> torch.Tensor:
    """Rescale each member's whole gradient to L2 norm <= ``max_norm``, in place.

    ``grads`` are (K, ...) tensors (every weight and bias of a stack); member k's norm is taken
    over the k-th slice of all of them together. Returns the norms (K,) before clipping.
    A NaN/inf gradient stays non-finite (the training loop reports it as divergence).
    """
    norms = sum(g.float().square().sum(dim=tuple(range(1, g.dim()))) for g in grads).sqrt()
    scale = torch.clamp(max_norm / (norms + 1e-6), max=1.0)
    for g in grads:
        g.mul_(scale.to(g.dtype).reshape(-1, *[1] * (g.dim() - 1)))
    return norms


# ----------------------------------------------------------------------------- the step
class Step:
    """Forward, backward and update of ``model`` (an ``MLP`` stack).

    ``__call__(x, teacher_logits, labels, temperature, soft_weight, hard_weight, generators)``
    trains on one batch ``x`` (B, in) shared by every member or (K, B, in), and returns the
    loss of each member (K,) as a float32 tensor (no host sync). ``optimizer`` is "sgd"
    (momentum; ``lr`` and ``momentum`` are set by the training loop) or "adam"; its state
    (``velocity``, and Adam's ``second_moment`` and ``updates``) is checkpointed.
    ``max_grad_norm``: each member's whole gradient is clipped to this L2 norm before the
    update (``clipped_share`` says how often it acted). ``compile=True`` runs the update
    through ``torch.compile`` (one fused loop instead of about ten passes over the weights;
    the compilation takes seconds to minutes, so it pays only for long runs); it falls back to
    the same update uncompiled if that fails. (Compiling the whole step, GEMMs included, was
    measured slower on this project's CPU: benchmarks/README.md.)
    """

    def __init__(self, model, precision: str = "float32", *, optimizer: str = "sgd",
                 lr: float = 0.1, momentum: float = 0.9, constrain_output: bool = True,
                 max_grad_norm: float | None = None, compile: bool = False):
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
        self.model = model
        self.dtype = compute_dtype(precision, model.device)
        self.optimizer, self.lr, self.momentum = optimizer, lr, momentum
        self.max_grad_norm = max_grad_norm
        self.params = list(model.weights) + list(model.biases)
        self.velocity = [torch.zeros_like(p) for p in self.params]
        self.second_moment = [torch.zeros_like(p) for p in self.params] if optimizer == "adam" else []
        self.updates = 0  # updates so far (Adam's bias correction; checkpointed)
        n = len(model.weights)
        #: weights whose units' incoming vectors max-norm bounds (Hinton et al. 2012: hidden only)
        self.constrained = [model.max_norm is not None and i < (n if constrain_output else n - 1)
                            for i in range(len(self.params))]
        self.low_precision = [p.detach().to(self.dtype) if self.dtype != torch.float32 else None
                              for p in self.params]
        self._clipped, self._clip_counted = 0, 0
        self.update = sgd_max_norm_update if optimizer == "sgd" else adam_update
        self.compiled = False
        if compile:  # one compilation per set of shapes; more than dynamo's default 8 per process
            torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
            self.update, self.compiled = torch.compile(self.update, dynamic=False), True

    def _weight(self, i: int) -> torch.Tensor:
        low = self.low_precision[i]
        return self.model.weights[i] if low is None else low

    def _bias(self, i: int) -> torch.Tensor:
        low = self.low_precision[len(self.model.weights) + i]
        return self.model.biases[i] if low is None else low

    def forward(self, x: torch.Tensor, generators):
        """Logits (K, B, C) in float32, and what backward needs: each layer's input, and the
        hidden layers' dropout-and-ReLU masks (or, without dropout, their ReLU outputs)."""
        m = self.model
        h = x.to(self.dtype)
        if h.dim() == 2:
            h = h.expand(m.num_models, *h.shape)
        if m.input_dropout > 0:
            h = h * member_masks(h.shape[1:], m.input_dropout, generators, h.device, self.dtype)
        inputs, masks = [], []
        last = len(m.weights) - 1
        for i in range(len(m.weights)):
            inputs.append(h)
            a = torch.baddbmm(self._bias(i), h, self._weight(i))
            if i == last:
                return a.float(), (inputs, masks)
            if m.hidden_dropout > 0:
                mask = (a > 0).to(self.dtype)
                mask.mul_(member_masks(a.shape[1:], m.hidden_dropout, generators, a.device, self.dtype))
                masks.append(mask)
                h = a * mask
            else:  # ReLU alone: its output is its own mask (h > 0 exactly where a > 0)
                h = torch.relu(a)
                masks.append(None)

    def backward(self, grad_logits: torch.Tensor, saved) -> list[torch.Tensor]:
        """Gradients of every weight, then every bias, from dloss/dlogits (K, B, C)."""
        inputs, masks = saved
        n = len(self.model.weights)
        g = grad_logits.to(self.dtype)
        grad_w, grad_b = [None] * n, [None] * n
        for i in range(n - 1, -1, -1):
            grad_w[i] = torch.bmm(inputs[i].transpose(1, 2), g)
            grad_b[i] = g.sum(1, keepdim=True, dtype=torch.float32)
            if i:  # the first layer's input gradient is never needed
                g = torch.bmm(g, self._weight(i).transpose(1, 2))
                if masks[i - 1] is None:
                    g = torch.ops.aten.threshold_backward(g, inputs[i], 0)
                else:
                    g.mul_(masks[i - 1])
        grads = grad_w + grad_b
        if self.max_grad_norm is not None:
            norms = clip_grad_norm_(grads, self.max_grad_norm)
            self._clipped = self._clipped + (norms > self.max_grad_norm).float()  # no host sync
            self._clip_counted += 1
        return grads

    def clipped_share(self) -> list[float]:
        """Share of each member's updates clipped since the last call (then counts afresh)."""
        share = (self._clipped / self._clip_counted).tolist() if self._clip_counted else []
        self._clipped, self._clip_counted = 0, 0
        return share

    def _update_state(self, device) -> tuple:
        """The update's arguments other than the gradients: (params, optimiser state, ...), the
        step sizes as 0-d tensors (so a compiled update is compiled once)."""
        params = [p.data for p in self.params]
        scalar = lambda v: torch.tensor(v, dtype=torch.float32, device=device)  # noqa: E731
        if self.optimizer == "adam":
            t = self.updates
            b1, b2 = ADAM_BETAS
            return (params, self.velocity, self.second_moment, self.low_precision,
                    scalar(self.lr), scalar(1 - b1 ** t), scalar(1 - b2 ** t))
        return (params, self.velocity, self.low_precision, scalar(self.lr),
                scalar(self.momentum), scalar(self.model.max_norm or 0.0), self.constrained)

    def _step(self, x, teacher_logits, labels, temperature, soft_weight, hard_weight, generators,
              state) -> torch.Tensor:
        """Forward, the loss and its gradient (Eq. 2), backward, update: the step itself."""
        logits, saved = self.forward(x, generators)
        loss, grad_logits = distillation_loss_and_grad(logits, teacher_logits, labels, temperature,
                                                       soft_weight, hard_weight)
        grads = self.backward(grad_logits, saved)
        self._apply_update(grads, state)
        return loss

    @torch.no_grad()
    def __call__(self, x, teacher_logits, labels, temperature, soft_weight, hard_weight,
                 generators) -> torch.Tensor:
        self.updates += 1
        return self._step(x, teacher_logits, labels, temperature, soft_weight, hard_weight,
                          generators, self._update_state(x.device))

    def _apply_update(self, grads, state) -> None:
        """The update; if its compilation fails (before anything is written), run it eagerly."""
        try:
            self.update(state[0], grads, *state[1:])
        except Exception as e:
            if not self.compiled:
                raise
            warnings.warn(f"kdlib: torch.compile of the update failed ({type(e).__name__}: "
                          f"{str(e).splitlines()[0][:200]}); running it uncompiled",
                          RuntimeWarning, stacklevel=3)
            self.update = sgd_max_norm_update if self.optimizer == "sgd" else adam_update
            self.compiled = False
            self.update(state[0], grads, *state[1:])

    @torch.no_grad()
    def apply_max_norm(self) -> None:
        """Rescale each constrained unit's incoming weight vector to L2 norm <= max_norm."""
        for p, c in zip(self.params, self.constrained):
            if c:
                max_norm_(p.data, self.model.max_norm)
        self.refresh_low_precision()

    @torch.no_grad()
    def refresh_low_precision(self) -> None:
        """The GEMM-precision copies of the weights, from the float32 master weights."""
        for p, low in zip(self.params, self.low_precision):
            if low is not None:
                low.copy_(p.data)

    def rescale_velocity(self, factor: float) -> None:
        for v in self.velocity:
            v.mul_(factor)
