"""Bad raw input gets a clear error (file + line) or a documented, loss-free behaviour."""

from __future__ import annotations

import gzip
import logging

import numpy as np
import pytest
import torch

from ssmlab.data import ChecksumError, DataFormatError, load_dataset, sources
from ssmlab.data.readers import read_amazon_reviews_json, read_ml1m
from ssmlab.ssm import time_deltas
from ssmlab.ssm.discretize import time_gap_to_dt


def _csv(tmp_path, text, name="x.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _load(path, **kw):
    kw.setdefault("cache_dir", path.parent / "cache")
    return load_dataset(f"csv:{path}", **kw)


HEADER = "user_id,item_id,timestamp\n"


def test_malformed_lines_name_file_and_line(tmp_path):
    too_many = _csv(tmp_path, HEADER + "1,2,100\n1,3,101,7\n", "many.csv")
    with pytest.raises(DataFormatError, match=r"many\.csv.*line 3"):
        _load(too_many)
    first_row = _csv(tmp_path, HEADER + "1,2,100,9\n1,3,101\n", "first.csv")
    with pytest.raises(DataFormatError, match=r"first\.csv.*line 2"):
        _load(first_row)
    (tmp_path / "ml-100k").mkdir()
    (tmp_path / "ml-100k" / "u.data").write_text("1\t2\t5\t100\n1\t3\t5\t101\t9\n")
    with pytest.raises(DataFormatError, match=r"u\.data.*line 2"):
        load_dataset("ml-100k", tmp_path, cache_dir=tmp_path / "c", verify=False, download=False)
    too_few = _csv(tmp_path, HEADER + "1,2,100\n1,3,101\n1,4\n", "few.csv")
    with pytest.raises(DataFormatError, match=r"few\.csv: line 4: malformed or truncated"):
        _load(too_few)
    blank = _csv(tmp_path, HEADER + "1,2,100\n\n1,4,102\n", "blank.csv")
    with pytest.raises(DataFormatError, match=r"blank\.csv: line 3"):
        _load(blank)
    ml1m = tmp_path / "ratings.dat"
    ml1m.write_text("1::2::5::978300760\n1::3::4\n")
    with pytest.raises(DataFormatError, match=r"ratings\.dat: line 2"):
        read_ml1m(ml1m, str(ml1m))
    reviews = tmp_path / "reviews.json.gz"
    reviews.write_bytes(
        gzip.compress(b'{"reviewerID": "A", "asin": "B", "unixReviewTime": 1}\n{"reviewerID": \n')
    )
    with pytest.raises(DataFormatError, match=r"reviews\.json\.gz: line 2"):
        read_amazon_reviews_json(reviews, str(reviews))


def test_wrong_checksum_names_file_expected_and_actual(tmp_path, shared_datasets):
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    lines = (shared_datasets / "ml-100k" / "u.data").read_text().splitlines(keepends=True)
    (folder / "u.data").write_text("".join(lines[:5000]))  # truncated copy
    with pytest.raises(ChecksumError) as err:
        load_dataset("ml-100k", tmp_path, cache_dir=tmp_path / "c", download=False)
    message = str(err.value)
    assert "u.data" in message
    assert "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490" in message
    assert sources.file_hash(folder / "u.data") in message
    ok = load_dataset(
        "ml-100k",
        tmp_path,
        cache_dir=tmp_path / "c",
        download=False,
        verify=False,
        min_user_inter=1,
        min_item_inter=1,
    )
    assert len(ok.inter) == 5000
    md5 = sources.file_hash(folder / "u.data", "md5")
    assert sources.verify_file(folder / "u.data", f"md5:{md5}") == sources.file_hash(
        folder / "u.data"
    )
    with pytest.raises(ChecksumError, match="md5"):
        sources.verify_file(folder / "u.data", "md5:" + "0" * 32)


def test_missing_column_lists_the_columns_found(tmp_path):
    path = _csv(tmp_path, "uid,iid,ts\n1,2,3\n")
    with pytest.raises(
        DataFormatError, match=r"missing column.*'timestamp'.*\['uid', 'iid', 'ts'\]"
    ):
        _load(path)


def test_empty_and_header_only_files(tmp_path):
    with pytest.raises(DataFormatError, match=r"empty\.csv is empty"):
        _load(_csv(tmp_path, "", "empty.csv"))
    with pytest.raises(DataFormatError, match="header but no interactions"):
        _load(_csv(tmp_path, HEADER, "header.csv"))


@pytest.mark.parametrize(
    "value, reason",
    [("abc", "not a finite number"), ("nan", "not a finite number"), ("-5", "negative timestamp")],
)
def test_bad_timestamps(tmp_path, value, reason):
    path = _csv(tmp_path, HEADER + f"1,2,100\n1,3,101\n2,3,{value}\n")
    with pytest.raises(DataFormatError, match=rf"x\.csv: line 4: .*{reason}"):
        _load(path)


def test_millisecond_and_float_timestamps(tmp_path):
    path = _csv(tmp_path, HEADER + "1,2,1500.9\n1,3,1499999.0\n")
    data = _load(path, min_user_inter=1, min_item_inter=1)
    assert data.inter["timestamp"].tolist() == [1500, 1499999]
    ms = _load(path, min_user_inter=1, min_item_inter=1, time_unit="ms")
    assert ms.inter["timestamp"].tolist() == [1, 1499]


def test_duplicate_rows_are_kept_in_file_order(tmp_path):
    rows = "".join(f"{u},{i},{100 + i}\n" for u in (1, 2, 3) for i in (1, 2, 3))
    path = _csv(tmp_path, HEADER + rows + "1,2,102\n1,2,102\n")  # two duplicates of (1, 2, 102)
    data = _load(path, min_user_inter=1, min_item_inter=1)
    assert len(data.inter) == 11
    user1 = data.inter[data.inter["user"] == 1]
    assert user1["item"].tolist() == [1, 2, 2, 2, 3]


def test_unsorted_timestamps_get_a_stable_sort(tmp_path):
    # user 7: items a..d at times 5, 3, 3, 1 -> d (1), b (3), c (3, after b in the file), a (5)
    path = _csv(tmp_path, HEADER + "7,a,5\n7,b,3\n7,c,3\n7,d,1\n")
    data = _load(path, min_user_inter=1, min_item_inter=1)
    items = data.item_ids[data.inter["item"].to_numpy()]
    assert items.tolist() == ["d", "b", "c", "a"]
    assert data.inter["timestamp"].tolist() == [1, 3, 3, 5]
    batch = next(iter(data.split().eval_batches("test", max_len=10)))
    deltas = time_deltas(batch["time_seq"])
    assert deltas.tolist() == [[0, 2, 0]]  # equal timestamps: dt = 0 is allowed


def test_users_with_fewer_than_three_items_are_dropped_with_a_count(tmp_path, caplog):
    rows = "".join(f"1,{i},{i}\n" for i in range(1, 6)) + "2,1,1\n2,2,2\n3,3,3\n"
    data = _load(_csv(tmp_path, HEADER + rows), min_user_inter=1, min_item_inter=1)
    with caplog.at_level(logging.WARNING, logger="ssmlab.data.split"):
        split = data.split()
    assert split.dropped_users == 2 and len(split) == 1
    assert "dropped 2 user(s)" in caplog.text
    batches = list(split.train_batches("last", batch_size=4, max_len=3, seed=0))
    assert sum(len(b["target"]) for b in batches) == 2
    every_user_short = _load(
        _csv(tmp_path, HEADER + "1,1,1\n1,2,2\n", "short.csv"), min_user_inter=1, min_item_inter=1
    ).split()
    assert len(every_user_short) == 0
    assert list(every_user_short.train_batches("all", seed=0)) == []
    assert list(every_user_short.eval_batches("test")) == []


def test_kcore_that_removes_everything_raises(tmp_path):
    path = _csv(tmp_path, HEADER + "1,1,1\n1,2,2\n")
    with pytest.raises(ValueError, match="no interaction is left"):
        _load(path)


def test_gaps_of_years_normalize_without_overflow():
    year = 365 * 86400
    time_seq = torch.tensor([[0, 30 * year, 60 * year, 2**33, 0]])  # 2**33 s ~ 272 years
    deltas = time_deltas(time_seq)  # the padding's negative difference is clamped to 0
    assert deltas.tolist() == [[0, 30 * year, 30 * year, 2**33 - 60 * year, 0]]
    for norm, scale in (("raw", None), ("log1p", None), ("scale", 3600.0)):
        values = time_gap_to_dt(deltas, norm, scale, dtype=torch.float32)
        assert values.dtype == torch.float32 and torch.isfinite(values).all()
    assert time_gap_to_dt(deltas, "log1p").max() < 23
    with pytest.raises(ValueError, match="scale > 0"):
        time_gap_to_dt(deltas, "scale", 0.0)
    assert np.isfinite(float(time_gap_to_dt(torch.tensor([2**62]), "raw", dtype=torch.float32)))
