"""SSM kernel time and peak memory against sequence length: ``ssmlab bench kernels``.

``ssmlab bench kernels [--lengths 64,128,...] [--repeats 5] [--quick] [--device cpu]`` times the
forward pass (under ``torch.no_grad``) and forward + backward (``y.sum().backward()``) of
``ssd_recurrent``, ``ssd_quadratic``, ``ssd_chunked``, ``s5_scan`` and ``selective_scan`` on small
model sizes, reports the median of ``--repeats`` timed runs after one warm-up, and the peak memory
of one more run (:class:`ssmlab.bench.probe.PeakMemory`, apart from the timed runs, whose
allocator stays untouched).

A method is skipped at a length where one fwd+bwd call is predicted (from the previous length:
linear growth, quadratic for ``ssd_quadratic``) to take more than ``--budget`` seconds (20), or
its memory to exceed ``--max-mem-mb``; the skip and its reason are recorded. Slow points run
fewer repeats (at least one) so that each takes about ``--budget`` seconds. Results go
to ``<out>/kernels-<tag>.json`` and ``.md`` with machine info and the targets of the project.
"""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path

import torch

from ssmlab.bench.probe import PeakMemory, load_average, machine_info, time_calls
from ssmlab.bench.report import kernels_markdown, write_report

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

    times = time_calls(once, repeats, warmup=1, device=device)
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


def main(argv: list[str]) -> int:
    """``ssmlab bench kernels [args]``: run the benchmark and write JSON and markdown."""
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
    machine["load_average_1m_after"] = load_average()
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
    tag = args.tag or args.device.split(":")[0]
    write_report(Path(args.out), f"kernels-{tag}", report, kernels_markdown(report), indent=2)
    return 0
