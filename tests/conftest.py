"""Shared fixtures: seeds, the offline datasets folder, the gpu marker, assert_close, and a
tiny registered model (TinyGRU) for the trainer and CLI tests."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

from ssmlab.config import load_config
from ssmlab.layers.positions import at_positions
from ssmlab.models import REGISTRY, ModelConfig, SequentialRecommender, build_model

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


def tiny_model(name: str, n_items: int = 30, **fields) -> SequentialRecommender:
    """Model ``name`` at its tiny test size (``load_config(name, "tiny")``: ssmlab/configs/
    datasets.yaml ``tiny`` and ``<model>-tiny.yaml``), with the config ``fields`` changed."""
    config = dataclasses.replace(load_config(name, "tiny").model, **fields)
    return build_model(name, n_items, config)


def next_item_ce(model: SequentialRecommender, batch: dict) -> float:
    """Cross-entropy of ``model``'s next-item scores for ``batch["target"]``, in eval mode
    (dropout off); the model is left in training mode."""
    model.eval()
    with torch.no_grad():
        scores = model.full_sort_predict(batch)
    model.train()
    return torch.nn.functional.cross_entropy(scores, batch["target"]).item()


@dataclass
class TinyConfig(ModelConfig):
    d_model: int = 8
    n_layers: int = 1
    dropout: float = 0.1
    max_len: int = 12


class TinyGRU(SequentialRecommender):
    """Embedding -> dropout -> GRU: causal, right padding only follows real items. Test modules
    import it (``from conftest import TinyGRU``) and register it with :func:`register_model`."""

    config_class = TinyConfig

    def __init__(self, config: TinyConfig, n_items: int):
        super().__init__(config, n_items)
        self.drop = nn.Dropout(config.dropout)
        self.gru = nn.GRU(config.d_model, config.d_model, batch_first=True)

    def encode(self, batch, at=None):
        hidden = self.gru(self.drop(self.item_embedding(batch["item_seq"])))[0]  # (b l d)
        return at_positions(hidden, at)  # (b l d), or (b d) at ``at``


@pytest.fixture
def register_model(monkeypatch):
    """``register_model(name="tinygru", cls=TinyGRU)``: a model the registry knows for one test
    (``ssmlab.models.REGISTRY`` is restored after it)."""

    def register(name: str = "tinygru", cls: type[SequentialRecommender] = TinyGRU):
        monkeypatch.setitem(REGISTRY, name, cls)
        return cls

    return register


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
