"""What every benchmark measures the same way: call time, peak memory, the machine, the commit.

- :func:`time_calls` is the one timer: untimed warm-up calls, then each timed call alone (CUDA
  synchronized around it) with torch's CPU threads pinned if asked; :func:`median_seconds` and
  :func:`measure_lengths` are built on it. It follows ``torch.utils.benchmark.Timer``'s recipe
  but keeps every call's time (the result files record them) and can time a different input per
  call (batches, slider values), which ``Timer`` cannot.
- :class:`PeakMemory`: the peak memory a block adds, CUDA or CPU (Linux).
- :func:`machine_info` and :func:`git_info`: what every result file records about where it ran.

Imports only torch and the standard library: everything in ``ssmlab.bench`` stands on it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import torch


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Torch's intra-op CPU threads set to ``n`` in the block, restored after (None: as is)."""
    saved = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(saved)


CLOCKS = {"wall": time.perf_counter, "process": time.process_time}


def time_calls(
    fn: Callable,
    repeats: int = 5,
    *,
    inputs: Sequence | None = None,
    warmup: int = 1,
    device: str | torch.device = "cpu",
    threads: int | None = None,
    clock: str = "wall",
) -> list[float]:
    """Seconds of each timed call of ``fn``, after ``warmup`` untimed calls.

    Without ``inputs``: ``warmup`` untimed calls ``fn()``, then ``repeats`` timed ones. With
    ``inputs``: ``fn(x)`` for the first ``warmup`` inputs untimed, then ``fn(x)`` for every input
    timed (``repeats`` is ignored). On CUDA each timed call is synchronized before and after;
    ``threads`` pins torch's CPU threads for the whole measurement. ``clock``: ``"wall"``
    seconds, or ``"process"`` CPU seconds of this process (all its threads: the work done, which
    other jobs on the machine do not inflate; CPU only).
    """
    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {sorted(CLOCKS)}, got {clock!r}")
    timer = CLOCKS[clock]
    calls = [()] * repeats if inputs is None else [(x,) for x in inputs]
    if not calls or warmup < 0:
        raise ValueError(f"expected at least one timed call and warmup >= 0, got {warmup=}")
    warm = [()] * warmup if inputs is None else calls[:warmup]
    cuda = torch.device(device).type == "cuda"
    times = []
    with torch_threads(threads):
        for args in warm:
            fn(*args)
        for args in calls:
            if cuda:
                torch.cuda.synchronize(device)
            start = timer()
            fn(*args)
            if cuda:
                torch.cuda.synchronize(device)
            times.append(timer() - start)
    return times


def median_seconds(fn: Callable[[], object], repeats: int = 3, warmup: int = 1, **kwargs) -> float:
    """Median seconds of ``fn()`` over ``repeats`` calls after ``warmup`` untimed ones
    (``kwargs``: ``device``, ``threads``, ``clock`` of :func:`time_calls`)."""
    if repeats < 1 or warmup < 0:
        raise ValueError(
            f"repeat, warmup: expected repeat >= 1 and warmup >= 0, got {repeats}, {warmup}"
        )
    return statistics.median(time_calls(fn, repeats, warmup=warmup, **kwargs))


