"""Datasets, splits and batches for sequential recommendation.

Registry: ``ml-1m``, ``amazon-beauty``, ``kuairand``, ``ml-100k``, ``toy`` and ``csv:PATH``.
Pipeline: parse -> (user, item, timestamp) -> iterative 5-core -> ids 1..n (0 = padding) ->
per-user stable sort by time -> parquet cache -> leave-one-out split -> batches (dicts of
tensors, the contract in ``ssmlab.models.base``).

>>> from ssmlab.data import load_dataset
>>> data = load_dataset("toy")                      # or "ml-100k", "csv:my.csv", ...
>>> split = data.split()                            # leave-one-out
>>> for batch in split.train_batches("last", batch_size=256, max_len=50, seed=0):
...     break                                       # item_seq, item_seq_len, time_seq, target, ...
>>> valid = split.eval_batches("valid", batch_size=1024, max_len=50)

Training batch layouts: ``"all"`` (padded, a target at every position) and ``"last"`` (RecBole
prefix augmentation, one target per row); every batch is right-padded (SSD4Rec packs its padded
batches itself, ``ssmlab.models.ssd4rec.pack``). Batches carry raw Unix seconds;
the models derive their time features themselves (``ssmlab.ssm.time_deltas``,
``ssmlab.ssm.discretize.time_gap_to_dt``, ``ssmlab.models.ss4rec.query_gaps``). Files and caches:
:mod:`ssmlab.data.sources`; sources and pinned hashes: :mod:`ssmlab.data.registry`.
"""

from ssmlab.data.dataset import Dataset, info_table, load_dataset
from ssmlab.data.registry import REGISTRY, known_names
from ssmlab.data.sources import ChecksumError, DataFormatError
from ssmlab.data.split import Split
from ssmlab.data.toy import make_toy, toy_ceiling

__all__ = [
    "REGISTRY",
    "ChecksumError",
    "DataFormatError",
    "Dataset",
    "Split",
    "info_table",
    "known_names",
    "load_dataset",
    "make_toy",
    "toy_ceiling",
]
