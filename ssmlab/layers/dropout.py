"""Dropout whose mask is drawn by comparing uniforms on the CPU.

y = x * m / (1 - p) with m_i ~ Bernoulli(1 - p) independent (Srivastava et al., JMLR 2014), as
``nn.Dropout``. On the CPU torch draws m with ``bernoulli_``; m = (U >= p) with U ~ Uniform[0, 1)
from ``rand_like`` has the same law (P(U >= p) = 1 - p) and took 2.1-3.2x less time forward +
backward, which made Beauty training steps of BERT4Rec 1.75x cheaper, TiM4Rec (prefix rows)
1.40x and SASRec 1.12x (``benchmarks/dropout.py``). The masks differ draw for draw from
``nn.Dropout``'s, so a seeded run gives other numbers than with ``CPU_UNIFORM = False``, from
the same distribution. ``F.dropout`` stays the path on other devices and the reference in the
tests.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CPU_UNIFORM = True  # False: F.dropout on the CPU too (the reference; benchmarks switch it)


def uniform_mask(x: torch.Tensor) -> bool:
    """Whether :func:`dropout` draws the mask of ``x`` from uniforms (CPU, unless switched off)."""
    return CPU_UNIFORM and x.device.type == "cpu"


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """``F.dropout(x, p, training)`` with the uniform-comparison mask on the CPU.

    Shapes: x (...) floating -> (...), same dtype.
    """
    if not training or p == 0.0:
        return x
    if not uniform_mask(x) or not 0.0 < p < 1.0:
        return F.dropout(x, p, training)  # also raises torch's error for p outside [0, 1]
    return x * torch.rand_like(x).ge_(p).mul_(1.0 / (1.0 - p))  # the scaled mask needs no grad


class Dropout(nn.Dropout):
    """``nn.Dropout`` (same ``p``, ``inplace``, state and ``isinstance``) through :func:`dropout`.

    Shapes: x (...) -> (...).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inplace:
            return super().forward(x)
        return dropout(x, self.p, self.training)
