"""``load_dataset`` and the ``Dataset`` it returns; ``info_table`` for ``ssmlab data info``."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from ssmlab.data import preprocess as prep
from ssmlab.data import readers, registry, sources
from ssmlab.data.split import Split
from ssmlab.data.toy import make_toy, toy_ceiling

logger = logging.getLogger(__name__)


class Dataset:
    """A preprocessed dataset: per-user sequences sorted by time, ids 1..n (0 = padding).

    Attributes:
        name: registry name (``ml-100k``, ``csv:path.csv``, ...)
        inter: DataFrame ``user``, ``item``, ``timestamp`` (int64), sorted by (user, time,
            file order)
        n_users, n_items: number of users / items (ids ``1..n``)
        user_ids, item_ids: original id (str) of each new id, index 0 = padding
        raw_stats: statistics of the raw table, before filtering
        meta: source files, checksums, settings, cache folder (and the toy rule for ``toy``)
    """

    def __init__(self, name: str, processed: prep.Processed, meta: dict, toy=None):
        self.name = name
        self.inter = processed.inter
        self.user_ids, self.item_ids = processed.user_ids, processed.item_ids
        self.n_users, self.n_items = len(self.user_ids) - 1, len(self.item_ids) - 1
        self.raw_stats = processed.raw_stats
        self.meta = meta
        self.toy = toy  # ssmlab.data.toy.ToyData for the toy dataset, else None
        per_user = np.bincount(self.inter["user"].to_numpy(), minlength=self.n_users + 1)[1:]
        self.offsets = np.concatenate([[0], np.cumsum(per_user)])
        self._split: Split | None = None
        self._fingerprint: str | None = None

    def sequences(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(offsets (u + 1,), items (n,), timestamps (n,)): user u's sequence is
        ``items[offsets[u-1]:offsets[u]]``."""
        return (
            self.offsets,
            self.inter["item"].to_numpy(np.int64),
            self.inter["timestamp"].to_numpy(np.int64),
        )

    @property
    def time_scale(self) -> float:
        """Median positive gap between consecutive items of the same user, in seconds (1.0 if
        none): the ``scale`` of ``time_norm="scale"`` (``ssmlab.ssm.discretize.time_gap_to_dt``)."""
        offsets, _, times = self.sequences()
        gaps = np.diff(times)  # (n - 1)
        within = np.ones(len(gaps), dtype=bool)
        within[offsets[1:-1] - 1] = False  # the gap from one user's last item to the next's first
        positive = gaps[within & (gaps > 0)]
        return float(np.median(positive)) if len(positive) else 1.0

    @property
    def fingerprint(self) -> str:
        """sha256 of the processed data: the (user, item, timestamp) rows in order and the
        original ids behind ``1..n``. Equal fingerprints = the same sequences, the same ids."""
        if self._fingerprint is None:
            digest = hashlib.sha256()
            for column in ("user", "item", "timestamp"):
                digest.update(np.ascontiguousarray(self.inter[column].to_numpy(np.int64)).data)
            for ids in (self.user_ids, self.item_ids):
                digest.update("\x00".join(str(i) for i in ids).encode() + b"\x01")
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    def stats(self) -> dict:
        """users, items, interactions, avg_len, min_len, max_len, sparsity, time_scale, raw."""
        lengths = np.diff(self.offsets)
        n = len(self.inter)
        stats = {
            "name": self.name,
            "users": self.n_users,
            "items": self.n_items,
            "interactions": n,
            "avg_len": n / max(self.n_users, 1),
            "min_len": int(lengths.min()),
            "max_len": int(lengths.max()),
            "sparsity": 1 - self._distinct_pairs() / max(self.n_users * self.n_items, 1),
            "time_scale": self.time_scale,
            "raw": dict(self.raw_stats),
        }
        if self.toy is not None:
            stats["ceiling"] = toy_ceiling(10, self.toy.n_buckets, self.toy.group_size)
        return stats

    def _distinct_pairs(self) -> int:
        """Number of distinct (user, item) pairs: duplicate rows fill no extra matrix cell."""
        user, item = self.inter["user"].to_numpy(np.int64), self.inter["item"].to_numpy(np.int64)
        return len(np.unique(user * (self.n_items + 1) + item))

    def split(self) -> Split:
        """The leave-one-out split (built once, then reused)."""
        if self._split is None:
            offsets, items, times = self.sequences()
            self._split = Split(offsets, items, times, self.n_items)
        return self._split

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, users={self.n_users:,}, items={self.n_items:,}, "
            f"interactions={len(self.inter):,})"
        )


