"""The math of the three papers as pure functions on torch tensors (SPEC.md API table).

Every name below has a readable reference beside its fast path, and tests that they agree.
Paper keys (SS4Rec, TiM4Rec, SSD4Rec, S4, Mamba, Mamba2) are defined in ``references.md``.
"""

from ssmlab.ssm.backends import backend
from ssmlab.ssm.discretize import discretize
from ssmlab.ssm.s5 import s5_scan
from ssmlab.ssm.s6 import selective_scan
from ssmlab.ssm.scan import linear_scan
from ssmlab.ssm.ssd import (
    ssd,
    ssd_bidirectional,
    ssd_chunked,
    ssd_mask,
    ssd_quadratic,
    ssd_recurrent,
    time_deltas,
)

__all__ = [
    "backend",
    "discretize",
    "linear_scan",
    "s5_scan",
    "selective_scan",
    "ssd",
    "ssd_bidirectional",
    "ssd_chunked",
    "ssd_mask",
    "ssd_quadratic",
    "ssd_recurrent",
    "time_deltas",
]
