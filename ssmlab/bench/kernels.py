"""Benchmarks behind ``ssmlab bench``: kernel time and peak memory against sequence length.

``ssmlab bench kernels [--lengths 64,128,...] [--repeats 5] [--quick] [--device cpu]`` times the
forward pass (under ``torch.no_grad``) and forward + backward (``y.sum().backward()``) of
``ssd_recurrent``, ``ssd_quadratic``, ``ssd_chunked``, ``s5_scan`` and ``selective_scan`` on small
model sizes, reports the median of ``--repeats`` timed runs after one warm-up, and the peak memory
of one more run (memory is measured apart from the timed runs, whose allocator stays untouched):

- CUDA: ``torch.cuda.max_memory_allocated`` minus the memory allocated before the call;
- CPU (Linux): growth of the process's peak resident memory during the call. The peak (VmHWM)
  is reset through ``/proc/self/clear_refs`` before the run, after ``malloc_trim`` has returned
  free heap pages to the OS, and during that run glibc's mmap threshold is pinned at 128 KiB so
  that large tensors are fresh pages the RSS sees. It counts what the call really touched,
  allocator overhead included; values below ~1 MB are noise. (Timing under that pin would
  charge page faults to kernels that allocate many large temporaries.)

A method is skipped at a length where one fwd+bwd call is predicted (from the previous length:
linear growth, quadratic for ``ssd_quadratic``) to take more than ``--budget`` seconds (20), or
its memory to exceed ``--max-mem-mb``; the skip and its reason are recorded. Slow points run
fewer repeats (at least one) so that each takes about ``--budget`` seconds. Results go
to ``<out>/kernels-<tag>.json`` and ``.md`` with machine info and the targets of the project.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import math
import os
import platform
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

KERNELS = ("ssd_recurrent", "ssd_quadratic", "ssd_chunked", "s5_scan", "selective_scan")
DEFAULT_LENGTHS = (64, 128, 256, 512, 1024, 2048, 4096)
QUICK_LENGTHS = (64, 256, 1024)
# d_model = n_heads * d_head; chunk_size of the ssd_* kernels: TiM4Rec's (ssmlab/configs), and
# on a CPU the faster choice (the (chunk, chunk) blocks are elementwise-bound; mamba-ssm's GPU
# kernels use 256)
SIZES = {"batch": 2, "n_heads": 4, "d_head": 16, "d_state": 16, "chunk_size": 32}


def make_case(name: str, seqlen: int, device: str, seed: int = 0):
    """Inputs (leaf tensors) and a closure y = f(**inputs) for one kernel at one length."""
    from ssmlab import ssm
    from ssmlab.ssm.s5 import hippo_n_init

    g = torch.Generator().manual_seed(seed)
    b, h, p, n = SIZES["batch"], SIZES["n_heads"], SIZES["d_head"], SIZES["d_state"]
    d, l = h * p, seqlen

    def randn(*shape, scale=1.0):
        return (scale * torch.randn(*shape, generator=g)).to(device)

    if name.startswith("ssd_"):
        fn = getattr(ssm, name)
        A = -torch.rand(h, generator=g).to(device) - 0.5  # (h) negative
        dt = torch.nn.functional.softplus(randn(b, l, h))  # (b l h) positive
        B, C = randn(b, l, 1, n), randn(b, l, 1, n)  # (b l g n), g = 1
        inputs = {"x": randn(b, l, h, p), "dt": dt, "A": A, "B": B, "C": C}
        return (lambda **kw: fn(**kw, chunk_size=SIZES["chunk_size"])), inputs
    if name == "s5_scan":
        Lambda, V = hippo_n_init(n)  # (n) complex, (n n)
        B = (V.conj().T @ torch.randn(n, d, generator=g).cfloat()).to(device)  # (n d)
        C = randn(d, n, scale=n**-0.5).cfloat() @ V.to(device)  # (d n)
        dt = torch.rand(b, l, generator=g).to(device)  # (b l) gaps
        inputs = {
            "u": randn(b, l, d),
            "dt": dt,
            "Lambda": Lambda.to(device),
            "B": B,
            "C": C,
            "D": randn(d),
        }
        return ssm.s5_scan, inputs
    if name == "selective_scan":
        A = -torch.rand(d, n, generator=g).to(device)  # (d n)
        inputs = {
            "u": randn(b, d, l),
            "delta": randn(b, d, l),
            "A": A,
            "B": randn(b, n, l),
            "C": randn(b, n, l),
            "D": randn(d),
            "z": randn(b, d, l),
            "delta_bias": randn(d),
        }
        return (lambda **kw: ssm.selective_scan(**kw, delta_softplus=True)), inputs
    raise ValueError(f"unknown kernel {name!r}: expected one of {KERNELS}")


class PeakMemory:
    """Peak memory (MB) a block adds on top of what was in use when it started (see module doc)."""

    def __init__(self, device: str):
        self.device, self.mb = device, float("nan")

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


def _malloc_trim() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


SMALL_MMAP, LARGE_MMAP = 128 * 1024, 32 * 2**20  # glibc's default and its dynamic maximum


def _set_mmap_threshold(nbytes: int) -> None:
    """glibc: serve allocations >= ``nbytes`` by mmap (returned to the OS on free)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(-3, nbytes)  # M_MMAP_THRESHOLD


