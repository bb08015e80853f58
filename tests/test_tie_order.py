"""data.tie_order: how interactions with equal timestamps are ordered."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ssmlab.config import ConfigError, load_config
from ssmlab.data import load_dataset
from ssmlab.data.preprocess import preprocess

# user 1: items 30, 10, 20 on the same day, then 5; user 2: 7 then 3, 9 on the same day.
RAW = pd.DataFrame(
    {
        "user": [1, 1, 1, 1, 2, 2, 2],
        "item": [30, 10, 20, 5, 7, 9, 3],
        "timestamp": [100, 100, 100, 200, 50, 60, 60],
    }
)


def _sequences(processed):
    inter = processed.inter
    ids = processed.item_ids
    return {
        u: [int(ids[i]) for i in inter.loc[inter["user"] == u, "item"]]
        for u in sorted(inter["user"].unique())
    }


def test_file_item_and_random_orders():
    file = _sequences(preprocess(RAW, 1, 1, tie_order="file"))
    item = _sequences(preprocess(RAW, 1, 1, tie_order="item"))
    assert file == {1: [30, 10, 20, 5], 2: [7, 9, 3]}
    assert item == {1: [10, 20, 30, 5], 2: [7, 3, 9]}  # original ids, ascending
    a = _sequences(preprocess(RAW, 1, 1, tie_order="random", tie_seed=1))
    assert a == _sequences(preprocess(RAW, 1, 1, tie_order="random", tie_seed=1))
    seeds = [_sequences(preprocess(RAW, 1, 1, tie_order="random", tie_seed=s)) for s in range(8)]
    assert len({str(s) for s in seeds}) > 1  # the seed changes the order
    for seq in [a, *seeds]:  # only the ties move: the time order holds
        assert seq[1][3] == 5 and seq[2][0] == 7 and sorted(seq[1][:3]) == [10, 20, 30]


def test_item_order_compares_ids_as_numbers():
    raw = pd.DataFrame({"user": [1, 1, 1], "item": [10, 9, 100], "timestamp": [1, 1, 1]})
    assert _sequences(preprocess(raw, 1, 1, tie_order="item")) == {1: [9, 10, 100]}


def test_bad_tie_order_is_a_clear_error():
    with pytest.raises(ValueError, match="tie_order must be one of"):
        preprocess(RAW, 1, 1, tie_order="alphabetical")
    with pytest.raises(ConfigError, match="data.tie_order must be one of"):
        load_config("sasrec", "toy", overrides=["data.tie_order=sideways"])


def test_beauty_tie_orders(shared_datasets, tmp_path):
    """Beauty's same-day pairs: about half ascend in the file, all of them under "item"."""
    stats = {}
    for order in ("file", "item"):
        data = load_dataset(
            "amazon-beauty", data_dir=shared_datasets, cache_dir=tmp_path, tie_order=order
        )
        offsets, items, times = data.sequences()
        user = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
        tie = (user[1:] == user[:-1]) & (times[1:] == times[:-1])
        stats[order] = (int(tie.sum()), float((items[1:][tie] > items[:-1][tie]).mean()))
        assert data.n_users == 22_363 and data.n_items == 12_101
    assert stats["file"][0] == stats["item"][0] == 77_402
    assert 0.45 < stats["file"][1] < 0.55 and stats["item"][1] == 1.0
    assert len(list(tmp_path.rglob("inter.parquet"))) == 2  # one cache entry per order
