"""The recipe of one training run: what a stack shares, what each member owns, the schedule.

``TrainSpec`` holds the hyper-parameters the paper leaves open (Section 3 gives the
architectures and the temperature, not the optimiser), validated once, here; ``Member`` is
what distinguishes the networks of one stack: seed, temperature and the weights of the soft
and hard terms of the distillation loss (Section 2). The learning-rate schedules are ours
(cosine) and Hinton et al.'s (2012, App. A) for the paper's teacher. ``fingerprint`` names
configs and checkpoints.
"""
from __future__ import annotations

import hashlib
import json
import math
import numbers
from dataclasses import asdict, dataclass
from typing import Sequence

from .losses import check_weights

SCHEDULES = ("cosine", "hinton2012")
#: The arithmetic of the GEMMs (``kdlib.core.step.compute_dtype``) and the optimisers of the step.
PRECISIONS = ("float32", "bfloat16")
OPTIMIZERS = ("sgd", "adam")


def check_widths(widths) -> tuple[int, ...]:
    widths = tuple(widths) if not isinstance(widths, int) else (widths,)
    if not widths or any(not isinstance(w, int) or isinstance(w, bool) or w <= 0 for w in widths):
        raise ValueError(f"hidden widths must be a non-empty list of positive integers, "
                         f"got {widths!r}")
    return widths


def check_max_norm(max_norm) -> float | None:
    if max_norm is not None and not max_norm > 0:
        raise ValueError(f"max_norm must be positive or None, got {max_norm}")
    return max_norm


def check_dropout(p: float, name: str) -> float:
    if not 0.0 <= float(p) < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {p}")
    return float(p)


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
    #: GEMM precision: "float32", or "bfloat16" with float32 master weights (kdlib.core.step)
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
    #: "sgd" (momentum ``momentum``) or "adam" (torch.optim.Adam's betas and eps; ``momentum``
    #: unused; cosine schedule only)
    optimizer: str = "sgd"

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
        check_max_norm(self.max_norm)
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
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.optimizer == "adam" and self.schedule != "cosine":
            raise ValueError("the adam optimizer takes the cosine schedule only")
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


def fingerprint(obj) -> str:
    """Short stable hash of a JSON-able description (config identity)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def checkpoint_identity(spec: TrainSpec, members: Sequence[Member], n: int) -> str:
    """What a checkpoint must have been written by to be resumed: the spec, the members and
    the size of the transfer set (stored in the checkpoint as ``fingerprint``)."""
    return fingerprint({"spec": asdict(spec), "members": [asdict(m) for m in members], "n": n})


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
