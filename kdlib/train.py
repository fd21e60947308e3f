"""One fast training loop for teachers, students and distilled students (Section 3).

The whole training set lives as one float tensor on the device; each epoch draws a
``randperm`` per member, batches are gathered by index, jitter is one batched gather, the
teacher's logits for the (un-jittered) transfer set are computed once and indexed, and
losses are summed on the device so the host syncs once per epoch. Several members
(seeds, temperatures, loss weights) of one architecture train together as one stacked
model; each member draws its initialisation, data order, jitter and dropout from its own
generators, so a stack computes what separate runs would.

Checkpoints are written atomically every ``checkpoint_every`` epochs with every RNG state;
a killed run resumes from the last one to the same result as an uninterrupted run.
"""
from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from .data import jitter as jitter_batch, to_float
from .io import ArtifactError, read_torch, write_torch
from .losses import check_weights
from .models import MLP, check_dropout, check_widths
from .step import PRECISIONS, Step

SCHEDULES = ("cosine", "hinton2012")
#: Runs with at least this many steps compile the update (kdlib.step; minutes to compile).
COMPILE_MIN_STEPS = 100_000


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class TrainingCollapsed(RuntimeError):
    """A member's predictions collapsed onto one class (or near chance) after an epoch."""


#: Collapse check (``check_collapse``): one class predicted for at least this share of the
#: checked images, while it is under ``COLLAPSE_MINORITY`` of the transfer set's labels ...
COLLAPSE_SHARE, COLLAPSE_MINORITY = 0.95, 0.5
#: ... or, after the first epoch, an error of at least 1 - COLLAPSE_CHANCE / C (C classes in
#: the transfer set, at least 3) with one class predicted for at least half of the images.
COLLAPSE_CHANCE, COLLAPSE_SAMPLE = 1.5, 2000
#: No check before this many updates: a barely trained network may still predict one class
#: (benchmark warm-ups of 4 steps, tests on a few hundred random images).
COLLAPSE_MIN_STEPS = 100
#: The clipping value the collapse message suggests (README "Your own data").
RECOMMENDED_MAX_GRAD_NORM = 5.0


