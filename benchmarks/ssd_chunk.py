"""SSD's chunk size on the CPU: short histories as one chunk (``ssmlab.ssm.ssd.TORCH_ONE_CHUNK``).

    python benchmarks/ssd_chunk.py [--data amazon-beauty] [--steps N] [--threads 1] [--quick]

Two measurements, process CPU seconds on one intra-op thread (the work done, whatever else the
machine runs), forward + backward:

1. ``ssd_chunked`` alone at TiM4Rec's sizes (h = 4 heads of p = 32, n = 32, one group; 51,200
   positions per call) for lengths 8..200, cut into chunks of 32 (TiM4Rec's preset), 64, or one
   chunk of the whole length; this sets ``TORCH_ONE_CHUNK``;
2. training steps of TiM4Rec's Beauty preset (positional time MLP, prefix rows, batch 2048,
   length-bucketed): one epoch's batches (or ``steps`` of them spread over its widths), the
   same batches and initial weights, with the one-chunk rule off (``TORCH_ONE_CHUNK = 0``)
   and as it is.

Writes ``benchmarks/results/ssd-chunk-cpu.json`` and ``.md`` with machine info.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch

from ssmlab.bench.probe import machine_info, median_seconds
from ssmlab.bench.report import fmt_value, write_report, written_by
from ssmlab.bench.train import fast_path_parser, preset_switched_steps
from ssmlab.config import load_config
from ssmlab.ssm.ssd_chunked import ssd_chunked

# the module, not the function ssmlab.ssm.ssd that its package exports under the same name
ssd_module = importlib.import_module("ssmlab.ssm.ssd")
OUT = Path(__file__).resolve().parent / "results"
CHUNKS = (32, 64)  # and one chunk of the whole length


def kernel_rows(lengths, heads: int, p: int, n: int, positions: int, repeats: int) -> list[dict]:
    rows = []
    for seqlen in lengths:
        b = max(1, positions // seqlen)
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(b, seqlen, heads, p, generator=gen, requires_grad=True)
        dt = (torch.rand(b, seqlen, heads, generator=gen) * 0.5 + 0.01).requires_grad_()
        A = -torch.rand(heads, generator=gen) - 0.2
        B = torch.randn(b, seqlen, 1, n, generator=gen, requires_grad=True)
        C = torch.randn(b, seqlen, 1, n, generator=gen, requires_grad=True)
        row = {"length": seqlen, "rows": b}
        inputs = (x, dt, A, B, C)
        for name, chunk in [*((f"chunk_{c}_s", c) for c in CHUNKS), ("one_chunk_s", seqlen)]:

            def call(chunk=chunk, inputs=inputs):
                ssd_chunked(*inputs, chunk).sum().backward()

            row[name] = median_seconds(call, repeats, clock="process")
        row["one_chunk_speedup"] = row[f"chunk_{CHUNKS[0]}_s"] / row["one_chunk_s"]
        rows.append(row)
        print(f"l {seqlen:4d}: " + ", ".join(f"{k} {v:.4f}" for k, v in row.items() if k[0] != "l"
                                         and k != "rows"), flush=True)  # fmt: skip
    return rows


def train_steps(data: str, steps: int) -> dict:
    """CPU seconds of TiM4Rec training steps (an epoch, or ``steps`` of its batches spread over
    its widths) with the one-chunk rule off and on."""
    settings = {"chunked": 0, "one_chunk": ssd_module.TORCH_ONE_CHUNK}
    switch = (ssd_module, "TORCH_ONE_CHUNK")
    row = preset_switched_steps("tim4rec", data, [], steps, switch, settings)
    return row | {"chunk_size": load_config("tim4rec", data).model.chunk_size}


def markdown(report: dict) -> str:
    m, s, t = report["machine"], report["settings"], report["train"]
    lines = [
        "# SSD's chunk size on the CPU",
        "",
        written_by("benchmarks/ssd_chunk.py", m),
        "",
        f"`ssd_chunked` forward + backward, median process CPU seconds of {s['repeats']} calls; "
        f"h = {s['heads']}, p = {s['p']}, n = {s['n']}, about "
        f"{s['positions']:,} positions per call. A length that is not a multiple of the chunk is "
        "padded to one. `ssd()` takes lengths up to TORCH_ONE_CHUNK = "
        f"{s['torch_one_chunk']} as one chunk on the torch path.",
        "",
        "| length | rows | chunk 32 s | chunk 64 s | one chunk s | one chunk vs 32 |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report["kernels"]:
        lines.append(
            f"| {r['length']} | {r['rows']} | {fmt_value(r['chunk_32_s'], 4)} | "
            f"{fmt_value(r['chunk_64_s'], 4)} | {fmt_value(r['one_chunk_s'], 4)} | "
            f"{fmt_value(r['one_chunk_speedup'])}x |"
        )
    lines += [
        "",
        f"TiM4Rec training on {report['data']} (the preset: objective {t['objective']}, batch "
        f"{t['batch_size']}, chunk_size {t['chunk_size']}, length-bucketed): {t['steps']} of an "
        f"epoch's {t['epoch_batches']} batches (widths {min(t['widths'])}–"
        f"{max(t['widths'])}), the same batches and initial weights: chunks of "
        f"{t['chunk_size']} {fmt_value(t['chunked_s'], 1)} CPU s, one chunk up to "
        f"{s['torch_one_chunk']} positions {fmt_value(t['one_chunk_s'], 1)} CPU s: "
        f"**{fmt_value(t['speedup'])}x**; last loss {fmt_value(t['chunked_last_loss'], 5)} / "
        f"{fmt_value(t['one_chunk_last_loss'], 5)}.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = fast_path_parser(__doc__, OUT, steps=0, steps_help="0: a whole epoch").parse_args(argv)
    torch.set_num_threads(args.threads)
    heads, dim, positions = (2, 4, 512) if args.quick else (4, 32, 51_200)
    lengths = [8, 40] if args.quick else [8, 20, 32, 33, 50, 64, 100, 200]
    data, steps = ("toy", 2) if args.quick else (args.data, args.steps)
    report = {
        "benchmark": "ssd-chunk",
        "data": data,
        "machine": machine_info("cpu"),
        "settings": {
            "heads": heads,
            "p": dim,
            "n": dim,
            "positions": positions,
            "repeats": args.repeats,
            "threads": args.threads,
            "torch_one_chunk": ssd_module.TORCH_ONE_CHUNK,
        },
        "kernels": kernel_rows(lengths, heads, dim, dim, positions, args.repeats),
        "train": train_steps(data, steps),
    }
    write_report(Path(args.out), "ssd-chunk-cpu", report, markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
