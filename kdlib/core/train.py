"""One fast training loop for teachers, students and distilled students (Section 3).

The whole training set lives as one float tensor on the device; each epoch draws a
``randperm`` per member, batches are gathered by index, jitter is one batched gather, the
teacher's logits for the (un-jittered) transfer set are computed once and indexed, and
losses are summed on the device so the host syncs once per epoch. Several members
(seeds, temperatures, loss weights) of one architecture train together as one stacked
model; each member draws its initialisation, data order, jitter and dropout from its own
generators, so a stack computes what separate runs would. One step (forward, the
distillation loss, backward, update) is ``kdlib.core.step``; the recipe is ``kdlib.core.spec``; the
end-of-epoch checks are ``kdlib.core.checks``.

Checkpoints are written atomically every ``checkpoint_every`` epochs with every RNG state;
a killed run resumes from the last one to the same result as an uninterrupted run.
"""
from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from .checks import COLLAPSE_SAMPLE, check_collapse, check_divergence, collapse_check_due
from .data import jitter as jitter_batch
from .data import to_float
from .evaluate import count_errors
from .io import ArtifactError, read_torch, write_torch
from .models import MLP
from .spec import Member, TrainSpec, checkpoint_identity, hinton2012_schedule, learning_rate
from .step import Step, compute_dtype

#: Runs with at least this many steps compile the update (kdlib.core.step): about 16 s to compile
#: on this project's CPU, repaid after about 20 epochs of a 2x800 student
#: (benchmarks/README.md).
COMPILE_MIN_STEPS = 10_000


@dataclass
class TrainResult:
    model: MLP
    history: dict = field(default_factory=dict)  # per-epoch lists, one value per member
    wall_time: float = 0.0  # seconds of training, every resumed stretch included
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


@torch.no_grad()
def predict_logits(model: MLP, images: torch.Tensor, batch_size: int = 5000) -> torch.Tensor:
    """Logits (K, N, C) of an eval-mode stack (K = 1 for a single model); uint8 or float input."""
    was_training = model.training
    model.eval()
    x = to_float(images) if images.dtype == torch.uint8 else images
    x = x.to(model.device)
    out = torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)], dim=-2) \
        if len(x) else model(x)
    model.train(was_training)
    return out


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


# ----------------------------------------------------------------------------- the state of a run
@dataclass
class _Run:
    """What a run carries from step to step: the stack, its step, each member's generators
    (data order, and jitter plus dropout), the transfer set and the members' loss weights."""

    model: MLP
    step: Step
    order_gens: list
    noise_gens: list
    images: torch.Tensor                 # (N, in) float
    labels: torch.Tensor                 # (N,)
    teacher_logits: torch.Tensor | None  # (N, C), only when a member has soft_weight > 0
    teacher: MLP | None                  # or the teacher itself, labelling every (jittered) batch
    needs_labels: bool                   # a member has hard_weight > 0
    losses: tuple                        # temperatures, soft weights, hard weights (K,) each
    shared_order: bool                   # one seed for every member: one data order for all
    history: dict = field(default_factory=lambda: {"train_loss": [], "test_errors": []})
    seconds: float = 0.0                 # training time of every stretch so far (resumes add up)


def _generators(seeds, device):
    order = [torch.Generator().manual_seed(1_000_003 * int(s) + 17) for s in seeds]
    noise = [torch.Generator(device=device).manual_seed(1_000_003 * int(s) + 29) for s in seeds]
    return order, noise


def _check_inputs(images, labels, members, teacher_logits, teacher=None) -> None:
    if not members:
        raise ValueError("need at least one member to train")
    n = len(images)
    if n == 0:
        raise ValueError("the training set is empty")
    if labels.shape != (n,):
        raise ValueError(f"labels {tuple(labels.shape)} do not match {n} images")
    if any(m.soft_weight > 0 for m in members) and teacher is None and (
            teacher_logits is None or len(teacher_logits) != n):
        raise ValueError("members with soft_weight > 0 need teacher_logits for every training "
                         "image (or the teacher itself)")


