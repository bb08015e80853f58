"""The causal depthwise conv of the Mamba-family blocks on the CPU: shifted multiply-adds
(``ssmlab.layers.conv.ShiftedConv``) against ``nn.Conv1d`` (oneDNN).

    python benchmarks/causal_conv.py [--data amazon-beauty] [--steps 12] [--threads 1] [--quick]

Two measurements, process CPU seconds on one intra-op thread (the work done, whatever else the
machine runs), forward + backward:

1. the conv alone at TiM4Rec's Beauty size (c = 192 channels: x, B and C of d_inner = 128 and
   d_state = 32; K = 4; 2,048 rows) for lengths 1..50: ``nn.Conv1d`` (``CPU_SHIFTED = False``)
   against ``ShiftedConv`` (as the module is);
2. training steps of Beauty presets that use the conv (TiM4Rec: prefix rows, batch 2048;
   Mamba4Rec and SSD4Rec*: all positions, batch 256; length-bucketed, ``steps`` batches spread
   over the epoch's widths): the same batches and initial weights with ``CPU_SHIFTED`` off and on.

Writes ``benchmarks/results/causal-conv-cpu.json`` and ``.md`` with machine info.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ssmlab.bench.probe import machine_info
from ssmlab.bench.report import fmt_value, switched_steps_markdown, write_report, written_by
from ssmlab.bench.train import fast_path_parser, preset_switched_steps, switched_seconds
from ssmlab.layers import conv as conv_module
from ssmlab.layers.conv import CausalConv1d

OUT = Path(__file__).resolve().parent / "results"
SWITCH = (conv_module, "CPU_SHIFTED")
SETTINGS = {"conv1d": False, "shifted": True}
MODELS = {  # model: overrides of its Beauty preset (the table3_beauty.sh rows)
    "tim4rec": [],
    "mamba4rec": ["train.objective=all", "train.batch_size=256"],
    "ssd4rec_star": ["train.objective=all", "train.batch_size=256"],
}


def kernel_rows(rows: int, c: int, k: int, lengths, repeats: int) -> list[dict]:
    torch.manual_seed(0)
    conv = CausalConv1d(c, k)
    out = []
    for length in lengths:
        x = torch.randn(rows, length, c, requires_grad=True)
        dy = torch.randn(rows, length, c)
        call = lambda x=x, dy=dy: conv(x).backward(dy)  # noqa: E731
        row = {"length": length} | switched_seconds(call, SWITCH, SETTINGS, repeats)
        out.append(row)
        print(f"L {length:3d}: conv1d {row['conv1d_s']:.4f} s, shifted {row['shifted_s']:.4f} s, "
              f"{row['speedup']:.2f}x", flush=True)  # fmt: skip
    return out


def markdown(report: dict) -> str:
    m, s = report["machine"], report["settings"]
    lines = [
        "# The causal depthwise conv on the CPU: shifted multiply-adds against nn.Conv1d",
        "",
        written_by("benchmarks/causal_conv.py", m),
        "",
        f"Forward + backward, median process CPU seconds of {s['repeats']} calls; {s['rows']} "
        f"rows of length L, c = {s['channels']} channels, K = {s['kernel']}.",
        "",
        "| L | nn.Conv1d s | shifted s | speed-up |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for r in report["kernels"]:
        lines.append(
            f"| {r['length']} | {fmt_value(r['conv1d_s'], 4)} | {fmt_value(r['shifted_s'], 4)}"
            f" | {fmt_value(r['speedup'])} |"
        )
    lines += [
        "",
        f"Training steps on {report['data']} (each model's preset with the overrides shown; "
        "the same batches, spread over the epoch's widths, and initial weights):",
        "",
    ]
    lines += switched_steps_markdown(report["train"], {"conv1d": "nn.Conv1d", "shifted": "shifted"})
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = fast_path_parser(__doc__, OUT).parse_args(argv)
    torch.set_num_threads(args.threads)
    rows, c, k = (16, 8, 4) if args.quick else (2048, 192, 4)
    lengths = [1, 3, 6] if args.quick else [1, 2, 3, 5, 8, 12, 20, 30, 50]
    data, steps = ("toy", 2) if args.quick else (args.data, args.steps)
    report = {
        "benchmark": "causal-conv",
        "data": data,
        "machine": machine_info("cpu"),
        "settings": {
            "rows": rows,
            "channels": c,
            "kernel": k,
            "repeats": args.repeats,
            "threads": args.threads,
        },
        "kernels": kernel_rows(rows, c, k, lengths, args.repeats),
        "train": [
            {"model": m} | preset_switched_steps(m, data, o, steps, SWITCH, SETTINGS)
            for m, o in MODELS.items()
        ],
    }
    write_report(Path(args.out), "causal-conv-cpu", report, markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
