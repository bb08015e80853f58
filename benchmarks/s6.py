"""S6 benchmark: the selective scan's CPU fast path against the parallel scan, and the step cost.

    python benchmarks/s6.py [--lengths 10,50,200,800] [--repeats 3] [--threads 1] [--quick]

Times, at the Amazon-Beauty shape of Mamba4Rec (batch 256, d_inner 128, d_state 32, float32):

- ``selective_scan`` forward (under ``torch.no_grad``) and forward + backward, on the recurrent
  path (``method="recurrent"``, the CPU default) and the parallel scan it replaced
  (``method="parallel"``), for each length; the parallel scan is skipped above
  ``--old-max-len`` (its (b, l, d, n) temporaries take several GB there);
- one optimizer step (all-positions cross-entropy, every position a target, Adam) of Mamba4Rec
  (old and new scan) and of SASRec, Beauty presets, batch 256, at l = 50 and l = 10, and the
  encoder alone (forward + backward of ``encode`` without the item scores).

Each number is the median of ``--repeats`` runs after one warm-up (a single run when the first
takes more than 10 s of CPU). Both the wall time and the
process CPU time are recorded; the ratios use CPU time, which with one intra-op thread is the
work done and does not depend on what else the machine runs (the wall time does). Writes
``benchmarks/results/s6-cpu.json`` and ``.md`` with machine info.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

import torch

from ssmlab import ssm
from ssmlab.bench.probe import machine_info
from ssmlab.config import load_config
from ssmlab.models import build_model

OUT = Path(__file__).resolve().parent / "results"
SHAPE = {"batch": 256, "d_inner": 128, "d_state": 32}  # Mamba4Rec on Beauty: d 64, expand 2
N_ITEMS = 12_101  # Amazon-Beauty items (benchmarks/results/data-cpu.md)


def timed(fn, repeats: int, budget_s: float = 10.0) -> dict:
    """Median wall and CPU seconds of ``fn()`` over ``repeats`` runs after one warm-up.

    A first run longer than ``budget_s`` (CPU) is the measurement itself (``runs``: 1).
    """
    wall, cpu = [], []
    for _ in range(repeats + 1):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
        if len(cpu) == 1 and cpu[0] > budget_s:
            break
    if len(cpu) > 1:
        wall, cpu = wall[1:], cpu[1:]  # drop the warm-up
    return {"wall_s": statistics.median(wall), "cpu_s": statistics.median(cpu), "runs": len(cpu)}


def scan_inputs(seqlen: int, seed: int = 0) -> dict:
    """Mamba4Rec-like S6 inputs: u, delta (b d l), A = -(1..n) (d n), B, C (b n l), D, z, bias."""
    g = torch.Generator().manual_seed(seed)
    b, d, n = SHAPE["batch"], SHAPE["d_inner"], SHAPE["d_state"]

    def randn(*shape):
        return torch.randn(*shape, generator=g)

    return {
        "u": randn(b, d, seqlen),
        "delta": 0.5 * randn(b, d, seqlen),
        "A": -torch.arange(1, n + 1, dtype=torch.float32).repeat(d, 1),  # S4D-real
        "B": randn(b, n, seqlen),
        "C": randn(b, n, seqlen),
        "D": torch.ones(d),
        "z": randn(b, d, seqlen),
        "delta_bias": 0.1 * randn(d),
    }


def _fwd_bwd(scan, inputs: dict) -> None:
    scan(**inputs).sum().backward()


def bench_scan(lengths, repeats: int, old_max_len: int, log=print) -> list[dict]:
    rows = []
    for seqlen in lengths:
        x = scan_inputs(seqlen)
        for method in ("recurrent", "parallel"):
            row = {"l": seqlen, "method": method}
            if method == "parallel" and seqlen > old_max_len:
                row["skipped"] = f"l > --old-max-len {old_max_len}: (b, l, d, n) temporaries"
                rows.append(row)
                continue
            scan = functools.partial(ssm.selective_scan, delta_softplus=True, method=method)
            with torch.no_grad():
                row["forward"] = timed(functools.partial(scan, **x), repeats)
            leaves = {k: v.clone().requires_grad_() for k, v in x.items()}
            row["forward_backward"] = timed(functools.partial(_fwd_bwd, scan, leaves), repeats)
            log(f"selective_scan l={seqlen} {method}: {row}")
            rows.append(row)
    return rows


def step_batch(seqlen: int, seed: int = 0) -> dict:
    """A full (length-bucketed) batch: every position is a real item and has a target."""
    g = torch.Generator().manual_seed(seed)
    b = SHAPE["batch"]
    return {
        "item_seq": torch.randint(1, N_ITEMS + 1, (b, seqlen), generator=g),
        "item_seq_len": torch.full((b,), seqlen),
        "targets": torch.randint(1, N_ITEMS + 1, (b, seqlen), generator=g),
    }


def _closures(model, opt, batch):
    """One optimizer step on ``batch``, and the encoder's forward + backward alone."""

    def step():
        opt.zero_grad(set_to_none=True)
        model.calculate_loss(batch, "all").backward()
        opt.step()

    def encoder():
        model.zero_grad(set_to_none=True)
        model.encode(batch).square().mean().backward()

    return step, encoder


def bench_steps(lengths, repeats: int, log=print) -> list[dict]:
    cases = [("sasrec", None), ("mamba4rec", "parallel"), ("mamba4rec", "recurrent")]
    rows = []
    for seqlen in lengths:
        batch = step_batch(seqlen)
        for model_name, method in cases:
            torch.manual_seed(0)
            config = load_config(model_name, "amazon-beauty").model
            model = build_model(model_name, N_ITEMS, config=config).train()
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)

            step, encoder = _closures(model, opt, batch)
            scan = functools.partial(ssm.selective_scan, method=method)
            with mock.patch("ssmlab.layers.mamba.selective_scan", scan):
                row = {"l": seqlen, "model": model_name, "scan": method}
                row["step"] = timed(step, repeats)
                row["encoder"] = timed(encoder, repeats)
            log(f"step l={seqlen} {model_name} {method}: {row}")
            rows.append(row)
    return rows