def _start(images, labels, spec: TrainSpec, members: list[Member], teacher_logits,
           compile: bool | None, teacher: MLP | None = None, initial: MLP | None = None) -> _Run:
    """A freshly initialised stack (member k from its seed), or a copy of ``initial``, and its step."""
    device = images.device
    needs_teacher = any(m.soft_weight > 0 for m in members)
    losses = tuple(torch.tensor([getattr(m, name) for m in members], device=device)
                   for name in ("temperature", "soft_weight", "hard_weight"))
    if initial is None:
        model = MLP.of(spec, [m.seed for m in members]).to(device)
    else:
        if initial.num_models != len(members) or tuple(initial.widths) != tuple(spec.widths):
            raise ValueError(f"the initial model ({initial.num_models} x {tuple(initial.widths)}) "
                             f"does not match {len(members)} members of widths {tuple(spec.widths)}")
        model = copy.deepcopy(initial).to(device)
    if compile is None:  # compiling takes minutes: worth it for long runs only
        compile = spec.epochs * math.ceil(len(images) / spec.batch_size) >= COMPILE_MIN_STEPS
    step = Step(model, spec.precision, optimizer=spec.optimizer, lr=spec.lr,
                momentum=spec.momentum, constrain_output=spec.max_norm_output,
                max_grad_norm=spec.max_grad_norm, compile=compile)
    order_gens, noise_gens = _generators([m.seed for m in members], device)
    return _Run(model, step, order_gens, noise_gens, to_float(images), labels.to(device),
                teacher_logits.to(device, torch.float32) if needs_teacher and teacher is None
                else None, _low_precision_teacher(teacher, spec.precision) if needs_teacher else None,
                any(m.hard_weight > 0 for m in members), losses,
                len({m.seed for m in members}) == 1)


def _low_precision_teacher(teacher: MLP | None, precision: str) -> MLP | None:
    """An eval-mode copy of ``teacher`` whose GEMMs run at the student's precision."""
    if teacher is None:
        return None
    copy = teacher.member(0).eval()
    return copy.to(compute_dtype(precision, copy.device))


@torch.no_grad()
def _teacher_logits(teacher: MLP, x: torch.Tensor) -> torch.Tensor:
    """The teacher's float32 logits for a batch ``x`` (B, in) or (K, B, in): what the
    student sees, jittered or not, labelled as it is seen."""
    dtype = teacher.weights[0].dtype
    return teacher(x.reshape(-1, x.shape[-1]).to(dtype)).float().reshape(*x.shape[:-1], -1)


# ----------------------------------------------------------------------------- checkpoints
def save_checkpoint(path: Path | None, ident: str, epoch: int, run: _Run) -> None:
    """Everything a resumed run needs to continue bit for bit (atomic write)."""
    if path:
        write_torch(path, {
            "fingerprint": ident, "epoch": epoch, "model": run.model.state_dict(),
            "velocity": run.step.velocity, "second_moment": run.step.second_moment,
            "updates": run.step.updates, "history": run.history, "seconds": run.seconds,
            "order_rng": [g.get_state() for g in run.order_gens],
            "noise_rng": [g.get_state() for g in run.noise_gens]})


def load_checkpoint(path: Path | None, ident: str, run: _Run) -> int:
    """Restore ``run`` from the checkpoint at ``path`` if there is one; the epochs it holds."""
    if not (path and path.exists()):
        return 0
    try:
        state = read_torch(path)
    except ArtifactError as e:
        raise ArtifactError(f"{path}: corrupt or half-written checkpoint ({e.__cause__ or e}); "
                            "delete it to train this run from the start") from e
    if not isinstance(state, dict) or state.get("fingerprint") != ident:
        raise ArtifactError(f"{path}: checkpoint of another configuration; "
                            "delete it or use another path")
    if "velocity" not in state:
        raise ArtifactError(f"{path}: checkpoint of an older kdlib (no velocity); "
                            "delete it to train this run from the start")
    run.model.load_state_dict(state["model"])
    for v, saved in zip(run.step.velocity, state["velocity"]):
        v.copy_(saved)
    for s, saved in zip(run.step.second_moment, state.get("second_moment", [])):
        s.copy_(saved)
    run.step.updates = state.get("updates", 0)
    for g, s in zip(run.order_gens, state["order_rng"]):
        g.set_state(s)
    for g, s in zip(run.noise_gens, state["noise_rng"]):
        g.set_state(s)
    run.history = state["history"]
    run.seconds = float(state.get("seconds", 0.0))
    return state["epoch"]