@dataclass(frozen=True)
class TrainSpec:
    """Hyper-parameters shared by every member of a stack (the paper leaves them open)."""

    widths: tuple = (800, 800)
    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    input_dropout: float = 0.0
    hidden_dropout: float = 0.0
    max_norm: float | None = None
    jitter: int = 0
    checkpoint_every: int = 5
    warmup_epochs: int = 0  # linear learning-rate warm-up before the cosine decay
    #: GEMM precision: "float32", or "bfloat16" with float32 master weights (kdlib.step)
    precision: str = "float32"
    #: "cosine": lr decays to 0 along a cosine, constant momentum. "hinton2012": Hinton et al.
    #: (2012, App. A): per epoch e, momentum p_e rises linearly from ``momentum`` to
    #: ``momentum_final`` over ``momentum_epochs``, and the update is
    #: v = p_e v - (1 - p_e) lr lr_decay^e grad, w += v
    schedule: str = "cosine"
    lr_decay: float = 1.0
    momentum_final: float | None = None
    momentum_epochs: int = 0
    #: None: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) weights and biases; else N(0, init_std^2)
    #: weights and zero biases (Hinton et al. 2012 use 0.01)
    init_std: float | None = None
    #: max-norm also on the output units (False: hidden units only, as Hinton et al. 2012)
    max_norm_output: bool = True
    #: None: no clipping; else each member's whole-step gradient (every weight and bias) is
    #: rescaled to L2 norm <= max_grad_norm before the update (bounds the soft-target
    #: gradient of a teacher with large logits; see README "Your own data")
    max_grad_norm: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "widths", check_widths(self.widths))
        for name in ("epochs", "batch_size", "checkpoint_every"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not isinstance(self.warmup_epochs, int) or not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(f"warmup_epochs must be an integer in [0, epochs), got {self.warmup_epochs!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        check_dropout(self.input_dropout, "input_dropout")
        check_dropout(self.hidden_dropout, "hidden_dropout")
        if self.max_norm is not None and not self.max_norm > 0:
            raise ValueError(f"max_norm must be positive or None, got {self.max_norm}")
        if not isinstance(self.jitter, int) or not 0 <= self.jitter <= 8:
            raise ValueError(f"jitter must be an integer number of pixels in 0..8, got {self.jitter}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if not (math.isfinite(self.lr_decay) and 0 < self.lr_decay <= 1):
            raise ValueError(f"lr_decay must be in (0, 1], got {self.lr_decay}")
        if self.momentum_final is not None and not 0 <= self.momentum_final < 1:
            raise ValueError(f"momentum_final must be in [0, 1), got {self.momentum_final}")
        if not isinstance(self.momentum_epochs, int) or self.momentum_epochs < 0:
            raise ValueError(f"momentum_epochs must be an integer >= 0, got {self.momentum_epochs!r}")
        if self.init_std is not None and not (math.isfinite(self.init_std) and self.init_std > 0):
            raise ValueError(f"init_std must be positive or None, got {self.init_std}")
        if self.max_grad_norm is not None and not (math.isfinite(self.max_grad_norm)
                                                   and self.max_grad_norm > 0):
            raise ValueError(f"max_grad_norm must be positive or None, got {self.max_grad_norm}")
        if self.schedule == "hinton2012" and self.warmup_epochs:
            raise ValueError("warmup_epochs applies to the cosine schedule only")


@dataclass(frozen=True)
class Member:
    """What distinguishes one member of a stack: its seed and its loss."""

    seed: int = 0
    temperature: float = 1.0
    soft_weight: float = 0.0
    hard_weight: float = 1.0

    def __post_init__(self):
        seed = self.seed
        if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature must be positive and finite, got {self.temperature}")
        check_weights(self.soft_weight, self.hard_weight)


@dataclass
class TrainResult:
    model: MLP
    history: dict = field(default_factory=dict)  # per-epoch lists, one value per member
    wall_time: float = 0.0
    resumed_from_epoch: int = 0
    compute_dtype: str = "float32"  # the GEMM dtype used (bfloat16 falls back where unsupported)
    compiled_update: bool = False


def resolve_device(device) -> torch.device:
    """A torch.device, with a clear error if it is not available here."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"unknown device {device!r}; use 'cpu', 'cuda' or 'cuda:N'") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available on this machine; "
                         "use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device {device!r} does not exist ({torch.cuda.device_count()} GPUs)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r} requested but MPS is not available; use --device cpu")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unsupported device {device!r}; use 'cpu' or 'cuda'")
    return dev


def fingerprint(obj) -> str:
    """Short stable hash of a JSON-able description (config identity)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def checkpoint_identity(spec: TrainSpec, members: Sequence[Member], n: int) -> str:
    """What a checkpoint must have been written by to be resumed: the spec, the members and
    the size of the transfer set (stored in the checkpoint as ``fingerprint``)."""
    spec_id = asdict(spec)
    if spec.max_grad_norm is None:  # added later: checkpoints of earlier runs stay valid
        del spec_id["max_grad_norm"]
    return fingerprint({"spec": spec_id, "members": [asdict(m) for m in members], "n": n})


@torch.no_grad()
def predict_logits(model: MLP, images: torch.Tensor, batch_size: int = 5000) -> torch.Tensor:
    """Logits (N, C) of an eval-mode single model, or (K, N, C) of a stack; uint8 or float input."""
    was_training = model.training
    model.eval()
    x = to_float(images) if images.dtype == torch.uint8 else images
    x = x.to(model.device)
    out = torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)], dim=-2) \
        if len(x) else model(x)
    model.train(was_training)
    return out


def clip_grad_norm_(grads: Sequence[torch.Tensor], max_norm: float) -> torch.Tensor:
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


