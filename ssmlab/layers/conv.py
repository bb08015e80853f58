"""Causal depthwise 1-D convolution along the sequence axis (the short conv of Mamba blocks).

y_t = bias + sum_{m=0}^{K-1} w_{K-1-m} x_{t-m}, with zeros before the start of the sequence and,
for packed batches, before the start of each sequence of the row (``seq_idx``), as mamba-ssm's
``causal_conv1d_fn(..., seq_idx=...)`` does. The weights live in an ``nn.Conv1d`` (depthwise,
``padding=K-1``) so checkpoints and ``isinstance(m, nn.Conv1d)`` initializations carry over.

On the CPU the convolution runs as K shifted multiply-adds over the (b, l, c) tensor with a
hand-written backward (:class:`ShiftedConv`): oneDNN's depthwise ``conv1d`` took 1.65-20.5x
longer for forward + backward at 2,048 rows of 192 channels and L = 1..50, which made TiM4Rec's
Beauty prefix-row steps 1.2x slower (``benchmarks/causal_conv.py``). ``nn.Conv1d`` stays the path
on other devices and the reference in the tests.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssmlab.ssm.ssd_packed import check_seq_idx, segment_ids

CPU_SHIFTED = True  # False: nn.Conv1d on the CPU too (the reference; benchmarks switch it)


class ShiftedConv(torch.autograd.Function):
    """y = bias + sum_m w[:, K-1-m] * x_{t-m} (the module's formula) as K shifted multiply-adds.

    Backward: dx_t = sum_m w[:, K-1-m] * dy_{t+m}; dw[:, K-1-m] = sum_{b,t} dy_t * x_{t-m};
    dbias = sum_{b,t} dy_t. No padded copies: tap m updates positions m..l-1 in place.

    Shapes: x (b, l, c); weight (c, 1, K) as ``nn.Conv1d`` holds it; bias (c,) or None;
    returns (b, l, c).
    """

    @staticmethod
    def forward(ctx, x, weight, bias):
        w, k, l = weight[:, 0, :], weight.shape[-1], x.shape[1]
        y = x * w[:, k - 1]  # tap 0: x_t
        if bias is not None:
            y += bias
        for m in range(1, min(k, l)):  # tap m reads x_{t-m}: zero before the start
            y[:, m:].addcmul_(x[:, : l - m], w[:, k - 1 - m])
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return y

    @staticmethod
    def backward(ctx, dy):
        x, weight = ctx.saved_tensors
        w, k, l = weight[:, 0, :], weight.shape[-1], x.shape[1]
        dx = dy * w[:, k - 1] if ctx.needs_input_grad[0] else None
        dw = torch.zeros_like(weight) if ctx.needs_input_grad[1] else None
        if dw is not None:
            dw[:, 0, k - 1] = (dy * x).sum((0, 1))
        for m in range(1, min(k, l)):
            if dx is not None:
                dx[:, : l - m].addcmul_(dy[:, m:], w[:, k - 1 - m])
            if dw is not None:
                dw[:, 0, k - 1 - m] = (dy[:, m:] * x[:, : l - m]).sum((0, 1))
        db = dy.sum((0, 1)) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return dx, dw, db


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
        if seq_idx is None and CPU_SHIFTED and x.device.type == "cpu":
            return ShiftedConv.apply(x, self.conv.weight, self.conv.bias)
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
