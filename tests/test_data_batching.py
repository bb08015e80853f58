"""Leave-one-out split, the two training batchers ("all", "last"), evaluation batches."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from ssmlab.data import Split, load_dataset

PADDED_ALL = {"item_seq", "item_seq_len", "time_seq", "user_id", "targets", "target_times"}
PADDED_LAST = {"item_seq", "item_seq_len", "time_seq", "user_id", "target", "target_time"}
SHARED = Path(
    os.environ.get("SSMLAB_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "datasets")
)


def small_split():
    """Two users: items 1..7 at times 10, 20, ..., and items 3, 1, 2 at times 5, 6, 7."""
    seqs = [np.arange(1, 8), np.array([3, 1, 2])]
    times = [10 * np.arange(1, 8), np.array([5, 6, 7])]
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in seqs])])
    return Split(offsets, np.concatenate(seqs), np.concatenate(times), n_items=7)


def test_last_objective_prefix_rows_exact():
    split = small_split()
    batch = next(iter(split.train_batches("last", batch_size=10, max_len=3, shuffle=False)))
    assert set(batch) == PADDED_LAST
    # user 1 train = 1..5 -> targets 2..5; user 2 train = [3] -> no row
    assert batch["target"].tolist() == [2, 3, 4, 5]
    assert batch["item_seq"].tolist() == [[1, 0, 0], [1, 2, 0], [1, 2, 3], [2, 3, 4]]
    assert batch["item_seq_len"].tolist() == [1, 2, 3, 3]
    assert batch["time_seq"].tolist()[3] == [20, 30, 40]
    assert batch["target_time"].tolist() == [20, 30, 40, 50]
    assert all(v.dtype == torch.int64 for v in batch.values())


def test_all_objective_cuts_long_sequences_into_windows():
    split = small_split()
    batch = next(iter(split.train_batches("all", batch_size=10, max_len=3, shuffle=False)))
    assert set(batch) == PADDED_ALL
    # train 1..5: inputs 1..4 in windows of 3 aligned at the end -> [1], [2, 3, 4]
    assert batch["item_seq"].tolist() == [[1, 0, 0], [2, 3, 4]]
    assert batch["targets"].tolist() == [[2, 0, 0], [3, 4, 5]]
    assert batch["target_times"].tolist() == [[20, 0, 0], [30, 40, 50]]
    whole = next(iter(split.train_batches("all", max_len=None, shuffle=False)))
    assert whole["item_seq"].tolist() == [[1, 2, 3, 4]]
    assert whole["targets"].tolist() == [[2, 3, 4, 5]]
    wide = next(iter(split.train_batches("all", max_len=6, shuffle=False, pad_to="max_len")))
    assert wide["item_seq"].tolist() == [[1, 2, 3, 4, 0, 0]]
    assert wide["targets"].tolist() == [[2, 3, 4, 5, 0, 0]]


def test_eval_histories_valid_and_test():
    split = small_split()
    valid = next(iter(split.eval_batches("valid", max_len=3)))
    test = next(iter(split.eval_batches("test", max_len=3)))
    assert set(valid) == PADDED_LAST == set(test)
    assert valid["target"].tolist() == [6, 1] and test["target"].tolist() == [7, 2]
    assert valid["item_seq"].tolist() == [[3, 4, 5], [3, 0, 0]]
    assert test["item_seq"].tolist() == [[4, 5, 6], [3, 1, 0]]
    assert test["target_time"].tolist() == [70, 7]
    assert valid["user_id"].tolist() == [1, 2] == test["user_id"].tolist()


def test_batches_carry_the_dataset_user_id_of_each_row():
    """Users are numbered as in the dataset, also when the split dropped a short user."""
    seqs = [np.array([1, 2]), np.arange(1, 6), np.array([2, 3, 4, 5])]  # user 1: too short
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in seqs])])
    items = np.concatenate(seqs)
    split = Split(offsets, items, 10 * np.arange(1, len(items) + 1), n_items=5)
    assert split.users.tolist() == [2, 3]
    last = next(iter(split.train_batches("last", batch_size=10, max_len=3, shuffle=False)))
    assert last["user_id"].tolist() == [2, 2, 3]  # user 2: targets 2, 3; user 3: target 3
    for objective in ("all", "last"):
        for batch in split.train_batches(objective, batch_size=2, max_len=2, seed=0, bucket=True):
            first = batch["item_seq"][:, 0]  # user 2's rows start at item 1, user 3's at 2
            assert batch["user_id"].tolist() == [2 if x == 1 else 3 for x in first.tolist()]
    test = next(iter(split.eval_batches("test", bucket=True)))
    assert sorted(zip(test["user_id"].tolist(), test["target"].tolist())) == [(2, 5), (3, 5)]


def test_determinism_shuffle_and_shards():
    split = load_dataset("toy", n_users=80, seed=1).split()

    def targets(batches):
        return torch.cat([b["target"] for b in batches]).tolist()

    a = targets(split.train_batches("last", batch_size=64, seed=7))
    b = targets(split.train_batches("last", batch_size=64, seed=7))
    c = targets(split.train_batches("last", batch_size=64, seed=8))
    ordered = targets(split.train_batches("last", batch_size=64, shuffle=False))
    assert a == b and a != c and sorted(a) == sorted(ordered)
    epochs = split.train_batches("last", batch_size=64, generator=torch.Generator().manual_seed(0))
    assert targets(epochs) != targets(epochs)  # the generator advances between epochs
    shards = [
        split.train_batches("last", batch_size=16, seed=3, num_replicas=2, rank=r) for r in (0, 1)
    ]
    assert len(shards[0]) == len(shards[1]) > 0
    assert len(shards[0]) == len(split.train_batches("last", batch_size=16)) // 2
    with pytest.raises(ValueError, match="objective"):
        split.train_batches("bidirectional")


def test_real_beauty_rows_match_a_brute_force_construction(tmp_path):
    if not (SHARED / "amazon-beauty").is_dir():
        pytest.skip("offline datasets not found")
    data = load_dataset("amazon-beauty", SHARED, cache_dir=tmp_path)
    split = data.split()
    assert split.stats()["train_rows_last"] == 198502 - 3 * 22363
    tb = split.train_batches("last", batch_size=4096, max_len=50, shuffle=False)
    assert tb.n_rows == 131413
    batch = next(iter(tb))
    offsets, items, _ = data.sequences()
    rows = []  # brute force: every training prefix of the first users, in order
    for u in range(len(offsets) - 1):
        seq = items[offsets[u] : offsets[u + 1]][:-2]
        rows += [(list(seq[max(0, p - 50) : p]), seq[p]) for p in range(1, len(seq))]
        if len(rows) >= 4096:
            break
    for i in (0, 1, 2, 100, 4095):
        hist, target = rows[i]
        assert batch["item_seq"][i, : len(hist)].tolist() == hist
        assert batch["item_seq"][i, len(hist) :].eq(0).all() and batch["target"][i] == target
    test = next(iter(split.eval_batches("test", batch_size=len(split), max_len=50)))
    assert torch.equal(test["target"], torch.from_numpy(items[offsets[1:] - 1]))
    lengths = np.diff(offsets)
    assert torch.equal(test["item_seq_len"], torch.from_numpy(np.minimum(lengths - 1, 50)))


@pytest.mark.parametrize("max_len", [1, 2, 3, 5, None])
def test_all_windows_train_every_prefix_target_once(max_len):
    """The all-positions windows hold exactly the targets of RecBole's prefix rows."""
    toy = load_dataset("toy", n_users=60, seed=3).split()
    prefix = toy.train_batches("last", batch_size=10_000, max_len=max_len, shuffle=False)
    windows = toy.train_batches("all", batch_size=10_000, max_len=max_len, shuffle=False)
    expected = np.sort(prefix.target)
    (batch,) = list(windows)
    real = batch["targets"] != 0
    flat = windows.row_start[:, None] + 1 + np.arange(batch["targets"].shape[1])[None]
    assert np.array_equal(np.sort(flat[real.numpy()]), expected)
    assert (batch["item_seq_len"] <= (max_len or 10**9)).all()


