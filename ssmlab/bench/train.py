"""Training/inference efficiency against the history length: the TiM4Rec Table 5 / Fig. 6 analogue.

``ssmlab bench train [--models ...] [--lengths 50,100,200,400,800] [--batch-size B] [--steps K]
[--eval-users N] [--device cpu|cuda] [--quick] [--out DIR]``
(or ``python benchmarks/efficiency.py``).

For each model (its Amazon-Beauty preset, ``max_len`` set to L) and each L, on synthetic
sequences of full length L with Beauty's 12,101 items and increasing timestamps (so every
position is real and the cost is that of length L):

* training time per epoch = median time of one optimizer step (forward, CE over all items,
  backward, Adam) over ``--steps`` steps after one warm-up step, times the steps of one epoch of
  Beauty's prefix rows (131,413 rows of the "last" objective, ``ceil(rows / batch)`` steps). On a
  GPU the batch is the paper's 2048; on a CPU a smaller batch is timed and extrapolated the same
  way (the estimate then includes the CPU's per-step cost at that batch, not at 2048);
* inference time = ``full_sort_predict`` (scores over all items) for ``--eval-users`` users in
  batches of ``--eval-batch-size``, after one warm-up batch;
* peak memory of one training step: on CUDA ``max_memory_allocated`` minus the memory allocated
  before the step; on CPU the peak resident-set growth of the step in a fresh forked process
  (after a 2-row warm-up step that allocates the Adam state and lazy kernels), both through
  :class:`ssmlab.bench.PeakMemory`. Parameters and
  optimizer state are not counted; activations, gradients and temporaries are.

A cell whose step is predicted (from the model's shorter lengths) to exceed ``--step-time-limit``
seconds or ``--memory-limit-gb`` is skipped and recorded as such. Writes
``efficiency-<device>.json``, ``.md`` (tables, the ratios the paper reports) and ``.html``
(plotly: time and memory against max_len) under ``--out``.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import multiprocessing
import os
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from ssmlab.bench import PeakMemory, machine_info
from ssmlab.config import load_config, preset_path
from ssmlab.data.batching import padded_batch
from ssmlab.models import build_model
from ssmlab.train.efficiency_report import PAPER_TABLE5, html_report, markdown, ratios
from ssmlab.train.loop import make_optimizer

MODELS = ("sasrec", "tisasrec", "mamba4rec", "ssd4rec_star", "tim4rec", "ss4rec")
LENGTHS = (50, 100, 200, 400, 800)
BEAUTY_ITEMS = 12_101  # [TiM4Rec Table 2]
BEAUTY_PREFIX_ROWS = (
    131_413  # training rows of one "last" epoch on Beauty (benchmarks/results/data-cpu.md)
)
PRESET_DATA = "amazon-beauty"


def cell_config(model: str, seqlen: int):
    """The model's Beauty preset (else its ML-1M preset with Beauty's dropout), max_len = L."""
    overrides = [f"model.max_len={seqlen}"]
    if preset_path(model, PRESET_DATA).is_file():
        return load_config(model, PRESET_DATA, overrides=overrides)
    return load_config(
        model,
        PRESET_DATA,
        config_file=preset_path(model, "ml-1m"),
        overrides=["model.dropout=0.4", *overrides],
    )


def synthetic_batch(n_rows: int, seqlen: int, n_items: int, seed: int = 0) -> dict:
    """Rows of exactly ``seqlen`` items with increasing timestamps and a target each.

    Gaps are exponential with a one-day mean (Beauty's gaps span seconds to years).

    Shapes:
        returns: item_seq, time_seq (n_rows, seqlen); item_seq_len, target, target_time (n_rows,)
    """
    if n_rows < 1 or seqlen < 1:
        raise ValueError(f"n_rows and seqlen must be >= 1, got {n_rows}, {seqlen}")
    rng = np.random.default_rng(seed)
    width = seqlen + 1  # history + target
    items = rng.integers(1, n_items + 1, size=n_rows * width)
    gaps = rng.exponential(86_400.0, size=(n_rows, width)).astype(np.int64) + 1
    times = (1_300_000_000 + np.cumsum(gaps, axis=1)).reshape(-1)
    row_start = np.arange(n_rows) * width
    return padded_batch(items, times, row_start, np.full(n_rows, seqlen), row_start + seqlen)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_cell(model_name: str, seqlen: int, opts: dict) -> dict:
    """Time a training step and inference of one (model, L) cell and its step's peak memory."""
    device = torch.device(opts["device"])
    if opts.get("threads"):
        torch.set_num_threads(opts["threads"])
    torch.manual_seed(0)
    config = cell_config(model_name, seqlen)
    objective = config.train.objective
    model = build_model(model_name, opts["n_items"], config=config.model).to(device)
    optimizer = make_optimizer(model, config.train.lr, config.train.weight_decay)
    batch = {
        k: v.to(device)
        for k, v in synthetic_batch(opts["batch_size"], seqlen, opts["n_items"]).items()
    }

    def step(b):
        loss = model.calculate_loss(b, objective)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    model.train()
    step({k: v[:2] for k, v in batch.items()})  # lazy init + Adam state, outside the measure
    optimizer.zero_grad(set_to_none=True)
    gc.collect()
    cell = {"L": seqlen, "objective": objective, "batch_size": opts["batch_size"]}
    if device.type == "cuda" or opts["memory"]:
        with PeakMemory(str(device)) as mem:  # CUDA allocator peak, or RSS peak growth on CPU
            step(batch)
        cell["peak_mem_bytes"] = round(mem.mb * 2**20)
    else:
        step(batch)  # the warm-up step at full size
    times = []
    for _ in range(opts["steps"]):
        _sync(device)
        start = time.perf_counter()
        step(batch)
        _sync(device)
        times.append(time.perf_counter() - start)
    cell["train_step_s"] = statistics.median(times)
    cell["train_step_s_all"] = times
    cell["steps_per_epoch"] = math.ceil(opts["rows_per_epoch"] / opts["batch_size"])
    cell["train_epoch_s"] = cell["train_step_s"] * cell["steps_per_epoch"]
    del batch
    model.eval()
    users, eb = opts["eval_users"], opts["eval_batch_size"]
    chunks = [
        synthetic_batch(min(eb, users - i), seqlen, opts["n_items"], seed=1 + i)
        for i in range(0, users, eb)
    ]
    with torch.no_grad():
        model.full_sort_predict({k: v.to(device) for k, v in chunks[0].items()})  # warm-up
        _sync(device)
        start = time.perf_counter()
        for chunk in chunks:
            model.full_sort_predict({k: v.to(device) for k, v in chunk.items()})
        _sync(device)
    cell["infer_s"] = time.perf_counter() - start
    cell["status"] = "ok"
    return cell


def _predict(cells: list[dict], seqlen: int, key: str) -> float | None:
    """Extrapolate ``key`` to ``seqlen`` from the last two measured cells (exponent 1 to 3)."""
    done = [c for c in cells if c.get("status") == "ok" and c.get(key)]
    if not done:
        return None
    last, k = done[-1], 1.0
    if len(done) >= 2 and done[-2][key] > 0:
        prev = done[-2]
        k = max(k, math.log(last[key] / prev[key]) / math.log(last["L"] / prev["L"]))
    return last[key] * (seqlen / last["L"]) ** min(k, 3.0)


def run_model(model_name: str, args, pool) -> list[dict]:
    """All lengths of one model; skips cells predicted too slow or too large, records failures."""
    opts = {
        k: getattr(args, k)
        for k in (
            "device",
            "threads",
            "batch_size",
            "steps",
            "eval_users",
            "eval_batch_size",
            "n_items",
            "rows_per_epoch",
            "memory",
        )
    }
    cells: list[dict] = []
    for seqlen in args.lengths:
        t_pred = _predict(cells, seqlen, "train_step_s")
        m_pred = _predict(cells, seqlen, "peak_mem_bytes")
        reason = None
        if any(c.get("status") == "failed" for c in cells):
            reason = "a shorter length failed"
        elif t_pred is not None and t_pred > args.step_time_limit:
            reason = f"predicted step {t_pred:.1f} s > {args.step_time_limit:g} s"
        elif m_pred is not None and m_pred > args.memory_limit_gb * 2**30:
            reason = f"predicted memory {m_pred / 2**30:.1f} GiB > {args.memory_limit_gb:g} GiB"
        if reason:
            cells.append({"L": seqlen, "status": "skipped", "reason": reason})
        else:
            try:
                cell = (
                    pool.apply(measure_cell, (model_name, seqlen, opts))
                    if pool is not None
                    else measure_cell(model_name, seqlen, opts)
                )
            except (RuntimeError, MemoryError) as err:  # CUDA OOM, a killed worker, ...
                cell = {
                    "L": seqlen,
                    "status": "failed",
                    "reason": f"{type(err).__name__}: "
                    f"{str(err).splitlines()[0][:200] if str(err) else ''}",
                }
                if args.device.startswith("cuda"):
                    torch.cuda.empty_cache()
            cells.append(cell)
        c = cells[-1]
        msg = (
            f"epoch ~{c['train_epoch_s']:8.1f} s  infer {c['infer_s']:.3f} s  mem "
            f"{c.get('peak_mem_bytes', 0) / 2**20:.0f} MiB"
            if c["status"] == "ok"
            else f"{c['status']}: {c['reason']}"
        )
        print(f"{model_name:>13} L={seqlen:4d}  {msg}", flush=True)
    return cells


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="ssmlab bench train", description=__doc__.split("\n")[0])
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated registry names")
    p.add_argument("--lengths", default=None, help="comma-separated max_len values")
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="training rows per timed step (default 2048 on CUDA, 16 on CPU; --quick 4)",
    )
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="timed steps per cell (default 5 on CUDA, 2 on CPU; --quick 1)",
    )
    p.add_argument(
        "--eval-users",
        type=int,
        default=None,
        help="users scored for the inference time (default 4096 on CUDA, 64 on CPU; --quick 4)",
    )
    p.add_argument("--eval-batch-size", type=int, default=None, help="default 4096 / 64 on CPU")
    p.add_argument("--n-items", type=int, default=BEAUTY_ITEMS, help="item count (Beauty 12,101)")
    p.add_argument(
        "--rows-per-epoch",
        type=int,
        default=BEAUTY_PREFIX_ROWS,
        help="rows of one training epoch (Beauty prefix rows 131,413)",
    )
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument(
        "--step-time-limit",
        type=float,
        default=None,
        help="skip cells predicted slower per step (s; default 60 CPU, 30 CUDA)",
    )
    p.add_argument(
        "--memory-limit-gb",
        type=float,
        default=None,
        help="skip cells predicted larger (GiB; default 8 CPU, 90%% of the GPU)",
    )
    p.add_argument("--no-memory", action="store_true", help="CPU: do not measure memory")
    p.add_argument("--quick", action="store_true", help="tiny smoke run (lengths 8,16)")
    p.add_argument("--out", default=None, help="results folder (default benchmarks/results)")
    p.add_argument("--tag", default=None, help="file names efficiency-<device>-<tag>")
    args = p.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        p.error("--device cuda but CUDA is not available")
    cuda = args.device.startswith("cuda")
    args.models = [m.strip().lower() for m in args.models.split(",") if m.strip()]
    try:
        lengths = [int(x) for x in args.lengths.split(",")] if args.lengths else None
    except ValueError:
        p.error(f"--lengths must be comma-separated integers, got {args.lengths!r}")
    args.lengths = sorted(set(lengths or ((8, 16) if args.quick else LENGTHS)))
    if args.lengths[0] < 2:
        p.error(f"--lengths must be >= 2, got {args.lengths}")

    def pick(quick, gpu, cpu):
        return quick if args.quick else gpu if cuda else cpu

    args.batch_size = args.batch_size or pick(4, 2048, 16)
    args.steps = args.steps or pick(1, 5, 2)
    args.eval_users = args.eval_users or pick(4, 4096, 64)
    args.eval_batch_size = args.eval_batch_size or pick(4, 4096, 64)
    args.step_time_limit = args.step_time_limit or (30.0 if cuda else 60.0)
    if args.memory_limit_gb is None:
        args.memory_limit_gb = (
            (0.9 * torch.cuda.get_device_properties(args.device).total_memory / 2**30)
            if cuda
            else 8.0
        )
    if min(args.batch_size, args.steps, args.eval_users, args.eval_batch_size) < 1:
        p.error("--batch-size, --steps, --eval-users and --eval-batch-size must be >= 1")
    args.memory = cuda or not args.no_memory
    return args


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


