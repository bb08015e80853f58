"""Evaluation and the pieces that ``Trainer.train_epoch`` (the training loop) calls.

* :func:`evaluate`: batched full-ranking hr/ndcg/mrr@K, all-reduced under torchrun;
  :func:`evaluate_tie_groups`: the test scored by tie group (free of the order of equal times).
* :class:`LossModule` (the loss as a ``forward`` DDP can wrap), :func:`make_optimizer`,
  :func:`to_device`, :class:`NonFiniteLossError`.
* :func:`batch_layout`: which ``ssmlab.data`` batches a training objective trains on:
  ``"last"`` -> RecBole prefix augmentation rows, ``"all"`` -> one padded row per sequence with
  a target at every position, ``"cloze"`` -> ``"last"`` rows (BERT4Rec masks history + target
  itself). A model can change this with a class attribute ``batch_layouts = {"my_objective":
  "all"}``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from ssmlab.data import batching
from ssmlab.metrics import RankingAccumulator, check_finite_scores, rank_metrics, target_ranks
from ssmlab.models.base import SequentialRecommender
from ssmlab.train.distributed import DistInfo, all_reduce_sum

BATCH_LAYOUTS = {"last": "last", "all": "all", "cloze": "last"}
CPU_EVAL_ROWS = 512  # most rows per evaluation batch on a CPU (see eval_batch_rows)


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the message says where."""


def batch_layout(model: SequentialRecommender | type, objective: str) -> str:
    """The ``ssmlab.data`` batch layout (``"last"`` or ``"all"``, the ``objective`` argument of
    ``Split.train_batches``) that a training objective trains on."""
    table = {**BATCH_LAYOUTS, **getattr(model, "batch_layouts", {})}
    if objective not in table:
        raise ValueError(
            f"no batch layout known for objective {objective!r}; known: {sorted(table)} "
            "(a model may map its own with a `batch_layouts` class attribute)"
        )
    return table[objective]


class LossModule(nn.Module):
    """``model.calculate_loss(batch, objective)`` as a ``forward`` so that DDP can wrap it."""

    def __init__(self, model: SequentialRecommender, objective: str):
        super().__init__()
        self.model, self.objective = model, objective

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model.calculate_loss(batch, self.objective)


def eval_batch_rows(batch_size: int, device: torch.device | str) -> int:
    """Rows per evaluation batch: ``train.eval_batch_size``, on a CPU at most
    :data:`CPU_EVAL_ROWS`. Wider batches are slower there, not faster: their activations leave
    the cache (an SSD4Rec validation pass on Amazon-Beauty: 18.7 CPU s at 512 rows against
    38.0 at its preset's 2,048, ``benchmarks/results/ranking-cpu.md``, AMD EPYC, one thread).
    Metrics do not depend on it beyond float rounding."""
    return min(batch_size, CPU_EVAL_ROWS) if torch.device(device).type == "cpu" else batch_size


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Move every tensor of a batch to ``device``."""
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def make_optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """Adam, or AdamW (decoupled weight decay) when ``weight_decay > 0``."""
    params = [p for p in model.parameters() if p.requires_grad]
    if weight_decay > 0:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.Adam(params, lr=lr)


@torch.no_grad()
def evaluate(
    model: SequentialRecommender,
    batches: Iterable[dict[str, torch.Tensor]],
    device: torch.device,
    ks=(10, 20, 50),
    info: DistInfo | None = None,
    progress=None,
) -> dict[str, float]:
    """Mean hr@K, ndcg@K, mrr@K of ``model.full_sort_predict`` over evaluation batches.

    One batch of scores is held at a time (:class:`ssmlab.metrics.RankingAccumulator`). Under
    torchrun each rank scores every ``world_size``-th batch and the sums are all-reduced, so
    every rank returns the same numbers.

    Shapes:
        batches: dicts with item_seq (b, l), item_seq_len (b,), time_seq (b, l), target (b,)
        returns: {"hr@K", "ndcg@K", "mrr@K"} -> float for each K in ks
    """
    info = info or DistInfo()
    was_training = model.training
    model.eval()
    acc = RankingAccumulator(ks)
    for i, batch in enumerate(batches):
        if i % info.world_size != info.rank:
            continue
        batch = to_device(batch, device)
        scores = model.full_sort_predict(batch).float()  # (b n_items+1)
        acc.update(scores, batch["target"])
        if progress is not None:
            progress.update(info.world_size)
    if info.enabled:
        names = list(acc.sums)
        totals = torch.tensor(
            [acc.count] + [acc.sums[n] for n in names],
            dtype=torch.float64,
            device=device if device.type == "cuda" else "cpu",
        )
        totals = all_reduce_sum(totals).cpu()
        acc.count = int(totals[0])
        acc.sums = {n: float(v) for n, v in zip(names, totals[1:])}
    model.train(was_training)
    return acc.compute()


@torch.no_grad()
def evaluate_tie_groups(
    model: SequentialRecommender,
    split,
    device: torch.device,
    ks=(10, 20, 50),
    max_len: int | None = 50,
    batch_size: int = 1024,
) -> dict[str, float]:
    """The test scored by tie group: free of the order of equal timestamps.

    Per user, every item of the tie group (the items sharing the test target's timestamp,
    :meth:`ssmlab.data.Split.tie_group_rows`) is ranked against all items but the rest of its
    group, from the history strictly before that timestamp; the user's metric is the mean over
    the group, and users count equally. A group of one item is the standard leave-one-out test
    with the same history. Returns the means and ``"users"`` (users scored).

    Shapes: as :func:`evaluate`; returns {"hr@K", "ndcg@K", "mrr@K", "users"} -> float
    """
    rows = split.tie_group_rows(max_len)
    was_training = model.training
    model.eval()
    sums = {f"{m}@{k}": 0.0 for k in ks for m in ("hr", "ndcg", "mrr")}
    widest = int(rows["group_len"].max()) if len(rows["user"]) else 1
    for i in range(0, len(rows["user"]), batch_size):
        part = slice(i, i + batch_size)
        batch = batching.padded_batch(
            split.items,
            split.times,
            rows["row_start"][part],
            rows["row_len"][part],
            rows["target"][part],
            user=split.users[rows["user"][part]],
        )
        scores = model.full_sort_predict(to_device(batch, device)).float().cpu()
        check_finite_scores(scores)
        offsets = torch.arange(widest)  # the group's items, 0 (padding) past its end
        start = torch.from_numpy(rows["group_start"][part])[:, None]
        length = torch.from_numpy(rows["group_len"][part])[:, None]
        flat = (start + offsets).clamp(max=len(split.items) - 1)
        group = torch.where(offsets < length, torch.from_numpy(split.items)[flat], 0)
        ranks = target_ranks(scores, batch["target"], exclude=group)
        weight = 1.0 / length.squeeze(1).double()
        for name, values in rank_metrics(ranks, ks).items():
            sums[name] += float((values * weight).sum())
    model.train(was_training)
    users = len(set(rows["user"].tolist()))
    return {**{k: v / max(users, 1) for k, v in sums.items()}, "users": users}


__all__ = [
    "BATCH_LAYOUTS",
    "CPU_EVAL_ROWS",
    "LossModule",
    "NonFiniteLossError",
    "batch_layout",
    "eval_batch_rows",
    "evaluate",
    "evaluate_tie_groups",
    "make_optimizer",
    "to_device",
]
