"""Shared fixtures: seeds, the offline datasets folder, and the gpu marker."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"

# assert_close's tolerances by real dtype (a complex tensor uses its real dtype's): two paths of
# the same math (a fast form against its reference, a formula against its closed form).
TOL = {
    torch.float32: {"atol": 1e-4, "rtol": 1e-4},
    torch.float64: {"atol": 1e-12, "rtol": 1e-10},
}


def assert_close(got, ref, what: str = "", dtype: torch.dtype | None = None, **tol) -> None:
    """``torch.testing.assert_close`` with ``TOL[dtype]`` (default: ``got``'s dtype), or with the
    ``atol``/``rtol`` given; prints the largest absolute difference labelled ``what`` (shown by
    ``pytest -s`` and on failure).

    Test modules import it: ``from conftest import TOL, assert_close`` (``tests/kernels`` and
    ``tests/e2e`` are packages, so that ``conftest`` is always this file).
    """
    diff = (got - ref).abs().max().item() if got.numel() else 0.0
    print(f"{what}: max abs diff {diff:.3e}")
    if not tol:
        dtype = dtype or got.dtype
        tol = TOL[dtype.to_real() if dtype.is_complex else dtype]
    torch.testing.assert_close(got, ref, **tol)


def pytest_configure(config):
    # Tiny tensors: one intra-op thread avoids thread-pool overhead and contention on 2 cores.
    torch.set_num_threads(1)
    if not os.environ.get("SSMLAB_DATA_DIR") and SHARED_DATASETS.is_dir():
        os.environ["SSMLAB_DATA_DIR"] = str(SHARED_DATASETS)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def shared_datasets() -> Path:
    """The read-only real datasets folder (ML-100K, Amazon-Beauty); skips when absent."""
    root = Path(os.environ.get("SSMLAB_DATA_DIR", SHARED_DATASETS))
    if not (root / "ml-100k").is_dir():
        pytest.skip(f"offline datasets not found at {root}")
    return root