# ----------------------------------------------------------------------------- one epoch
def _batch(run: _Run, spec: TrainSpec, idx: torch.Tensor) -> torch.Tensor:
    """The images of one batch, each member's jittered by its own generator."""
    k, b = len(run.order_gens), idx.shape[-1]
    x = run.images[idx]
    if not spec.jitter:
        return x
    if k == 1:
        return jitter_batch(x, spec.jitter, run.noise_gens[0])
    if run.shared_order:
        x = x.expand(k, *x.shape)
    return torch.stack([jitter_batch(xi, spec.jitter, g)
                        for xi, g in zip(x.reshape(k, b, -1), run.noise_gens)])


def _train_epoch(run: _Run, spec: TrainSpec, epoch: int) -> list[float]:
    """One pass over the transfer set, each member in its own order; its mean loss per member."""
    n, device = len(run.images), run.images.device
    steps = math.ceil(n / spec.batch_size)
    perms = torch.stack([torch.randperm(n, generator=g) for g in run.order_gens]).to(device)
    running = torch.zeros(len(run.order_gens), device=device)
    if spec.schedule == "hinton2012":
        set_epoch_schedule(run.step, spec, epoch)
    for s in range(steps):
        if spec.schedule == "cosine":
            run.step.lr = learning_rate(spec, epoch * steps + s, steps)
        idx = perms[:, s * spec.batch_size:(s + 1) * spec.batch_size]
        b = idx.shape[1]
        if run.shared_order:
            idx = idx[0]
        x = _batch(run, spec, idx)
        teacher = (run.teacher_logits[idx] if run.teacher_logits is not None
                   else _teacher_logits(run.teacher, x) if run.teacher is not None else None)
        labels = run.labels[idx] if run.needs_labels else None
        loss = run.step(x, teacher, labels, *run.losses, run.noise_gens)
        running += loss * b
    if spec.max_grad_norm is not None:  # how often clipping acted, per member and epoch
        run.history.setdefault("clipped_share", []).append(run.step.clipped_share())
    return (running / n).tolist()


def _end_of_epoch(run: _Run, epoch: int, epoch_loss: list[float], eval_images, eval_labels,
                  evaluate: bool, check: bool, members, desc: str, checkpoint_path) -> None:
    """After epoch ``epoch`` (1-based): stop on divergence, record the loss and (when
    ``evaluate``) the test errors, stop on a collapse (when ``check``)."""
    check_divergence(run.model.parameters(), epoch_loss, epoch, desc, checkpoint_path)
    run.history["train_loss"].append(epoch_loss)
    if evaluate and eval_images is not None:
        logits = predict_logits(run.model, eval_images)
        run.history["test_errors"].append(count_errors(logits, eval_labels))
        checked, labels, what = logits.argmax(-1), eval_labels, "test"
    if not check:
        return
    if eval_images is None:  # a fixed, evenly spaced sample of the training images
        idx = torch.linspace(0, len(run.images) - 1, min(len(run.images), COLLAPSE_SAMPLE)).long()
        idx = idx.to(run.images.device)
        checked = predict_logits(run.model, run.images[idx]).argmax(-1)
        labels, what = run.labels[idx], "training"
    check_collapse(checked, labels, run.labels, epoch, what, members, desc, checkpoint_path)


