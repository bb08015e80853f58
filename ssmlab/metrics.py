"""Full-ranking metrics for next-item prediction with one target per row (RecBole semantics).

For each row, the rank of the target among all items ``1..n_items`` is

    rank = 1 + #{ j != target, j >= 1, j not excluded : scores[j] >= scores[target] }

so a tie with the target counts against it (a constant scorer gets rank n_items, metrics
~0), column 0 (padding) is never ranked even if its score is finite, and seen items are NOT
masked unless ``exclude`` says so. From the rank:

* HR@K = 1[rank <= K] (with one target, RecBole's Recall@K = Hit@K),
* NDCG@K = 1 / log2(rank + 1) if rank <= K else 0,
* MRR@K = 1 / rank if rank <= K else 0,

each averaged over rows. A non-finite score (NaN, +inf or -inf) counts as the worst possible
score: a non-finite target ranks below every other ranked item (ties count against it, so a row
of NaN gives rank n_items and metrics 0), and a non-finite score of another item never beats a
finite target. :class:`RankingAccumulator` sums over batches so that a full evaluation holds one
batch of scores at a time; it refuses non-finite scores in columns ``1..n_items`` by default
(:class:`NonFiniteScoresError`): a model that outputs them is broken, and an evaluation must say
so rather than print a number.

Speed: with nothing to exclude and no NaN or +inf item score (every evaluation of a working
model), :func:`target_ranks` counts the items at or above the target in three read passes, on
a CPU in cache-sized row blocks, instead of building masks; the general path stays the reference
(``FAST_PATH = False``; tests, ``benchmarks/ranking.py``).
"""

from __future__ import annotations

import torch

METRICS = ("hr", "ndcg", "mrr")
FAST_PATH = True  # False: the general path always (the reference; benchmarks switch it)
ROW_BLOCK = 32  # rows per comparison block of target_ranks on a CPU (see _count_at_or_above)


class NonFiniteScoresError(FloatingPointError):
    """A model produced NaN or infinite scores for real items; the message says where."""


def check_finite_scores(scores: torch.Tensor) -> None:
    """Raise :class:`NonFiniteScoresError` unless every item score is finite.

    Shapes:
        scores: (b, n_items + 1), column 0 = padding (ignored: models set it to -inf)
    """
    if FAST_PATH and _finite_items(scores, (torch.amin, torch.amax)):  # two reductions first
        return
    bad = ~torch.isfinite(scores[:, 1:])  # (b n)
    if bad.any():
        row, col = (int(i) for i in bad.nonzero()[0])
        raise NonFiniteScoresError(
            f"the model's scores are not finite: {int(bad.sum())} of {bad.numel()} item scores "
            f"are NaN or infinite (first: row {row}, item {col + 1} = "
            f"{float(scores[row, col + 1])}); the weights or the forward pass are broken"
        )


def target_ranks(
    scores: torch.Tensor,
    target: torch.Tensor,
    exclude: torch.Tensor | None = None,
    *,
    items_finite: bool = False,
) -> torch.Tensor:
    """1-based rank of each row's target; ties count against the target.

    ``items_finite=True``: the caller has checked that every item score is finite
    (:func:`check_finite_scores`), so the fast path does not scan the scores for NaN or +inf
    again.

    Shapes:
        scores: (b, n_items + 1) float, column 0 = padding (ignored)
        target: (b,) long in 1..n_items
        exclude: (b, k) long item ids to mask (0 = none), or (b, n_items + 1) bool mask;
            the target itself is never masked
        returns: (b,) long
    """
    if scores.dim() != 2 or scores.size(1) < 2:
        raise ValueError(
            f"scores must be (b, n_items + 1) with n_items >= 1, got shape {tuple(scores.shape)}"
        )
    if target.shape != (scores.size(0),):
        raise ValueError(f"target must be (b,) = ({scores.size(0)},), got {tuple(target.shape)}")
    target = target.long()
    if len(target) and (target.min() < 1 or target.max() >= scores.size(1)):
        raise ValueError(
            f"target ids must be in 1..{scores.size(1) - 1} (0 is padding), got "
            f"min {int(target.min())}, max {int(target.max())}"
        )
    rows = torch.arange(scores.size(0), device=scores.device)
    target_score = scores[rows, target]  # (b,)
    if (
        FAST_PATH
        and exclude is None
        and _no_rank_changing_scores(scores, target_score, items_finite)
    ):
        # The common case in 3 passes instead of ~20: counting items 1..n at or above the
        # target counts the target itself once, the 1 of the formula (tested against the
        # general path below, which is the reference).
        return _count_at_or_above(scores[:, 1:], target_score)
    masked = _exclusion_mask(exclude, scores.shape, scores.device)  # (b n)
    masked[:, 0] = True
    masked[rows, target] = True  # the target is not one of the "others"
    worst = torch.tensor(float("-inf"), dtype=scores.dtype, device=scores.device)
    scores = torch.where(torch.isfinite(scores), scores, worst)  # (b n); NaN, ±inf -> -inf
    target_score = scores[rows, target]
    beats = (scores >= target_score[:, None]) & ~masked  # (b n); ties count against the target
    return 1 + beats.sum(dim=1)


