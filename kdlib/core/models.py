"""Multilayer perceptrons of the paper's MNIST experiments (Section 3).

``MLP`` holds ``num_models`` independent networks of the same shape as stacked weights,
so a sweep of students trains as one batched model (one ``baddbmm`` per layer) while a
single network (``num_models=1``) is an ordinary ReLU MLP. Member ``k`` is initialised
from its own seed, so a stack computes exactly what its members would compute apart.

Regularisation follows the dropout recipe the paper cites (Hinton et al., 2012):
dropout on the input and hidden units and a max-norm bound on each unit's incoming weights
(enforced after every update by ``kdlib.core.step``).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from .data import NUM_CLASSES
from .dropout import member_masks
from .spec import check_dropout, check_max_norm, check_widths

INPUT_SIZE = 784


class MLP(nn.Module):
    """``num_models`` ReLU MLPs ``in -> widths... -> out``; weights stacked as (K, in, out).

    ``forward(x)`` takes (B, in) (the same batch for every member) or (K, B, in) and returns
    (K, B, out), also for a single network (K = 1).
    ``dropout`` masks come from per-member generators given to ``forward``.
    """

    def __init__(self, widths: Sequence[int], *, num_models: int = 1,
                 input_dropout: float = 0.0, hidden_dropout: float = 0.0,
                 max_norm: float | None = None, in_features: int = INPUT_SIZE,
                 out_features: int = NUM_CLASSES, seeds: Sequence[int] | None = None,
                 init_std: float | None = None):
        super().__init__()
        self.widths = check_widths(widths)
        if num_models <= 0:
            raise ValueError(f"num_models must be positive, got {num_models}")
        self.num_models = num_models
        self.input_dropout = check_dropout(input_dropout, "input_dropout")
        self.hidden_dropout = check_dropout(hidden_dropout, "hidden_dropout")
        self.max_norm = check_max_norm(max_norm)
        sizes = (in_features, *self.widths, out_features)
        self.weights = nn.ParameterList(
            nn.Parameter(torch.empty(num_models, a, b)) for a, b in zip(sizes, sizes[1:]))
        self.biases = nn.ParameterList(
            nn.Parameter(torch.empty(num_models, 1, b)) for b in sizes[1:])
        self.reset_parameters(seeds if seeds is not None else range(num_models), init_std)

    @classmethod
    def of(cls, spec, seeds: Sequence[int] = (0,)) -> "MLP":
        """The stack of ``len(seeds)`` networks a ``kdlib.core.spec.TrainSpec`` describes."""
        return cls(spec.widths, num_models=len(seeds), input_dropout=spec.input_dropout,
                   hidden_dropout=spec.hidden_dropout, max_norm=spec.max_norm, seeds=seeds,
                   init_std=spec.init_std)

    @torch.no_grad()
    def reset_parameters(self, seeds: Sequence[int], init_std: float | None = None) -> None:
        """Member k from ``torch.Generator().manual_seed(seeds[k])``: weights and biases
        U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's default), or with ``init_std`` weights
        N(0, init_std^2) and zero biases (Hinton et al. 2012 use 0.01)."""
        seeds = list(seeds)
        if len(seeds) != self.num_models:
            raise ValueError(f"need {self.num_models} seeds, got {len(seeds)}")
        for k, seed in enumerate(seeds):
            g = torch.Generator().manual_seed(int(seed))
            for w, b in zip(self.weights, self.biases):
                if init_std is not None:
                    w[k].copy_(torch.randn(w.shape[1:], generator=g) * init_std)
                    b[k].zero_()
                    continue
                bound = 1.0 / math.sqrt(w.shape[1])
                w[k].copy_(torch.rand(w.shape[1:], generator=g) * 2 * bound - bound)
                b[k].copy_(torch.rand(b.shape[1:], generator=g) * 2 * bound - bound)

    @property
    def device(self) -> torch.device:
        return self.weights[0].device

    def forward(self, x: torch.Tensor, generators: Sequence[torch.Generator] | None = None):
        """Logits (K, B, out). With ``self.training`` and dropout > 0, ``generators`` (one per
        member) draw the masks."""
        drop = self.training and (self.input_dropout > 0 or self.hidden_dropout > 0)
        if drop and (generators is None or len(generators) != self.num_models):
            raise ValueError("training with dropout needs one torch.Generator per member")
        h = x
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            p = self.input_dropout if i == 0 else self.hidden_dropout
            if drop and p > 0:
                h = _dropout(h, p, generators, self.num_models)
            if h.dim() == 2 and self.num_models == 1:
                # squeeze, not w[0]: a view whose backward is free (select's backward
                # would fill a zero tensor and copy the gradient into it every step)
                h = torch.addmm(b.squeeze(0), h, w.squeeze(0))
            elif h.dim() == 2:
                h = torch.baddbmm(b, h.expand(self.num_models, *h.shape), w)
            else:
                h = torch.baddbmm(b, h, w)
            if i < last:
                h = torch.relu(h)
        return h.unsqueeze(0) if h.dim() == 2 else h

    def member(self, k: int) -> "MLP":
        """A single-model copy of member ``k``."""
        single = MLP(self.widths, input_dropout=self.input_dropout,
                     hidden_dropout=self.hidden_dropout, max_norm=self.max_norm,
                     in_features=self.weights[0].shape[1],
                     out_features=self.weights[-1].shape[2], seeds=[0]).to(self.device)
        with torch.no_grad():
            for dst, src in zip(single.parameters(), self.parameters()):
                dst.copy_(src[k:k + 1])
        return single

    def extra_repr(self) -> str:
        return (f"widths={self.widths}, num_models={self.num_models}, input_dropout="
                f"{self.input_dropout}, hidden_dropout={self.hidden_dropout}, max_norm={self.max_norm}")


def _dropout(h: torch.Tensor, p: float, generators, k: int) -> torch.Tensor:
    """Inverted dropout with one mask per member, each drawn from that member's generator by
    the training step's own draw (``kdlib.core.dropout.member_masks``): one dropout path in kdlib."""
    if h.dim() == 2:
        h = h.unsqueeze(0) if k == 1 else h.expand(k, *h.shape)
    return h * member_masks(h.shape[1:], p, generators, h.device, h.dtype)


def parameter_count(widths: Sequence[int], in_features: int = INPUT_SIZE,
                    out_features: int = NUM_CLASSES) -> int:
    sizes = (in_features, *check_widths(widths), out_features)
    return sum(a * b + b for a, b in zip(sizes, sizes[1:]))
