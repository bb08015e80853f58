"""Causal depthwise 1-D convolution along the sequence axis (the short conv of Mamba blocks).

y_t = bias + sum_{m=0}^{K-1} w_{K-1-m} x_{t-m}, with zeros before the start of the sequence and,
for packed batches, before the start of each sequence of the row (``seq_idx``), as mamba-ssm's
``causal_conv1d_fn(..., seq_idx=...)`` does. The weights live in an ``nn.Conv1d`` (depthwise,
``padding=K-1``) so checkpoints and ``isinstance(m, nn.Conv1d)`` initializations carry over.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssmlab.ssm.ssd_packed import check_seq_idx, segment_ids


class CausalConv1d(nn.Module):
    """Depthwise causal convolution over dim 1 of a (b, l, c) tensor.

    Implements the causal convolution of [TiM4Rec Eq. (15)] (also Eq. (17) on time differences).

    Note: Eq. (15) writes the history before the start as P_max(t-m, 0) (the first value
    repeated); this code and the authors' pad with zeros, as mamba-ssm does.

    Shapes:
        x: (b, l, c)
        seq_idx: (b, l) int or None (packed rows: no tap crosses a change of seq_idx)
        returns: (b, l, c)
    """

    def __init__(self, channels: int, kernel_size: int = 4, bias: bool = True):
        super().__init__()
        if channels <= 0 or kernel_size <= 0:
            raise ValueError(f"channels and kernel_size must be > 0, got {channels}, {kernel_size}")
        self.kernel_size = kernel_size
        self.conv = nn.Conv1d(
            channels, channels, kernel_size, groups=channels, padding=kernel_size - 1, bias=bias
        )

    @property
    def weight(self) -> torch.Tensor:
        return self.conv.weight

    @property
    def bias(self) -> torch.Tensor | None:
        return self.conv.bias

    def forward(self, x: torch.Tensor, seq_idx: torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != self.conv.in_channels:
            raise ValueError(
                f"x must have shape (b, l, {self.conv.in_channels}), got {tuple(x.shape)}"
            )
        b, l, _c = x.shape
        if seq_idx is None:
            y = self.conv(x.transpose(1, 2))[..., :l]  # (b c l+K-1) -> (b c l)
            return y.transpose(1, 2)
        check_seq_idx(seq_idx, b, l)
        seg = segment_ids(seq_idx)  # (b l)
        k = self.kernel_size
        w = self.conv.weight[:, 0, :]  # (c K): w[:, K-1] multiplies x_t
        xp = F.pad(x, (0, 0, k - 1, 0))  # (b l+K-1 c)
        segp = F.pad(seg, (k - 1, 0), value=-1)  # (b l+K-1)
        y = torch.zeros_like(x)
        for m in range(k):  # tap m reads x_{t-m}
            lo = k - 1 - m
            same = (segp[:, lo : lo + l] == seg).unsqueeze(-1)  # (b l 1)
            y = y + xp[:, lo : lo + l] * w[:, k - 1 - m] * same  # (b l c)
        if self.conv.bias is not None:
            y = y + self.conv.bias
        return y