@pytest.mark.parametrize("objective", ["all", "last"])
def test_bucketed_batches_same_rows_little_padding_deterministic(objective):
    toy = load_dataset("toy", n_users=300, seed=5).split()

    def epoch(seed, bucket):
        batches = toy.train_batches(objective, batch_size=32, max_len=20, seed=seed, bucket=bucket)
        return batches, [b["item_seq"] for b in batches]

    plain, plain_rows = epoch(0, False)
    bucketed, rows = epoch(0, True)
    _, again = epoch(0, True)
    _, other = epoch(1, True)
    assert len(bucketed) == len(plain) == len(rows)
    assert all(torch.equal(a, b) for a, b in zip(rows, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(rows, other, strict=True))

    def multiset(seqs):
        return sorted(tuple(r[r != 0].tolist()) for s in seqs for r in s)

    assert multiset(rows) == multiset(plain_rows)
    tokens = bucketed.tokens()
    assert tokens["real"] == plain.tokens()["real"]
    assert tokens["processed"] <= 1.25 * tokens["real"] < plain.tokens()["processed"]


def test_bucketed_batches_split_across_ranks():
    toy = load_dataset("toy", n_users=200, seed=5).split()
    shards = [
        toy.train_batches("all", batch_size=16, seed=3, num_replicas=2, rank=r, bucket=True)
        for r in (0, 1)
    ]
    seen = [{tuple(r.tolist()) for b in shard for r in b["item_seq"]} for shard in shards]
    assert len(shards[0]) == len(shards[1]) > 0
    assert not seen[0] & seen[1]


def test_eval_bucket_orders_by_length_same_rows():
    split = load_dataset("toy", n_users=100, seed=2).split()
    plain = next(iter(split.eval_batches("test", batch_size=1000, max_len=20)))
    by_len = next(iter(split.eval_batches("test", batch_size=1000, max_len=20, bucket=True)))
    assert torch.equal(by_len["item_seq_len"], plain["item_seq_len"].sort(stable=True).values)
    assert sorted(by_len["target"].tolist()) == sorted(plain["target"].tolist())