def _default_out() -> Path:
    checkout = Path(__file__).resolve().parents[2]
    root = checkout if (checkout / "benchmarks").is_dir() else Path.cwd()
    return root / "benchmarks" / "results"


def main(argv: list[str]) -> int:
    """``ssmlab bench train [args]``: run the benchmark and write JSON, markdown and HTML."""
    args = parse_args(list(argv))
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = args.device.startswith("cuda")
    settings = {
        k: getattr(args, k)
        for k in (
            "models",
            "lengths",
            "batch_size",
            "steps",
            "eval_users",
            "eval_batch_size",
            "n_items",
            "rows_per_epoch",
            "device",
            "step_time_limit",
            "memory_limit_gb",
            "quick",
            "tag",
        )
    }
    settings["memory"] = (
        "cuda_max_memory_allocated"
        if cuda
        else "peak_rss_growth_fresh_process"
        if args.memory
        else "none"
    )
    results = {
        "benchmark": "efficiency",
        "machine": machine_info(args.device),
        "settings": settings,
        "rows": [],
    }
    results["machine"]["load_avg_start"] = list(os.getloadavg())
    results["machine"].update(git_info())
    pool = None
    if not cuda and args.memory:  # a fresh forked worker per cell: a clean heap for the RSS peak
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["torch", "ssmlab.train.efficiency"])
        pool = ctx.Pool(processes=1, maxtasksperchild=1)
    try:
        for model_name in args.models:
            results["rows"].append(
                {"model": model_name, "cells": run_model(model_name, args, pool)}
            )
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    results["machine"]["load_avg_end"] = list(os.getloadavg())
    results["ratios"] = ratios(results)
    results["paper"] = PAPER_TABLE5
    out = Path(args.out) if args.out else _default_out()
    out.mkdir(parents=True, exist_ok=True)
    stem = "efficiency-" + ("cuda" if cuda else "cpu") + (f"-{args.tag}" if args.tag else "")
    (out / f"{stem}.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / f"{stem}.md").write_text(markdown(results))
    html_report(results).write_html(out / f"{stem}.html", include_plotlyjs="cdn")
    print(f"wrote {out / stem}.json, .md and .html")
    return 0


__all__ = [
    "BEAUTY_ITEMS",
    "BEAUTY_PREFIX_ROWS",
    "LENGTHS",
    "MODELS",
    "cell_config",
    "git_info",
    "main",
    "measure_cell",
    "synthetic_batch",
]