class ClippedStep(Step):
    """``kdlib.step.Step`` whose gradients are clipped per member (``TrainSpec.max_grad_norm``)."""

    def __init__(self, *args, max_grad_norm: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_grad_norm = max_grad_norm

    def backward(self, grad_logits, saved):
        grads = super().backward(grad_logits, saved)
        clip_grad_norm_(grads, self.max_grad_norm)
        return grads


def collapse_report(predictions: torch.Tensor, labels: torch.Tensor, transfer_labels: torch.Tensor,
                    epoch: int, what: str = "test") -> list[str | None]:
    """Which members' predictions collapsed: one line per collapsed member, None for the others.

    ``predictions`` (K, N) are the members' classes for N checked images with true ``labels``;
    ``transfer_labels`` are the training labels. Only checked images of classes that occur in
    the transfer set count (a student of only 7s and 8s is judged on the 7s and 8s). A member
    collapsed when one class d gets >= ``COLLAPSE_SHARE`` of its predictions while d is under
    ``COLLAPSE_MINORITY`` of the transfer labels, or, from epoch 2 on, when its error is
    >= 1 - ``COLLAPSE_CHANCE``/C (C >= 3 classes in the transfer set) with d predicted for at
    least half of the images. Unlearnable data (random labels) gives spread-out predictions
    at chance and is not flagged; a network that lost every signal predicts one class.
    """
    num_classes = int(max(predictions.max(), labels.max(), transfer_labels.max())) + 1
    counts = torch.bincount(transfer_labels.cpu(), minlength=num_classes)
    share_in_transfer = counts.float() / counts.sum()
    present = torch.nonzero(counts).flatten()
    keep = torch.isin(labels.cpu(), present)
    if not bool(keep.any()):
        return [None] * len(predictions)
    preds, y = predictions.cpu()[:, keep], labels.cpu()[keep]
    out = []
    for p in preds:
        pred_counts = torch.bincount(p, minlength=num_classes)
        d = int(pred_counts.argmax())
        share, error = float(pred_counts[d]) / len(p), float((p != y).float().mean())
        minority = float(share_in_transfer[d]) < COLLAPSE_MINORITY
        one_class = share >= COLLAPSE_SHARE
        chance = (epoch >= 2 and len(present) >= 3 and share >= 0.5
                  and error >= 1 - COLLAPSE_CHANCE / len(present))
        out.append(f"class {d} predicted for {share:.1%} of {len(p)} {what} images (it is "
                   f"{float(share_in_transfer[d]):.1%} of the training labels), error {error:.1%}"
                   if minority and (one_class or chance) else None)
    return out


def _check_collapse(model, eval_images, eval_labels, images, labels, epoch, members, desc,
                    checkpoint_path, predictions=None):
    """Raise TrainingCollapsed if a member's predictions collapsed after ``epoch`` (1-based)."""
    if predictions is not None:
        y, what = eval_labels, "test"
    else:  # a fixed, evenly spaced sample of the training images
        idx = torch.linspace(0, len(images) - 1, min(len(images), COLLAPSE_SAMPLE)).long()
        idx = idx.to(images.device)
        predictions = _predictions(model, images[idx])
        y, what = labels[idx], "training"
    found = collapse_report(predictions, y, labels, epoch, what)
    bad = [f"member {k} (seed {members[k].seed}, T {members[k].temperature:g}): {line}"
           for k, line in enumerate(found) if line]
    if bad:
        last = f"last good checkpoint: {checkpoint_path} (epoch {start_epoch_saved(checkpoint_path)})" \
            if checkpoint_path and checkpoint_path.exists() else "no checkpoint was written"
        raise TrainingCollapsed(
            f"{desc}: predictions collapsed in epoch {epoch}: {'; '.join(bad)}; {last}. "
            "The network stopped learning: lower the learning rate, use a longer warm-up "
            "(warmup_epochs), a lower temperature, or clip gradients with TrainSpec.max_grad_norm "
            f"(e.g. {RECOMMENDED_MAX_GRAD_NORM:g}).")


@torch.no_grad()
def _predictions(model: MLP, images) -> torch.Tensor:
    """Predicted classes (K, N) of every member."""
    logits = predict_logits(model, images)
    model.train()
    return (logits if logits.dim() == 3 else logits.unsqueeze(0)).argmax(-1)


def _generators(seeds, device):
    order = [torch.Generator().manual_seed(1_000_003 * int(s) + 17) for s in seeds]
    noise = [torch.Generator(device=device).manual_seed(1_000_003 * int(s) + 29) for s in seeds]
    return order, noise


def train(images: torch.Tensor, labels: torch.Tensor, spec: TrainSpec,
          members: Sequence[Member] = (Member(),), *, teacher_logits: torch.Tensor | None = None,
          eval_images: torch.Tensor | None = None, eval_labels: torch.Tensor | None = None,
          checkpoint_path: str | os.PathLike | None = None, progress: bool = True,
          desc: str = "train", stop_after_epoch: int | None = None,
          compile: bool | None = None, check_collapse: bool = True) -> TrainResult:
    """Train ``len(members)`` MLPs of ``spec`` on (images, labels); return the stack.

    ``teacher_logits`` (N, C) are the cached logits of the teacher on the same transfer set
    (needed when a member has ``soft_weight > 0``). With ``eval_images``, the test error of
    every member is recorded after each epoch. ``stop_after_epoch`` ends early (for tests of
    resumption; the checkpoint then holds that epoch). ``compile`` (default: for runs of at
    least ``COMPILE_MIN_STEPS`` steps) fuses the parameter update with torch.compile.
    ``check_collapse``: after every epoch (from the ``COLLAPSE_MIN_STEPS``-th update on),
    raise ``TrainingCollapsed`` (the epoch is not checkpointed) when a member predicts one
    class for almost everything (``collapse_report``; judged on the eval images, else on up
    to 2000 training images).
    """
    members = list(members)
    if not members:
        raise ValueError("need at least one member to train")
    device = images.device
    n = len(images)
    if n == 0:
        raise ValueError("the training set is empty")
    if labels.shape != (n,):
        raise ValueError(f"labels {tuple(labels.shape)} do not match {n} images")
    needs_teacher = any(m.soft_weight > 0 for m in members)
    needs_labels = any(m.hard_weight > 0 for m in members)
    if needs_teacher and (teacher_logits is None or len(teacher_logits) != n):
        raise ValueError("members with soft_weight > 0 need teacher_logits for every training image")
    k = len(members)
    x_all = to_float(images)
    y_all = labels.to(device)
    t_all = teacher_logits.to(device, torch.float32) if needs_teacher else None
    temps = torch.tensor([m.temperature for m in members], device=device)
    soft_w = torch.tensor([m.soft_weight for m in members], device=device)
    hard_w = torch.tensor([m.hard_weight for m in members], device=device)

    model = MLP(spec.widths, num_models=k, input_dropout=spec.input_dropout,
                hidden_dropout=spec.hidden_dropout, max_norm=spec.max_norm,
                seeds=[m.seed for m in members], init_std=spec.init_std).to(device)
    steps = math.ceil(n / spec.batch_size)
    if compile is None:  # compiling takes minutes: worth it for long runs only
        compile = spec.epochs * steps >= COMPILE_MIN_STEPS
    step_kwargs = dict(lr=spec.lr, momentum=spec.momentum, constrain_output=spec.max_norm_output,
                       compile=compile)
    step_fn = Step(model, spec.precision, **step_kwargs) if spec.max_grad_norm is None else \
        ClippedStep(model, spec.precision, max_grad_norm=spec.max_grad_norm, **step_kwargs)
    order_gens, noise_gens = _generators([m.seed for m in members], device)
    shared_order = len({m.seed for m in members}) == 1
    history = {"train_loss": [], "test_errors": []}
    start_epoch = 0
    ident = checkpoint_identity(spec, members, n)

    checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
    if checkpoint_path and checkpoint_path.exists():
        try:
            state = read_torch(checkpoint_path)
        except ArtifactError as e:
            raise ArtifactError(f"{checkpoint_path}: corrupt or half-written checkpoint "
                                f"({e.__cause__ or e}); delete it to train this run from the "
                                "start") from e
        if not isinstance(state, dict) or state.get("fingerprint") != ident:
            raise ArtifactError(f"{checkpoint_path}: checkpoint of another configuration; "
                                "delete it or use another path")
        if "velocity" not in state:
            raise ArtifactError(f"{checkpoint_path}: checkpoint of an older kdlib (no velocity); "
                                "delete it to train this run from the start")
        model.load_state_dict(state["model"])
        for v, saved in zip(step_fn.velocity, state["velocity"]):
            v.copy_(saved)
        for g, s in zip(order_gens, state["order_rng"]):
            g.set_state(s)
        for g, s in zip(noise_gens, state["noise_rng"]):
            g.set_state(s)
        history, start_epoch = state["history"], state["epoch"]

    def save_checkpoint(epoch):
        if checkpoint_path:
            write_torch(checkpoint_path, {
                "fingerprint": ident, "epoch": epoch, "model": model.state_dict(),
                "velocity": step_fn.velocity, "history": history,
                "order_rng": [g.get_state() for g in order_gens],
                "noise_rng": [g.get_state() for g in noise_gens]})

    from tqdm.auto import tqdm
    # Momentum buffers of never-active inputs (MNIST's blank border) decay into denormal
    # floats, which make CPU matmuls up to 100x slower: flush denormals to zero (process-wide).
    torch.set_flush_denormal(True)
    step_fn.apply_max_norm()  # also makes the low-precision copies of the weights
    bar = tqdm(range(start_epoch, spec.epochs), desc=desc, disable=not progress,
               initial=start_epoch, total=spec.epochs, unit="epoch", leave=False)
    t0 = time.perf_counter()
    model.train()
    for epoch in bar:
        perms = torch.stack([torch.randperm(n, generator=g) for g in order_gens]).to(device)
        running = torch.zeros(k, device=device)
        if spec.schedule == "hinton2012":
            set_epoch_schedule(step_fn, spec, epoch)
        for s in range(steps):
            if spec.schedule == "cosine":
                step_fn.lr = learning_rate(spec, epoch * steps + s, steps)
            idx = perms[:, s * spec.batch_size:(s + 1) * spec.batch_size]
            b = idx.shape[1]
            if shared_order:
                idx = idx[0]
            x = x_all[idx]
            if spec.jitter:
                if shared_order and k > 1:
                    x = x.expand(k, *x.shape)
                x = torch.stack([jitter_batch(xi, spec.jitter, g) for xi, g in
                                 zip(x.reshape(k, b, -1), noise_gens)]) if k > 1 else \
                    jitter_batch(x, spec.jitter, noise_gens[0])
            loss = step_fn(x, t_all[idx] if needs_teacher else None,
                           y_all[idx] if needs_labels else None, temps, soft_w, hard_w, noise_gens)
            running += loss * b
        epoch_loss = (running / n).tolist()
        finite_weights = all(bool(torch.isfinite(p).all()) for p in model.parameters())
        if not (finite_weights and all(math.isfinite(v) for v in epoch_loss)):
            last = f"last good checkpoint: {checkpoint_path} (epoch {start_epoch_saved(checkpoint_path)})" \
                if checkpoint_path and checkpoint_path.exists() else "no checkpoint was written"
            what = "weights" if all(math.isfinite(v) for v in epoch_loss) else "loss"
            raise TrainingDiverged(f"{desc}: {what} became NaN/inf in epoch {epoch + 1} "
                                   f"(loss per member: {epoch_loss}); {last}. Lower the learning rate.")
        history["train_loss"].append(epoch_loss)
        predictions = None
        if eval_images is not None:
            predictions = _predictions(model, eval_images)
            history["test_errors"].append(
                (predictions != eval_labels.to(predictions.device)).sum(-1).tolist())
        if check_collapse and (epoch + 1) * steps >= COLLAPSE_MIN_STEPS:
            _check_collapse(model, eval_images, eval_labels, images, y_all, epoch + 1, members,
                            desc, checkpoint_path, predictions)
        bar.set_postfix(loss=f"{min(epoch_loss):.4f}")
        done = epoch + 1
        if done % spec.checkpoint_every == 0 or done == spec.epochs:
            save_checkpoint(done)
        if stop_after_epoch is not None and done >= stop_after_epoch:
            if done % spec.checkpoint_every:
                save_checkpoint(done)
            break
    bar.close()
    model.eval()
    return TrainResult(model, history, time.perf_counter() - t0, start_epoch,
                       str(step_fn.dtype).removeprefix("torch."), step_fn.compiled)


def learning_rate(spec: TrainSpec, step: int, steps_per_epoch: int) -> float:
    """Linear warm-up for ``warmup_epochs``, then cosine decay from ``lr`` to 0 at the last step."""
    warmup = spec.warmup_epochs * steps_per_epoch
    if step < warmup:
        return spec.lr * (step + 1) / warmup
    return spec.lr * 0.5 * (1 + math.cos(math.pi * step / (spec.epochs * steps_per_epoch)))


def hinton2012_schedule(spec: TrainSpec, epoch: int) -> tuple[float, float]:
    """(momentum p_e, step size (1 - p_e) lr lr_decay^e) of epoch ``epoch`` (Hinton et al. 2012)."""
    final = spec.momentum if spec.momentum_final is None else spec.momentum_final
    ramp = min(epoch / spec.momentum_epochs, 1.0) if spec.momentum_epochs else 1.0
    p = spec.momentum + (final - spec.momentum) * ramp
    return p, (1 - p) * spec.lr * spec.lr_decay ** epoch


def set_epoch_schedule(step_fn: Step, spec: TrainSpec, epoch: int) -> None:
    """Set epoch ``epoch``'s momentum and step size, in Hinton's velocity form.

    The step keeps torch.optim.SGD's ``buf = p buf + grad`` and moves by ``lr * buf``;
    Hinton's velocity is ``v = p v + s grad``. They agree when ``buf = v / s``, so when the
    step size changes from s to s' (once per epoch) the buffers are rescaled by s / s'.
    """
    p, step = hinton2012_schedule(spec, epoch)
    previous = hinton2012_schedule(spec, epoch - 1)[1] if epoch else step
    step_fn.momentum, step_fn.lr = p, step
    step_fn.rescale_velocity(previous / step)


def start_epoch_saved(path) -> int:
    try:
        return int(read_torch(path)["epoch"])
    except ArtifactError:
        return -1


@torch.no_grad()
def count_errors(model: MLP, images, labels) -> list[int]:
    """Test errors of every member (one host sync)."""
    logits = predict_logits(model, images)
    if logits.dim() == 2:
        logits = logits.unsqueeze(0)
    return (logits.argmax(-1) != labels.to(logits.device)).sum(-1).tolist()
