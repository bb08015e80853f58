"""Dropout on the CPU: the uniform-comparison mask (``ssmlab.layers.dropout``) against
``F.dropout`` (``bernoulli_``).

    python benchmarks/dropout.py [--data amazon-beauty] [--steps 12] [--threads 1] [--quick]

Two measurements, process CPU seconds on one intra-op thread, forward + backward:

1. dropout alone on the activations it meets in the Beauty presets (p as there);
2. training steps of Beauty presets (the table3_beauty.sh rows: TiM4Rec's prefix rows at batch
   2048, BERT4Rec's cloze rows, the others all positions at 256; ``steps`` length-bucketed
   batches spread over the epoch's widths): the same batches and initial weights with
   ``CPU_UNIFORM`` off and on (off, attention weights are dropped inside SDPA again). The masks
   are other draws of the same law, so the losses differ a little.

Writes ``benchmarks/results/dropout-cpu.json`` and ``.md`` with machine info.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ssmlab.bench.probe import machine_info
from ssmlab.bench.report import fmt_value, switched_steps_markdown, write_report, written_by
from ssmlab.bench.train import fast_path_parser, preset_switched_steps, switched_seconds
from ssmlab.layers import dropout as dropout_module
from ssmlab.layers.dropout import Dropout

OUT = Path(__file__).resolve().parent / "results"
SWITCH = (dropout_module, "CPU_UNIFORM")
SETTINGS = {"bernoulli": False, "uniform": True}
SHAPES = [  # (rows, length, width, p): TiM4Rec's embeddings and FFN, SASRec's at 256 rows
    (2048, 50, 64, 0.4),
    (2048, 50, 256, 0.4),
    (256, 50, 64, 0.5),
]
ALL = ["train.objective=all", "train.batch_size=256"]
MODELS = {  # the presets' objectives as table3_beauty.sh runs them
    "tim4rec": [],
    "sasrec": ALL,
    "bert4rec": [],
    "mamba4rec": ALL,
    "ssd4rec_star": ALL,
    "gru4rec": ALL,
}


def kernel_rows(shapes, repeats: int) -> list[dict]:
    torch.manual_seed(0)
    out = []
    for rows, length, width, p in shapes:
        layer = Dropout(p).train()
        x = torch.randn(rows, length, width, requires_grad=True)
        dy = torch.randn(rows, length, width)
        call = lambda x=x, dy=dy, layer=layer: layer(x).backward(dy)  # noqa: E731
        row = {"shape": [rows, length, width], "p": p}
        row |= switched_seconds(call, SWITCH, SETTINGS, repeats)
        out.append(row)
        print(f"{row['shape']} p {p}: bernoulli {row['bernoulli_s']:.4f} s, uniform "
              f"{row['uniform_s']:.4f} s, {row['speedup']:.2f}x", flush=True)  # fmt: skip
    return out


def markdown(report: dict) -> str:
    m, s = report["machine"], report["settings"]
    lines = [
        "# Dropout on the CPU: uniform-comparison mask against F.dropout (bernoulli_)",
        "",
        written_by("benchmarks/dropout.py", m),
        "",
        f"Forward + backward, median process CPU seconds of {s['repeats']} calls.",
        "",
        "| shape | p | F.dropout s | uniform mask s | speed-up |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in report["kernels"]:
        lines.append(
            f"| {' x '.join(map(str, r['shape']))} | {r['p']} | {fmt_value(r['bernoulli_s'], 4)}"
            f" | {fmt_value(r['uniform_s'], 4)} | {fmt_value(r['speedup'])} |"
        )
    lines += [
        "",
        f"Training steps on {report['data']} (each model's preset with the overrides shown; "
        "the same batches, spread over the epoch's widths, and initial weights; other masks of "
        "the same law):",
        "",
    ]
    lines += switched_steps_markdown(
        report["train"], {"bernoulli": "F.dropout", "uniform": "uniform"}
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = fast_path_parser(__doc__, OUT).parse_args(argv)
    torch.set_num_threads(args.threads)
    shapes = [(16, 5, 8, 0.4)] if args.quick else SHAPES
    data, steps = ("toy", 2) if args.quick else (args.data, args.steps)
    report = {
        "benchmark": "dropout",
        "data": data,
        "machine": machine_info("cpu"),
        "settings": {"repeats": args.repeats, "threads": args.threads},
        "kernels": kernel_rows(shapes, args.repeats),
        "train": [
            {"model": m} | preset_switched_steps(m, data, o, steps, SWITCH, SETTINGS)
            for m, o in MODELS.items()
        ],
    }
    write_report(Path(args.out), "dropout-cpu", report, markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
