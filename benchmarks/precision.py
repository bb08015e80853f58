"""Precision and compilation on the CPU: do bf16 autocast or torch.compile pay for training?

    python benchmarks/precision.py [--data amazon-beauty] [--models sasrec,mamba4rec]
        [--steps 30] [--threads 1] [--quick]

For each model (the dataset's preset, all-positions objective, batch 256, length-bucketed
batches as in training) the same ``--steps`` optimizer steps (Adam, cross-entropy over all
items) are timed three ways, each from the same initial weights:

- ``fp32``: eager float32 (what ``ssmlab train`` runs);
- ``bf16``: ``torch.autocast("cpu", dtype=torch.bfloat16)`` around the forward and the loss,
  float32 master weights and optimizer (the usual mixed precision);
- ``compile``: ``torch.compile(model.calculate_loss, dynamic=True)`` (inductor, C++ codegen),
  timed after a first pass over the same steps that compiles (its time is reported apart);
  the other two after two untimed warm-up steps.

Times are process CPU seconds (one intra-op thread: the work done, independent of what else the
machine runs). The last step's loss of each variant is recorded beside fp32's. Writes
``benchmarks/results/precision-cpu.json`` and ``.md`` with machine info.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import torch

from ssmlab.bench.probe import machine_info, optimizer_steps
from ssmlab.bench.report import fmt_value, write_report, written_by
from ssmlab.config import load_config
from ssmlab.models import build_model
from ssmlab.train.evaluation import batch_layout, make_optimizer

OUT = Path(__file__).resolve().parent / "results"
VARIANTS = ("fp32", "bf16", "compile")


def loss_fn(model, variant: str):
    """The step's loss function of one variant: batch -> scalar loss."""
    if variant == "compile":
        compiled = torch.compile(model.calculate_loss, dynamic=True)
        return lambda batch: compiled(batch, "all")
    if variant == "bf16":

        def autocast_loss(batch):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return model.calculate_loss(batch, "all")

        return autocast_loss
    return lambda batch: model.calculate_loss(batch, "all")


def run_steps(model, batches, fn) -> tuple[float, float]:
    """CPU seconds of one optimizer step per batch, and the last loss."""
    return optimizer_steps(fn, batches, make_optimizer(model, 1e-3, 0.0))


def measure(name: str, data: str, steps: int, variants=VARIANTS) -> dict:
    config = load_config(
        name, data, overrides=["train.objective=all", "train.batch_size=256", "data.tie_order=item"]
    )
    dataset = config.data.load()
    torch.manual_seed(0)
    users = dataset.n_users
    base = build_model(name, dataset.n_items, config=config.model, dataset_users=users)
    layout = batch_layout(base, "all")
    split = dataset.split()
    batches = list(
        split.train_batches(layout, batch_size=256, max_len=config.max_len, seed=0, bucket=True)
    )[:steps]
    row = {"model": name, "steps": len(batches)}
    for variant in variants:
        model = copy.deepcopy(base).train()
        fn = loss_fn(model, variant)
        if variant == "compile":  # the first pass compiles (and recompiles per new shape)
            row["compile_first_pass_s"], _ = run_steps(model, batches, fn)
        else:  # allocator and kernel warm-up, untimed
            run_steps(model, batches[:2], fn)
        model.load_state_dict(base.state_dict())  # same module (no recompile), same start
        seconds, loss = run_steps(model, batches, fn)
        row[f"{variant}_s"], row[f"{variant}_last_loss"] = seconds, loss
        print(f"{name:10s} {variant:8s} {seconds:7.2f} CPU s, last loss {loss:.4f}", flush=True)
    for variant in variants[1:]:
        row[f"{variant}_speedup"] = row["fp32_s"] / row[f"{variant}_s"]
    return row


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        "# Precision and compilation on the CPU",
        "",
        written_by("benchmarks/precision.py", m),
        "",
        f"{report['settings']['steps']} optimizer steps per variant on {report['data']} "
        "(the preset, all-positions objective, batch 256, length-bucketed), process CPU seconds. "
        "fp32 = eager float32; bf16 = CPU autocast to bfloat16 around forward and loss (float32 "
        "weights and optimizer); compile = `torch.compile(..., dynamic=True)` after a first "
        "compiling pass (its time apart). Speed-up = fp32 time / variant time (> 1: faster).",
        "",
        "| model | fp32 s | bf16 s | bf16 speed-up | compile s | compile speed-up | "
        "compile first pass s | last loss fp32 / bf16 / compile |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in report["rows"]:

        def cell(key, digits=2, r=r):
            return fmt_value(r.get(key), digits)

        lines.append(
            f"| {r['model']} | {cell('fp32_s')} | {cell('bf16_s')} | {cell('bf16_speedup')} | "
            f"{cell('compile_s')} | {cell('compile_speedup')} | "
            f"{cell('compile_first_pass_s', 1)} | {cell('fp32_last_loss', 4)} / "
            f"{cell('bf16_last_loss', 4)} / {cell('compile_last_loss', 4)} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="amazon-beauty")
    p.add_argument("--models", default="sasrec,mamba4rec")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--variants", default=",".join(VARIANTS), help="fp32 first, then bf16, compile")
    p.add_argument("--quick", action="store_true", help="toy data, 3 steps (a smoke test)")
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    if args.quick:
        args.data, args.steps = "toy", 3
    torch.set_num_threads(args.threads)
    variants = tuple(v.strip() for v in args.variants.split(","))
    if variants[0] != "fp32" or not set(variants) <= set(VARIANTS):
        p.error(f"--variants: fp32 first, then any of {VARIANTS[1:]}")
    rows = [measure(m.strip(), args.data, args.steps, variants) for m in args.models.split(",")]
    report = {
        "benchmark": "precision",
        "data": args.data,
        "machine": machine_info("cpu"),
        "settings": {"steps": args.steps, "threads": args.threads, "variants": list(variants)},
        "rows": rows,
    }
    write_report(Path(args.out), "precision-cpu", report, markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
