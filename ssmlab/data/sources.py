"""Where raw files live, how they are checked, and how they are downloaded (pooch).

Folders:

* raw data root: ``data_dir`` argument > ``SSMLAB_DATA_DIR`` > ``<repo>/data`` (when ssmlab
  runs from a source checkout holding ``data/README.md``) > ``./data``. Raw files of a dataset
  are looked up in ``<root>/<name>/``; this folder may be read-only (the tests point it at the
  shared offline copy) and is then never written to.
* processed cache: ``cache_dir`` argument > ``SSMLAB_CACHE_DIR`` > ``<root>/cache`` when the raw
  root is writable > ``~/.cache/ssmlab``.
* downloads go to ``<root>/<name>/`` when writable, else to ``<cache>/raw/<name>/``.

Checksums: every raw file whose sha256 is known (:data:`ssmlab.data.registry.KNOWN_SHA256`) is
verified before it is parsed; a mismatch raises :class:`ChecksumError` naming the file, the
expected and the actual hash.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

_REPO_DATA = Path(__file__).resolve().parents[2] / "data"


class ChecksumError(ValueError):
    """A raw file's hash differs from the pinned one."""


class DataFormatError(ValueError):
    """A raw file cannot be parsed (the message names the file and, when known, the line), or
    nothing of it is left to train on after filtering."""


def data_root(data_dir: str | os.PathLike | None = None) -> Path:
    """The raw-data root: ``data_dir`` > ``SSMLAB_DATA_DIR`` > ``<repo>/data`` > ``./data``."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get("SSMLAB_DATA_DIR")
    if env:
        return Path(env).expanduser()
    if (_REPO_DATA / "README.md").is_file():
        return _REPO_DATA
    return Path("data")


def is_writable(folder: Path) -> bool:
    """True when ``folder`` (or its nearest existing parent) is a directory we may write to.

    A directory without any write permission bit counts as read-only even for root (who
    could write anyway): a folder marked read-only is never written to.
    """
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            return False
        probe = probe.parent
    return (
        probe.is_dir()
        and os.access(probe, os.W_OK | os.X_OK)
        and bool(probe.stat().st_mode & 0o222)
    )


def cache_root(
    data_dir: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None
) -> Path:
    """The processed cache: ``cache_dir`` > ``SSMLAB_CACHE_DIR`` > ``<root>/cache`` (if the raw
    root is writable) > ``~/.cache/ssmlab``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("SSMLAB_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    root = data_root(data_dir)
    if is_writable(root):
        return root / "cache"
    return Path.home() / ".cache" / "ssmlab"


def download_dir(name: str, data_dir=None, cache_dir=None) -> Path:
    """Where downloads go: ``<root>/<name>`` if writable, else ``<cache>/raw/<name>``."""
    root = data_root(data_dir) / name
    if is_writable(root):
        return root
    return cache_root(data_dir, cache_dir) / "raw" / name


def file_hash(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: str | os.PathLike, expected: str | None) -> str:
    """Check ``path`` against ``expected`` (``"<hex>"`` = sha256, or ``"md5:<hex>"``).

    Returns the file's sha256. Raises :class:`ChecksumError` naming the file, the expected and
    the actual hash when they differ. ``expected=None`` checks nothing.
    """
    sha256 = file_hash(path)
    if expected is None:
        return sha256
    algorithm, _, want = expected.rpartition(":")
    algorithm = algorithm or "sha256"
    actual = sha256 if algorithm == "sha256" else file_hash(path, algorithm)
    if actual.lower() != want.lower():
        raise ChecksumError(
            f"checksum mismatch for {path}: expected {algorithm} {want}, got {actual}. "
            "The file is corrupt, truncated or a different version; delete it and download "
            "it again, or pass verify=False to use it anyway."
        )
    return sha256


def fetch(url: str, known_hash: str | None, fname: str, folder: Path) -> Path:
    """Download ``url`` to ``folder/fname`` with pooch (hash-checked, progress bar).

    ``known_hash=None`` means no published hash was found: pooch then downloads without a
    check and we log the sha256 it got so that it can be pinned.
    """
    import pooch

    folder.mkdir(parents=True, exist_ok=True)
    try:
        path = Path(
            pooch.retrieve(url, known_hash=known_hash, fname=fname, path=folder, progressbar=True)
        )
    except ValueError as err:  # pooch's hash mismatch
        raise ChecksumError(f"download of {url}: {err}") from err
    except Exception as err:  # requests' network errors
        if not any(folder.iterdir()):
            folder.rmdir()
        raise OSError(
            f"could not download {url} to {folder} ({type(err).__name__}: {err}). "
            f"Without network, put the raw files in {folder} or point "
            "SSMLAB_DATA_DIR at a folder holding <name>/<files>."
        ) from err
    if known_hash is None:
        logger.warning(
            "downloaded %s without a pinned hash; its sha256 is %s", path, file_hash(path)
        )
    return path
