"""Shared pieces of the SSD forms: input checks and casting, the stable segment sum, the mask."""

from __future__ import annotations

from typing import NamedTuple

import torch

from ssmlab.ssm.ssd_packed import check_seq_idx, segment_ids


class SSDInputs(NamedTuple):
    """Checked SSD inputs in the compute dtype; B and C are expanded from groups to heads."""

    x: torch.Tensor  # (b l h p)
    dt: torch.Tensor  # (b l h)
    A: torch.Tensor  # (h)
    B: torch.Tensor  # (b l h n)
    C: torch.Tensor  # (b l h n)
    D: torch.Tensor | None  # (h p) or None
    seg: torch.Tensor | None  # (b l) segment ids 0, 1, 2, ... or None
    h0: torch.Tensor | None  # (b h p n) or None
    out_dtype: torch.dtype


def _shape(t) -> tuple | str:
    return tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__


def prepare(x, dt, A, B, C, chunk_size, D, seq_idx, initial_states, check_only=False):
    """Check shapes (ValueError naming the argument) and cast to float32 (float64 for float64 x)."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or not x.is_floating_point():
        raise ValueError(f"x must be a floating tensor of shape (b, l, h, p), got {_shape(x)}")
    b, seqlen, h, p = x.shape
    if seqlen == 0:
        raise ValueError("x must hold at least one position (l >= 1), got l = 0")
    if not isinstance(dt, torch.Tensor) or dt.shape != (b, seqlen, h):
        raise ValueError(f"dt must have shape (b, l, h) = ({b}, {seqlen}, {h}), got {_shape(dt)}")
    if not isinstance(A, torch.Tensor) or A.shape != (h,):
        raise ValueError(f"A must have shape (h,) = ({h},), got {_shape(A)}")
    if not isinstance(B, torch.Tensor) or B.dim() != 4 or B.shape[:2] != (b, seqlen):
        raise ValueError(
            f"B must have shape (b, l, g, n) with (b, l) = ({b}, {seqlen}), got {_shape(B)}"
        )
    g, n = B.shape[2:]
    if g == 0 or h % g != 0:
        raise ValueError(f"B's group count g = {g} must divide the head count h = {h}")
    if not isinstance(C, torch.Tensor) or C.shape != B.shape:
        raise ValueError(f"C must have the shape of B {tuple(B.shape)}, got {_shape(C)}")
    if D is not None and (not isinstance(D, torch.Tensor) or D.shape not in ((h,), (h, p))):
        raise ValueError(f"D must have shape (h,) = ({h},) or (h, p) = ({h}, {p}), got {_shape(D)}")
    check_seq_idx(seq_idx, b, seqlen)
    if initial_states is not None and (
        not isinstance(initial_states, torch.Tensor) or initial_states.shape != (b, h, p, n)
    ):
        raise ValueError(
            f"initial_states must have shape (b, h, p, n) = ({b}, {h}, {p}, {n}), "
            f"got {_shape(initial_states)}"
        )
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
    if check_only:
        return None
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    B, C = (t.to(work).repeat_interleave(h // g, dim=2) for t in (B, C))  # (b l h n)
    if D is not None:
        D = D.to(work) if D.dim() == 2 else D.to(work)[:, None].expand(h, p)  # (h p)
    return SSDInputs(
        x=x.to(work),
        dt=dt.to(work),
        A=A.to(work),
        B=B,
        C=C,
        D=D,
        seg=None if seq_idx is None else segment_ids(seq_idx),
        h0=None if initial_states is None else initial_states.to(work),
        out_dtype=x.dtype,
    )


def finish(y, final, v: SSDInputs, return_final_states: bool):
    """Add the skip term D x, cast back to the input dtype, and pick the return value."""
    if v.D is not None:
        y = y + v.D * v.x  # (b l h p)
    y = y.to(v.out_dtype)
    return (y, final.to(v.out_dtype)) if return_final_states else y


def segment_sum(dA: torch.Tensor) -> torch.Tensor:
    """S[..., i, j] = sum_{k=j+1..i} dA[..., k] for j <= i, and 0 above the diagonal.

    Built as a cumulative sum over a masked copy (each column j starts summing after j), so no
    difference of two large cumulative sums appears: exact for large |dA| and free of inf - inf.

    Shapes:
        dA: (..., l)
        returns S: (..., l, l)
    """
    seqlen = dA.shape[-1]
    after = torch.ones(seqlen, seqlen, dtype=torch.bool, device=dA.device).triu(diagonal=1)
    # terms[..., j, k] = dA[k] for k > j, else 0; summing along k (contiguous) up to i gives S[i, j]
    terms = dA[..., None, :].expand(*dA.shape, seqlen).masked_fill(~after, 0.0)  # (..., j, k)
    return terms.cumsum(dim=-1).transpose(-1, -2)  # (..., i, j)


def decay_mask(dA: torch.Tensor, seg: torch.Tensor | None = None) -> torch.Tensor:
    """L[..., i, j] = exp(S[i, j]) for j <= i within one segment, else 0 (S from ``segment_sum``).

    Masked entries are multiplied by 0 after an exp of a finite number, so their gradients are 0
    (never 0 * inf).

    Shapes:
        dA: (..., l) log-decays dt * A
        seg: segment ids broadcastable to dA's shape, or None
        returns L: (..., l, l)
    """
    seqlen = dA.shape[-1]
    keep = torch.ones(seqlen, seqlen, dtype=torch.bool, device=dA.device).tril()  # (i j)
    if seg is not None:
        keep = keep & (seg[..., :, None] == seg[..., None, :])  # (..., i, j)
    return torch.exp(segment_sum(dA)) * keep
