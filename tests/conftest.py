"""Shared fixtures: seeds, the offline datasets folder, and the gpu marker."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


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
