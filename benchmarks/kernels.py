"""Kernel benchmark: time and peak memory of the SSM kernels against sequence length.

    python benchmarks/kernels.py [--quick] [--lengths 64,512,4096] [--repeats 5] [--device cpu]

Same as ``ssmlab bench kernels``; the code lives in ``ssmlab.bench.kernels``. Writes
``benchmarks/results/kernels-<device>.json`` and ``.md`` (machine info, tables, targets:
ssd_chunked >= 10x faster than ssd_recurrent at L=512, ssd_chunked time(4096)/time(512) <= 9,
ssd_quadratic's growth exponent). ``SSMLAB_BACKEND=torch`` forces the torch paths.
"""

import sys

from ssmlab.bench.kernels import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
