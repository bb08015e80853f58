"""Training benchmarks behind ``ssmlab bench train``: efficiency against max_len, one real epoch.

**Efficiency against the history length** (the TiM4Rec Table 5 / Fig. 6 analogue):
``ssmlab bench train [--models ...] [--lengths 50,100,200,400,800] [--batch-size B] [--steps K]
[--eval-users N] [--device cpu|cuda] [--quick] [--out DIR]`` (or ``python
benchmarks/efficiency.py``). For each model (default: every registered model; its Amazon-Beauty
config, the preset or the declared fallback, with ``max_len`` set to L) and
each L, on synthetic sequences of full length L with Beauty's 12,101 items and increasing
timestamps (so every position is real and the cost is that of length L):

* training time per epoch = median time of one optimizer step (forward, CE over all items,
  backward, Adam) over ``--steps`` steps after one warm-up step, times the steps of one epoch of
  Beauty's prefix rows (131,413 rows of the "last" objective, ``ceil(rows / batch)`` steps). On a
  GPU the batch is the paper's 2048; on a CPU a smaller batch is timed and extrapolated the same
  way (the estimate then includes the CPU's per-step cost at that batch, not at 2048);
* inference time = ``full_sort_predict`` (scores over all items) for ``--eval-users`` users in
  batches of ``--eval-batch-size``, after one warm-up batch;
* peak memory of one training step (:class:`ssmlab.bench.probe.PeakMemory`): on CUDA in this
  process, on CPU in a fresh forked process per cell (after a 2-row warm-up step that allocates
  the Adam state and lazy kernels). Parameters and optimizer state are not counted; activations,
  gradients and temporaries are.

A cell whose step is predicted (from the model's shorter lengths) to exceed ``--step-time-limit``
seconds or ``--memory-limit-gb`` is skipped and recorded as such. Writes
``efficiency-<device>.json``, ``.md`` (tables, the ratios the paper reports) and ``.html``
(plotly: time and memory against max_len) under ``--out``.

**One training epoch on a real dataset against the scoring floor**
(``ssmlab bench train --data NAME``). Every model ends in the same step: score each training
target's hidden state against all item embeddings and take the cross-entropy. Done naively
(``F.cross_entropy(h @ W.T, y)``) over one epoch's targets this *scoring floor* is the least a
full-softmax epoch can cost without a fused loss; each model's epoch is reported as a multiple of
it. Per model and protocol (``all``: every position predicts its next item, long sequences in
windows; ``last``: RecBole's prefix rows) the benchmark times optimizer steps on the dataset's own
length-bucketed batches (a systematic sample over the batches sorted by size, after warm-up
steps), estimates the epoch as the mean step time x the number of batches, and counts the tokens
processed (padding included) against the real ones. One full-ranking validation pass is timed per
model. Writes ``<out>/train-epoch-<tag>.json`` and ``.md``::

    ssmlab bench train --data amazon-beauty                 # all models, both protocols
    ssmlab bench train --data ml-100k --models sasrec --steps 4
"""

from __future__ import annotations

import argparse
import copy
import gc
import math
import multiprocessing
import os
import statistics
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ssmlab.bench.probe import (
    PeakMemory,
    git_info,
    machine_info,
    median_seconds,
    optimizer_steps,
    time_calls,
)
from ssmlab.bench.report import (
    PAPER_TABLE5,
    efficiency_markdown,
    epoch_markdown,
    ratios,
    write_report,
)
from ssmlab.config import ConfigError, load_config
from ssmlab.data.batching import padded_batch
from ssmlab.layers.linear_ce import linear_cross_entropy
from ssmlab.models import build_model, get_model_class, model_names
from ssmlab.train.evaluation import batch_layout, eval_batch_rows, evaluate, make_optimizer

LENGTHS = (50, 100, 200, 400, 800)
BEAUTY_ITEMS = 12_101  # [TiM4Rec Table 2]
BEAUTY_PREFIX_ROWS = (
    131_413  # training rows of one "last" epoch on Beauty (benchmarks/results/data-cpu.md)
)
PRESET_DATA = "amazon-beauty"


