"""``toy``: generated continuous-time sequences whose next item depends on elapsed time.

The rule (SS4Rec's toy idea: item ids strictly time-dependent). Items ``1..n_items`` form
``n_items / group_size`` groups of ``group_size`` consecutive ids. Every gap between two
interactions falls in one of ``n_buckets`` well-separated scales: bucket b is drawn uniformly,
then the gap log-uniformly in [c_b / 2, 2 c_b], c_b = 300 s * 30**b (5 minutes, 2.5 hours,
3 days, 3 months for the default 4 buckets; neighbouring buckets never overlap). The first two
items are uniform; afterwards

    group(x_k) = T[group(x_{k-1}), bucket(t_{k-1} - t_{k-2})],   x_k uniform in that group,

where T (n_groups, n_buckets) maps a group and a bucket to one of ``n_buckets`` distinct groups
(a seeded random table). In words: how long the user waited before the last item decides which
group comes next. Everything is known at prediction time: the last item and the last gap of
the history (TiM4Rec's D, TiSASRec's intervals and SS4Rec's dt all contain it).

Ceilings (targets at positions >= 2, which includes every valid and test target):

* time-aware: the next item is uniform over ``group_size`` items: best HR@K = min(1, K / 5) = 1
  for K >= 5 (defaults).
* time-blind: the last gap is independent of the items, so given the items only the next item
  is uniform over ``n_buckets * group_size`` = 20 items: best HR@K = min(1, K / 20), i.e.
  **HR@10 <= 0.5**, NDCG@10 <= 0.227, MRR@10 <= 0.146 (see :func:`toy_ceiling`).

Defaults: 2,000 users, 100 items, lengths uniform in [20, 50] (about 70k interactions).
Everything is deterministic given ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

BUCKET_BASE = 300  # seconds: centre of bucket 0 (5 minutes)
BUCKET_FACTOR = 30  # ratio of neighbouring bucket centres
START = 1_577_836_800  # 2020-01-01 00:00:00 UTC


@dataclass
class ToyData:
    """A generated toy dataset and its hidden rule."""

    inter: pd.DataFrame  # user, item, timestamp, sorted by user then time
    transition: np.ndarray  # (n_groups, n_buckets) next group of (group, bucket)
    n_users: int
    n_items: int
    group_size: int
    n_buckets: int
    seed: int

    @property
    def bucket_edges(self) -> np.ndarray:
        """(n_buckets - 1,) gap thresholds in seconds (geometric means of the centres)."""
        return bucket_edges(self.n_buckets)

    def candidates(self, prev_item: int, gap: float) -> np.ndarray:
        """The ``group_size`` items that can follow ``prev_item`` after a last gap ``gap``."""
        group = self.transition[
            (prev_item - 1) // self.group_size, int(np.searchsorted(self.bucket_edges, gap))
        ]
        return group * self.group_size + 1 + np.arange(self.group_size)


def bucket_edges(n_buckets: int) -> np.ndarray:
    centres = BUCKET_BASE * float(BUCKET_FACTOR) ** np.arange(n_buckets)
    return np.sqrt(centres[:-1] * centres[1:])


def make_toy(
    n_users: int = 2000,
    n_items: int = 100,
    seq_len: tuple[int, int] = (20, 50),
    n_buckets: int = 4,
    group_size: int = 5,
    seed: int = 0,
) -> ToyData:
    """Generate the toy dataset (see the module docstring for the rule and its ceilings)."""
    low, high = seq_len
    n_groups = n_items // group_size if group_size > 0 else 0
    if n_users < 1 or group_size < 1 or n_items % group_size:
        raise ValueError(
            f"need n_users >= 1 and n_items a multiple of group_size, got "
            f"n_users={n_users}, n_items={n_items}, group_size={group_size}"
        )
    if not 1 <= n_buckets <= 5 or n_groups < n_buckets:
        raise ValueError(
            f"need 1 <= n_buckets <= 5 and n_items / group_size >= n_buckets, "
            f"got n_buckets={n_buckets}, groups={n_groups}"
        )
    if not 3 <= low <= high:
        raise ValueError(f"seq_len must be (low, high) with 3 <= low <= high, got {seq_len}")
    rng = np.random.default_rng(seed)
    transition = np.stack([rng.permutation(n_groups)[:n_buckets] for _ in range(n_groups)])
    lengths = rng.integers(low, high + 1, size=n_users)
    bucket = rng.integers(0, n_buckets, size=(n_users, high))  # bucket[:, k] of gap t_k - t_{k-1}
    centre = BUCKET_BASE * float(BUCKET_FACTOR) ** bucket
    gaps = np.maximum(1, np.round(centre * 2.0 ** rng.uniform(-1, 1, size=(n_users, high))))
    gaps[:, 0] = 0
    times = START + rng.integers(0, 365 * 86400, size=(n_users, 1)) + np.cumsum(gaps, axis=1)
    items = np.empty((n_users, high), dtype=np.int64)
    items[:, :2] = rng.integers(1, n_items + 1, size=(n_users, 2))
    within = rng.integers(0, group_size, size=(n_users, high))
    for k in range(2, high):
        group = transition[(items[:, k - 1] - 1) // group_size, bucket[:, k - 1]]
        items[:, k] = group * group_size + 1 + within[:, k]
    real = np.arange(high)[None, :] < lengths[:, None]
    users = np.broadcast_to(np.arange(1, n_users + 1)[:, None], (n_users, high))
    inter = pd.DataFrame(
        {"user": users[real], "item": items[real], "timestamp": times[real].astype(np.int64)}
    )
    return ToyData(inter, transition, n_users, n_items, group_size, n_buckets, seed)


def toy_ceiling(k: int = 10, n_buckets: int = 4, group_size: int = 5) -> dict[str, dict]:
    """Best achievable HR@k, NDCG@k, MRR@k of time-blind and time-aware scorers on ``toy``.

    With C equally likely next items, the best scorer ranks them 1..C in some order, so
    HR@k = min(k, C) / C, NDCG@k = (1/C) sum_{r<=min(k,C)} 1/log2(r+1), MRR@k = (1/C) sum 1/r.
    Time-blind: C = n_buckets * group_size; time-aware: C = group_size.
    """

    def best(candidates: int) -> dict[str, float]:
        ranks = np.arange(1, min(k, candidates) + 1)
        return {
            f"hr@{k}": len(ranks) / candidates,
            f"ndcg@{k}": float((1 / np.log2(ranks + 1)).sum() / candidates),
            f"mrr@{k}": float((1 / ranks).sum() / candidates),
        }

    return {"time_blind": best(n_buckets * group_size), "time_aware": best(group_size)}


def oracle_scores(batch: dict[str, torch.Tensor], toy: ToyData) -> torch.Tensor:
    """Scores of a scorer that knows the rule: 1 on the possible next items, 0 elsewhere.

    Shapes: padded batch (item_seq, item_seq_len, time_seq (b, l)) -> (b, n_items + 1) float
    """
    lengths = batch["item_seq_len"]
    last = (lengths - 1).clamp(min=0)[:, None]
    prev_item = batch["item_seq"].gather(1, last).squeeze(1).numpy()
    gap = (
        (
            batch["time_seq"].gather(1, last)
            - batch["time_seq"].gather(1, (lengths - 2).clamp(min=0)[:, None])
        )
        .squeeze(1)
        .numpy()
    )
    group = toy.transition[
        (prev_item - 1) // toy.group_size, np.searchsorted(toy.bucket_edges, gap)
    ]
    scores = torch.zeros(len(prev_item), toy.n_items + 1, dtype=torch.float64)
    columns = torch.from_numpy(group[:, None] * toy.group_size + 1 + np.arange(toy.group_size))
    scores.scatter_(1, columns, 1.0)
    scores[lengths.numpy() < 2] = 0.0  # no gap in the history: no information
    return scores


def transition_counts(
    items: np.ndarray, starts: np.ndarray, ends: np.ndarray, n_items: int
) -> np.ndarray:
    """Counts of consecutive (previous, next) item pairs inside each slice ``[start, end)``.

    Shapes: items (n,), starts (u,), ends (u,) -> (n_items + 1, n_items + 1) int64
    """
    pair = np.ones(len(items) - 1, dtype=bool)
    inside = np.zeros(len(items) + 1, dtype=np.int64)
    np.add.at(inside, starts, 1)
    np.add.at(inside, ends, -1)
    in_slice = np.cumsum(inside)[:-1] > 0  # (n) token lies in some slice
    pair &= in_slice[:-1] & in_slice[1:]
    pair[ends[ends - 1 < len(pair)] - 1] = False  # no pair across the end of a slice
    counts = np.zeros((n_items + 1, n_items + 1), dtype=np.int64)
    np.add.at(counts, (items[:-1][pair], items[1:][pair]), 1)
    return counts
