"""Dataset registry: official sources, pinned hashes, local file names, and the reader of each.

Hash provenance (never invented; ``None`` where no published value was found):

* ``ml-100k.zip`` / ``ml-1m.zip`` sha256: TensorFlow Datasets ``url_checksums/movielens.txt``
  (tensorflow/datasets). GroupLens' own md5s agree with other projects' pins
  (ml-100k ``0e33842e24a9c977be4e0107933c0723``, ml-1m ``c4d9eecfca2ab87c1945afe126590906``).
* ``ml-100k/u.data``, ``amazon-beauty/beauty_5core.csv.gz``: the offline datasets README.
* ``KuaiRand-Pure.tar.gz`` and its two standard logs: pinned by the public repository
  tancysam/sleepNscroll-TiktokTechjam (``contract.py``, ``data/acquire.py``), archive md5
  ``0820331067a3784d9691136f772b35a7``; not checked against Zenodo by us (no network).
* McAuley's 2014 ``reviews_Beauty_5.json.gz`` and ``ratings_Beauty.csv``: no published hash
  found, so ``None``: pooch downloads without a check and the sha256 it got is logged.

KuaiRand note: the TiM4Rec paper (Table 2) reports 23,951 users / 7,111 items / 1,134,420
interactions, but neither TiM4Rec nor the SS4Rec/SSD4Rec material we have says which log or
filter was used (TiM4Rec took the SSD4Rec authors' preprocessed file). The first standard log
(``log_standard_4_08_to_4_21_pure.csv``) holds 83.96 MB of the 105.73 MB of standard logs,
i.e. about 79% of their 1,436,609 rows ~= 1.14M, close to the paper's count after 5-core. So by
default ``kuairand`` reads that log and keeps every logged view (``logs="first"``,
``clicks_only=False``); ``logs="all"`` adds ``log_standard_4_22_to_5_08_pure.csv`` and
``clicks_only=True`` keeps ``is_click == 1`` rows only. This is an inference from file sizes,
not a verified reproduction (no copy of KuaiRand was available to check it).
"""

from __future__ import annotations

import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ssmlab.data import readers

_ML = "https://files.grouplens.org/datasets/movielens"
_AMAZON = "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles"
_KUAIRAND = "https://zenodo.org/records/10439422/files/KuaiRand-Pure.tar.gz"
_KR_LOGS = ("log_standard_4_08_to_4_21_pure.csv", "log_standard_4_22_to_5_08_pure.csv")

# dataset -> file name -> sha256 (hex) or "md5:<hex>"; checked before a local file is parsed.
KNOWN_SHA256: dict[str, dict[str, str]] = {
    "ml-100k": {
        "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
        "ml-100k.zip": "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
    },
    "ml-1m": {
        "ml-1m.zip": "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
    },
    "amazon-beauty": {
        "beauty_5core.csv.gz": "80927bcf130cf044f17c8577ef34a2472111b522318dd697068fa70e7b5553a4",
    },
    "kuairand": {
        "KuaiRand-Pure.tar.gz": "c814bf6f3624c0cfae83c57de3df26b2ed206e5c57bab4c4dcbfabbabe20cbf0",
        _KR_LOGS[0]: "5bb6eb0b3d9f47e5436cb5dc82ee1899b845ebf9750a5560b801e929e18bd41c",
        _KR_LOGS[1]: "429e3b948828942e572f2c3a5be5a25799ffe75591d22d18cf417b9b534d31fd",
    },
}


@dataclass(frozen=True)
class RawFile:
    """One raw file (or one member of an archive) and the reader that parses it."""

    fname: str  # path under <root>/<dataset>/
    reader: str  # name of a function in ssmlab.data.readers
    member: str | None = None  # path inside a .zip / .tar.gz archive
    url: str | None = None  # official download address
    known_hash: str | None = None  # what pooch checks ("<sha256>" or "md5:<hex>")


@dataclass(frozen=True)
class DatasetSpec:
    """How to find, fetch and parse one dataset."""

    name: str
    description: str
    homepage: str
    license: str
    candidates: tuple[tuple[RawFile, ...], ...]  # local layouts tried in order; all files needed
    download: tuple[RawFile, ...] = ()  # what to fetch when no local layout is complete
    options: dict = field(default_factory=dict)  # reader options and their defaults


def _kuairand_plain(logs: tuple[str, ...]) -> tuple[RawFile, ...]:
    return tuple(RawFile(name, "read_kuairand") for name in logs)


def _kuairand_tar(logs: tuple[str, ...]) -> tuple[RawFile, ...]:
    return tuple(
        RawFile(
            "KuaiRand-Pure.tar.gz",
            "read_kuairand",
            member=f"KuaiRand-Pure/data/{name}",
            url=_KUAIRAND,
            known_hash=KNOWN_SHA256["kuairand"]["KuaiRand-Pure.tar.gz"],
        )
        for name in logs
    )


def _kuairand_layouts(logs: tuple[str, ...]) -> tuple[tuple[RawFile, ...], ...]:
    """Plain CSVs, the extracted archive folder, or the archive itself."""
    nested = tuple(RawFile(f"KuaiRand-Pure/data/{n}", "read_kuairand") for n in logs)
    return (_kuairand_plain(logs), nested, _kuairand_tar(logs))