def cell_config(model: str, seqlen: int):
    """The model's Beauty config (its preset, else the fallback of ``configs/datasets.yaml``: its
    ML-1M preset with Beauty's dropout), max_len = L."""
    return load_config(model, PRESET_DATA, overrides=[f"model.max_len={seqlen}"])


def synthetic_batch(n_rows: int, seqlen: int, n_items: int, seed: int = 0) -> dict:
    """Rows of exactly ``seqlen`` items with increasing timestamps and a target each.

    Gaps are exponential with a one-day mean (Beauty's gaps span seconds to years).

    Shapes:
        returns: item_seq, time_seq (n_rows, seqlen); item_seq_len, target, target_time,
        user_id (n_rows,): user i + 1 in row i
    """
    if n_rows < 1 or seqlen < 1:
        raise ValueError(f"n_rows and seqlen must be >= 1, got {n_rows}, {seqlen}")
    rng = np.random.default_rng(seed)
    width = seqlen + 1  # history + target
    items = rng.integers(1, n_items + 1, size=n_rows * width)
    gaps = rng.exponential(86_400.0, size=(n_rows, width)).astype(np.int64) + 1
    times = (1_300_000_000 + np.cumsum(gaps, axis=1)).reshape(-1)
    row_start = np.arange(n_rows) * width
    lengths, users = np.full(n_rows, seqlen), np.arange(1, n_rows + 1)
    return padded_batch(items, times, row_start, lengths, row_start + seqlen, user=users)


def measure_cell(model_name: str, seqlen: int, opts: dict) -> dict:
    """Time a training step and inference of one (model, L) cell and its step's peak memory."""
    device = torch.device(opts["device"])
    if opts.get("threads"):
        torch.set_num_threads(opts["threads"])
    torch.manual_seed(0)
    config = cell_config(model_name, seqlen)
    objective = config.train.objective
    users = opts["batch_size"]  # synthetic_batch: one user per row
    model = build_model(model_name, opts["n_items"], config=config.model, dataset_users=users)
    model.to(device)
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
    times = time_calls(step, inputs=[batch] * opts["steps"], warmup=0, device=device)
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

    def predict(chunk):
        model.full_sort_predict({k: v.to(device) for k, v in chunk.items()})

    with torch.no_grad():
        predict(chunks[0])  # warm-up
        (cell["infer_s"],) = time_calls(
            lambda: [predict(chunk) for chunk in chunks], 1, warmup=0, device=device
        )
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
    p.add_argument("--models", default="all", help="'all' or comma-separated registry names")
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
    models = [m.strip().lower() for m in args.models.split(",") if m.strip()]
    args.models = model_names() if args.models == "all" else models
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


def _default_out() -> Path:
    checkout = Path(__file__).resolve().parents[2]
    root = checkout if (checkout / "benchmarks").is_dir() else Path.cwd()
    return root / "benchmarks" / "results"


def efficiency_main(argv: list[str]) -> int:
    """``ssmlab bench train [args]``: run the benchmark and write JSON, markdown and HTML."""
    from ssmlab.viz.timing import efficiency_vs_length  # plotly (the lab extra), for the HTML

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
        ctx.set_forkserver_preload(["torch", "ssmlab.bench.train"])
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
    stem = "efficiency-" + ("cuda" if cuda else "cpu") + (f"-{args.tag}" if args.tag else "")
    figure = efficiency_vs_length(results)
    write_report(out, stem, results, efficiency_markdown(results), indent=1, figure=figure)
    return 0


# -- one epoch on a real dataset (``ssmlab bench train --data NAME``) ----------------------
PROTOCOLS = ("all", "last")
FLOOR_BATCH = 1800  # targets per step of the floor (the measurement: batches of 1,800)
# Extra rows per model: (label, overrides). TiM4Rec's positional time MLP trains on prefix rows
# only; its causal time path is the form that trains on all positions.
EPOCH_VARIANTS = {"tim4rec": [("causal time path", ["model.time_mlp=causal"])]}


