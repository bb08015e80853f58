"""Time features of a batch: raw seconds, TiM4Rec deltas, SS4Rec query gaps, normalizations.

Batches carry raw Unix seconds (``time_seq``, ``target_time``, ``target_times``, int64). Models
that want intervals derive them with the functions below:

* :func:`time_deltas`: TiM4Rec's time-difference sequence D (Eq. 9): 0 at the first item of
  each sequence, then the gap to the previous item; 0 at padding.
* :func:`query_gap`: SS4Rec's continuous-time query, the gap from the last history item to the
  target's timestamp (one per row), or per position for the all-positions objective.
* :func:`normalize_time`: ``"raw"`` (seconds as float32), ``"log1p"`` (log(1 + seconds)), or
  ``"scale"`` (seconds / scale; the dataset's scale is the median positive within-user gap,
  ``Dataset.stats()["time_scale"]``). All three are computed in float64 and returned as
  float32, so gaps of decades stay finite (1e9 s -> 20.7 with log1p).
"""

from __future__ import annotations

import numpy as np
import torch

NORMALIZATIONS = ("raw", "log1p", "scale")


def time_deltas(
    time_seq: torch.Tensor,
    item_seq_len: torch.Tensor | None = None,
    seq_idx: torch.Tensor | None = None,
) -> torch.Tensor:
    """Gap to the previous item of the same sequence, 0 at each sequence start and at padding.

    Implements [TiM4Rec Eq. (9)] (D_0 = 0, D_i = t_i - t_{i-1}), with padding and packed
    sequences handled: for packed batches pass ``seq_idx``; a gap never crosses a change of
    ``seq_idx``. Same semantics as ``ssmlab.ssm.time_deltas`` plus padding masking.

    Shapes:
        time_seq: (b, l) int Unix seconds
        item_seq_len: (b,) number of real items per row, or None (no padding)
        seq_idx: (b, l) int sequence number of each token (packed batches), or None
        returns: (b, l) same dtype as time_seq
    """
    if time_seq.dim() != 2:
        raise ValueError(f"time_seq must be (b, l), got shape {tuple(time_seq.shape)}")
    deltas = torch.zeros_like(time_seq)
    deltas[:, 1:] = time_seq[:, 1:] - time_seq[:, :-1]  # (b l-1)
    if seq_idx is not None:
        starts = torch.ones_like(time_seq, dtype=torch.bool)
        starts[:, 1:] = seq_idx[:, 1:] != seq_idx[:, :-1]
        deltas = deltas.masked_fill(starts, 0)
    if item_seq_len is not None:
        positions = torch.arange(time_seq.size(1), device=time_seq.device)
        deltas = deltas.masked_fill(positions[None, :] >= item_seq_len[:, None], 0)
    return deltas


def query_gap(
    time_seq: torch.Tensor,
    item_seq_len: torch.Tensor,
    target_time: torch.Tensor,
    cu_seqlens: torch.Tensor | None = None,
) -> torch.Tensor:
    """Gap from the last history item to the target time (SS4Rec's continuous-time query).

    Padded batches use ``item_seq_len``; packed batches pass ``cu_seqlens`` (the last token of
    sequence i is ``cu_seqlens[i + 1] - 1``).

    Shapes:
        time_seq: (b, l) padded, or (1, t) packed
        item_seq_len: (b,) or (n,)
        target_time: (b,) or (n,)
        cu_seqlens: (n + 1,) int32, packed batches only
        returns: (b,) or (n,)
    """
    if cu_seqlens is not None:
        last = time_seq[0, cu_seqlens[1:].long() - 1]  # (n)
    else:
        last = time_seq.gather(1, (item_seq_len - 1).clamp(min=0)[:, None]).squeeze(1)  # (b)
    return target_time - last


def next_gaps(time_seq: torch.Tensor, target_times: torch.Tensor) -> torch.Tensor:
    """Per-position query gaps of the all-positions objective, 0 where there is no target.

    Shapes: time_seq (b, l), target_times (b, l) -> (b, l)
    """
    return torch.where(target_times > 0, target_times - time_seq, torch.zeros_like(time_seq))


def normalize_time(
    gaps: torch.Tensor, method: str = "log1p", scale: float | None = None
) -> torch.Tensor:
    """Map gaps in seconds to float32 model inputs (``raw``, ``log1p`` or ``scale``).

    Negative gaps (impossible after the stable sort) are clamped to 0.

    Shapes: gaps (...) int or float seconds -> (...) float32
    """
    if method not in NORMALIZATIONS:
        raise ValueError(f"method must be one of {NORMALIZATIONS}, got {method!r}")
    seconds = gaps.to(torch.float64).clamp(min=0)
    if method == "log1p":
        seconds = torch.log1p(seconds)
    elif method == "scale":
        if scale is None or not np.isfinite(scale) or scale <= 0:
            raise ValueError(f"method='scale' needs a positive finite scale, got {scale!r}")
        seconds = seconds / scale
    return seconds.to(torch.float32)


def time_scale(timestamps: np.ndarray, offsets: np.ndarray) -> float:
    """Median positive gap between consecutive items of the same user, in seconds (1.0 if none).

    Shapes: timestamps (n,) sorted per user, offsets (u + 1,) row offsets -> float
    """
    gaps = np.diff(timestamps)
    within = np.ones(len(gaps), dtype=bool)
    within[offsets[1:-1] - 1] = False  # the gap from one user's last item to the next's first
    positive = gaps[within & (gaps > 0)]
    return float(np.median(positive)) if len(positive) else 1.0


def add_time_features(
    batch: dict[str, torch.Tensor], method: str = "log1p", scale: float | None = None
) -> dict[str, torch.Tensor]:
    """A copy of ``batch`` with float32 ``time_delta`` and ``query_gap`` (normalized) added.

    ``query_gap`` is (b,) for batches with ``target_time``, (b, l) for the all-positions ones.
    These keys are optional extras on top of the batch contract of ``ssmlab.models.base``.
    """
    out = dict(batch)
    seq_idx = batch.get("seq_idx")
    lengths = None if seq_idx is not None else batch["item_seq_len"]
    out["time_delta"] = normalize_time(
        time_deltas(batch["time_seq"], lengths, seq_idx), method, scale
    )
    if "target_time" in batch:
        gap = query_gap(
            batch["time_seq"], batch["item_seq_len"], batch["target_time"], batch.get("cu_seqlens")
        )
        out["query_gap"] = normalize_time(gap, method, scale)
    elif "target_times" in batch:
        out["query_gap"] = normalize_time(
            next_gaps(batch["time_seq"], batch["target_times"]), method, scale
        )
    return out
