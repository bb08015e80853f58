"""Optional mamba-ssm bridge: chosen once, imported lazily, never required.

``backend()`` says which path the dispatching functions (``ssd``, ``selective_scan``) take by
default: ``"mamba_ssm"`` when CUDA is available and mamba-ssm's kernels import, else ``"torch"``.
``SSMLAB_BACKEND=torch`` forces the readable torch path. Nothing here imports mamba-ssm at module
import time: on a CPU machine ``import mamba_ssm`` fails (its ``__init__`` loads a CUDA extension).
"""

from __future__ import annotations

import functools
import os
import warnings

import torch

BACKENDS = ("torch", "mamba_ssm")


@functools.cache
def _import_mamba(attr: str):
    """Return mamba-ssm's kernel ``attr`` or None (warns once per kernel when the import fails)."""
    if not torch.cuda.is_available():
        return None
    modules = {
        "mamba_chunk_scan_combined": "mamba_ssm.ops.triton.ssd_combined",
        "selective_scan_fn": "mamba_ssm.ops.selective_scan_interface",
    }
    try:
        module = __import__(modules[attr], fromlist=[attr])
        return getattr(module, attr)
    except Exception as err:  # ImportError, or a missing compiled extension
        warnings.warn(f"mamba-ssm {attr} unavailable ({err!r}); using the torch path", stacklevel=3)
        return None


def mamba_kernel(name: str):
    """mamba-ssm's ``mamba_chunk_scan_combined`` or ``selective_scan_fn``, or None."""
    return _import_mamba(name)


def backend() -> str:
    """The default backend: ``"mamba_ssm"`` or ``"torch"`` (``SSMLAB_BACKEND=torch`` forces torch)."""
    forced = os.environ.get("SSMLAB_BACKEND", "").strip().lower()
    if forced and forced not in BACKENDS:
        raise ValueError(f"SSMLAB_BACKEND={forced!r}: expected one of {BACKENDS}")
    if forced == "torch":
        return "torch"
    return "mamba_ssm" if mamba_kernel("mamba_chunk_scan_combined") is not None else "torch"


def resolve(requested: str | None, *tensors: torch.Tensor, kernel: str) -> str:
    """Pick the path for one call: an explicit ``requested`` wins; ``None`` means ``backend()``.

    The mamba-ssm path is taken only for CUDA tensors and when ``kernel`` imports.
    """
    choice = backend() if requested is None else requested
    if choice not in BACKENDS:
        raise ValueError(f"backend={choice!r}: expected one of {BACKENDS}")
    if choice == "mamba_ssm":
        on_cuda = all(t.is_cuda for t in tensors if t is not None)
        if not on_cuda or mamba_kernel(kernel) is None:
            if requested == "mamba_ssm":
                raise RuntimeError(
                    f"backend='mamba_ssm' needs CUDA tensors and mamba-ssm's {kernel}"
                )
            return "torch"
    return choice