def ratios(scans: list[dict], steps: list[dict]) -> dict:
    """CPU-time ratios: parallel / recurrent per length; Mamba4Rec / SASRec per length."""
    out = {"scan_speedup": {}, "mamba4rec_over_sasrec": {}}
    by = {(r["l"], r["method"]): r for r in scans if "skipped" not in r}
    for (seqlen, method), r in by.items():
        if method == "recurrent" and (seqlen, "parallel") in by:
            old = by[seqlen, "parallel"]
            out["scan_speedup"][seqlen] = {
                k: old[k]["cpu_s"] / r[k]["cpu_s"] for k in ("forward", "forward_backward")
            }
    st = {(r["l"], r["model"], r["scan"]): r for r in steps}
    for seqlen in sorted({r["l"] for r in steps}):
        sas = st[seqlen, "sasrec", None]
        out["mamba4rec_over_sasrec"][seqlen] = {
            f"{part}_{method}": st[seqlen, "mamba4rec", method][part]["cpu_s"] / sas[part]["cpu_s"]
            for part in ("step", "encoder")
            for method in ("parallel", "recurrent")
        }
    return out


def _ms(t: dict | None, key: str = "cpu_s") -> str:
    return "—" if t is None else f"{1e3 * t[key]:,.1f}"


def to_markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        "# S6 selective scan on the CPU: recurrent fast path vs parallel scan",
        "",
        f"{m['date']} · {m['platform']} · {m['cpu']} · {m['cores']} cores · "
        f"torch {m['torch']} · {m['torch_threads']} intra-op thread(s) · "
        f"load average {m['load_average_1m']:.1f} at the start",
        "",
        f"Shape: batch {SHAPE['batch']}, d_inner {SHAPE['d_inner']}, d_state {SHAPE['d_state']}, "
        "float32, softplus(Δ + bias), D and z (Mamba4Rec on Amazon-Beauty). Median of "
        f"{report['repeats']} runs after a warm-up (one run where the first took over 10 s); "
        "milliseconds of process CPU time (wall time "
        "in the JSON; the machine was shared, so wall time includes waiting).",
        "",
        "| l | forward parallel | forward recurrent | speed-up | fwd+bwd parallel | "
        "fwd+bwd recurrent | speed-up |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    by = {(r["l"], r["method"]): r for r in report["scan"]}
    for seqlen in report["lengths"]:
        new, old = by[seqlen, "recurrent"], by[seqlen, "parallel"]
        sp = report["ratios"]["scan_speedup"].get(seqlen)
        fwd_x = "—" if sp is None else f"{sp['forward']:.1f}×"
        both_x = "—" if sp is None else f"{sp['forward_backward']:.1f}×"
        lines.append(
            f"| {seqlen} | {_ms(old.get('forward'))} | {_ms(new['forward'])} | "
            f"{fwd_x} | "
            f"{_ms(old.get('forward_backward'))} | {_ms(new['forward_backward'])} | "
            f"{both_x} |"
        )
    skipped = [r for r in report["scan"] if "skipped" in r]
    if skipped:
        lines += [
            "",
            "Skipped: " + "; ".join(f"{r['method']} l={r['l']} ({r['skipped']})" for r in skipped),
        ]
    lines += [
        "",
        f"One optimizer step, batch {SHAPE['batch']}, Beauty presets (SASRec 2 layers; Mamba4Rec "
        "1 layer), all-positions cross-entropy over all items with every position a target; "
        "'encoder' is the forward + backward of the hidden states alone (no item scores). "
        "Milliseconds of CPU time.",
        "",
        "| l | model | scan | step | encoder | step / SASRec | encoder / SASRec |",
        "| ---: | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    st = {(r["l"], r["model"], r["scan"]): r for r in report["steps"]}
    for r in report["steps"]:
        sas = st[r["l"], "sasrec", None]
        lines.append(
            f"| {r['l']} | {r['model']} | {r['scan'] or '—'} | {_ms(r['step'])} | "
            f"{_ms(r['encoder'])} | {r['step']['cpu_s'] / sas['step']['cpu_s']:.2f} | "
            f"{r['encoder']['cpu_s'] / sas['encoder']['cpu_s']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lengths", default="10,50,200,800", help="scan lengths")
    p.add_argument("--step-lengths", default="50,10", help="lengths of the training steps")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="intra-op threads")
    p.add_argument("--batch", type=int, default=SHAPE["batch"], help="batch size (smoke runs)")
    p.add_argument("--old-max-len", type=int, default=200, help="longest parallel-scan length")
    p.add_argument("--quick", action="store_true", help="l = 10, 50; one repeat")
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    SHAPE["batch"] = args.batch
    lengths = [10, 50] if args.quick else [int(v) for v in args.lengths.split(",")]
    step_lengths = [int(v) for v in args.step_lengths.split(",")]
    repeats = 1 if args.quick else args.repeats
    report = {"machine": machine_info("cpu"), "shape": SHAPE, "repeats": repeats}
    report["lengths"] = lengths
    report["scan"] = bench_scan(lengths, repeats, args.old_max_len)
    report["steps"] = bench_steps(step_lengths, repeats)
    report["ratios"] = ratios(report["scan"], report["steps"])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "s6-cpu.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "s6-cpu.md").write_text(to_markdown(report))
    print(to_markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
