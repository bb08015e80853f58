"""ssmlab.metrics: hand-computed values, a brute-force sort-based reference, edge cases."""

from __future__ import annotations

import math

import pytest
import torch

from ssmlab.metrics import (
    ROW_BLOCK,
    NonFiniteScoresError,
    RankingAccumulator,
    check_finite_scores,
    full_ranking_metrics,
    target_ranks,
)


def brute_force_rank(scores: torch.Tensor, target: torch.Tensor, exclude_mask=None):
    """Rank by sorting: items ordered by score (descending), the target placed after every
    item with the same score; padding and excluded items left out; a non-finite score (NaN,
    ±inf) is the worst possible, -inf."""
    ranks = []
    for row in range(scores.size(0)):
        t = int(target[row])
        keys = []
        for j in range(1, scores.size(1)):
            if j != t and exclude_mask is not None and bool(exclude_mask[row, j]):
                continue
            s = float(scores[row, j])
            s = s if math.isfinite(s) else -math.inf
            keys.append((-s, 1 if j == t else 0, j))  # ties: the target sorts after others
        keys.sort()
        ranks.append(1 + [k[2] for k in keys].index(t))
    return torch.tensor(ranks)


def metrics_from_ranks(ranks, ks):
    out = {}
    for k in ks:
        out[f"hr@{k}"] = sum(1.0 for r in ranks if r <= k) / len(ranks)
        out[f"ndcg@{k}"] = sum(1 / math.log2(r + 1) for r in ranks if r <= k) / len(ranks)
        out[f"mrr@{k}"] = sum(1 / r for r in ranks if r <= k) / len(ranks)
    return out


def test_hand_computed_example():
    # 5 items (ids 1..5); column 0 is padding and must be ignored even when it scores highest.
    scores = torch.tensor(
        [
            [9.0, 0.1, 0.9, 0.5, 0.3, 0.7],  # target 3 (0.5): 0.9, 0.7 above
            [9.0, 0.2, 0.2, 0.2, 0.2, 0.2],  # constant: tie with all 4 others
            [0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
        ]
    )  # target 5 is top
    target = torch.tensor([3, 2, 5])
    assert target_ranks(scores, target).tolist() == [3, 5, 1]
    got = full_ranking_metrics(scores, target, ks=(1, 3))
    assert got["hr@1"] == pytest.approx(1 / 3)
    assert got["hr@3"] == pytest.approx(2 / 3)
    assert got["ndcg@3"] == pytest.approx((1 / math.log2(4) + 1.0) / 3)
    assert got["mrr@3"] == pytest.approx((1 / 3 + 1.0) / 3)
    assert got["mrr@1"] == pytest.approx(1 / 3)
    assert set(got) == {"hr@1", "ndcg@1", "mrr@1", "hr@3", "ndcg@3", "mrr@3"}
    assert all(isinstance(v, float) for v in got.values())


@pytest.mark.parametrize("use_exclude", [False, True])
def test_matches_brute_force_with_ties_nan_and_exclusions(use_exclude):
    gen = torch.Generator().manual_seed(1)
    b, n = 24, 30
    scores = torch.randint(0, 6, (b, n + 1), generator=gen).to(torch.float64)  # many ties
    scores[3, 5] = float("nan")
    scores[4, 2:9] = float("nan")
    scores[5, 1] = float("inf")
    target = torch.randint(1, n + 1, (b,), generator=gen)
    scores[7, target[7]] = float("nan")  # NaN target ranks last
    scores[4, target[4]] = float("nan")  # ... also below other NaN scores (a tie)
    scores[6, target[6]] = float("inf")  # +inf is not finite either: worst
    exclude = mask = None
    if use_exclude:
        exclude = torch.randint(0, n + 1, (b, 6), generator=gen)
        exclude[:, 0] = target  # asking to exclude the target must not mask it
        mask = torch.zeros(b, n + 1, dtype=torch.bool)
        mask.scatter_(1, exclude, True)
        mask[torch.arange(b), target] = False
    ranks = target_ranks(scores, target, exclude)
    expected = brute_force_rank(scores, target, mask)
    print("max rank diff", (ranks - expected).abs().max().item())
    assert torch.equal(ranks, expected)
    got = full_ranking_metrics(scores, target, ks=(5, 10), exclude=exclude)
    want = metrics_from_ranks(expected.tolist(), (5, 10))
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-12)
    if use_exclude:
        assert torch.equal(target_ranks(scores, target, mask), ranks)  # bool mask form


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fast_path_equals_the_general_path(dtype):
    """Without ``exclude`` and with no NaN/+inf item score, target_ranks counts in row blocks;
    an all-False bool mask sends the same scores through the general (reference) path."""
    gen = torch.Generator().manual_seed(4)
    b, n = 3 * ROW_BLOCK + 5, 40  # blocks of ROW_BLOCK rows and a short last one
    scores = torch.randint(0, 5, (b, n + 1), generator=gen).to(dtype)  # many ties
    scores[::3, 7] = float("-inf")  # -inf items: the fast path still applies
    scores[:, 0] = torch.tensor([1e9, float("inf"), float("nan")]).to(dtype).repeat(b)[:b]
    target = torch.randint(1, n + 1, (b,), generator=gen)
    fast = target_ranks(scores, target)
    reference = target_ranks(scores, target, torch.zeros(b, n + 1, dtype=torch.bool))
    assert fast.dtype == reference.dtype and torch.equal(fast, reference)
    assert torch.equal(fast, brute_force_rank(scores, target))
    assert target_ranks(scores[:0], target[:0]).shape == (0,)