def _finite_items(scores: torch.Tensor, reductions) -> bool:
    """Whether ``reduction(scores, dim=0)`` is finite for items 1..n for each reduction: NaN
    propagates through amax and amin, +inf through amax, -inf through amin. A reduction over
    the contiguous rows reads the scores once without a copy (a reduction of the ``[:, 1:]``
    view would copy it first)."""
    return len(scores) > 0 and all(
        bool(torch.isfinite(r(scores, dim=0)[1:]).all()) for r in reductions
    )


def _no_rank_changing_scores(
    scores: torch.Tensor, target_score: torch.Tensor, items_finite: bool
) -> bool:
    """True when the NaN/inf rewrite of :func:`target_ranks` cannot change a rank: every target
    score is finite and no item score is NaN or +inf (-inf never reaches a finite target),
    known already with ``items_finite``. False for no rows."""
    if len(scores) == 0 or not torch.isfinite(target_score).all():
        return False
    return items_finite or _finite_items(scores, (torch.amax,))


def _count_at_or_above(items: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """``(items >= threshold[:, None]).sum(1)``; on a CPU in blocks of :data:`ROW_BLOCK` rows,
    whose bool temporary stays in cache, where one (b, n) temporary of 4,096 x 12,101 would not.

    Shapes: (b, n), (b,) -> (b,) long
    """
    step = ROW_BLOCK if items.device.type == "cpu" else len(items)
    blocks = zip(items.split(step), threshold.split(step))
    return torch.cat([(block >= t[:, None]).sum(dim=1) for block, t in blocks])


def _exclusion_mask(exclude, shape, device) -> torch.Tensor:
    if exclude is None:
        return torch.zeros(shape, dtype=torch.bool, device=device)
    if exclude.dtype == torch.bool:
        if exclude.shape != shape:
            raise ValueError(
                f"a bool exclude mask must be {tuple(shape)}, got {tuple(exclude.shape)}"
            )
        return exclude.clone()
    if exclude.dim() != 2 or exclude.size(0) != shape[0]:
        raise ValueError(
            f"exclude ids must be (b, k) with b = {shape[0]}, got {tuple(exclude.shape)}"
        )
    if len(exclude) and (exclude.min() < 0 or exclude.max() >= shape[1]):
        raise ValueError(f"exclude ids must be in 0..{shape[1] - 1}")
    mask = torch.zeros(shape, dtype=torch.bool, device=device)
    mask.scatter_(1, exclude.long(), True)  # id 0 lands on the padding column: harmless
    return mask


def rank_metrics(ranks: torch.Tensor, ks=(10, 20, 50)) -> dict[str, torch.Tensor]:
    """Per-row hr@K, ndcg@K, mrr@K from ranks. Shapes: (b,) -> dict of (b,) float64."""
    ranks = ranks.to(torch.float64)
    out = {}
    for k in ks:
        hit = ranks <= k
        out[f"hr@{k}"] = hit.to(torch.float64)
        out[f"ndcg@{k}"] = torch.where(hit, 1.0 / torch.log2(ranks + 1), 0.0)
        out[f"mrr@{k}"] = torch.where(hit, 1.0 / ranks, 0.0)
    return out


def full_ranking_metrics(
    scores: torch.Tensor, target: torch.Tensor, ks=(10, 20, 50), exclude: torch.Tensor | None = None
) -> dict[str, float]:
    """Mean HR@K, NDCG@K, MRR@K over rows, ranking every item (see the module docstring).

    Non-finite scores are ranked as the worst possible, not refused (that is
    :class:`RankingAccumulator`'s default).

    Shapes:
        scores: (b, n_items + 1), target: (b,), exclude: (b, k) ids or (b, n_items + 1) bool
        returns: {"hr@K", "ndcg@K", "mrr@K"} -> float, for each K in ks
    """
    accumulator = RankingAccumulator(ks, require_finite=False)
    accumulator.update(scores, target, exclude)
    return accumulator.compute()


class RankingAccumulator:
    """Sums per-row metrics over batches; ``compute()`` returns the means.

    ``require_finite=True`` (the default, used by every evaluation in ``ssmlab.train``) raises
    :class:`NonFiniteScoresError` on a batch with a non-finite item score instead of ranking
    it last; ``False`` ranks it as :func:`target_ranks` does.

    >>> acc = RankingAccumulator(ks=(10, 20))
    >>> for batch in eval_batches:  # doctest: +SKIP
    ...     acc.update(model.full_sort_predict(batch), batch["target"])
    >>> acc.compute()  # doctest: +SKIP
    """

    def __init__(self, ks=(10, 20, 50), require_finite: bool = True):
        if not ks or any(int(k) < 1 for k in ks):
            raise ValueError(f"ks must be positive integers, got {ks!r}")
        self.ks = tuple(int(k) for k in ks)
        self.require_finite = require_finite
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self.sums = {f"{m}@{k}": 0.0 for k in self.ks for m in METRICS}

    @torch.no_grad()
    def update(
        self, scores: torch.Tensor, target: torch.Tensor, exclude: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Add one batch; returns its ranks. Shapes: as :func:`target_ranks`."""
        if self.require_finite:
            check_finite_scores(scores)
        ranks = target_ranks(scores, target, exclude, items_finite=self.require_finite)
        for name, values in rank_metrics(ranks, self.ks).items():
            self.sums[name] += float(values.sum())
        self.count += len(ranks)
        return ranks

    def compute(self) -> dict[str, float]:
        """Means over every row seen so far (0.0 for each metric when none was seen)."""
        return {
            name: total / self.count if self.count else 0.0 for name, total in self.sums.items()
        }