def scoring_floor(
    n_targets: int, n_items: int, d: int, fused: bool = False, batch: int = FLOOR_BATCH
) -> float:
    """Seconds of fwd+bwd of the scoring step over ``n_targets`` targets in batches.

    ``fused=False``: naive ``F.cross_entropy(h @ W.T, y)``; ``True``: the blocked
    :func:`ssmlab.layers.linear_ce.linear_cross_entropy` the models use.
    """
    g = torch.Generator().manual_seed(0)
    weight = (0.02 * torch.randn(n_items, d, generator=g)).requires_grad_()
    hidden = torch.randn(batch, d, generator=g).requires_grad_()
    target = torch.randint(0, n_items, (batch,), generator=g)

    def step(rows: int) -> None:
        h, y = hidden[:rows], target[:rows]
        if fused:
            loss = linear_cross_entropy(h, weight, y)
        else:
            loss = F.cross_entropy(h @ weight.T, y)
        loss.backward()

    def epoch() -> None:
        full, rest = divmod(n_targets, batch)
        for _ in range(full):
            step(batch)
        if rest:
            step(rest)

    step(batch)  # warm-up
    return time_calls(epoch, 1, warmup=0)[0]


def epoch_config(
    model: str, data: str, protocol: str, batch_size: int, tie_order: str, extra: Sequence = ()
):
    """The model's preset on ``data`` under ``protocol`` (BERT4Rec: cloze on the prefix rows),
    then the ``extra`` overrides."""
    objective = protocol
    if protocol == "last":  # BERT4Rec: cloze on the prefix rows
        fields = [o for o in extra if o.startswith("model.")]  # e.g. TiM4Rec's time_mlp
        config = load_config(model, data, overrides=fields).model
        supported = get_model_class(model).objectives_for(config)
        objective = protocol if protocol in supported else supported[0]
    overrides = [
        f"train.objective={objective}",
        f"train.batch_size={batch_size}",
        f"data.tie_order={tie_order}",
        *extra,
    ]
    return load_config(model, data, overrides=overrides)


def time_epoch(model_name: str, dataset, config, steps: int, warmup: int, device) -> dict:
    """Estimated seconds of one training epoch (see the module docstring) and its tokens."""
    split = dataset.split()
    torch.manual_seed(0)
    model = build_model(
        model_name, dataset.n_items, config=config.model, dataset_users=dataset.n_users
    ).to(device)
    optimizer = make_optimizer(model, config.train.lr, config.train.weight_decay)
    objective = config.train.objective
    batches = split.train_batches(
        batch_layout(model, objective),
        batch_size=config.train.batch_size,
        max_len=config.max_len,
        seed=0,
        bucket=True,
    )
    everything = sorted(batches, key=lambda b: b["item_seq"].numel())
    n = len(everything)
    picks = [everything[round(i * (n - 1) / max(steps - 1, 1))] for i in range(min(steps, n))]
    model.train()

    def step(batch):
        batch = {k: v.to(device) for k, v in batch.items()}
        loss = model.calculate_loss(batch, objective)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    times = time_calls(step, inputs=picks, warmup=warmup, device=device)
    tokens = batches.tokens()
    return {
        "objective": objective,
        "batches": n,
        "timed_steps": len(times),
        "step_s_mean": sum(times) / len(times),
        "epoch_s": sum(times) / len(times) * n,
        "tokens_real": tokens["real"],
        "tokens_processed": tokens["processed"],
        "model": model,
    }


def time_eval(model, dataset, config, device) -> float:
    """Seconds of one full-ranking validation pass over every user."""
    batches = dataset.split().eval_batches(
        "valid",
        batch_size=eval_batch_rows(config.train.eval_batch_size, device),
        max_len=config.max_len,
        bucket=True,
    )
    return time_calls(lambda: evaluate(model, batches, device), 1, warmup=0, device=device)[0]


def spread_batches(batches, steps: int | None) -> list:
    """``steps`` of ``batches`` (all when ``steps`` is 0 or None) spread evenly over them sorted
    by width: a fast path's comparison sees the short and the long batches of an epoch."""
    ordered = sorted(batches, key=lambda b: b["item_seq"].shape[1])
    steps = min(steps or len(ordered), len(ordered))
    return [ordered[i] for i in np.linspace(0, len(ordered) - 1, steps).round().astype(int)]


@contextmanager
def switched(switch: tuple, value):
    """``switch = (module, name)``: the module constant set to ``value`` inside, restored after."""
    module, name = switch
    saved = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, saved)