_ML100K_ZIP = RawFile(
    "ml-100k.zip",
    "read_ml100k",
    member="ml-100k/u.data",
    url=f"{_ML}/ml-100k.zip",
    known_hash=KNOWN_SHA256["ml-100k"]["ml-100k.zip"],
)
_ML1M_ZIP = RawFile(
    "ml-1m.zip",
    "read_ml1m",
    member="ml-1m/ratings.dat",
    url=f"{_ML}/ml-1m.zip",
    known_hash=KNOWN_SHA256["ml-1m"]["ml-1m.zip"],
)
_BEAUTY_JSON = RawFile(
    "reviews_Beauty_5.json.gz",
    "read_amazon_reviews_json",
    url=f"{_AMAZON}/reviews_Beauty_5.json.gz",
    known_hash=None,
)

REGISTRY: dict[str, DatasetSpec] = {
    "ml-100k": DatasetSpec(
        "ml-100k",
        "MovieLens 100K ratings (GroupLens), 1997-98",
        "https://grouplens.org/datasets/movielens/100k/",
        "GroupLens research licence: no redistribution, cite Harper & Konstan (2015)",
        candidates=(
            (RawFile("u.data", "read_ml100k"),),
            (RawFile("ml-100k/u.data", "read_ml100k"),),
            (_ML100K_ZIP,),
        ),
        download=(_ML100K_ZIP,),
    ),
    "ml-1m": DatasetSpec(
        "ml-1m",
        "MovieLens 1M ratings (GroupLens), 2000-03",
        "https://grouplens.org/datasets/movielens/1m/",
        "GroupLens research licence: no redistribution, cite Harper & Konstan (2015)",
        candidates=(
            (RawFile("ratings.dat", "read_ml1m"),),
            (RawFile("ml-1m/ratings.dat", "read_ml1m"),),
            (_ML1M_ZIP,),
        ),
        download=(_ML1M_ZIP,),
    ),
    "amazon-beauty": DatasetSpec(
        "amazon-beauty",
        "Amazon Beauty reviews 2014, 5-core (McAuley)",
        "http://jmcauley.ucsd.edu/data/amazon/index_2014.html",
        "research use; cite He & McAuley (WWW 2016), McAuley et al. (SIGIR 2015)",
        candidates=(
            (RawFile("beauty_5core.csv.gz", "read_beauty_5core_csv"),),
            (_BEAUTY_JSON,),
            (
                RawFile(
                    "ratings_Beauty.csv",
                    "read_amazon_ratings_csv",
                    url=f"{_AMAZON}/ratings_Beauty.csv",
                ),
            ),
        ),
        download=(_BEAUTY_JSON,),
    ),
    "kuairand": DatasetSpec(
        "kuairand",
        "KuaiRand-Pure standard logs (Kuaishou), April-May 2022",
        "https://kuairand.com/",
        "CC BY-SA 4.0",
        candidates=_kuairand_layouts(_KR_LOGS[:1]),
        download=_kuairand_tar(_KR_LOGS[:1]),
        options={"logs": "first", "clicks_only": False},
    ),
}
REGISTRY["toy"] = DatasetSpec(
    "toy",
    "generated continuous-time toy sequences (ssmlab.data.toy)",
    "",
    "generated",
    candidates=(),
)


def known_names() -> list[str]:
    """Registered names plus the ``csv:PATH`` form."""
    return sorted(REGISTRY) + ["csv:PATH"]


def _unknown(name: str) -> str:
    return f"unknown dataset {name!r}; known datasets: {', '.join(known_names())}"


def check_name(name: str) -> None:
    """Names ``load_dataset`` accepts (registered, or ``csv:PATH``) pass; any other raises a
    ``KeyError`` that lists the known ones."""
    if name not in REGISTRY and not name.startswith("csv:"):
        raise KeyError(_unknown(name))


def get_spec(name: str, **options) -> DatasetSpec:
    """The spec of ``name``; unknown names raise a ``KeyError`` that lists the known ones."""
    if name not in REGISTRY:
        raise KeyError(_unknown(name))
    spec = REGISTRY[name]
    if name == "kuairand":
        logs = options.get("logs", "first")
        if logs not in ("first", "all"):
            raise ValueError(f"kuairand: logs must be 'first' or 'all', got {logs!r}")
        names = _KR_LOGS[:1] if logs == "first" else _KR_LOGS
        spec = DatasetSpec(
            spec.name,
            spec.description,
            spec.homepage,
            spec.license,
            candidates=_kuairand_layouts(names),
            download=_kuairand_tar(names),
            options=spec.options,
        )
    return spec


def read_member(path: Path, member: str | None) -> Path | bytes:
    """``path`` itself, or the bytes of ``member`` inside the zip / tar archive at ``path``."""
    if member is None:
        return path
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            try:
                return archive.read(member)
            except KeyError:
                raise FileNotFoundError(f"{path} has no member {member!r}") from None
    with tarfile.open(path) as archive:
        try:
            handle = archive.extractfile(member)
        except KeyError:
            handle = None
        if handle is None:
            raise FileNotFoundError(f"{path} has no member {member!r}")
        return handle.read()


def parse(files: list[tuple[RawFile, Path]], **options):
    """Parse the located files of one layout into one user/item/timestamp table."""
    sources = [
        (read_member(path, raw.member), f"{path}" + (f"!{raw.member}" if raw.member else ""))
        for raw, path in files
    ]
    reader = files[0][0].reader
    if reader == "read_kuairand":
        return readers.read_kuairand(sources, clicks_only=bool(options.get("clicks_only", False)))
    source, display = sources[0]
    return getattr(readers, reader)(source, display)