def measure(
    fn, inputs: dict, repeats: int, backward: bool, device: str
) -> tuple[list[float], float]:
    """Run times (s) of ``repeats`` calls after one warm-up, and the peak memory (MB) of one
    more call, measured apart so that the memory probe never slows the timed calls."""
    leaves = {k: v.detach().clone().requires_grad_(backward) for k, v in inputs.items()}

    def once():
        if backward:
            y = fn(**leaves)
            y = y[0] if isinstance(y, tuple) else y
            y.sum().backward()
            for v in leaves.values():
                v.grad = None
        else:
            with torch.no_grad():
                fn(**leaves)

    once()  # warm-up
    times = []
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        once()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    with PeakMemory(device) as mem:
        once()
    return times, mem.mb


def fit_exponent(points: list[tuple[int, float]], min_len: int = 512) -> float | None:
    """Least-squares slope of log(time) on log(L), over lengths >= min_len (all if fewer than 2)."""
    pts = [(l, t) for l, t in points if l >= min_len and t > 0]
    if len(pts) < 2:
        pts = [(l, t) for l, t in points if t > 0]
    if len(pts) < 2:
        return None
    xs, ys = [math.log(l) for l, _ in pts], [math.log(t) for _, t in pts]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def machine_info(device: str) -> dict:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    from ssmlab.ssm import backend

    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": device,
        "device_name": torch.cuda.get_device_name(device) if device.startswith("cuda") else cpu,
        "ssm_backend": backend(),
    }


def run_kernels(lengths, repeats, device, budget_s, max_mem_mb, methods=KERNELS, log=print) -> list:
    """Measure every method at every length (shortest first); returns one record per pair."""
    records = []
    for name in methods:
        last = None  # (seqlen, seconds of one fwd+bwd call, peak MB)
        for seqlen in sorted(lengths):
            rec = {"method": name, "seqlen": seqlen, "skipped": None}
            n_rep = repeats
            if last is not None:
                power = 2 if name == "ssd_quadratic" else 1
                ratio = (seqlen / last[0]) ** power
                t_pred, mem_pred = last[1] * ratio, last[2] * ratio
                # fewer repeats for slow points: about budget_s seconds per point, at least one
                n_rep = max(1, min(repeats, int(budget_s / max(2 * t_pred, 1e-9))))
                if t_pred > budget_s:
                    rec["skipped"] = f"one fwd+bwd call predicted {t_pred:.0f} s > {budget_s:g} s"
                elif mem_pred > max_mem_mb:
                    rec["skipped"] = f"predicted {mem_pred:.0f} MB > {max_mem_mb:g} MB"
            if rec["skipped"]:
                log(f"{name:15s} L={seqlen:5d}  skipped: {rec['skipped']}")
                records.append(rec)
                last = (seqlen, float("inf"), float("inf"))  # longer lengths are skipped too
                continue
            fn, inputs = make_case(name, seqlen, device)
            fwd, mem_fwd = measure(fn, inputs, n_rep, False, device)
            both, mem_both = measure(fn, inputs, n_rep, True, device)
            rec.update(
                fwd_s=statistics.median(fwd),
                fwdbwd_s=statistics.median(both),
                fwd_times=fwd,
                fwdbwd_times=both,
                peak_mb_fwd=mem_fwd,
                peak_mb_fwdbwd=mem_both,
            )
            records.append(rec)
            last = (seqlen, rec["fwdbwd_s"], max(mem_fwd, mem_both, 1.0))
            log(
                f"{name:15s} L={seqlen:5d}  fwd {1e3 * rec['fwd_s']:9.2f} ms  fwd+bwd "
                f"{1e3 * rec['fwdbwd_s']:9.2f} ms  peak {mem_both:8.1f} MB"
            )
    return records


