"""data.tie_order: how interactions with equal timestamps are ordered."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

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
    with pytest.raises(ConfigError, match=r"data\.tie_order must be one of"):
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


def _split(raw, order):
    from ssmlab.data.split import Split

    inter = preprocess(raw, 1, 1, tie_order=order).inter
    counts = np.bincount(inter["user"].to_numpy())[1:]
    offsets = np.concatenate([[0], np.cumsum(counts)])
    return Split(offsets, inter["item"].to_numpy(), inter["timestamp"].to_numpy(), n_items=9)


# user 1: 1, 2 then 5, 3, 4 on the last day; user 2: 6, 7, 8 (no tie); user 3: all on one day
TIES = pd.DataFrame(
    {
        "user": [1, 1, 1, 1, 1, 2, 2, 2, 3, 3, 3],
        "item": [1, 2, 5, 3, 4, 6, 7, 8, 9, 2, 1],
        "timestamp": [1, 2, 9, 9, 9, 1, 2, 3, 5, 5, 5],
    }
)


def test_tie_group_rows():
    rows = _split(TIES, "file").tie_group_rows(max_len=50)
    split = _split(TIES, "file")
    targets = split.items[rows["target"]].tolist()
    assert targets == [5, 3, 4, 8]  # user 3 has no history before its only day: no row
    assert rows["group_len"].tolist() == [3, 3, 3, 1]
    histories = [
        split.items[s : s + n].tolist() for s, n in zip(rows["row_start"], rows["row_len"])
    ]
    assert histories == [[1, 2], [1, 2], [1, 2], [6, 7]]
    short = split.tie_group_rows(max_len=1)
    assert short["row_len"].tolist() == [1, 1, 1, 1]


class _BagModel(torch.nn.Module):
    """Scores from the sum of the history's item vectors: blind to the order of the history."""

    def __init__(self, n_items=9):
        super().__init__()
        self.emb = torch.nn.Embedding(n_items + 1, 4, padding_idx=0)

    def full_sort_predict(self, batch):
        h = self.emb(batch["item_seq"]).sum(1)
        scores = h @ self.emb.weight.T
        scores[:, 0] = float("-inf")
        return scores


def test_tie_group_test_does_not_depend_on_the_tie_order():
    from ssmlab.train.evaluation import evaluate, evaluate_tie_groups

    torch.manual_seed(0)
    model = _BagModel()
    cpu = torch.device("cpu")
    by_group = [evaluate_tie_groups(model, _split(TIES, o), cpu) for o in ("file", "item")]
    assert by_group[0] == by_group[1] and by_group[0]["users"] == 2
    standard = [
        evaluate(model, _split(TIES, o).eval_batches("test", batch_size=8), cpu)
        for o in ("file", "item")
    ]
    assert standard[0] != standard[1]  # the target of user 1 moved: 4 (file) vs 5 (item)


def test_tie_group_test_equals_the_standard_test_without_ties():
    from ssmlab.models import build_model
    from ssmlab.train.evaluation import evaluate, evaluate_tie_groups

    data = load_dataset("toy", n_users=80, seed=1)  # continuous times: no ties
    split = data.split()
    model = build_model("sasrec", data.n_items, d_model=8, n_layers=1, max_len=12)
    cpu = torch.device("cpu")
    groups = evaluate_tie_groups(model, split, cpu, max_len=12, batch_size=32)
    standard = evaluate(model, split.eval_batches("test", batch_size=32, max_len=12), cpu)
    assert groups.pop("users") == len(split)
    assert groups == pytest.approx(standard, abs=1e-12)
