"""The toy dataset: deterministic, follows its rule, and its ceilings hold empirically."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from ssmlab.data import load_dataset, make_toy, toy_ceiling
from ssmlab.data.toy import bucket_edges, oracle_scores, transition_counts
from ssmlab.metrics import RankingAccumulator


@pytest.fixture(scope="module")
def toy():
    return load_dataset("toy")


def test_default_sizes_and_stats(toy):
    stats = toy.stats()
    assert stats["users"] == 2000 and stats["items"] == 100
    assert stats["min_len"] >= 20 and stats["max_len"] <= 50
    assert stats["ceiling"]["time_blind"]["hr@10"] == 0.5
    assert stats["ceiling"]["time_aware"]["hr@10"] == 1.0


def test_deterministic_from_seed():
    a, b = make_toy(n_users=50, seed=3), make_toy(n_users=50, seed=3)
    pd.testing.assert_frame_equal(a.inter, b.inter)
    assert np.array_equal(a.transition, b.transition)
    c = make_toy(n_users=50, seed=4)
    assert not a.inter.equals(c.inter)


def test_rule_holds_at_every_position():
    data = make_toy(n_users=200, seed=1)
    for _, seq in data.inter.groupby("user"):
        items, times = seq["item"].to_numpy(), seq["timestamp"].to_numpy()
        assert np.all(np.diff(times) > 0)
        for k in range(2, len(items)):
            assert items[k] in data.candidates(items[k - 1], times[k - 1] - times[k - 2])


def test_gap_scales_are_well_separated():
    data = make_toy(n_users=300, seed=2)
    gaps = data.inter.groupby("user")["timestamp"].diff().dropna().to_numpy()
    edges = bucket_edges(4)
    # every gap lies within a factor 2 of its bucket centre, far from the edges
    centre = 300 * 30.0 ** np.searchsorted(edges, gaps)
    assert np.all((gaps >= centre / 2 - 1) & (gaps <= centre * 2 + 1))
    assert np.all(np.abs(np.log(gaps[:, None] / edges[None, :])) > 1.0)


def test_ceiling_formulas():
    ceiling = toy_ceiling(10, n_buckets=4, group_size=5)
    ranks = np.arange(1, 11)
    assert ceiling["time_blind"]["hr@10"] == 0.5
    assert ceiling["time_blind"]["ndcg@10"] == pytest.approx((1 / np.log2(ranks + 1)).sum() / 20)
    assert ceiling["time_blind"]["mrr@10"] == pytest.approx((1 / ranks).sum() / 20)
    assert ceiling["time_aware"]["hr@10"] == 1.0
    assert toy_ceiling(10, n_buckets=2, group_size=10)["time_blind"]["hr@10"] == 0.5


def _evaluate(split, scorer):
    acc = RankingAccumulator(ks=(10,))
    for stage in ("valid", "test"):
        for batch in split.eval_batches(stage, batch_size=1000, max_len=50):
            acc.update(scorer(batch), batch["target"])
    return acc.compute()


def test_oracle_reaches_one_and_time_blind_bayes_reaches_the_ceiling(toy):
    split = toy.split()
    oracle = _evaluate(split, lambda batch: oracle_scores(batch, toy.toy))
    assert oracle["hr@10"] == 1.0
    counts = torch.from_numpy(
        transition_counts(split.items, split.starts, split.train_ends, toy.n_items)
    ).double()
    gen = torch.Generator().manual_seed(0)

    def markov(batch):  # Bayes-optimal time-blind scorer: counts of last item -> next item
        last = batch["item_seq"].gather(1, (batch["item_seq_len"] - 1)[:, None]).squeeze(1)
        return counts[last] + 0.5 * torch.rand(len(last), toy.n_items + 1, generator=gen)

    blind = _evaluate(split, markov)
    ceiling = toy_ceiling(10)["time_blind"]
    print("time-blind", blind, "ceiling", ceiling)
    assert abs(blind["hr@10"] - ceiling["hr@10"]) < 0.05
    assert abs(blind["ndcg@10"] - ceiling["ndcg@10"]) < 0.04


def test_bad_arguments():
    with pytest.raises(ValueError, match="multiple of group_size"):
        make_toy(n_items=101)
    with pytest.raises(ValueError, match="n_buckets"):
        make_toy(n_buckets=7)
    with pytest.raises(ValueError, match="seq_len"):
        make_toy(seq_len=(2, 5))
