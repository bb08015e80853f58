"""Parsers: one raw file format -> a (user, item, timestamp) table in file order.

Every reader returns a ``pandas.DataFrame`` with columns ``user``, ``item`` (original ids, int
or str) and ``timestamp`` (int64 Unix seconds), one row per raw interaction, in file order.
Nothing is de-duplicated: duplicate rows are kept (RecBole keeps them too) and their file order
decides their order among equal timestamps later.

Bad input raises :class:`~ssmlab.data.sources.DataFormatError` whose message names the file
and, when known, the 1-based line number: malformed or truncated lines, empty files, missing
columns, empty or NaN/null ids (:data:`MISSING`), bytes that are not UTF-8, corrupt or
truncated gzip data, timestamps that are non-numeric, non-finite, negative or beyond int64.
"""

from __future__ import annotations

import ast
import contextlib
import decimal
import gzip
import io
import json
import math
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from ssmlab.data.sources import DataFormatError

Source = Path | bytes  # a file on disk, or the bytes of an archive member
COLUMNS = ("user", "item", "timestamp")
TIME_UNITS = {"s": 1, "ms": 1000}
# Id cells read as missing: empty, and the NaN/null spellings of spreadsheet and pandas exports
# (never a real user or item id). Other cells: only empty.
MISSING = ("", "nan", "NaN", "NAN", "-nan", "-NaN", "null", "NULL", "None", "N/A", "n/a", "#N/A")
INT64_MAX = np.iinfo(np.int64).max
GZIP_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)


def _stream(source: Source):
    return io.BytesIO(source) if isinstance(source, bytes) else source


def _raw_bytes(source: Source, display: str) -> bytes:
    """The (gunzipped) bytes of a source; corrupt or truncated gzip -> DataFormatError."""
    raw = source if isinstance(source, bytes) else Path(source).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except GZIP_ERRORS as err:
            raise DataFormatError(f"{display}: corrupt or truncated gzip data ({err})") from None
    return raw