def summarize(records: list) -> dict:
    """Growth exponents and the project's targets (see module doc of benchmarks/kernels.py)."""
    got = {(r["method"], r["seqlen"]): r for r in records if not r["skipped"]}
    exponents = {}
    for name in dict.fromkeys(r["method"] for r in records):
        pts = [(l, r["fwd_s"]) for (m, l), r in sorted(got.items()) if m == name]
        exponents[name] = fit_exponent(pts)
    targets = []

    def fwd(name, seqlen):
        return got[(name, seqlen)]["fwd_s"] if (name, seqlen) in got else None

    rec, chk = fwd("ssd_recurrent", 512), fwd("ssd_chunked", 512)
    speedup = rec / chk if rec and chk else None
    long_, short = fwd("ssd_chunked", 4096), fwd("ssd_chunked", 512)
    growth = long_ / short if long_ and short else None
    for target, value, met in (
        ("ssd_chunked >= 10x faster than ssd_recurrent at L=512 (fwd)", speedup,
         speedup is not None and speedup >= 10),
        ("ssd_chunked time(4096) / time(512) <= 9 (fwd)", growth,
         growth is not None and growth <= 9),
        ("ssd_quadratic time growth exponent (log-log fit, L >= 512, fwd)",
         exponents.get("ssd_quadratic"), None),
    ):  # fmt: skip
        targets.append({"target": target, "value": value, "met": None if value is None else met})
    return {"exponents": exponents, "targets": targets}


def _fmt(v, scale=1.0, digits=2):
    return "–" if v is None else f"{scale * v:.{digits}f}"


