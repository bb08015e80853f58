"""Harness: run mamba-ssm's Triton kernels on CPU tensors under Triton's interpreter.

``TRITON_INTERPRET=1`` makes every ``@triton.jit`` kernel defined afterwards an interpreted
function that executes its blocks with numpy on CPU tensors: slow, but the kernels' own code.
mamba-ssm's Python wrappers assume a GPU, so for the tests of this folder only (a package-scoped
fixture, undone after its last test) the harness:

- sets ``TRITON_INTERPRET=1`` before mamba-ssm's kernel modules are imported;
- registers a bare ``mamba_ssm`` package (for the rest of the process), so that
  ``mamba_ssm.ops.triton.*`` import without the package ``__init__``, which loads the compiled
  ``selective_scan_cuda`` extension (absent without CUDA) and the Hugging Face model classes
  (not installed by the ``gpu-code`` extra);
- makes ``torch.cuda.device(index)`` a null context (the index is None on CPU);
- answers ``torch.cuda.get_device_properties(...).multi_processor_count`` with a small
  constant (the backward kernels split work by it);
- replaces the autotuner's benchmark (it needs a GPU driver) by a constant time, so the first
  listed config is taken.

Nothing of this is in the library: ``ssmlab.ssm.backends`` only honours
``SSMLAB_BACKEND=mamba_ssm`` (or ``backend="mamba_ssm"``) for CPU tensors while
``TRITON_INTERPRET=1``. Without triton or mamba-ssm the tests are skipped with the reason;
with ``SSMLAB_KERNEL_TESTS=require`` (``make test-kernels`` sets it) that is a failure.
On a machine with CUDA they are skipped: ``tests/test_ssd_gpu.py`` runs the compiled kernels.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import types

import pytest
import torch

SM_COUNT = 2  # stand-in multiprocessor count: >1 exercises the kernels' split reductions
MODULES = ("triton", "mamba_ssm")


def _missing() -> list[str]:
    return [name for name in MODULES if importlib.util.find_spec(name) is None]


def _bare_package(name: str) -> types.ModuleType:
    """The package ``name`` as an empty module whose submodules import from its folder."""
    spec = importlib.util.find_spec(name)
    package = types.ModuleType(name)
    package.__spec__, package.__file__ = spec, spec.origin
    package.__path__ = list(spec.submodule_search_locations)
    return package


def _fixed_bench(self, *args, config, **meta):
    """Stand-in for ``Autotuner._bench``: every config 'takes' 1 ms (median, p20, p80)."""
    return [1.0, 1.0, 1.0]


def _interpreted(kernel) -> bool:
    """True when a (possibly autotuned / heuristics-wrapped) Triton kernel is interpreted."""
    from triton.runtime.interpreter import InterpretedFunction

    while not isinstance(kernel, InterpretedFunction) and hasattr(kernel, "fn"):
        kernel = kernel.fn
    return isinstance(kernel, InterpretedFunction)


@pytest.fixture(scope="package", autouse=True)
def interpreter():
    """Make mamba-ssm's Triton kernels runnable on CPU tensors for this folder's tests."""
    if torch.cuda.is_available():
        pytest.skip("CUDA is available: tests/test_ssd_gpu.py runs the compiled kernels there")
    missing = _missing()
    if missing:
        reason = f"{' and '.join(missing)} not installed: `make test-kernels` installs them"
        if os.environ.get("SSMLAB_KERNEL_TESTS") == "require":
            pytest.fail(f"SSMLAB_KERNEL_TESTS=require but {reason}", pytrace=False)
        pytest.skip(reason)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRITON_INTERPRET", "1")
        # stays after the tests, like the kernel modules imported through it
        sys.modules.setdefault("mamba_ssm", _bare_package("mamba_ssm"))
        from triton.runtime.autotuner import Autotuner

        mp.setattr(torch.cuda, "device", lambda index: contextlib.nullcontext())
        mp.setattr(
            torch.cuda,
            "get_device_properties",
            lambda device=None: types.SimpleNamespace(multi_processor_count=SM_COUNT),
        )
        mp.setattr(Autotuner, "_bench", _fixed_bench)
        from mamba_ssm.ops.triton import ssd_chunk_scan

        if not _interpreted(ssd_chunk_scan._chunk_scan_fwd_kernel):
            pytest.fail(
                "mamba-ssm's Triton kernels were imported before TRITON_INTERPRET=1 was set; "
                "run tests/kernels in a process of its own (`make test-kernels`)",
                pytrace=False,
            )
        yield


@pytest.fixture
def kernel_calls(monkeypatch) -> list[str]:
    """The names of the mamba-ssm kernels that ``ssmlab`` calls during the test, in order."""
    from ssmlab.ssm import backends

    calls, real = [], backends.mamba_kernel

    def counting(name):
        kernel = real(name)
        if kernel is None:
            return None
        return lambda *args, **kwargs: calls.append(name) or kernel(*args, **kwargs)

    monkeypatch.setattr(backends, "mamba_kernel", counting)
    return calls
