"""ssmlab.data loading: registry, real data figures, official formats, caches, downloads, CLI."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ssmlab.data import REGISTRY, load_dataset, sources
from ssmlab.data.registry import KNOWN_SHA256, check_name

SHARED = Path(
    os.environ.get("SSMLAB_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "datasets")
)
needs_shared = pytest.mark.skipif(
    not (SHARED / "ml-100k").is_dir(), reason=f"offline datasets not found at {SHARED}"
)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def ml100k(cache):
    if not (SHARED / "ml-100k").is_dir():
        pytest.skip("offline datasets not found")
    return load_dataset("ml-100k", SHARED, cache_dir=cache)


@pytest.fixture(scope="module")
def beauty(cache):
    if not (SHARED / "amazon-beauty").is_dir():
        pytest.skip("offline datasets not found")
    return load_dataset("amazon-beauty", SHARED, cache_dir=cache)


def test_registry_and_unknown_name():
    assert {"ml-1m", "amazon-beauty", "kuairand", "ml-100k", "toy"} <= set(REGISTRY)
    with pytest.raises(KeyError) as err:
        load_dataset("ml-10m")
    for name in ("ml-1m", "amazon-beauty", "kuairand", "ml-100k", "toy", "csv:PATH"):
        assert name in str(err.value)
    for name in (*REGISTRY, "csv:any/file.csv"):  # what load_dataset accepts passes the check
        check_name(name)
    with pytest.raises(KeyError) as checked:
        check_name("ml-10m")
    assert checked.value.args == err.value.args  # one message for an unknown name


def test_ml100k_figures_exact(ml100k, shared_datasets):
    stats = ml100k.stats()
    assert (stats["users"], stats["items"], stats["interactions"]) == (943, 1349, 99287)
    assert stats["max_len"] == 648 and round(stats["avg_len"], 1) == 105.3
    raw = stats["raw"]
    assert (raw["users"], raw["items"], raw["interactions"], raw["max_len"]) == (
        943,
        1682,
        100000,
        737,
    )


def test_beauty_figures_exact(beauty, shared_datasets):
    stats = beauty.stats()
    assert (stats["users"], stats["items"], stats["interactions"]) == (22363, 12101, 198502)
    assert stats["max_len"] == 204 and round(stats["avg_len"], 1) == 8.9
    assert stats["raw"]["interactions"] == 198502  # the file is already 5-core
    assert stats["time_scale"] > 0


def test_ids_order_and_roundtrip(ml100k):
    inter = ml100k.inter
    assert inter["user"].min() == 1 and inter["user"].max() == ml100k.n_users
    assert set(inter["item"].unique()) == set(range(1, ml100k.n_items + 1))
    same_user = np.diff(inter["user"].to_numpy()) == 0
    assert np.all(np.diff(inter["user"].to_numpy()) >= 0)
    assert np.all(np.diff(inter["timestamp"].to_numpy())[same_user] >= 0)
    # mapping back to original ids gives exactly the raw rows of the kept items
    raw = pd.read_csv(
        SHARED / "ml-100k" / "u.data",
        sep="\t",
        header=None,
        names=["user", "item", "rating", "timestamp"],
    )
    kept = set(ml100k.item_ids[1:].astype(int))
    raw = raw[raw["item"].isin(kept)]
    back = pd.DataFrame(
        {
            "user": ml100k.user_ids[inter["user"]].astype(int),
            "item": ml100k.item_ids[inter["item"]].astype(int),
            "timestamp": inter["timestamp"].to_numpy(),
        }
    )
    key = ["user", "timestamp", "item"]
    pd.testing.assert_frame_equal(
        back.sort_values(key).reset_index(drop=True),
        raw[key[:1] + ["item", "timestamp"]]
        .sort_values(key)
        .reset_index(drop=True)[["user", "item", "timestamp"]],
    )


def test_same_second_ties_keep_file_order(ml100k):
    raw = pd.read_csv(
        SHARED / "ml-100k" / "u.data",
        sep="\t",
        header=None,
        names=["user", "item", "rating", "timestamp"],
    )
    user = 1  # original user 1: compare with a stable sort of its raw rows by time
    expected = raw[raw["user"] == user].sort_values("timestamp", kind="stable")["item"]
    expected = expected[expected.isin(ml100k.item_ids[1:].astype(int))].to_numpy()
    new_user = int(np.flatnonzero(ml100k.user_ids == str(user))[0])
    got = ml100k.inter[ml100k.inter["user"] == new_user]["item"].to_numpy()
    assert np.array_equal(ml100k.item_ids[got].astype(int), expected)


def test_cache_reload_and_keying(cache, ml100k):
    again = load_dataset("ml-100k", SHARED, cache_dir=cache)
    assert again.meta["cache_hit"] is True and ml100k.meta["cache_hit"] is False
    pd.testing.assert_frame_equal(again.inter, ml100k.inter)
    assert np.array_equal(again.item_ids, ml100k.item_ids)
    assert again.stats() == ml100k.stats()
    stricter = load_dataset("ml-100k", SHARED, cache_dir=cache, min_user_inter=30)
    assert stricter.meta["cache_hit"] is False and stricter.n_users < 943
    rebuilt = load_dataset("ml-100k", SHARED, cache_dir=cache, refresh=True)
    assert rebuilt.meta["cache_hit"] is False


def test_read_only_data_dir_is_never_written(monkeypatch, tmp_path):
    """A raw-data folder without write bits (as CI lays out ../shared) is only read: the cache
    goes to ~/.cache/ssmlab and nothing in the folder is created or changed.

    The test makes its own read-only folder. Root may write to it anyway (the bits do not stop
    root), so the proof is not a PermissionError but the folder's listing, sizes and mtimes,
    which any write, created file or deleted file would change.
    """
    root = tmp_path / "ro"
    (root / "ml-1m").mkdir(parents=True)
    (root / "ml-1m" / "ratings.dat").write_text("\n".join(ML1M_LINES) + "\n")
    home = tmp_path / "home"
    monkeypatch.delenv("SSMLAB_CACHE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(home))
    assert sources.cache_root(root) == root / "cache"  # writable root: <root>/cache

    def snapshot():
        return sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*"))

    modes = {p: p.stat().st_mode for p in [root, *root.rglob("*")]}
    for path, mode in modes.items():
        path.chmod(mode & ~0o222)
    try:
        before = snapshot() + [(str(root), 0, root.stat().st_mtime_ns)]
        assert not sources.is_writable(root / "ml-1m")
        assert not sources.is_writable(root / "ml-20m")  # missing: its read-only parent decides
        assert sources.cache_root(root) == home / ".cache" / "ssmlab"
        assert sources.download_dir("ml-1m", root) == home / ".cache" / "ssmlab" / "raw" / "ml-1m"
        data = load_dataset("ml-1m", root, download=False)
        assert Path(data.meta["cache"]).is_relative_to(home / ".cache" / "ssmlab")
        assert load_dataset("ml-1m", root, download=False).meta["cache_hit"] is True
        monkeypatch.setenv("SSMLAB_CACHE_DIR", str(tmp_path / "c"))
        assert sources.cache_root(root) == tmp_path / "c"
        assert snapshot() + [(str(root), 0, root.stat().st_mtime_ns)] == before
    finally:
        for path, mode in modes.items():
            path.chmod(mode)


def test_shared_files_match_pinned_checksums(shared_datasets):
    for name, fname in (("ml-100k", "u.data"), ("amazon-beauty", "beauty_5core.csv.gz")):
        sha = sources.verify_file(shared_datasets / name / fname, KNOWN_SHA256[name][fname])
        assert sha == KNOWN_SHA256[name][fname]


def test_ml100k_zip_layout(tmp_path, ml100k, cache):
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    with zipfile.ZipFile(folder / "ml-100k.zip", "w") as archive:
        archive.write(SHARED / "ml-100k" / "u.data", "ml-100k/u.data")
    zipped = load_dataset(
        "ml-100k", tmp_path, cache_dir=tmp_path / "c", verify=False, download=False
    )
    pd.testing.assert_frame_equal(zipped.inter, ml100k.inter)


ML1M_LINES = [
    f"{u}::{i}::{1 + (u + i) % 5}::{978300000 + 60 * u + i}"
    for u in range(1, 8)
    for i in range(1, 7)
]


def test_ml1m_official_format(tmp_path):
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    (folder / "ratings.dat").write_text("\n".join(ML1M_LINES) + "\n")
    data = load_dataset("ml-1m", tmp_path, cache_dir=tmp_path / "c", download=False)
    assert (data.n_users, data.n_items, len(data.inter)) == (7, 6, 42)
    assert data.inter["timestamp"].iloc[0] == 978300000 + 60 + 1
    zipped_root = tmp_path / "z"
    (zipped_root / "ml-1m").mkdir(parents=True)
    with zipfile.ZipFile(zipped_root / "ml-1m" / "ml-1m.zip", "w") as archive:
        archive.writestr("ml-1m/ratings.dat", "\n".join(ML1M_LINES) + "\n")
    zipped = load_dataset(
        "ml-1m", zipped_root, cache_dir=tmp_path / "c", verify=False, download=False
    )
    pd.testing.assert_frame_equal(zipped.inter, data.inter)


KR_HEADER = (
    "user_id,video_id,date,hourmin,time_ms,is_click,is_like,is_follow,is_comment,"
    "is_forward,is_hate,long_view,play_time_ms,duration_ms,profile_stay_time,"
    "comment_stay_time,is_profile_enter,is_rand,tab"
)


def _kuairand_log(users, videos, start_ms, click=lambda u, v: 1):
    rows = [KR_HEADER]
    for u in users:
        for v in videos:
            t = start_ms + 1000 * (10 * u + v) + 999  # milliseconds -> floor to seconds
            rows.append(f"{u},{v},20220408,1200,{t},{click(u, v)},0,0,0,0,0,1,5000,9000,0,0,0,0,1")
    return "\n".join(rows) + "\n"


def test_kuairand_logs_clicks_and_archive(tmp_path):
    folder = tmp_path / "kuairand"
    folder.mkdir()
    first = _kuairand_log(range(6), range(6), 1649376000000, click=lambda u, v: int(v != 0))
    second = _kuairand_log(range(6), range(6, 12), 1650600000000)
    (folder / "log_standard_4_08_to_4_21_pure.csv").write_text(first)
    (folder / "log_standard_4_22_to_5_08_pure.csv").write_text(second)
    kw = {"cache_dir": tmp_path / "c", "verify": False, "download": False}
    views = load_dataset("kuairand", tmp_path, **kw)
    assert (views.n_users, views.n_items, len(views.inter)) == (6, 6, 36)
    assert views.inter["timestamp"].iloc[0] == 1649376000 + 0  # user 0 video 0: .999 s floored
    clicks = load_dataset("kuairand", tmp_path, clicks_only=True, **kw)
    assert (clicks.n_items, len(clicks.inter)) == (5, 30)
    both = load_dataset("kuairand", tmp_path, logs="all", **kw)
    assert (both.n_items, len(both.inter)) == (12, 72)
    tar_root = tmp_path / "t"
    (tar_root / "kuairand").mkdir(parents=True)
    with tarfile.open(tar_root / "kuairand" / "KuaiRand-Pure.tar.gz", "w:gz") as archive:
        payload = first.encode()
        info = tarfile.TarInfo("KuaiRand-Pure/data/log_standard_4_08_to_4_21_pure.csv")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    from_tar = load_dataset("kuairand", tar_root, **kw)
    pd.testing.assert_frame_equal(from_tar.inter, views.inter)


def test_amazon_official_formats(tmp_path):
    folder = tmp_path / "amazon-beauty"
    folder.mkdir()
    reviews = [
        {
            "reviewerID": f"A{u}",
            "asin": f"B00{i}",
            "overall": 5.0,
            "unixReviewTime": 1400000000 + 86400 * (u + i),
        }
        for u in range(6)
        for i in range(5)
    ]
    lines = [json.dumps(r) for r in reviews]
    lines[3] = repr(reviews[3])  # a Python-literal line, as in some 2014 dumps
    (folder / "reviews_Beauty_5.json.gz").write_bytes(gzip.compress("\n".join(lines).encode()))
    data = load_dataset("amazon-beauty", tmp_path, cache_dir=tmp_path / "c", download=False)
    assert (data.n_users, data.n_items, len(data.inter)) == (6, 5, 30)
    assert data.item_ids[1] == "B000" and data.user_ids[1] == "A0"
    other = tmp_path / "r" / "amazon-beauty"
    other.mkdir(parents=True)
    (other / "ratings_Beauty.csv").write_text(
        "\n".join(f"{r['reviewerID']},{r['asin']},5.0,{r['unixReviewTime']}" for r in reviews)
        + "\n"
    )
    ratings = load_dataset(
        "amazon-beauty", tmp_path / "r", cache_dir=tmp_path / "c", download=False
    )
    pd.testing.assert_frame_equal(ratings.inter, data.inter)


def test_csv_with_configurable_columns(tmp_path):
    rows = [(u, i, 1000 + 10 * u + i) for u in range(5) for i in range(5)]
    path = tmp_path / "mine.csv"
    pd.DataFrame(rows, columns=["uid", "iid", "ts"]).to_csv(path, index=False)
    data = load_dataset(f"csv:{path}", columns=("uid", "iid", "ts"), cache_dir=tmp_path / "c")
    assert (data.n_users, data.n_items, len(data.inter)) == (5, 5, 25)
    plain = tmp_path / "plain.tsv"
    plain.write_text("\n".join(f"{u}\t{i}\t4\t{t}" for u, i, t in rows) + "\n")
    positional = load_dataset(
        f"csv:{plain}", columns=(0, 1, 3), sep="\t", header=False, cache_dir=tmp_path / "c"
    )
    pd.testing.assert_frame_equal(positional.inter, data.inter)


def test_download_goes_through_pooch_with_pinned_hash(tmp_path, monkeypatch):
    import pooch

    calls = []

    def fake_retrieve(url, known_hash, fname, path, progressbar):
        calls.append((url, known_hash, fname, progressbar))
        Path(path).mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(Path(path) / fname, "w") as archive:
            archive.writestr(
                "ml-100k/u.data",
                "".join(
                    f"{u}\t{i}\t3\t{880000000 + u * 100 + i}\n"
                    for u in range(1, 7)
                    for i in range(1, 7)
                ),
            )
        return str(Path(path) / fname)

    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    data = load_dataset("ml-100k", tmp_path, cache_dir=tmp_path / "c", verify=False)
    assert calls == [
        (
            "https://files.grouplens.org/datasets/movielens/ml-100k.zip",
            KNOWN_SHA256["ml-100k"]["ml-100k.zip"],
            "ml-100k.zip",
            True,
        )
    ]
    assert (tmp_path / "ml-100k" / "ml-100k.zip").is_file() and data.n_users == 6
    with pytest.raises(FileNotFoundError, match=r"ratings\.dat"):
        load_dataset("ml-1m", tmp_path, cache_dir=tmp_path / "c", download=False)


def test_cli_data_info(capsys, monkeypatch, cache, shared_datasets):
    from ssmlab.cli import main

    monkeypatch.setenv("SSMLAB_CACHE_DIR", str(cache))
    assert main(["data", "info", "ml-100k"]) == 0
    out = capsys.readouterr().out
    assert "| raw | 943 | 1,682 | 100,000 | 106.0 | 737 |" in out
    assert "| 5-core | 943 | 1,349 | 99,287 | 105.3 | 648 |" in out
    assert main(["data", "info", "toy"]) == 0
    assert "time-blind 0.50" in capsys.readouterr().out
