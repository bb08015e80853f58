"""Benchmarks behind ``ssmlab bench``, and the probes they share.

- :mod:`~ssmlab.bench.probe`: the one timer, peak memory, machine and git info (torch only);
- :mod:`~ssmlab.bench.kernels`: SSM kernel time and memory against sequence length
  (``ssmlab bench kernels``);
- :mod:`~ssmlab.bench.train`: training/inference time and memory per model and max_len
  (``ssmlab bench train``) and one epoch on a real dataset (``ssmlab bench train --data NAME``);
- :mod:`~ssmlab.bench.report`: their markdown and result files.

The library never imports this package; the CLI and ``benchmarks/`` do.
"""

from __future__ import annotations

from ssmlab.bench.probe import (
    PeakMemory,
    git_info,
    machine_info,
    measure_lengths,
    median_seconds,
    time_calls,
)

BENCHMARKS = ("kernels", "train")


def main(what: str, argv: list[str]) -> int:
    """Entry point of ``ssmlab bench kernels|train [args]``."""
    if what == "kernels":
        from ssmlab.bench.kernels import main as kernels_main

        return kernels_main(argv)
    if what == "train":
        from ssmlab.bench.train import main as train_main

        return train_main(argv)
    raise ValueError(f"unknown benchmark {what!r}: expected one of {BENCHMARKS}")


__all__ = [
    "BENCHMARKS",
    "PeakMemory",
    "git_info",
    "machine_info",
    "main",
    "measure_lengths",
    "median_seconds",
    "time_calls",
]