def to_markdown(report: dict) -> str:
    m, s = report["machine"], report["settings"]
    lines = [
        f"# Kernel benchmark ({m['device']})",
        "",
        (
            f"{m['date']} · {m['platform']} · {m['cpu']} · {m['cores']} cores "
            f"(torch threads: {m['torch_threads']}) · torch {m['torch']} · "
            f"device: {m['device_name']} "
            f"· ssm backend: {m['ssm_backend']} · load average (1 min) "
            f"{_fmt(m['load_average_1m'])} before, {_fmt(m['load_average_1m_after'])} after"
        ),
        "",
        (
            f"Sizes: {s['sizes']} (d_model = n_heads * d_head); float32; "
            f"median of {s['repeats']} runs after one warm-up (fewer for slow points, see "
            f"the JSON's *_times). fwd under no_grad; "
            f"fwd+bwd = y.sum().backward(). "
            f"Peak memory: {s['memory_method']}."
        ),
        "",
    ]
    methods = list(dict.fromkeys(r["method"] for r in report["results"]))
    lengths = sorted({r["seqlen"] for r in report["results"]})
    by = {(r["method"], r["seqlen"]): r for r in report["results"]}
    tables = (
        ("Forward time (ms)", "fwd_s", 1e3, 2),
        ("Forward + backward time (ms)", "fwdbwd_s", 1e3, 2),
        ("Peak memory, forward + backward (MB)", "peak_mb_fwdbwd", 1, 1),
    )
    for title, key, scale, digits in tables:
        head = "| L | " + " | ".join(methods) + " |"
        lines += [f"## {title}", "", head, "| ---: |" + " ---: |" * len(methods)]
        for l in lengths:
            cells = []
            for name in methods:
                r = by.get((name, l))
                cells.append(
                    "skipped" if r is None or r["skipped"] else _fmt(r[key], scale, digits)
                )
            lines.append(f"| {l} | " + " | ".join(cells) + " |")
        lines.append("")
    skips = [r for r in report["results"] if r["skipped"]]
    if skips:
        lines += [
            "Skipped: "
            + "; ".join(f"{r['method']} at L={r['seqlen']} ({r['skipped']})" for r in skips),
            "",
        ]
    lines += [
        "## Growth exponents (forward time ~ L^k, log-log fit over L >= 512)",
        "",
        "| method | k |",
        "| --- | ---: |",
    ]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in report["summary"]["exponents"].items()]
    lines += ["", "## Targets", "", "| target | value | met |", "| --- | ---: | :---: |"]
    for t in report["summary"]["targets"]:
        met = {None: "report only", True: "yes", False: "NO"}[t["met"]]
        met = "n/a (not measured)" if t["value"] is None else met
        lines.append(f"| {t['target']} | {_fmt(t['value'])} | {met} |")
    return "\n".join(lines) + "\n"


def kernels_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="ssmlab bench kernels", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--lengths", default=None, help="comma-separated, e.g. 64,512,4096")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help=f"lengths {QUICK_LENGTHS}, 3 repeats")
    parser.add_argument("--methods", default=",".join(KERNELS))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per point")
    parser.add_argument("--max-mem-mb", type=float, default=4096.0)
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--tag", default=None, help="file suffix (default: the device type)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    lengths = QUICK_LENGTHS if args.quick and not args.lengths else DEFAULT_LENGTHS
    if args.lengths:
        lengths = tuple(int(v) for v in args.lengths.split(","))
    repeats = 3 if args.quick and args.repeats == 5 else args.repeats
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    unknown = sorted(set(methods) - set(KERNELS))
    if unknown or repeats < 1 or min(lengths) < 1:
        parser.error(f"unknown methods {unknown} (known: {KERNELS}), or repeats/lengths < 1")
    cuda = args.device.startswith("cuda")
    machine = machine_info(args.device)  # load average before the run
    records = run_kernels(lengths, repeats, args.device, args.budget, args.max_mem_mb, methods)
    machine["load_average_1m_after"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    report = {
        "machine": machine,
        "settings": {
            "lengths": list(lengths),
            "repeats": repeats,
            "sizes": SIZES,
            "dtype": "float32",
            "budget_s": args.budget,
            "max_mem_mb": args.max_mem_mb,
            "memory_method": "growth of torch.cuda.max_memory_allocated"
            if cuda
            else "growth of peak RSS (malloc_trim, VmHWM reset by /proc/self/clear_refs)",
        },
        "results": records,
    }
    report["summary"] = summarize(records)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = args.tag or args.device.split(":")[0]
    (out / f"kernels-{tag}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"kernels-{tag}.md").write_text(to_markdown(report))
    print(f"wrote {out / f'kernels-{tag}.json'} and .md")
    return 0


def main(what: str, argv: list[str]) -> int:
    """Entry point of ``ssmlab bench kernels|train``."""
    if what == "kernels":
        return kernels_main(argv)
    if what == "train" and any(a == "--data" or a.startswith("--data=") for a in argv):
        from ssmlab.train.epoch_bench import main as epoch_main  # one epoch on a real dataset

        return epoch_main(argv)
    if what == "train":  # training/inference time and memory per model and max_len
        from ssmlab.train.efficiency import main as efficiency_main

        return efficiency_main(argv)
    raise ValueError(f"unknown benchmark {what!r}: expected 'kernels' or 'train'")