def test_finite_check_finds_each_kind_of_non_finite_item_score():
    scores = torch.randn(70, 9)
    scores[:, 0] = float("nan")  # the padding column is never checked
    check_finite_scores(scores)
    check_finite_scores(scores[:0])
    for bad in (float("nan"), float("inf"), float("-inf")):
        broken = scores.clone()
        broken[69, 8] = bad
        with pytest.raises(NonFiniteScoresError, match=r"1 of 560 item scores .* row 69, item 8"):
            check_finite_scores(broken)


def test_constant_scorer_and_padding_column():
    b, n = 50, 200
    target = torch.randint(1, n + 1, (b,))
    constant = full_ranking_metrics(torch.zeros(b, n + 1), target)
    assert constant["hr@50"] == 0.0 and constant["ndcg@10"] == 0.0
    assert torch.equal(target_ranks(torch.zeros(b, n + 1), target), torch.full((b,), n))
    scores = torch.randn(b, n + 1)
    before = target_ranks(scores, target)
    scores[:, 0] = 1e9  # a finite padding score is still never ranked
    assert torch.equal(target_ranks(scores, target), before)


def test_seen_items_not_masked_by_default():
    scores = torch.tensor([[0.0, 3.0, 2.0, 1.0]])
    target = torch.tensor([2])
    assert target_ranks(scores, target).item() == 2
    assert target_ranks(scores, target, exclude=torch.tensor([[1, 0]])).item() == 1


def test_accumulator_equals_one_shot_and_chunks():
    gen = torch.Generator().manual_seed(2)
    scores = torch.randn(103, 41, generator=gen)
    target = torch.randint(1, 41, (103,), generator=gen)
    acc = RankingAccumulator(ks=(1, 5, 20))
    for start in range(0, 103, 10):
        acc.update(scores[start : start + 10], target[start : start + 10])
    assert acc.count == 103
    one_shot = full_ranking_metrics(scores, target, ks=(1, 5, 20))
    for key, value in one_shot.items():
        assert acc.compute()[key] == pytest.approx(value, abs=1e-12)
    acc.reset()
    assert acc.compute()["hr@5"] == 0.0


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="target ids"):
        target_ranks(torch.zeros(2, 5), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="target must be"):
        target_ranks(torch.zeros(2, 5), torch.tensor([1, 1, 1]))
    with pytest.raises(ValueError, match="scores must be"):
        target_ranks(torch.zeros(5), torch.tensor([1]))
    with pytest.raises(ValueError, match="bool exclude"):
        target_ranks(torch.zeros(2, 5), torch.tensor([1, 2]), torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="ks"):
        RankingAccumulator(ks=(0,))