def switched_steps(
    base: torch.nn.Module, batches: Sequence, objective: str, train, switch: tuple, settings: dict
) -> dict[str, Any]:
    """A fast path against its reference inside real training steps: the same optimizer steps
    (``batches``, ``base``'s initial weights, the same seed for dropout) with the module constant
    ``switch = (module, name)`` set to each of ``settings`` ({label: value}) in turn
    (:func:`switched`). Returns ``{f"{label}_s": process CPU seconds, f"{label}_last_loss": last
    loss}``."""
    row = {}
    for label, value in settings.items():
        with switched(switch, value):
            model = copy.deepcopy(base).train()
            optimizer = make_optimizer(model, train.lr, train.weight_decay)
            torch.manual_seed(1)  # same dropout draws
            seconds, loss = optimizer_steps(
                lambda b, model=model: model.calculate_loss(b, objective), batches, optimizer
            )
        row[f"{label}_s"], row[f"{label}_last_loss"] = seconds, loss
        print(f"{label}: {seconds:.1f} CPU s, last loss {loss:.5f}", flush=True)
    return row


def switched_seconds(call, switch: tuple, settings: dict, repeats: int) -> dict[str, float]:
    """A fast path against its reference on one call: median process CPU seconds of ``call()``
    over ``repeats`` calls with ``switch = (module, name)`` set to each of ``settings``
    ({reference: value, fast path: value}) in turn (:func:`switched`). Returns
    ``{f"{label}_s": seconds, "speedup": reference s / fast path s}``."""
    row = {}
    for label, value in settings.items():
        with switched(switch, value):
            row[f"{label}_s"] = median_seconds(call, repeats, clock="process")
    ref, fast = settings
    return row | {"speedup": row[f"{ref}_s"] / row[f"{fast}_s"]}


def preset_switched_steps(
    model: str,
    data: str,
    overrides: Sequence[str],
    steps: int | None,
    switch: tuple,
    settings: dict,
) -> dict[str, Any]:
    """:func:`switched_steps` on a preset's real training batches: ``model``'s config for
    ``data`` (same-day ties in item order) with ``overrides``, ``steps`` of its epoch's
    length-bucketed batches spread over their widths (:func:`spread_batches`), weights seeded 0.
    ``settings`` = {reference: value, fast path: value}. Returns the row: steps, epoch_batches,
    objective, batch_size, widths, the timings and ``speedup`` (reference s / fast path s)."""
    config = load_config(model, data, overrides=["data.tie_order=item", *overrides])
    dataset = config.data.load()
    tc = config.train
    layout = batch_layout(get_model_class(model), tc.objective)  # BERT4Rec's cloze: prefix rows
    batches = dataset.split().train_batches(
        layout, batch_size=tc.batch_size, max_len=config.max_len, seed=0, bucket=True
    )
    chosen = spread_batches(batches, steps)
    torch.manual_seed(0)
    base = build_model(model, dataset.n_items, config=config.model, dataset_users=dataset.n_users)
    row = {"steps": len(chosen), "epoch_batches": len(batches), "objective": tc.objective}
    row |= {"batch_size": tc.batch_size, "widths": [int(b["item_seq"].shape[1]) for b in chosen]}
    row |= switched_steps(base, chosen, tc.objective, tc, switch, settings)
    ref, fast = settings
    return row | {"speedup": row[f"{ref}_s"] / row[f"{fast}_s"]}


def fast_path_parser(
    doc: str, out: Path, steps: int = 12, steps_help: str = "training steps"
) -> argparse.ArgumentParser:
    """The options of the fast-path benchmark scripts (``benchmarks/caser_conv.py``,
    ``causal_conv.py``, ``dropout.py``, ``ssd_chunk.py``): data, training steps, torch threads,
    repeats of each kernel timing, ``--quick`` (toy sizes) and the output folder."""
    p = argparse.ArgumentParser(description=doc.split("\n")[0])
    p.add_argument("--data", default="amazon-beauty")
    p.add_argument("--steps", type=int, default=steps, help=steps_help)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="toy sizes and data (a smoke test)")
    p.add_argument("--out", default=str(out))
    return p