def optimizer_steps(loss_fn: Callable, batches: Sequence, optimizer) -> tuple[float, float]:
    """Process CPU seconds of one optimizer step per batch (``loss_fn(batch)``, backward, step)
    and the last loss: a training-step comparison's measurement."""
    start = time.process_time()
    for batch in batches:
        loss = loss_fn(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.float().backward()
        optimizer.step()
    return time.process_time() - start, loss.item()


def measure_lengths(
    fns: Mapping[str, Callable],
    make_inputs: Callable[[int], tuple],
    lengths: Sequence[int],
    repeat: int = 5,
    num_threads: int | None = 1,
    **kwargs,
) -> dict[str, np.ndarray]:
    """Median seconds of ``fn(*make_inputs(l), **kwargs)`` for each named ``fn`` and length l
    (one warm-up call each), ready for :func:`ssmlab.viz.timing.cost_vs_length`.

    The inputs are built once per length, outside the timed calls, and shared by all ``fns``.
    ``num_threads`` sets torch's intra-op threads while timing (restored after): one thread gives
    clean scaling curves on a small or shared CPU; ``None`` keeps the current setting.
    """
    if not isinstance(fns, Mapping) or not fns:
        raise ValueError("fns: expected a non-empty dict name -> callable")
    out: dict[str, list[float]] = {name: [] for name in fns}
    with torch_threads(num_threads):
        for length in lengths:
            args = make_inputs(int(length))
            for name, fn in fns.items():
                call = lambda fn=fn, args=args: fn(*args, **kwargs)  # noqa: E731
                out[name].append(median_seconds(call, repeat))
    return {name: np.array(times) for name, times in out.items()}


class PeakMemory:
    """Peak memory (MB) a block adds on top of what was in use when it started.

    CUDA: ``max_memory_allocated`` minus the memory allocated at the start. CPU (Linux): growth
    of the process's peak resident memory (VmHWM), reset through ``/proc/self/clear_refs`` after
    ``malloc_trim`` has returned free heap pages to the OS; inside the block glibc's mmap
    threshold is pinned at 128 KiB, so large tensors are fresh pages the RSS sees. It counts what
    the block touched, allocator overhead included; values below ~1 MB are noise. Time nothing
    inside it: the pinned threshold charges page faults to code that allocates large temporaries.
    Elsewhere ``mb`` stays NaN.
    """

    def __init__(self, device: str):
        self.device, self.mb = str(device), float("nan")

    @staticmethod
    def _status_kb(key: str) -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise KeyError(key)

    def __enter__(self):
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start = torch.cuda.memory_allocated()
        elif Path("/proc/self/clear_refs").exists():
            _set_mmap_threshold(SMALL_MMAP)  # large blocks: fresh pages the RSS counts
            _malloc_trim()  # free heap pages must fault in again when reused, or RSS misses them
            Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
            self.start = self._status_kb("VmRSS")
        else:
            self.start = None
        return self

    def __exit__(self, *exc):
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            self.mb = (torch.cuda.max_memory_allocated() - self.start) / 2**20
        elif self.start is not None:
            self.mb = (self._status_kb("VmHWM") - self.start) / 1024
            _set_mmap_threshold(LARGE_MMAP)
        return False


SMALL_MMAP, LARGE_MMAP = 128 * 1024, 32 * 2**20  # glibc's default and its dynamic maximum


def _malloc_trim() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _set_mmap_threshold(nbytes: int) -> None:
    """glibc: serve allocations >= ``nbytes`` by mmap (returned to the OS on free)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(-3, nbytes)  # M_MMAP_THRESHOLD


def load_average() -> float | None:
    """The 1-minute load average (None where the OS has none)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def machine_info(device: str = "cpu", packages: Sequence[str] = ()) -> dict:
    """The machine a result was measured on: date, platform, CPU, cores, torch threads and
    version, the load average, the device and the SSM backend; plus the version of each named
    package (e.g. ``("pandas", "numpy")``)."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    from ssmlab.ssm import backend

    info = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_1m": load_average(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": device,
        "device_name": torch.cuda.get_device_name(device) if device.startswith("cuda") else cpu,
        "ssm_backend": backend(),
    }
    for name in packages:
        try:
            info[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            info[name] = None
    return info


def git_info() -> dict:
    """``git_commit`` and ``git_dirty`` (tracked files changed) of this checkout, or None."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            check=False,
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            check=False,
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty": None}
    return {"git_commit": commit or None, "git_dirty": bool(dirty) if commit else None}


__all__ = [
    "PeakMemory",
    "git_info",
    "load_average",
    "machine_info",
    "measure_lengths",
    "median_seconds",
    "optimizer_steps",
    "time_calls",
    "torch_threads",
]
