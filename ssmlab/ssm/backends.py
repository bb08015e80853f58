"""Optional mamba-ssm bridge: chosen once, imported lazily, never required.

``backend()`` says which path the dispatching functions (``ssd``, ``selective_scan``) take by
default: ``"mamba_ssm"`` when CUDA is available and mamba-ssm's kernels import, else ``"torch"``.
``SSMLAB_BACKEND=torch`` forces the readable torch path and ``SSMLAB_BACKEND=mamba_ssm`` the
kernels (a call they cannot serve is then an error, as for ``backend="mamba_ssm"``).

A kernel serves CUDA tensors. The Triton kernel (``mamba_chunk_scan_combined``) also serves CPU
tensors while Triton's interpreter is on (``TRITON_INTERPRET=1``): slow, but the kernel's own
code, which is how ``tests/kernels`` checks it on a machine without a GPU. It is never the
default there: only a forced or requested ``"mamba_ssm"`` takes it. ``selective_scan_fn`` is a
compiled CUDA extension and needs CUDA tensors.

Nothing here imports mamba-ssm at module import time: on a CPU machine ``import mamba_ssm``
fails (its ``__init__`` loads a CUDA extension).
"""

from __future__ import annotations

import functools
import os
import warnings

import torch

BACKENDS = ("torch", "mamba_ssm")
TRITON_KERNELS = {"mamba_chunk_scan_combined": "mamba_ssm.ops.triton.ssd_combined"}
CUDA_KERNELS = {"selective_scan_fn": "mamba_ssm.ops.selective_scan_interface"}
KERNELS = TRITON_KERNELS | CUDA_KERNELS


def interpreting() -> bool:
    """True while Triton interprets kernels on CPU tensors (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "").strip().lower() in ("1", "true", "on")


@functools.cache
def _import_mamba(attr: str):
    """Return mamba-ssm's kernel ``attr`` or None (warns once per kernel when the import fails)."""
    try:
        module = __import__(KERNELS[attr], fromlist=[attr])
        return getattr(module, attr)
    # not installed, a compiled extension that fails to load, a CUDA or Triton mismatch: fall back
    except Exception as err:  # noqa: BLE001
        warnings.warn(f"mamba-ssm {attr} unavailable ({err!r}); using the torch path", stacklevel=3)
        return None


def mamba_kernel(name: str):
    """mamba-ssm's ``mamba_chunk_scan_combined`` or ``selective_scan_fn``, or None.

    None without CUDA (for the Triton kernel: without CUDA and without the interpreter), or
    when mamba-ssm does not import.
    """
    if name not in KERNELS:
        raise ValueError(f"unknown mamba-ssm kernel {name!r}: expected one of {tuple(KERNELS)}")
    if torch.cuda.is_available() or (name in TRITON_KERNELS and interpreting()):
        return _import_mamba(name)
    return None


def _forced() -> str | None:
    forced = os.environ.get("SSMLAB_BACKEND", "").strip().lower()
    if forced and forced not in BACKENDS:
        raise ValueError(f"SSMLAB_BACKEND={forced!r}: expected one of {BACKENDS}")
    return forced or None


def backend() -> str:
    """The default backend: ``"mamba_ssm"`` or ``"torch"`` (``SSMLAB_BACKEND`` forces one)."""
    forced = _forced()
    if forced:
        return forced
    on_gpu = torch.cuda.is_available() and mamba_kernel("mamba_chunk_scan_combined") is not None
    return "mamba_ssm" if on_gpu else "torch"


def _serves(kernel: str, tensors) -> bool:
    """Whether ``kernel`` can run on these tensors: all on CUDA, or all on CPU when interpreted."""
    devices = {t.device.type for t in tensors if t is not None}
    if devices == {"cuda"}:
        return True
    return devices == {"cpu"} and kernel in TRITON_KERNELS and interpreting()


def resolve(requested: str | None, *tensors: torch.Tensor, kernel: str) -> str:
    """Pick the path for one call: an explicit ``requested`` wins; ``None`` means ``backend()``.

    The mamba-ssm path is taken when ``kernel`` serves the tensors (``_serves``) and imports.
    Where it cannot, a requested or forced ``"mamba_ssm"`` raises; the default falls back to
    the torch path.
    """
    choice = backend() if requested is None else requested
    if choice not in BACKENDS:
        raise ValueError(f"backend={choice!r}: expected one of {BACKENDS}")
    if choice == "torch":
        return "torch"
    if _serves(kernel, tensors) and mamba_kernel(kernel) is not None:
        return "mamba_ssm"
    if requested == "mamba_ssm" or _forced() == "mamba_ssm":
        where = "CUDA tensors"
        if kernel in TRITON_KERNELS:
            where += " (or CPU tensors with TRITON_INTERPRET=1)"
        raise RuntimeError(f"backend='mamba_ssm' needs {where} and mamba-ssm's {kernel}")
    return "torch"