def parse_epoch_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="ssmlab bench train --data", description=__doc__.split("\n")[0]
    )
    p.add_argument("--data", required=True, help="dataset registry name, e.g. amazon-beauty")
    p.add_argument("--models", default="all", help="'all' or comma-separated registry names")
    p.add_argument("--protocols", default=",".join(PROTOCOLS), help="all,last")
    p.add_argument("--batch-size", type=int, default=256, help="rows per step (both protocols)")
    p.add_argument("--steps", type=int, default=12, help="timed steps per model and protocol")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--tie-order", default="item", choices=("file", "item", "random"))
    p.add_argument("--no-eval", action="store_true", help="skip the validation-pass timing")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--tag", default=None, help="file suffix (default: the device type)")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override for every row"
    )
    args = p.parse_args(argv)
    args.models = (
        model_names() if args.models == "all" else [m.strip() for m in args.models.split(",")]
    )
    args.protocols = [x.strip() for x in args.protocols.split(",") if x.strip()]
    if not set(args.protocols) <= set(PROTOCOLS) or not args.protocols:
        p.error(f"--protocols takes a comma-separated subset of {PROTOCOLS}")
    return args


def epoch_main(argv: list[str]) -> int:
    """``ssmlab bench train --data NAME [args]``: run the benchmark and write JSON and markdown."""
    args = parse_epoch_args(list(argv))
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    data = load_config("sasrec", args.data, overrides=[f"data.tie_order={args.tie_order}"]).data
    dataset = data.load()
    split = dataset.split()
    n_targets = split.stats()["train_rows_last"]
    d = 64
    floor = {
        "naive_s": scoring_floor(n_targets, dataset.n_items, d),
        "fused_s": scoring_floor(n_targets, dataset.n_items, d, fused=True),
        "targets": n_targets,
        "items": dataset.n_items,
        "d": d,
        "batch": FLOOR_BATCH,
    }
    floor["fused_speedup"] = floor["naive_s"] / floor["fused_s"]
    print(f"scoring floor: naive {floor['naive_s']:.1f} s, fused {floor['fused_s']:.1f} s")
    rows = []
    cells = [(n, None, []) for n in args.models]
    cells += [(n, *v) for n in args.models for v in EPOCH_VARIANTS.get(n, [])]
    for name, variant, extra in sorted(cells, key=lambda c: (c[0], c[1] or "")):
        eval_s = None
        for protocol in args.protocols:
            row = {"model": name, "variant": variant, "protocol": protocol}
            try:
                config = epoch_config(
                    name, args.data, protocol, args.batch_size, args.tie_order, [*extra, *args.set]
                )
            except ConfigError as err:  # e.g. a non-causal model under "all"
                row["status"] = f"n/a: {str(err).splitlines()[0]}"
                rows.append(row)
                continue
            cell = time_epoch(name, dataset, config, args.steps, args.warmup, device)
            model = cell.pop("model")
            if eval_s is None and not args.no_eval:
                eval_s = time_eval(model, dataset, config, device)
            row.update(cell, status="ok", eval_s=eval_s)
            row["floor_ratio"] = cell["epoch_s"] / floor["naive_s"]
            row["padding_ratio"] = cell["tokens_processed"] / cell["tokens_real"]
            label = name + (f" ({variant})" if variant else "")
            print(
                f"{label:13s} {protocol:4s} epoch {cell['epoch_s']:7.1f} s "
                f"= {row['floor_ratio']:.2f} x floor, tokens x{row['padding_ratio']:.2f}",
                flush=True,
            )
            rows.append(row)
    report = {
        "benchmark": "train-epoch",
        "data": args.data,
        "machine": machine_info("cpu"),
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "floor": floor,
        "rows": rows,
    }
    stem = f"train-epoch-{args.tag or device.type}"
    write_report(Path(args.out), stem, report, epoch_markdown(report), indent=1)
    return 0


def main(argv: list[str]) -> int:
    """``ssmlab bench train [args]``: the efficiency benchmark, or with ``--data NAME`` one epoch
    on that dataset."""
    if any(a == "--data" or a.startswith("--data=") for a in argv):
        return epoch_main(argv)
    return efficiency_main(argv)


__all__ = [
    "BEAUTY_ITEMS",
    "BEAUTY_PREFIX_ROWS",
    "LENGTHS",
    "cell_config",
    "efficiency_main",
    "epoch_main",
    "main",
    "measure_cell",
    "scoring_floor",
    "synthetic_batch",
    "time_epoch",
]