def load_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    min_user_inter: int = 5,
    min_item_inter: int = 5,
    verify: bool = True,
    download: bool = True,
    refresh: bool = False,
    columns: tuple[str, str, str] | None = None,
    sep: str = ",",
    header: bool = True,
    time_unit: str = "s",
    tie_order: str = "file",
    tie_seed: int = 0,
    **options,
) -> Dataset:
    """Load, preprocess (k-core, ids 1..n, stable time order) and cache a dataset.

    Args:
        name: ``ml-1m``, ``amazon-beauty``, ``kuairand``, ``ml-100k``, ``toy`` or ``csv:PATH``.
        data_dir: raw-data root (else ``SSMLAB_DATA_DIR``, else ``<repo>/data``); raw files
            are looked up in ``<data_dir>/<name>/`` and downloaded there when missing.
        cache_dir: processed cache (else ``SSMLAB_CACHE_DIR``, else ``<data_dir>/cache`` if
            writable, else ``~/.cache/ssmlab``).
        min_user_inter, min_item_inter: iterative k-core thresholds (5 = the papers').
        verify: check raw files against pinned sha256s. download: fetch missing files.
        refresh: ignore the processed cache and rebuild it.
        columns, sep, header, time_unit: ``csv:PATH`` only: the (user, item, time) column
            names (default ``("user_id", "item_id", "timestamp")``; with ``header=False`` the
            0-based column positions, e.g. ``(0, 1, 3)``), separator, header line, and whether
            times are seconds (``"s"``) or milliseconds (``"ms"``).
        tie_order, tie_seed: order of a user's interactions with equal timestamps: ``"file"``
            (file order), ``"item"`` (ascending original item id) or ``"random"`` (seeded);
            see :mod:`ssmlab.data.preprocess`. The toy generator has no equal timestamps.
        options: ``toy``: arguments of :func:`ssmlab.data.toy.make_toy`; ``kuairand``:
            ``logs="first"|"all"``, ``clicks_only=False`` (see ``ssmlab.data.registry``).
    """
    if name == "toy":
        toy = make_toy(**options)
        n = toy.n_users
        processed = prep.Processed(
            toy.inter,
            _ids(n),
            _ids(toy.n_items),
            prep.table_stats(toy.inter["user"].to_numpy(), toy.inter["item"].to_numpy()),
        )
        return Dataset(name, processed, {"settings": options}, toy=toy)
    if name.startswith("csv:"):
        files, parse = _csv_source(Path(name[4:]).expanduser(), columns, sep, header, time_unit)
        slug, known = "csv-" + Path(name[4:]).stem, {}
    else:
        spec = registry.get_spec(name, **options)
        files = _locate(spec, data_dir, cache_dir, download)
        slug = name
        known = registry.KNOWN_SHA256.get(name, {})
        parse = None
    checked = []
    for raw, path in files:
        expected = known.get(Path(raw.fname).name) if (verify and parse is None) else None
        checked.append((raw.fname, raw.member, sources.verify_file(path, expected)))
    settings = {
        "min_user_inter": min_user_inter,
        "min_item_inter": min_item_inter,
        "options": options,
        "csv": [columns, sep, header, time_unit],
        "tie_order": [tie_order, tie_seed if tie_order == "random" else None],
    }
    key = prep.cache_key({"name": slug, "files": checked, "settings": settings})
    folder = sources.cache_root(data_dir, cache_dir) / slug / key
    cached = None if refresh else prep.load_cache(folder)
    if cached is not None:
        processed, meta = cached
        meta["cache_hit"] = True
        meta["files"] = [[str(p), m, h] for (_, m, h), (_, p) in zip(checked, files, strict=True)]
        return Dataset(name, processed, meta)
    raw_table = parse() if parse else registry.parse(files, **options)
    processed = prep.preprocess(raw_table, min_user_inter, min_item_inter, tie_order, tie_seed)
    meta = {
        "files": [[str(p), m, h] for (_, m, h), (_, p) in zip(checked, files, strict=True)],
        "settings": settings,
        "cache": str(folder),
        "cache_hit": False,
    }
    try:
        prep.save_cache(processed, folder, meta)
    except OSError as err:
        logger.warning("could not write the processed cache to %s: %s", folder, err)
    return Dataset(name, processed, meta)


