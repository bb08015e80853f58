"""Data pipeline benchmark: processing time, cached reload, padding of padded vs packed batches.

Usage: ``python benchmarks/data.py [--data-dir DIR] [--repeats 3] [--out DIR]``. Writes
``benchmarks/results/data-cpu.json`` and ``data-cpu.md`` (with machine info). Needs the raw
Amazon-Beauty (and ML-100K) files, e.g. ``SSMLAB_DATA_DIR=../shared/datasets``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from functools import partial
from pathlib import Path

import torch

from ssmlab.bench.probe import machine_info, time_calls
from ssmlab.bench.report import write_report
from ssmlab.data import batching, load_dataset
from ssmlab.models.ssd4rec import pack

RESULTS = Path(__file__).resolve().parent / "results"


def timed(fn, repeats: int) -> tuple[float, object]:
    """Median seconds of ``repeats`` calls of ``fn()`` (no warm-up: each is a full run) and the
    last call's result."""
    out = []
    times = time_calls(lambda: out.append(fn()), repeats, warmup=0)
    return statistics.median(times), out[-1]


def padding(split, objective: str, max_len: int, batch_size: int) -> dict:
    """Padding fraction of padded batches (width max_len, width = longest row) vs packed ones
    (the padded batches packed by :func:`ssmlab.models.ssd4rec.pack`, SSD4Rec's one packer), and
    the seconds to build one epoch of padded (width max_len) and of packed batches."""
    if objective == "last":
        start, length, target = batching.last_rows(split.starts, split.train_ends, max_len)
    else:
        (start, length), target = batching.all_rows(split.starts, split.train_ends, max_len), None
    real = int(length.sum())
    order = torch.randperm(len(length), generator=torch.Generator().manual_seed(0)).numpy()
    groups = batching.group_rows(order, length, batch_size)
    batch_width_slots = sum(int(length[g].max()) * len(g) for g in groups)

    def epoch(width: int | None, packed: bool) -> int:
        """Build every batch; returns the tokens they hold."""
        tokens = 0
        for g in groups:
            rows = (start[g], length[g], None if target is None else target[g], width)
            batch = batching.padded_batch(split.items, split.times, *rows)
            seq = pack(batch["item_seq"], batch["item_seq_len"])[0] if packed else batch["item_seq"]
            tokens += seq.numel()
        return tokens

    packed_tokens = []
    (packed_s,) = time_calls(lambda: packed_tokens.append(epoch(None, True)), 1, warmup=0)
    (padded_s,) = time_calls(lambda: epoch(max_len, False), 1, warmup=0)
    packed_tokens = packed_tokens[0]
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
    results = {"machine": machine_info("cpu", packages=("pandas", "numpy")), "datasets": {}}
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
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    args = parser.parse_args(argv)
    results = run(args.data_dir, args.repeats)
    write_report(args.out, "data-cpu", results, markdown(results), indent=1)
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
