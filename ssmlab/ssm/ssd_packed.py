"""Packed variable-length sequences for SSD: segment ids, segment-wise reversal, time deltas.

A packed row holds several sequences back to back; ``seq_idx`` (b, l) names the sequence of every
position (SSD4Rec's "segment registers", mamba-ssm's ``seq_idx``). These helpers never let
anything cross a change of ``seq_idx``. They do not import the SSD kernels (``ssd.py`` imports
them), so they are safe to use from models, data code and notebooks.
"""

from __future__ import annotations

import torch


def check_seq_idx(seq_idx: torch.Tensor | None, b: int, seqlen: int, name: str = "seq_idx") -> None:
    """Raise ValueError unless ``seq_idx`` is None or an integer tensor of shape (b, l)."""
    if seq_idx is None:
        return
    if not isinstance(seq_idx, torch.Tensor):
        raise ValueError(
            f"{name} must be a torch.Tensor of shape ({b}, {seqlen}), got {type(seq_idx)}"
        )
    if seq_idx.shape != (b, seqlen):
        raise ValueError(
            f"{name} must have shape (b, l) = ({b}, {seqlen}), got {tuple(seq_idx.shape)}"
        )
    if seq_idx.dtype.is_floating_point or seq_idx.dtype.is_complex or seq_idx.dtype == torch.bool:
        raise ValueError(f"{name} must be an integer tensor, got dtype {seq_idx.dtype}")


def sequence_starts(seq_idx: torch.Tensor) -> torch.Tensor:
    """True where a new sequence starts after position 0 (``seq_idx`` changes from t-1 to t).

    Shapes:
        seq_idx: (b, l) int
        returns: (b, l) bool; column 0 is always False (the row's first sequence is not a reset,
            so ``initial_states`` reach it)
    """
    starts = torch.zeros(seq_idx.shape, dtype=torch.bool, device=seq_idx.device)
    starts[:, 1:] = seq_idx[:, 1:] != seq_idx[:, :-1]
    return starts


def segment_ids(seq_idx: torch.Tensor) -> torch.Tensor:
    """Renumber ``seq_idx`` as 0, 1, 2, ... in each row: the count of changes so far.

    Two positions share a segment id exactly when no change of ``seq_idx`` lies between them,
    so a value that comes back later (0, 0, 1, 0) still starts a new sequence.

    Shapes:
        seq_idx: (b, l) int
        returns: (b, l) int64, non-decreasing along l, starting at 0
    """
    return sequence_starts(seq_idx).long().cumsum(dim=1)


def reverse_within(t: torch.Tensor, seq_idx: torch.Tensor | None = None) -> torch.Tensor:
    """Reverse dim 1 of ``t`` inside each sequence of a packed row (its own inverse).

    Without ``seq_idx`` the whole row is flipped. With it, position i of a sequence that spans
    [start, end] goes to start + end - i, so no element leaves its sequence. This is SSD4Rec's
    user-wise flipping for the backward pass of the masked Bi-SSD block [SSD4Rec].

    Shapes:
        t: (b, l, ...) any dtype
        seq_idx: (b, l) int or None
        returns: (b, l, ...) same dtype
    """
    if t.dim() < 2:
        raise ValueError(f"t must have shape (b, l, ...), got {tuple(t.shape)}")
    if seq_idx is None:
        return t.flip(1)
    b, seqlen = t.shape[:2]
    check_seq_idx(seq_idx, b, seqlen)
    starts = sequence_starts(seq_idx)
    starts[:, 0] = True
    pos = torch.arange(seqlen, device=t.device).expand(b, seqlen)
    # first index of each position's sequence: running max of the start positions
    first = torch.where(starts, pos, torch.zeros_like(pos)).cummax(dim=1).values  # (b l)
    ends = torch.zeros_like(starts)
    ends[:, :-1] = starts[:, 1:]
    ends[:, -1] = True
    # last index of each position's sequence: running min of end positions, from the right
    last_rev = torch.where(ends, pos, torch.full_like(pos, seqlen)).flip(1).cummin(dim=1).values
    last = last_rev.flip(1)  # (b l)
    index = first + last - pos  # (b l)
    index = index.reshape(b, seqlen, *([1] * (t.dim() - 2))).expand_as(t)
    return torch.gather(t, 1, index)


def time_deltas(timestamps: torch.Tensor, seq_idx: torch.Tensor | None = None) -> torch.Tensor:
    """Time difference between each interaction and the previous one of the same sequence.

    Implements [TiM4Rec Eq. (9)]: D_0 = 0 and D_i = t_i - t_{i-1} (written there with 1-based
    timestamps as T_{i+1} - T_i). With ``seq_idx`` every sequence of a packed row starts again at
    D = 0, so no gap is taken across two users.

    Note: negative differences are clamped to 0. They only come from padding (e.g. timestamp 0
    after the real items of a right-padded row) or from unsorted input; a sorted real sequence
    never has one. Integer timestamps stay integers (exact for int64 Unix seconds); floating
    timestamps give floats of the same dtype.

    Shapes:
        timestamps: (b, l) int or float
        seq_idx: (b, l) int or None
        returns: (b, l) same dtype as ``timestamps``
    """
    if not isinstance(timestamps, torch.Tensor) or timestamps.dim() != 2:
        shape = tuple(timestamps.shape) if isinstance(timestamps, torch.Tensor) else timestamps
        raise ValueError(f"timestamps must be a tensor of shape (b, l), got {shape}")
    if timestamps.dtype == torch.bool or timestamps.dtype.is_complex:
        raise ValueError(f"timestamps must be integer or float, got dtype {timestamps.dtype}")
    b, seqlen = timestamps.shape
    check_seq_idx(seq_idx, b, seqlen)
    deltas = torch.zeros_like(timestamps)
    deltas[:, 1:] = timestamps[:, 1:] - timestamps[:, :-1]
    if seq_idx is not None:
        deltas = deltas.masked_fill(sequence_starts(seq_idx), 0)
    return deltas.clamp(min=0)
