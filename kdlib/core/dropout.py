"""Dropout masks (Hinton et al. 2012; the paper's teacher, Section 3), one path for training
and for ``MLP.forward`` in training mode.

Masks are drawn as random bytes (8 per 64-bit draw of each member's own generator) instead of
one float per unit: a drop probability p becomes round(256 p) / 256 (0.2 -> 0.1992) and
p = 0.5 uses single bits, exactly. A multiplier is 0 or 1 / keep probability.
"""
from __future__ import annotations

import math

import torch


def _random_bytes(n: int, generator: torch.Generator) -> torch.Tensor:
    words = torch.empty((n + 7) // 8, dtype=torch.int64, device=generator.device)
    words.random_(-2 ** 63, 2 ** 63 - 1, generator=generator)
    return words.view(torch.uint8)[:n]


def keep_probability(p: float) -> float:
    """The keep probability a drop probability ``p`` is realised with (see module docstring)."""
    return 0.5 if p == 0.5 else 1.0 - round(256 * p) / 256


def dropout_mask(shape, p: float, generator: torch.Generator) -> torch.Tensor:
    """Boolean keep-mask of ``shape`` with drop probability ``p``, from ``generator``'s bits."""
    n = math.prod(shape)
    if p == 0.5:
        bits = _random_bytes((n + 7) // 8, generator)
        shifts = torch.arange(8, dtype=torch.uint8, device=bits.device)
        keep = (bits[:, None] >> shifts) & 1
        return keep.reshape(-1)[:n].reshape(shape).bool()
    return (_random_bytes(n, generator) >= round(256 * p)).reshape(shape)


def member_masks(shape, p: float, generators, device, dtype) -> torch.Tensor:
    """(K, *shape) dropout multipliers {0, 1/keep}: one mask per member, each from its generator."""
    scale = 1.0 / keep_probability(p)
    masks = torch.stack([dropout_mask(shape, p, g).to(device) for g in generators])
    return masks.to(dtype).mul_(scale)
