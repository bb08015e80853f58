"""Data pipeline benchmark: processing time, cached reload, padding of padded vs packed batches.

Usage: ``python benchmarks/data.py [--data-dir DIR] [--repeats 3]``. Writes
``benchmarks/results/data-cpu.json`` and ``data-cpu.md`` (with machine info). Needs the raw
Amazon-Beauty (and ML-100K) files, e.g. ``SSMLAB_DATA_DIR=../shared/datasets``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ssmlab.data import batching, load_dataset

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "pandas": pd.__version__,
        "numpy": np.__version__,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def padding(split, objective: str, max_len: int, batch_size: int) -> dict:
    """Padding fraction of padded batches (width max_len, width = longest row) vs packed."""
    if objective == "last":
        start, length, target = batching.last_rows(split.starts, split.train_ends, max_len)
    else:
        (start, length), target = batching.all_rows(split.starts, split.train_ends, max_len), None
    real = int(length.sum())
    order = torch.randperm(len(length), generator=torch.Generator().manual_seed(0)).numpy()
    groups = batching.group_rows(order, length, batch_size)
    batch_width_slots = sum(int(length[g].max()) * len(g) for g in groups)
    began = time.perf_counter()
    packed_tokens = 0
    for g in groups:
        batch = batching.packed_batch(
            split.items, split.times, start[g], length[g], None if target is None else target[g]
        )
        packed_tokens += batch["item_seq"].numel()
    packed_s = time.perf_counter() - began
    began = time.perf_counter()
    for g in groups:
        batching.padded_batch(
            split.items,
            split.times,
            start[g],
            length[g],
            None if target is None else target[g],
            max_len,
        )
    padded_s = time.perf_counter() - began
    return {
        "rows": len(length),
        "real_tokens": real,
        "batch_size": batch_size,
        "padding_fixed_max_len": 1 - real / (len(length) * max_len),
        "padding_batch_longest": 1 - real / batch_width_slots,
        "padding_packed": 1 - real / packed_tokens,
        "epoch_build_s_padded": padded_s,
        "epoch_build_s_packed": packed_s,
    }


def run(data_dir: str | None, repeats: int) -> dict:
    results = {"machine": machine(), "datasets": {}}
    with tempfile.TemporaryDirectory() as cache:
        for name in ("amazon-beauty", "ml-100k"):
            fresh_s, data = timed(
                partial(load_dataset, name, data_dir, cache_dir=cache, refresh=True), repeats
            )
            cached_s, again = timed(partial(load_dataset, name, data_dir, cache_dir=cache), repeats)
            assert again.meta["cache_hit"] and len(again.inter) == len(data.inter)
            stats = data.stats()
            split = data.split()
            entry = {
                "users": stats["users"],
                "items": stats["items"],
                "interactions": stats["interactions"],
                "raw_to_processed_s": fresh_s,
                "cached_reload_s": cached_s,
                "padding": {},
            }
            for objective in ("last", "all"):
                entry["padding"][objective] = padding(split, objective, 50, 256)
            results["datasets"][name] = entry
    return results


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [
        "# Data pipeline benchmark (CPU)",
        "",
        (
            f"{m['date']} · {m['platform']} · {m['cpu']} · {m['cores']} cores · "
            f"torch {m['torch']} · pandas {m['pandas']} · numpy {m['numpy']}"
        ),
        "",
        "| dataset | users | items | interactions | raw -> processed (s) | cached (s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, d in results["datasets"].items():
        lines.append(
            f"| {name} | {d['users']:,} | {d['items']:,} | {d['interactions']:,} | "
            f"{d['raw_to_processed_s']:.3f} | {d['cached_reload_s']:.3f} |"
        )
    lines += [
        "",
        (
            "Padding fraction at max_len 50 (batch size 256, shuffled, seed 0): fixed "
            "width 50 (RecBole), width = longest row of the batch (ssmlab default), "
            "packed (SSD4Rec)."
        ),
        "",
        (
            "| dataset | objective | rows | real tokens | fixed 50 | batch longest | packed | "
            "epoch build padded (s) | packed (s) |"
        ),
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, d in results["datasets"].items():
        for objective, p in d["padding"].items():
            label = "prefix (last)" if objective == "last" else "all-positions"
            lines.append(
                f"| {name} | {label} | {p['rows']:,} | {p['real_tokens']:,} | "
                f"{p['padding_fixed_max_len']:.1%} | {p['padding_batch_longest']:.1%} | "
                f"{p['padding_packed']:.1%} | {p['epoch_build_s_padded']:.3f} | "
                f"{p['epoch_build_s_packed']:.3f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="raw-data root (else SSMLAB_DATA_DIR)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    results = run(args.data_dir, args.repeats)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "data-cpu.json").write_text(json.dumps(results, indent=1) + "\n")
    (RESULTS / "data-cpu.md").write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