def _ids(n: int) -> np.ndarray:
    return np.array([""] + [str(i) for i in range(1, n + 1)], dtype=object)


def _csv_source(path: Path, columns, sep, header, time_unit):
    if not path.is_file():
        raise FileNotFoundError(f"csv dataset file not found: {path}")
    if columns is None:
        columns = ("user_id", "item_id", "timestamp") if header else (0, 1, 2)
    names = None
    if not header:
        width = max(int(c) for c in columns) + 1
        names = [f"c{i}" for i in range(_width(path, sep, width))]
        columns = tuple(f"c{int(c)}" for c in columns)
    raw = registry.RawFile(path.name, "read_table")

    def parse():
        return readers.read_table(
            path,
            display=str(path),
            sep=sep,
            header=header,
            columns=tuple(columns),
            names=names,
            time_unit=time_unit,
        )

    return [(raw, path)], parse


def _width(path: Path, sep: str, minimum: int) -> int:
    with open(path, encoding="utf-8", errors="replace") as handle:
        first = handle.readline()
    return max(minimum, len(first.split(sep)))


def _locate(spec, data_dir, cache_dir, download: bool):
    """Files of the first complete local layout, else downloaded ones."""
    folder = sources.data_root(data_dir) / spec.name
    fallback = sources.download_dir(spec.name, data_dir, cache_dir)
    for base in dict.fromkeys([folder, fallback]):
        for layout in spec.candidates:
            paths = [base / raw.fname for raw in layout]
            if all(p.is_file() for p in paths):
                return list(zip(layout, paths, strict=True))
    looked = ", ".join(raw.fname for layout in spec.candidates for raw in layout)
    if not download or not spec.download:
        raise FileNotFoundError(
            f"{spec.name}: no raw files in {folder} (looked for {looked}); "
            f"download=False. Official source: {spec.homepage}"
        )
    fetched = {}
    for raw in spec.download:
        if raw.fname not in fetched:
            fetched[raw.fname] = sources.fetch(raw.url, raw.known_hash, raw.fname, fallback)
    return [(raw, fetched[raw.fname]) for raw in spec.download]


def info_table(name: str, data_dir: str | os.PathLike | None = None, **kwargs) -> str:
    """A markdown table of raw and processed statistics (``ssmlab data info NAME``)."""
    dataset = load_dataset(name, data_dir, **kwargs)
    stats = dataset.stats()
    min_user = kwargs.get("min_user_inter", 5)
    label = (
        "generated"
        if name == "toy"
        else (f"{min_user}-core" if min_user == kwargs.get("min_item_inter", 5) else "filtered")
    )
    lines = [
        (
            f"{name}: {stats['users']:,} users, {stats['items']:,} items, "
            f"{stats['interactions']:,} interactions"
        ),
        "",
        "| | users | items | interactions | avg len | max len |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row, values in (("raw", stats["raw"]), (label, stats)):
        lines.append(
            f"| {row} | {values['users']:,} | {values['items']:,} | "
            f"{values['interactions']:,} | {values['avg_len']:.1f} | "
            f"{values['max_len']:,} |"
        )
    lines += [
        "",
        (
            f"sparsity {stats['sparsity']:.2%}; median gap between a user's consecutive "
            f"items (time scale) {stats['time_scale']:,.0f} s"
        ),
    ]
    if "ceiling" in stats:
        blind, aware = stats["ceiling"]["time_blind"], stats["ceiling"]["time_aware"]
        lines.append(
            f"ceiling HR@10: time-blind {blind['hr@10']:.2f}, time-aware {aware['hr@10']:.2f}"
        )
    return "\n".join(lines)
