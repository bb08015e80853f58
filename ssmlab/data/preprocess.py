"""Raw table -> iterative k-core -> ids 1..n -> per-user stable time order -> parquet cache.

The steps, in order (RecBole's sequential pipeline, ``user_inter_num_interval: "[5,inf)"``,
``item_inter_num_interval: "[5,inf)"``):

1. iterative k-core: drop every row whose user has fewer than ``min_user_inter`` rows or whose
   item has fewer than ``min_item_inter`` rows, and repeat until nothing changes. Duplicate
   (user, item) rows are NOT merged: each counts. The fixed point is the unique largest
   sub-table in which every user and item is frequent enough, so the order of removals does
   not matter.
2. ids remapped to ``1..n`` in the sorted order of the original ids (0 is padding); the
   original ids are kept (as strings) in ``user_ids[new_id]`` / ``item_ids[new_id]``.
3. rows sorted by (user, timestamp, tie-break). Equal timestamps (same-second batches of
   ML-100K, same-day reviews of Beauty, duplicate rows) are ordered by ``tie_order``:
   ``"file"`` keeps their file order (a stable sort), ``"item"`` puts them in ascending
   original item id (as the ids stand in the raw file, before remapping; RecBole's atomic
   files are probably ordered this way within a day), ``"random"`` shuffles them with
   ``tie_seed``. On Beauty (day-resolution timestamps, 39% of consecutive pairs share a day)
   this decides which item is the valid/test target for 43.5% of users.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ssmlab.data.sources import DataFormatError

CACHE_VERSION = 1
TIE_ORDERS = ("file", "item", "random")


@dataclass
class Processed:
    """A preprocessed interaction table and what is needed to rebuild it."""

    inter: pd.DataFrame  # user, item, timestamp (int64), sorted by (user, time, file order)
    user_ids: np.ndarray  # (n_users + 1,) original user id of each new id, [0] = ""
    item_ids: np.ndarray  # (n_items + 1,) original item id of each new id, [0] = ""
    raw_stats: dict  # table_stats() of the raw table, before filtering


def table_stats(user: np.ndarray, item: np.ndarray) -> dict:
    """users, items, interactions, avg_len, min_len, max_len of a (user, item) table."""
    if len(user) == 0:
        return {
            "users": 0,
            "items": 0,
            "interactions": 0,
            "avg_len": 0.0,
            "min_len": 0,
            "max_len": 0,
        }
    _, per_user = np.unique(user, return_counts=True)
    return {
        "users": len(per_user),
        "items": len(np.unique(item)),
        "interactions": len(user),
        "avg_len": float(len(user) / len(per_user)),
        "min_len": int(per_user.min()),
        "max_len": int(per_user.max()),
    }


def kcore_mask(
    user_codes: np.ndarray, item_codes: np.ndarray, min_user_inter: int, min_item_inter: int
) -> np.ndarray:
    """Rows kept by iterative k-core filtering. Shapes: (n,), (n,) int codes -> (n,) bool."""
    keep = np.ones(len(user_codes), dtype=bool)
    n_users, n_items = int(user_codes.max()) + 1, int(item_codes.max()) + 1
    while True:
        user_count = np.bincount(user_codes[keep], minlength=n_users)
        item_count = np.bincount(item_codes[keep], minlength=n_items)
        new = (
            keep
            & (user_count[user_codes] >= min_user_inter)
            & (item_count[item_codes] >= min_item_inter)
        )
        if new.sum() == keep.sum():
            return new
        keep = new


def preprocess(
    raw: pd.DataFrame,
    min_user_inter: int = 5,
    min_item_inter: int = 5,
    tie_order: str = "file",
    tie_seed: int = 0,
) -> Processed:
    """Filter, remap and sort a raw (user, item, timestamp) table in file order.

    ``tie_order`` orders a user's interactions with equal timestamps (see the module docstring).
    """
    if tie_order not in TIE_ORDERS:
        raise ValueError(f"tie_order must be one of {TIE_ORDERS}, got {tie_order!r}")
    for column in ("user", "item", "timestamp"):
        if column not in raw.columns:
            raise ValueError(f"raw table needs a {column!r} column, got {list(raw.columns)}")
    raw_stats = table_stats(raw["user"].to_numpy(), raw["item"].to_numpy())
    user_codes, _ = pd.factorize(raw["user"], sort=False)
    item_codes, _ = pd.factorize(raw["item"], sort=False)
    keep = kcore_mask(user_codes, item_codes, min_user_inter, min_item_inter)
    if not keep.any():
        raise DataFormatError(
            f"no interaction is left after {min_user_inter}-core (users) / "
            f"{min_item_inter}-core (items) filtering of {raw_stats}"
        )
    row = np.flatnonzero(keep)  # original file order
    user_orig, user_new = np.unique(raw["user"].to_numpy()[row], return_inverse=True)
    item_orig, item_new = np.unique(raw["item"].to_numpy()[row], return_inverse=True)
    timestamp = raw["timestamp"].to_numpy(np.int64)[row]
    if tie_order == "file":
        ties = (row,)
    elif tie_order == "item":  # item_new ascends with the original id; row breaks duplicates
        ties = (row, item_new)
    else:
        ties = (np.random.default_rng(tie_seed).permutation(len(row)),)
    order = np.lexsort((*ties, timestamp, user_new))  # last key sorts first
    inter = pd.DataFrame(
        {
            "user": user_new[order].astype(np.int64) + 1,
            "item": item_new[order].astype(np.int64) + 1,
            "timestamp": timestamp[order],
        }
    )
    return Processed(inter, _with_pad(user_orig), _with_pad(item_orig), raw_stats)


def _with_pad(ids: np.ndarray) -> np.ndarray:
    return np.concatenate([[""], ids.astype(str)]).astype(object)


# -- cache --------------------------------------------------------------------------------------
def cache_key(payload: dict) -> str:
    """A short stable hash of the cache payload (source checksums + settings + version)."""
    import hashlib

    blob = json.dumps({"version": CACHE_VERSION, **payload}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def save_cache(processed: Processed, folder: Path, meta: dict) -> None:
    """Write ``folder/{inter,users,items}.parquet`` + ``meta.json`` atomically (temp + rename)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        processed.inter.to_parquet(tmp / "inter.parquet", index=False)
        pd.DataFrame({"id": processed.user_ids.astype(str)}).to_parquet(tmp / "users.parquet")
        pd.DataFrame({"id": processed.item_ids.astype(str)}).to_parquet(tmp / "items.parquet")
        (tmp / "meta.json").write_text(
            json.dumps({**meta, "raw_stats": processed.raw_stats}, indent=1, default=str)
        )
        try:
            os.replace(tmp, folder)
        except OSError:  # another process wrote the same key first: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_cache(folder: Path) -> tuple[Processed, dict] | None:
    """The cached result in ``folder``, or None when it is missing or unreadable."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
        inter = pd.read_parquet(folder / "inter.parquet")
        users = pd.read_parquet(folder / "users.parquet")["id"].to_numpy(dtype=object)
        items = pd.read_parquet(folder / "items.parquet")["id"].to_numpy(dtype=object)
    except (OSError, ValueError, KeyError):
        return None
    inter = inter.astype({"user": np.int64, "item": np.int64, "timestamp": np.int64})
    return Processed(inter, users, items, meta.pop("raw_stats")), meta