def _text(raw: bytes, display: str) -> str:
    """``raw`` decoded as UTF-8; other bytes -> DataFormatError naming the line."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataFormatError(_not_utf8(raw, err, display)) from None


def _not_utf8(raw: bytes, err: UnicodeDecodeError, display: str) -> str:
    line = raw.count(b"\n", 0, err.start) + 1
    byte = raw[err.start : err.start + 1].hex()
    return (
        f"{display}: line {line}: byte 0x{byte} is not UTF-8 text; save the file as UTF-8 "
        "(e.g. `iconv -f latin1 -t utf-8`)"
    )


@contextlib.contextmanager
def _parsing(source: Source, display: str, empty: str):
    """Turn what pandas raises on a bad file into DataFormatError (``empty``: that message)."""
    try:
        yield
    except pd.errors.EmptyDataError:
        raise DataFormatError(f"{display} is empty: {empty}") from None
    except pd.errors.ParserError as err:  # pandas names the line: "Expected 4 fields in line 7"
        raise DataFormatError(f"{display}: malformed line: {err}") from None
    except GZIP_ERRORS as err:
        raise DataFormatError(f"{display}: corrupt or truncated gzip data ({err})") from None
    except UnicodeDecodeError as err:
        raw = _raw_bytes(source, display)
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as located:
            raise DataFormatError(_not_utf8(raw, located, display)) from None
        raise DataFormatError(f"{display}: not UTF-8 text ({err})") from None


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
    found = list(names or [])
    if header:
        with _parsing(source, display, "no header and no interactions"):
            found = list(pd.read_csv(_stream(source), sep=sep, nrows=0).columns)
    missing = [c for c in wanted if c not in found]
    if missing:
        raise DataFormatError(
            f"{display}: missing column(s) {missing}; columns found: {found}. "
            "Name the right ones: `--set data.csv_columns=USER,ITEM,TIME` (ssmlab train), "
            "`--columns USER,ITEM,TIME` (ssmlab data info) or columns=(user, item, time) "
            "(load_dataset)."
        )
    with _parsing(source, display, "no interactions"):
        # no usecols: with it pandas silently ignores extra fields on a line
        frame = pd.read_csv(
            _stream(source),
            sep=sep,
            header=0 if header else None,
            names=None if header else names,
            skip_blank_lines=False,
            keep_default_na=False,
            na_values={**dict.fromkeys(wanted, ("",)), **dict.fromkeys(columns[:2], MISSING)},
            dtype=dict.fromkeys(columns, str),  # parsed exactly by _finish, never via a float
            low_memory=False,
        )
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
            f"(a field among {wanted} is missing, empty or NaN/null)"
        )
    return _finish(frame, columns, display, first_line, TIME_UNITS[time_unit], extra)


def _finish(
    frame: pd.DataFrame,
    columns,
    display: str,
    first_line: int,
    divisor: int,
    extra: tuple[str, ...] = (),
    integer_ids: bool = True,
) -> pd.DataFrame:
    """Validate the time column and return user/item/timestamp (+ extra) in file order.

    ``integer_ids``: integer id columns become int64 (CSV files); else ids stay text (JSON).
    """
    raw_time = frame[columns[2]]
    numeric = _integer_times(raw_time)  # fast path: integers, exact (int64 or uint64)
    if numeric is None:  # decimals, exponents, JSON values: each parsed exactly on its own
        values = [_seconds(v) for v in raw_time.to_numpy(dtype=object)]
        bad = np.array([v is None for v in values])
        if bad.any():
            row = int(np.argmax(bad))
            raise DataFormatError(
                f"{display}: line {row + first_line}: timestamp "
                f"{raw_time.iloc[row]!r} is not a finite number"
            )
        numeric = np.array(values, dtype=object)  # Python ints: no rounding, no overflow
    for bad, what in (
        (numeric < 0, "negative timestamp {}"),
        (numeric > INT64_MAX, "timestamp {} is beyond int64"),
    ):
        if bad.any():
            row = int(np.argmax(bad))
            raise DataFormatError(
                f"{display}: line {row + first_line}: {what.format(raw_time.iloc[row])} "
                f"(Unix time must be in 0..{INT64_MAX})"
            )
    seconds = numeric.astype(np.int64)
    out = pd.DataFrame(
        {
            "user": _ids(frame[columns[0]], display, first_line, integer_ids),
            "item": _ids(frame[columns[1]], display, first_line, integer_ids),
            "timestamp": seconds // divisor,
        }
    )
    for name in extra:
        out[name] = frame[name].to_numpy()
    return out


def _integer_times(raw_time: pd.Series) -> np.ndarray | None:
    """The column as int64/uint64 when every cell is an integer, else None."""
    if pd.api.types.is_integer_dtype(raw_time.dtype):
        return raw_time.to_numpy()
    if pd.api.types.infer_dtype(raw_time, skipna=False) != "string":
        return None
    try:
        numeric = pd.to_numeric(raw_time)
    except (ValueError, TypeError):
        return None
    return numeric.to_numpy() if pd.api.types.is_integer_dtype(numeric.dtype) else None


def _seconds(value) -> int | None:
    """A timestamp cell floored to an int, exactly (decimal text is not rounded through a
    float); None when it is not a finite number (a bool, a list, text, NaN, inf)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return math.floor(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = decimal.Decimal(value.strip())
        except decimal.InvalidOperation:
            return None
        if not number.is_finite():
            return None
        if not 0 <= number <= INT64_MAX:  # out of range (reported so); never builds 10**1e9
            return -1 if number < 0 else INT64_MAX + 1
        return int(number.to_integral_value(rounding=decimal.ROUND_FLOOR))
    return None


def _ids(column: pd.Series, display: str, first_line: int, integers: bool) -> np.ndarray:
    """Ids as str (object array); with ``integers``, as int64 when every id is an integer
    that fits int64 (what pandas makes of an integer column), else the column's text as it
    is: one "1.5", "inf" or 2**63 never turns "1" into "1.0" or wraps around.

    An id that is empty or a NaN/null spelling once stripped (:data:`MISSING`) is an error.
    """
    text = column.astype(str).str.strip()
    ids = text.to_numpy(dtype=object)
    missing = np.isin(ids, MISSING)
    if missing.any():
        row = int(np.argmax(missing))
        raise DataFormatError(
            f"{display}: line {row + first_line}: id {column.iloc[row]!r} is empty or NaN/null"
        )
    if integers:
        try:
            numeric = pd.to_numeric(text)
        except (ValueError, TypeError):
            return ids
        signed = pd.api.types.is_signed_integer_dtype(numeric.dtype)
        if signed or (
            pd.api.types.is_unsigned_integer_dtype(numeric.dtype) and numeric.max() <= INT64_MAX
        ):
            return numeric.to_numpy(np.int64)
    return ids


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
    raw = _raw_bytes(source, display)
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
    raw = _raw_bytes(source, display)
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
    contain some Python-literal lines, which are read with ``ast.literal_eval``. Each line
    must be an object whose ids are strings or integers and whose time is a number.
    """
    text = _text(_raw_bytes(source, display), display)
    users, items, times = [], [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            raise DataFormatError(f"{display}: line {number}: empty line")
        record = _record(line)
        if not isinstance(record, dict) or not {"reviewerID", "asin", "unixReviewTime"} <= set(
            record
        ):
            raise DataFormatError(
                f"{display}: line {number}: not an object with keys reviewerID, asin, "
                "unixReviewTime"
            )
        for key in ("reviewerID", "asin"):
            value = record[key]
            if isinstance(value, bool) or not isinstance(value, str | int):
                raise DataFormatError(
                    f"{display}: line {number}: {key} must be a string or an integer, "
                    f"got {type(value).__name__}"
                )
        users.append(str(record["reviewerID"]))
        items.append(str(record["asin"]))
        times.append(record["unixReviewTime"])
    if not users:
        raise DataFormatError(f"{display} is empty: no interactions")
    frame = pd.DataFrame(
        {
            "reviewerID": pd.Series(users, dtype=object),
            "asin": pd.Series(items, dtype=object),
            "unixReviewTime": pd.Series(times, dtype=object),
        }
    )
    columns = ("reviewerID", "asin", "unixReviewTime")
    return _finish(frame, columns, display, 1, 1, integer_ids=False)


def _record(line: str):
    """One JSON (or Python-literal) line, or None when it is neither (too deep included)."""
    try:
        return json.loads(line)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
        pass
    try:
        return ast.literal_eval(line)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


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