# ----------------------------------------------------------------------------- the loop
def train(images: torch.Tensor, labels: torch.Tensor, spec: TrainSpec,
          members: Sequence[Member] = (Member(),), *, teacher_logits: torch.Tensor | None = None,
          eval_images: torch.Tensor | None = None, eval_labels: torch.Tensor | None = None,
          checkpoint_path: str | os.PathLike | None = None, progress: bool = True,
          desc: str = "train", stop_after_epoch: int | None = None,
          compile: bool | None = None, check_collapse: bool = True,
          teacher: MLP | None = None, eval_every: int = 1,
          initial: MLP | None = None) -> TrainResult:
    """Train ``len(members)`` MLPs of ``spec`` on (images, labels); return the stack.

    ``teacher_logits`` (N, C) are the cached logits of the teacher on the same transfer set
    (needed when a member has ``soft_weight > 0``); or ``teacher``, the teacher network itself,
    which labels every batch as the student sees it (a jittered transfer set, beyond the
    paper's setting; its GEMMs at the student's precision). ``initial``: start from a copy of
    these weights (a stack of ``len(members)``, e.g. a specialist made from its generalist,
    Section 5.2, whose output units may differ from 10) instead of a fresh initialisation;
    the data order and jitter still come from each member's seed. With ``eval_images``, the test error of
    every member is recorded after every ``eval_every``-th epoch and the last (a run on a
    small transfer set with many epochs records one point per so many images, not per
    epoch, and is checked for a collapse at those points only). ``stop_after_epoch`` ends early (for tests of
    resumption; the checkpoint then holds that epoch). ``compile`` (default: for runs of at
    least ``COMPILE_MIN_STEPS`` steps) fuses the parameter update with torch.compile.
    ``check_collapse``: after every epoch from the ``COLLAPSE_MIN_STEPS``-th update on, once
    the warm-up is over (``kdlib.core.checks.collapse_check_due``), raise ``TrainingCollapsed``
    (the epoch is not checkpointed) when a member predicts one class for almost everything
    (``kdlib.core.checks.collapse_report``; judged on the eval images, else on up to 2000
    training images).
    """
    from tqdm.auto import tqdm
    members = list(members)
    if not (isinstance(eval_every, int) and eval_every >= 1):
        raise ValueError(f"eval_every must be a positive number of epochs, got {eval_every!r}")
    _check_inputs(images, labels, members, teacher_logits, teacher)
    run = _start(images, labels, spec, members, teacher_logits, compile, teacher, initial)
    ident = checkpoint_identity(spec, members, len(images))
    path = Path(checkpoint_path) if checkpoint_path else None
    start_epoch = load_checkpoint(path, ident, run)
    # Momentum buffers of never-active inputs (MNIST's blank border) decay into denormal
    # floats, which make CPU matmuls up to 100x slower: flush denormals to zero (process-wide).
    torch.set_flush_denormal(True)
    if start_epoch == 0:  # a resumed run's weights are already bounded (a second rescale can
        run.step.apply_max_norm()  # move them by an ulp: resume would not equal uninterrupted)
    run.step.refresh_low_precision()
    steps = math.ceil(len(images) / spec.batch_size)
    bar = tqdm(range(start_epoch, spec.epochs), desc=desc, disable=not progress,
               initial=start_epoch, total=spec.epochs, unit="epoch", leave=False)
    t0 = time.perf_counter()
    run.model.train()
    for epoch in bar:
        epoch_loss = _train_epoch(run, spec, epoch)
        done = epoch + 1
        run.seconds, t0 = run.seconds + time.perf_counter() - t0, time.perf_counter()
        evaluate = done % eval_every == 0 or done == spec.epochs
        _end_of_epoch(run, done, epoch_loss, eval_images, eval_labels, evaluate,
                      evaluate and check_collapse and collapse_check_due(done, steps, spec.warmup_epochs),
                      members, desc, path)
        bar.set_postfix(loss=f"{min(epoch_loss):.4f}")
        stop = stop_after_epoch is not None and done >= stop_after_epoch
        if done % spec.checkpoint_every == 0 or done == spec.epochs or stop:
            save_checkpoint(path, ident, done, run)
        if stop:
            break
    bar.close()
    run.model.eval()
    run.seconds += time.perf_counter() - t0
    return TrainResult(run.model, run.history, run.seconds, start_epoch,
                       str(run.step.dtype).removeprefix("torch."), run.step.compiled)
