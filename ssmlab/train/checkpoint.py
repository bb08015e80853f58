"""Atomic checkpoints and RNG state capture, loadable with ``torch.load(weights_only=True)``.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts (no pickled objects):

========== ==================================================================================
key        content
========== ==================================================================================
format     :data:`FORMAT` (bumped when the layout changes)
config     ``ExperimentConfig.to_dict()``
n_items    size of the item vocabulary the model was built for
model      ``model.state_dict()``
optimizer  ``optimizer.state_dict()``
epoch      number of completed epochs
step       number of completed optimizer steps
best       ``{"metric": "ndcg@10", "value": float, "epoch": int}`` (value -inf before any eval)
bad_epochs evaluations since the last improvement (early-stopping counter)
valid      valid metrics of the epoch that wrote the file ({} when not evaluated)
rng        :func:`rng_state` of each process (a list indexed by rank)
data       :func:`data_record` of the processed dataset: its fingerprint, sizes and source
           files (absolute paths, sha256); checked by ``ssmlab eval`` and ``--resume``
========== ==================================================================================

Only finite weights are ever written (the trainer checks with :func:`nonfinite_tensors`
first), so ``last.pt`` and ``best.pt`` always hold the last good state of a run.

Files are written to a temporary name in the same folder and moved into place with
``os.replace``, so a crash mid-write never leaves a truncated ``last.pt`` or ``best.pt``.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT = 1
REQUIRED = ("format", "config", "n_items", "model", "epoch", "step", "best")


class CheckpointError(ValueError):
    """A file is not a readable ssmlab checkpoint, or does not fit the model or data."""


def nonfinite_tensors(state_dict: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors of ``state_dict`` holding a NaN or an inf."""
    return [
        name
        for name, value in state_dict.items()
        if torch.is_tensor(value) and value.is_floating_point() and not value.isfinite().all()
    ]


def data_record(dataset) -> dict[str, Any]:
    """What a checkpoint records of its ``ssmlab.data.Dataset``: fingerprint, sizes, files."""
    files = [
        [os.path.abspath(path), member or "", sha256]
        for path, member, sha256 in dataset.meta.get("files", [])
    ]
    return {
        "name": dataset.name,
        "fingerprint": dataset.fingerprint,
        "users": dataset.n_users,
        "items": dataset.n_items,
        "interactions": len(dataset.inter),
        "files": files,
    }


def data_changes(saved: dict[str, Any], dataset) -> list[str]:
    """How ``dataset`` differs from the checkpoint's :func:`data_record` (empty: the same)."""
    now = data_record(dataset)
    if saved.get("fingerprint") == now["fingerprint"]:
        return []
    changes = [
        f"{key} {saved.get(key)} -> {now[key]}"
        for key in ("users", "items", "interactions")
        if saved.get(key) != now[key]
    ]
    then_files = {(path, member): sha for path, member, sha in saved.get("files", [])}
    for path, member, sha in now["files"]:
        old = then_files.get((path, member))
        if old is not None and old != sha:
            changes.append(f"file {path} sha256 {old[:12]}... -> {sha[:12]}...")
    changes.append(
        f"fingerprint {str(saved.get('fingerprint'))[:12]}... -> {now['fingerprint'][:12]}..."
    )
    return changes


def atomic_save(obj: dict[str, Any], path: str | Path) -> Path:
    """``torch.save`` atomically: temp file in the same folder, fsync, then ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` and check its layout."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated file, foreign pickle, ...
        raise CheckpointError(f"cannot read checkpoint {path}: {err}") from err
    missing = [k for k in REQUIRED if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise CheckpointError(f"{path} is not an ssmlab checkpoint (missing keys {missing})")
    if ckpt["format"] != FORMAT:
        raise CheckpointError(
            f"{path}: checkpoint format {ckpt['format']}, this ssmlab reads {FORMAT}"
        )
    return ckpt


def rng_state(data_generator: torch.Generator | None = None) -> dict[str, Any]:
    """Python, numpy, torch (CPU and CUDA) and data-order generator states, as plain values."""
    version, internal, gauss = random.getstate()
    key, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": {"version": version, "state": list(internal), "gauss": gauss},
        "numpy": {
            "key": key,
            "state": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
    }
    if data_generator is not None:
        state["data"] = data_generator.get_state()
    return state


def set_rng_state(state: dict[str, Any], data_generator: torch.Generator | None = None) -> None:
    """Restore what :func:`rng_state` captured."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state(
        (
            npy["key"],
            npy["state"].numpy().astype(np.uint32),
            npy["pos"],
            npy["has_gauss"],
            npy["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") and torch.cuda.is_available():
        cuda = [s.cpu() for s in state["cuda"]]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
    if data_generator is not None and "data" in state:
        data_generator.set_state(state["data"].cpu())


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


__all__ = [
    "FORMAT",
    "CheckpointError",
    "atomic_save",
    "data_changes",
    "data_record",
    "load_checkpoint",
    "nonfinite_tensors",
    "rng_state",
    "seed_everything",
    "set_rng_state",
]
