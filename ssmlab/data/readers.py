"""Parsers: one raw file format -> a (user, item, timestamp) table in file order.

Every reader returns a ``pandas.DataFrame`` with columns ``user``, ``item`` (original ids, int
or str) and ``timestamp`` (int64 Unix seconds), one row per raw interaction, in file order.
Nothing is de-duplicated: duplicate rows are kept (RecBole keeps them too) and their file order
decides their order among equal timestamps later.

Bad input raises :class:`~ssmlab.data.sources.DataFormatError` whose message names the file
and the 1-based line number: malformed or truncated lines, empty files, missing columns,
non-numeric, non-finite or negative timestamps.
"""

from __future__ import annotations

import ast
import gzip
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ssmlab.data.sources import DataFormatError

Source = Path | bytes  # a file on disk, or the bytes of an archive member
COLUMNS = ("user", "item", "timestamp")
TIME_UNITS = {"s": 1, "ms": 1000}


def _stream(source: Source):
    return io.BytesIO(source) if isinstance(source, bytes) else source


def read_table(
    source: Source,
    *,
    display: str,
    sep: str,
    header: bool,
    columns: tuple[str, str, str],
    names: list[str] | None = None,
    time_unit: str = "s",
    extra: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Read a delimited file and keep ``columns`` = (user, item, time) as user/item/timestamp.

    ``header=True``: the first line names the columns. ``header=False``: ``names`` gives them.
    ``extra`` columns (e.g. KuaiRand's ``is_click``) are kept under their own names.
    """
    if time_unit not in TIME_UNITS:
        raise ValueError(f"time_unit must be one of {sorted(TIME_UNITS)}, got {time_unit!r}")
    if len(columns) != 3:
        raise ValueError(f"columns must name (user, item, time), got {columns!r}")
    wanted = list(columns) + list(extra)
    try:
        if header:
            found = list(pd.read_csv(_stream(source), sep=sep, nrows=0).columns)
        else:
            found = list(names or [])
    except pd.errors.EmptyDataError:
        raise DataFormatError(f"{display} is empty: no header and no interactions") from None
    missing = [c for c in wanted if c not in found]
    if missing:
        raise DataFormatError(
            f"{display}: missing column(s) {missing}; columns found: {found}. "
            "Name the right ones with columns=(user, item, time)."
        )
    try:  # no usecols: with it pandas silently ignores extra fields on a line
        frame = pd.read_csv(
            _stream(source),
            sep=sep,
            header=0 if header else None,
            names=None if header else names,
            skip_blank_lines=False,
            keep_default_na=False,
            na_values=[""],
            low_memory=False,
        )
    except pd.errors.EmptyDataError:
        raise DataFormatError(f"{display} is empty: no interactions") from None
    except pd.errors.ParserError as err:  # pandas names the line: "Expected 4 fields in line 7"
        raise DataFormatError(f"{display}: malformed line: {err}") from None
    first_line = 2 if header else 1
    if not isinstance(frame.index, pd.RangeIndex):  # pandas took a surplus field as the index
        raise DataFormatError(f"{display}: line {first_line}: more fields than columns {found}")
    if len(frame) == 0:
        raise DataFormatError(f"{display} holds a header but no interactions")
    bad = frame[wanted].isna().any(axis=1).to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise DataFormatError(
            f"{display}: line {row + first_line}: malformed or truncated line "
            f"(missing field among {wanted})"
        )
    return _finish(frame, columns, display, first_line, TIME_UNITS[time_unit], extra)


def _finish(
    frame: pd.DataFrame,
    columns,
    display: str,
    first_line: int,
    divisor: int,
    extra: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Validate the time column and return user/item/timestamp (+ extra) in file order."""
    raw_time = frame[columns[2]]
    if pd.api.types.is_integer_dtype(raw_time.dtype):
        seconds = raw_time.to_numpy(np.int64)
    else:
        numeric = pd.to_numeric(raw_time, errors="coerce").to_numpy(np.float64)
        bad = ~np.isfinite(numeric)
        if bad.any():
            row = int(np.argmax(bad))
            raise DataFormatError(
                f"{display}: line {row + first_line}: timestamp "
                f"{raw_time.iloc[row]!r} is not a finite number"
            )
        seconds = np.floor(numeric).astype(np.int64)
    negative = seconds < 0
    if negative.any():
        row = int(np.argmax(negative))
        raise DataFormatError(
            f"{display}: line {row + first_line}: negative timestamp "
            f"{raw_time.iloc[row]!r} (Unix seconds must be >= 0)"
        )
    out = pd.DataFrame(
        {
            "user": _ids(frame[columns[0]]),
            "item": _ids(frame[columns[1]]),
            "timestamp": seconds // divisor,
        }
    )
    for name in extra:
        out[name] = frame[name].to_numpy()
    return out


def _ids(column: pd.Series) -> np.ndarray:
    """Ids as int64 when pandas read integers, else as str (object array)."""
    if pd.api.types.is_integer_dtype(column.dtype):
        return column.to_numpy(np.int64)
    return column.astype(str).str.strip().to_numpy(dtype=object)


def read_ml100k(source: Source, display: str) -> pd.DataFrame:
    """MovieLens-100K ``u.data``: ``user \\t item \\t rating \\t timestamp``, no header."""
    return read_table(
        source,
        display=display,
        sep="\t",
        header=False,
        names=["user_id", "item_id", "rating", "timestamp"],
        columns=("user_id", "item_id", "timestamp"),
    )


def read_ml1m(source: Source, display: str) -> pd.DataFrame:
    """MovieLens-1M ``ratings.dat``: ``user::item::rating::timestamp``, no header."""
    raw = source if isinstance(source, bytes) else Path(source).read_bytes()
    # "::" is a multi-character separator (python engine, slow): map it to a tab first.
    return read_table(
        raw.replace(b"::", b"\t"),
        display=display,
        sep="\t",
        header=False,
        names=["user_id", "item_id", "rating", "timestamp"],
        columns=("user_id", "item_id", "timestamp"),
    )


def read_beauty_5core_csv(source: Source, display: str) -> pd.DataFrame:
    """The shared offline layout ``beauty_5core.csv.gz``: ``user_id,item_id,timestamp``."""
    raw = source if isinstance(source, bytes) else Path(source).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return read_table(
        raw, display=display, sep=",", header=True, columns=("user_id", "item_id", "timestamp")
    )


def read_amazon_ratings_csv(source: Source, display: str) -> pd.DataFrame:
    """McAuley 2014 ``ratings_<Category>.csv``: ``user,item,rating,timestamp``, no header."""
    return read_table(
        source,
        display=display,
        sep=",",
        header=False,
        names=["user", "item", "rating", "timestamp"],
        columns=("user", "item", "timestamp"),
    )


def read_amazon_reviews_json(source: Source, display: str) -> pd.DataFrame:
    """McAuley 2014 ``reviews_<Category>_5.json.gz``: one review per line.

    Uses ``reviewerID``, ``asin`` and ``unixReviewTime``. Lines are JSON; the 2014 dumps
    contain some Python-literal lines, which are read with ``ast.literal_eval``.
    """
    raw = source if isinstance(source, bytes) else Path(source).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    users, items, times = [], [], []
    for number, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            raise DataFormatError(f"{display}: line {number}: empty line")
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            try:
                record = ast.literal_eval(line)
            except (ValueError, SyntaxError):
                raise DataFormatError(f"{display}: line {number}: not a JSON object") from None
        try:
            users.append(record["reviewerID"])
            items.append(record["asin"])
            times.append(record["unixReviewTime"])
        except (KeyError, TypeError):
            raise DataFormatError(
                f"{display}: line {number}: needs keys reviewerID, asin, unixReviewTime"
            ) from None
    if not users:
        raise DataFormatError(f"{display} is empty: no interactions")
    frame = pd.DataFrame(
        {
            "reviewerID": pd.Series(users, dtype=object),
            "asin": pd.Series(items, dtype=object),
            "unixReviewTime": pd.Series(times, dtype=object),
        }
    )
    return _finish(frame, ("reviewerID", "asin", "unixReviewTime"), display, 1, 1)


def read_kuairand(sources: list[tuple[Source, str]], clicks_only: bool = False) -> pd.DataFrame:
    """KuaiRand ``log_standard_*.csv`` files (header ``user_id,video_id,date,hourmin,time_ms,
    is_click,...``), concatenated in the given order; ``time_ms`` (Unix ms) -> seconds.

    ``clicks_only=True`` keeps only rows with ``is_click == 1`` (see the registry note on why
    the default keeps every logged view).
    """
    frames = []
    for source, display in sources:
        extra = ("is_click",) if clicks_only else ()
        frame = read_table(
            source,
            display=display,
            sep=",",
            header=True,
            columns=("user_id", "video_id", "time_ms"),
            time_unit="ms",
            extra=extra,
        )
        if clicks_only:
            frame = frame[frame.pop("is_click").astype(np.int64) == 1]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
