"""Efficiency benchmark: training time per epoch, inference time and peak memory vs max_len.

Usage: ``python benchmarks/efficiency.py
[--models sasrec,tisasrec,mamba4rec,ssd4rec_star,tim4rec,ss4rec]
[--lengths 50,100,200,400,800] [--batch-size B] [--steps K] [--eval-users N] [--device cpu|cuda]
[--threads T] [--quick] [--out DIR]``, the same as ``ssmlab bench train [args]``. Writes
``benchmarks/results/efficiency-<device>.json``, ``.md`` and ``.html`` (TiM4Rec Table 5 / Fig. 6
analogue). The benchmark itself lives in :mod:`ssmlab.bench.train`.
"""

from __future__ import annotations

import sys

from ssmlab.bench.train import efficiency_main as main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
