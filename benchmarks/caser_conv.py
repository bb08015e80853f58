"""Caser's horizontal convolutions on the CPU: the padded-tail path against the reference.

    python benchmarks/caser_conv.py [--data amazon-beauty] [--steps 12] [--threads 1] [--quick]

Two measurements, process CPU seconds on one intra-op thread (the work done, whatever else the
machine runs), forward + backward:

1. the kernels alone at Caser's Beauty size (L = 50 heights, n_h = 8, d = 64, 512 rows) for
   batch widths w = 1..L: ``horizontal_reference`` (one Conv1d per height over all L positions)
   against ``horizontal_padded_tail`` (the first w positions, the common padding summed once);
   this sets ``PADDED_TAIL_COST`` in ``ssmlab/models/caser.py``;
2. training steps of the Beauty preset (prefix rows, batch 2048, length-bucketed as in
   training; the same batches and initial weights): the model with the reference forced
   (``PADDED_TAIL_COST = 0``) against the model as it is.

Writes ``benchmarks/results/caser-conv-cpu.json`` and ``.md`` with machine info.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ssmlab.bench.probe import machine_info, median_seconds
from ssmlab.bench.report import fmt_value, write_report, written_by
from ssmlab.bench.train import fast_path_parser, switched_steps
from ssmlab.config import load_config
from ssmlab.models import build_model, caser

OUT = Path(__file__).resolve().parent / "results"


def kernel_rows(L: int, n_h: int, d: int, b: int, widths, repeats: int) -> list[dict]:
    torch.manual_seed(0)
    convs = nn.ModuleList(nn.Conv1d(d, n_h, h) for h in range(1, L + 1))
    weights, biases = [c.weight for c in convs], [c.bias for c in convs]
    rows = []
    for w in widths:
        x = torch.randn(b, w, d, requires_grad=True)
        pad = torch.randn(d, requires_grad=True)

        def reference(x=x, pad=pad, w=w):
            full = torch.cat([x, pad.expand(b, L - w, d)], 1)
            caser.horizontal_reference(full, convs).sum().backward()

        def padded_tail(x=x, pad=pad):
            caser.horizontal_padded_tail(x, pad, weights, biases).sum().backward()

        row = {"w": w, "reference_s": median_seconds(reference, repeats, clock="process")}
        row["padded_tail_s"] = median_seconds(padded_tail, repeats, clock="process")
        row["speedup"] = row["reference_s"] / row["padded_tail_s"]
        row["cost_share"] = w * w * L / (L * (L + 1) * (L + 2) / 6)  # the rule's w^2 L / ref
        rows.append(row)
        print(f"w {w:3d}: reference {row['reference_s']:.3f} s, padded tail "
              f"{row['padded_tail_s']:.3f} s, {row['speedup']:.2f}x", flush=True)  # fmt: skip
    return rows


def train_steps(data: str, steps: int) -> dict:
    """CPU seconds of ``steps`` training steps with the reference forced and as the model is."""
    config = load_config("caser", data, overrides=["data.tie_order=item"])
    dataset = config.data.load()
    torch.manual_seed(0)
    users = dataset.n_users
    base = build_model("caser", dataset.n_items, config=config.model, dataset_users=users)
    tc = config.train
    batches = dataset.split().train_batches(
        tc.objective, batch_size=tc.batch_size, max_len=config.max_len, seed=0, bucket=True
    )
    batches = [b for _, b in zip(range(steps), batches, strict=False)]
    row = {"steps": len(batches), "batch_size": tc.batch_size, "objective": tc.objective}
    row["widths"] = [int(b["item_seq"].shape[1]) for b in batches]
    settings = {"reference": 0.0, "model": caser.PADDED_TAIL_COST}
    row |= switched_steps(base, batches, tc.objective, tc, (caser, "PADDED_TAIL_COST"), settings)
    row["speedup"] = row["reference_s"] / row["model_s"]
    return row


def markdown(report: dict) -> str:
    m, s, t = report["machine"], report["settings"], report["train"]
    lines = [
        "# Caser's horizontal convolutions on the CPU",
        "",
        written_by("benchmarks/caser_conv.py", m),
        "",
        f"Forward + backward, median process CPU seconds of {s['repeats']} calls; L = {s['L']} "
        f"heights, n_h = {s['n_h']}, d = {s['d']}, {s['rows']} rows of batch width w (the "
        "positions after w hold the padding vector). Cost share = w^2 L / (L (L+1) (L+2) / 6), "
        f"the rule's estimate of padded tail / reference; the model takes the padded tail when "
        f"it is <= PADDED_TAIL_COST = {s['padded_tail_cost']}.",
        "",
        "| w | reference s | padded tail s | speed-up | cost share |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report["kernels"]:
        lines.append(
            f"| {r['w']} | {fmt_value(r['reference_s'], 4)} | {fmt_value(r['padded_tail_s'], 4)}"
            f" | {fmt_value(r['speedup'])} | {fmt_value(r['cost_share'])} |"
        )
    lines += [
        "",
        f"Training on {report['data']} (the preset: objective {t['objective']}, batch "
        f"{t['batch_size']}, length-bucketed): {t['steps']} steps, the same batches (widths "
        f"{min(t['widths'])}–{max(t['widths'])}) and initial weights: reference forced "
        f"{fmt_value(t['reference_s'], 1)} CPU s, as the model is {fmt_value(t['model_s'], 1)} "
        f"CPU s: **{fmt_value(t['speedup'])}x**; last loss {fmt_value(t['reference_last_loss'], 5)}"
        f" / {fmt_value(t['model_last_loss'], 5)}.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = fast_path_parser(__doc__, OUT).parse_args(argv)
    torch.set_num_threads(args.threads)
    L, n_h, d, rows = (6, 2, 8, 16) if args.quick else (50, 8, 64, 512)
    widths = [1, 3, 6] if args.quick else [1, 2, 3, 5, 8, 12, 16, 20, 25, 30, 40, 50]
    data, steps = ("toy", 2) if args.quick else (args.data, args.steps)
    report = {
        "benchmark": "caser-conv",
        "data": data,
        "machine": machine_info("cpu"),
        "settings": {
            "L": L,
            "n_h": n_h,
            "d": d,
            "rows": rows,
            "repeats": args.repeats,
            "threads": args.threads,
            "padded_tail_cost": caser.PADDED_TAIL_COST,
        },
        "kernels": kernel_rows(L, n_h, d, rows, widths, args.repeats),
        "train": train_steps(data, steps),
    }
    write_report(Path(args.out), "caser-conv-cpu", report, markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
