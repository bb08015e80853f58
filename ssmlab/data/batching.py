"""Rows and batches: index arithmetic on flat per-user arrays, no Python loop over tokens.

All sequences live in three flat arrays sorted by (user, time): ``items`` (n,), ``times`` (n,)
and per-user ``offsets`` (u + 1,). A *row* is a contiguous slice ``[start, start + length)`` of
those arrays (its history) plus, for the last-item and evaluation rows, the flat index of its
target. Batches gather rows into the dict of tensors described in ``ssmlab.models.base``:
``item_seq``, ``item_seq_len``, ``time_seq``, ``user_id`` + targets, right-padded with 0, width =
the longest row of the batch (``pad_to="batch"``) or ``max_len`` (``pad_to="max_len"``). A model
that wants packed sequences packs the padded batch itself (``ssmlab.models.ssd4rec.pack``).
"""

from __future__ import annotations

import numpy as np
import torch


def last_rows(starts: np.ndarray, ends: np.ndarray, max_len: int | None):
    """RecBole prefix augmentation: every training prefix -> its next item.

    For a training slice ``[s, e)`` the targets are ``s+1 .. e-1``; the history of target p is
    ``[max(s, p - max_len), p)``. Shapes: (u,), (u,) -> row_start, row_len, target (r,) each.
    """
    counts = np.maximum(ends - starts - 1, 0)
    first = np.repeat(starts, counts)  # (r) slice start of each row's user
    target = first + 1 + _ranges(counts)  # (r) flat index of the target
    row_start = first if max_len is None else np.maximum(first, target - max_len)
    return row_start, target - row_start, target


def all_rows(starts: np.ndarray, ends: np.ndarray, max_len: int | None):
    """All-positions rows: every position of a window predicts the next item.

    A training slice ``[s, e)`` has the targets ``s+1 .. e-1`` (the RecBole prefix targets).
    Its inputs ``[s, e-1)`` are cut into windows of ``max_len`` aligned at the end: the last
    window is ``[e-1-max_len, e-1)``, the one before ``[e-1-2*max_len, e-1-max_len)``, and the
    first may be shorter. So every target is trained exactly once per epoch, as in RecBole.
    Difference from RecBole's prefix rows: a target at position j of a window sees only the j
    items of its window as history, not the ``max_len`` items before it (only the users with
    more than ``max_len + 1`` training items have a second window).
    ``max_len=None`` gives one row per user. Users with fewer than 2 training items give none.
    Shapes: (u,), (u,) -> row_start, row_len (r,), windows of a user in time order.
    """
    n_inputs = ends - starts - 1  # (u) inputs = targets per user
    keep = n_inputs >= 1
    starts, n_inputs = starts[keep], n_inputs[keep]
    if max_len is None:
        return starts, n_inputs
    windows = -(-n_inputs // max_len)  # ceil
    k = np.repeat(windows, windows) - 1 - _ranges(windows)  # (r) windows from the end: 0 = last
    row_end = np.repeat(starts + n_inputs, windows) - k * max_len
    row_start = np.maximum(np.repeat(starts, windows), row_end - max_len)
    return row_start, row_end - row_start


def eval_rows(starts: np.ndarray, target: np.ndarray, max_len: int | None):
    """History before ``target`` (flat index), truncated to ``max_len``. Shapes: (u,) -> (u,) x3."""
    row_start = starts if max_len is None else np.maximum(starts, target - max_len)
    return row_start, target - row_start, target


def _ranges(counts: np.ndarray) -> np.ndarray:
    """``concat([arange(c) for c in counts])`` without a loop. Shapes: (r,) -> (sum counts,)."""
    total = int(counts.sum())
    ends = np.cumsum(counts)
    return np.arange(total) - np.repeat(ends - counts, counts)


def padded_batch(
    items: np.ndarray,
    times: np.ndarray,
    row_start: np.ndarray,
    row_len: np.ndarray,
    target: np.ndarray | None = None,
    width: int | None = None,
    user: np.ndarray | None = None,
) -> dict[str, torch.Tensor]:
    """Right-padded batch. ``target=None``: all-positions (``targets``/``target_times`` per
    position, the item after each input); else one ``target``/``target_time`` per row.
    ``user``: the rows' user ids (1..n_users), given as ``user_id``.

    Shapes: rows (b,) -> item_seq, time_seq (b, w), item_seq_len (b,), targets (b, w) or (b,),
    user_id (b,)
    """
    width = int(row_len.max()) if width is None else width
    offsets = np.arange(width)
    real = offsets[None, :] < row_len[:, None]  # (b w)
    index = np.where(real, row_start[:, None] + offsets[None, :], 0)  # (b w)
    batch = {
        "item_seq": _tensor(np.where(real, items[index], 0)),
        "item_seq_len": _tensor(row_len),
        "time_seq": _tensor(np.where(real, times[index], 0)),
    }
    if user is not None:
        batch["user_id"] = _tensor(user)
    if target is None:
        batch["targets"] = _tensor(np.where(real, items[index + 1], 0))
        batch["target_times"] = _tensor(np.where(real, times[index + 1], 0))
    else:
        batch["target"] = _tensor(items[target])
        batch["target_time"] = _tensor(times[target])
    return batch


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.int64))


def group_rows(
    order: np.ndarray, row_len: np.ndarray, batch_size: int, max_tokens: int | None = None
) -> list[np.ndarray]:
    """Split ``order`` into batches of at most ``batch_size`` rows and ``max_tokens`` tokens.

    A row longer than ``max_tokens`` gets a batch of its own (it is never cut).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if max_tokens is None:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1 or None, got {max_tokens}")
    batches, current, tokens = [], [], 0
    for row, length in zip(order.tolist(), row_len[order].tolist(), strict=True):
        if current and (tokens + length > max_tokens or len(current) == batch_size):
            batches.append(np.asarray(current))
            current, tokens = [], 0
        current.append(row)
        tokens += length
    if current:
        batches.append(np.asarray(current))
    return batches
