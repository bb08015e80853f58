"""Leave-one-out split and the batch iterables built on it.

Per user (sequence sorted by time): the last item is the test target, the second last the
valid target, the rest is training. Users with fewer than 3 interactions cannot be split this
way: they are dropped, their number is logged (warning) and kept in ``Split.dropped_users``.

Evaluation histories: valid = the training sequence; test = training + the valid item; both
truncated to the last ``max_len`` items.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

from ssmlab.data import batching

logger = logging.getLogger(__name__)

OBJECTIVES = ("all", "last")
MIN_SPLIT_LEN = 3


class Split:
    """Leave-one-out view of per-user sequences; builds train and eval batches.

    Args:
        offsets: (u + 1,) row offsets of each user's sequence in ``items``/``times``
        items, times: (n,) item ids (1..n_items) and Unix seconds, sorted per user by time
        n_items: number of items (ids 1..n_items; 0 is padding)
    """

    def __init__(self, offsets: np.ndarray, items: np.ndarray, times: np.ndarray, n_items: int):
        lengths = np.diff(offsets)
        keep = lengths >= MIN_SPLIT_LEN
        self.dropped_users = int((~keep).sum())
        if self.dropped_users:
            logger.warning(
                "leave-one-out split: dropped %d user(s) with fewer than %d interactions",
                self.dropped_users,
                MIN_SPLIT_LEN,
            )
        rows = np.repeat(keep, lengths)
        self.items = np.ascontiguousarray(items[rows], dtype=np.int64)
        self.times = np.ascontiguousarray(times[rows], dtype=np.int64)
        self.lengths = lengths[keep]
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        self.users = np.flatnonzero(keep) + 1  # dataset user ids of the kept rows
        self.n_items = n_items
        self.starts = self.offsets[:-1]
        self.train_ends = self.offsets[1:] - 2  # exclusive end of each training slice

    def __len__(self) -> int:
        return len(self.users)

    def row_users(self, row_start: np.ndarray) -> np.ndarray:
        """Dataset user id of each row, from the flat index of its first item. (r,) -> (r,)"""
        return self.users[np.searchsorted(self.offsets, row_start, side="right") - 1]

    def stats(self) -> dict:
        """Users kept/dropped and training-row counts per objective (no truncation)."""
        train_len = self.train_ends - self.starts
        return {
            "users": len(self),
            "dropped_users": self.dropped_users,
            "train_interactions": int(train_len.sum()),
            "train_rows_last": int(np.maximum(train_len - 1, 0).sum()),
            "train_rows_all": int((train_len >= 2).sum()),
        }

    def train_batches(
        self,
        objective: str = "all",
        batch_size: int = 256,
        max_len: int | None = 50,
        shuffle: bool = True,
        generator: torch.Generator | None = None,
        seed: int | None = None,
        pad_to: str = "batch",
        num_replicas: int = 1,
        rank: int = 0,
        bucket: bool = False,
    ) -> TrainBatches:
        """Training batches for ``objective`` ``"all"`` (padded, a target per position, long
        sequences cut into windows of ``max_len``; ``max_len=None`` keeps whole sequences) or
        ``"last"`` (RecBole prefix augmentation, one target per row).

        ``num_replicas``/``rank`` give each DDP process its share of every epoch's batches
        (same count on every rank).
        ``bucket``: rows of equal length go together (a shuffled order sorted stably by
        length, cut into batches, the batches shuffled), so a padded batch holds almost no
        padding; the order is still random within each length and across batches. For
        ``"all"`` a bucketed batch holds ``batch_size`` x the mean row length targets (more
        rows when they are short), so every step averages over about as many targets.
        """
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        if pad_to not in ("batch", "max_len"):
            raise ValueError(f"pad_to must be 'batch' or 'max_len', got {pad_to!r}")
        if max_len is not None and max_len < 1:
            raise ValueError(f"max_len must be >= 1 or None, got {max_len}")
        if not 0 <= rank < num_replicas:
            raise ValueError(
                f"need 0 <= rank < num_replicas, got rank={rank}, num_replicas={num_replicas}"
            )
        if objective == "last":
            rows = batching.last_rows(self.starts, self.train_ends, max_len)
        else:
            rows = (*batching.all_rows(self.starts, self.train_ends, max_len), None)
        if generator is None and seed is not None:
            generator = torch.Generator().manual_seed(seed)
        return TrainBatches(
            self,
            objective,
            rows,
            batch_size=batch_size,
            max_len=max_len,
            shuffle=shuffle,
            generator=generator,
            pad_to=pad_to,
            num_replicas=num_replicas,
            rank=rank,
            bucket=bucket,
        )

    def eval_batches(
        self,
        stage: str = "valid",
        batch_size: int = 1024,
        max_len: int | None = 50,
        bucket: bool = False,
    ) -> EvalBatches:
        """Evaluation rows of ``stage`` (``"valid"`` or ``"test"``), in user order, or with
        ``bucket`` ordered by history length (less padding; mean metrics do not change)."""
        if stage not in ("valid", "test"):
            raise ValueError(f"stage must be 'valid' or 'test', got {stage!r}")
        target = self.train_ends if stage == "valid" else self.train_ends + 1
        rows = batching.eval_rows(self.starts, target, max_len)
        if bucket:
            order = np.argsort(rows[1], kind="stable")
            rows = tuple(r[order] for r in rows)
        return EvalBatches(self, rows, batch_size)

    def tie_group_rows(self, max_len: int | None = 50):
        """Rows of the tie-group test (order-free): per user, the *tie group* is every item
        sharing the test target's timestamp; one row per group item, whose history is what
        comes strictly before that timestamp (truncated to ``max_len``). Under any order of
        equal timestamps (``data.tie_order``) the test target is one of the group and the
        history holds the rest, so this view of the test does not depend on that order.
        Users whose interactions all share the last timestamp have no history: no row.

        Shapes: -> dict of (r,) arrays: ``row_start``, ``row_len``, ``target`` (flat index),
        ``user`` (0-based index into this split), ``group_start``, ``group_len``.
        """
        ends = self.offsets[1:]  # (u) exclusive
        user_of = np.repeat(np.arange(len(self)), self.lengths)  # (n)
        last_time = self.times[ends - 1]  # (u)
        tail = self.times == last_time[user_of]  # (n) sorted by time: the group is a suffix
        group_len = np.bincount(user_of[tail], minlength=len(self))  # (u) >= 1
        group_start = ends - group_len
        keep = group_start > self.starts
        user = np.repeat(np.flatnonzero(keep), group_len[keep])  # (r)
        target = group_start[user] + batching._ranges(group_len[keep])
        row_start, row_len, _ = batching.eval_rows(self.starts[user], group_start[user], max_len)
        return {
            "row_start": row_start,
            "row_len": row_len,
            "target": target,
            "user": user,
            "group_start": group_start[user],
            "group_len": group_len[user],
        }


class TrainBatches:
    """Re-iterable training batches; each pass draws a new order from ``generator``."""

    def __init__(
        self,
        split,
        objective,
        rows,
        *,
        batch_size,
        max_len,
        shuffle,
        generator,
        pad_to,
        num_replicas,
        rank,
        bucket,
    ):
        self.split, self.objective = split, objective
        self.row_start, self.row_len, self.target = rows
        self.batch_size, self.max_len, self.shuffle = batch_size, max_len, shuffle
        self.generator, self.pad_to = generator, pad_to
        self.num_replicas, self.rank, self.bucket = num_replicas, rank, bucket

    @property
    def n_rows(self) -> int:
        return len(self.row_start)

    def _groups(self, order: np.ndarray, shuffle: bool = False) -> list[np.ndarray]:
        """Batches of this rank, in the order they are served (``shuffle``: bucketed batches
        in a random order drawn from ``generator``)."""
        rows, tokens = self.batch_size, None
        if self.bucket:
            order = order[np.argsort(self.row_len[order], kind="stable")]
            if self.objective == "all":
                # every position is a target and the loss is a mean over a batch's targets: a
                # batch holds as many targets as an average unbucketed one, so a target weighs
                # the same in every step (a batch of short rows would otherwise weigh its
                # targets up to max_len times more than one of long rows)
                rows = len(order) or 1
                tokens = max(1, round(self.batch_size * float(self.row_len.mean())))
        groups = batching.group_rows(order, self.row_len, rows, tokens)
        if self.bucket and shuffle:
            groups = [groups[i] for i in torch.randperm(len(groups), generator=self.generator)]
        if self.num_replicas == 1:
            return groups
        per_rank = len(groups) // self.num_replicas
        return groups[self.rank :: self.num_replicas][:per_rank]

    def __len__(self) -> int:
        return len(self._groups(np.arange(self.n_rows)))

    def __iter__(self):
        if self.shuffle:
            order = torch.randperm(self.n_rows, generator=self.generator).numpy()
        else:
            order = np.arange(self.n_rows)
        width = self.max_len if self.pad_to == "max_len" else None
        for group in self._groups(order, shuffle=self.shuffle):
            start, length = self.row_start[group], self.row_len[group]
            target = None if self.target is None else self.target[group]
            yield batching.padded_batch(
                self.split.items,
                self.split.times,
                start,
                length,
                target,
                width,
                user=self.split.row_users(start),
            )

    def tokens(self) -> dict[str, int]:
        """Real tokens and tokens processed (padding included) in one epoch of this rank."""
        real = processed = 0
        for group in self._groups(np.arange(self.n_rows)):
            length = self.row_len[group]
            real += int(length.sum())
            width = self.max_len if self.pad_to == "max_len" else int(length.max())
            processed += width * len(group)
        return {"real": real, "processed": processed}


class EvalBatches:
    """Evaluation batches (history, ``target``, ``target_time``) in user order."""

    def __init__(self, split, rows, batch_size):
        self.split = split
        self.row_start, self.row_len, self.target = rows
        self.batch_size = batch_size

    def __len__(self) -> int:
        return math.ceil(len(self.row_start) / self.batch_size)

    def __iter__(self):
        for i in range(0, len(self.row_start), self.batch_size):
            part = slice(i, i + self.batch_size)
            yield batching.padded_batch(
                self.split.items,
                self.split.times,
                self.row_start[part],
                self.row_len[part],
                self.target[part],
                user=self.split.row_users(self.row_start[part]),
            )
