"""Normalizations of the SSM blocks: RMSNorm, Mamba2's gated RMSNorm, and a causal LayerNorm.

``GatedRMSNorm`` is the ``RMSNormGated`` of mamba-ssm (``ops/triton/layernorm_gated.py``) in
plain torch: with ``norm_before_gate=False`` (the Mamba2 default) it computes
RMSNorm(y * silu(z)). ``PrefixLayerNorm`` normalizes along the sequence axis with statistics of
positions <= t only; it is the causal stand-in for TiM4Rec's LayerNorm across positions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _rms_normalize(x: torch.Tensor, eps: float) -> torch.Tensor:
    """x / sqrt(mean(x^2) + eps) over the last axis, computed in float32 (or float64)."""
    work = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    return work * torch.rsqrt(work.pow(2).mean(dim=-1, keepdim=True) + eps)


class RMSNorm(nn.Module):
    """Root-mean-square normalization with a learned scale (no centering, no bias).

    Shapes:
        x: (..., d)
        returns: (..., d), dtype of x
    """

    def __init__(self, d: int, eps: float = 1e-5):
        super().__init__()
        if d <= 0:
            raise ValueError(f"d must be > 0, got {d}")
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.weight.numel():
            raise ValueError(f"x must have last dim {self.weight.numel()}, got {tuple(x.shape)}")
        return (_rms_normalize(x, self.eps) * self.weight).to(x.dtype)


class GatedRMSNorm(nn.Module):
    """Mamba2's gated RMSNorm: RMSNorm(y * silu(z)) (or RMSNorm(y) * silu(z)), per group.

    Implements the output gate of the Mamba2 block [Mamba2] (mamba-ssm ``RMSNormGated``).
    ``group_size`` splits the last axis into groups normalized separately (None: one group).

    Shapes:
        y: (..., d)
        z: (..., d) or None (then a plain RMSNorm)
        returns: (..., d), dtype of y
    """

    def __init__(
        self,
        d: int,
        eps: float = 1e-5,
        norm_before_gate: bool = False,
        group_size: int | None = None,
    ):
        super().__init__()
        group_size = d if group_size is None else group_size
        if d <= 0 or group_size <= 0 or d % group_size:
            raise ValueError(f"group_size must divide d = {d}, got group_size = {group_size}")
        self.eps = eps
        self.norm_before_gate = norm_before_gate
        self.group_size = group_size
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, y: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        d = self.weight.numel()
        if y.shape[-1] != d:
            raise ValueError(f"y must have last dim {d}, got {tuple(y.shape)}")
        if z is not None and z.shape != y.shape:
            raise ValueError(f"z must have the shape of y {tuple(y.shape)}, got {tuple(z.shape)}")
        out = y.float() if y.dtype in (torch.float16, torch.bfloat16) else y
        if z is not None and not self.norm_before_gate:
            out = out * F.silu(z.to(out.dtype))
        groups = out.unflatten(-1, (d // self.group_size, self.group_size))  # (... g s)
        out = _rms_normalize(groups, self.eps).flatten(-2) * self.weight  # (... d)
        if z is not None and self.norm_before_gate:
            out = out * F.silu(z.to(out.dtype))
        return out.to(y.dtype)


class PrefixLayerNorm(nn.Module):
    """LayerNorm along the sequence axis using only positions <= t at position t (causal).

    Position t is normalized with the mean and variance of x_0..x_t, then scaled by a
    per-position weight and bias (the shapes of ``nn.LayerNorm(max_len)``). The statistics run
    in float64 on values shifted by x_0 (variance is shift-invariant), so raw Unix-second gaps
    do not cancel catastrophically. Position 0 has variance 0 and returns its bias.

    Shapes:
        x: (..., l) with l <= max_len
        returns: (..., l)
    """

    def __init__(self, max_len: int, eps: float = 1e-5):
        super().__init__()
        if max_len <= 0:
            raise ValueError(f"max_len must be > 0, got {max_len}")
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(max_len))
        self.bias = nn.Parameter(torch.zeros(max_len))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        l = x.shape[-1]
        if l > self.weight.numel():
            raise ValueError(f"x has {l} positions, more than max_len = {self.weight.numel()}")
        work = x.double() - x[..., :1].double()  # (... l)
        count = torch.arange(1, l + 1, device=x.device, dtype=torch.float64)  # (l)
        mean = work.cumsum(-1) / count  # (... l)
        var = (work.pow(2).cumsum(-1) / count - mean.pow(2)).clamp(min=0.0)  # (... l)
        normed = ((work - mean) * torch.rsqrt(var + self.eps)).to(x.dtype)
        return normed * self.weight[:l] + self.bias[:l]
