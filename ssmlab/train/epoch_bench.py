"""One training epoch on a real dataset against the scoring floor: ``ssmlab bench train --data``.

Every model ends in the same step: score each training target's hidden state against all item
embeddings and take the cross-entropy. Done naively (``F.cross_entropy(h @ W.T, y)``) over one
epoch's targets this *scoring floor* is the least a full-softmax epoch can cost without a fused
loss; each model's epoch is reported as a multiple of it. Per model and protocol
(``all``: every position predicts its next item, long sequences in windows; ``last``: RecBole's
prefix rows) the benchmark times optimizer steps on the dataset's own length-bucketed batches
(a systematic sample over the batches sorted by size, after warm-up steps), estimates the epoch
as the mean step time x the number of batches, and counts the tokens processed (padding
included) against the real ones. One full-ranking validation pass is timed per model.

Writes ``<out>/train-epoch-<tag>.json`` and ``.md`` with the machine.

    ssmlab bench train --data amazon-beauty                 # all models, both protocols
    ssmlab bench train --data ml-100k --models sasrec --steps 4
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ssmlab.config import ConfigError, load_config
from ssmlab.layers.linear_ce import linear_cross_entropy
from ssmlab.models import build_model, get_model_class, model_names
from ssmlab.train.loop import data_objective, evaluate, make_optimizer

PROTOCOLS = ("all", "last")
FLOOR_BATCH = 1800  # targets per step of the floor (the measurement: batches of 1,800)


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

    step(batch)  # warm-up
    start = time.perf_counter()
    full, rest = divmod(n_targets, batch)
    for _ in range(full):
        step(batch)
    if rest:
        step(rest)
    return time.perf_counter() - start


def _config(model: str, data: str, protocol: str, batch_size: int, tie_order: str):
    cls = get_model_class(model)
    objective = protocol
    if protocol == "last" and "last" not in cls.objectives:
        objective = cls.objectives[0]  # BERT4Rec: cloze on the prefix rows
    overrides = [
        f"train.objective={objective}",
        f"train.batch_size={batch_size}",
        f"data.tie_order={tie_order}",
    ]
    return load_config(model, data, overrides=overrides)


def time_epoch(model_name: str, dataset, config, steps: int, warmup: int, device) -> dict:
    """Estimated seconds of one training epoch (see the module docstring) and its tokens."""
    split = dataset.split()
    torch.manual_seed(0)
    model = build_model(model_name, dataset.n_items, config=config.model).to(device)
    optimizer = make_optimizer(model, config.train.lr, config.train.weight_decay)
    objective = config.train.objective
    batches = split.train_batches(
        data_objective(model, objective),
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

    for batch in picks[:warmup]:
        step(batch)
    times = []
    for batch in picks:
        start = time.perf_counter()
        step(batch)
        times.append(time.perf_counter() - start)
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
        batch_size=config.train.eval_batch_size,
        max_len=config.max_len,
        packed=data_objective(model, config.train.objective) == "packed",
        bucket=True,
    )
    start = time.perf_counter()
    evaluate(model, batches, device)
    return time.perf_counter() - start


def parse_args(argv: list[str]) -> argparse.Namespace:
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
    args = p.parse_args(argv)
    args.models = (
        model_names() if args.models == "all" else [m.strip() for m in args.models.split(",")]
    )
    args.protocols = [x.strip() for x in args.protocols.split(",") if x.strip()]
    if not set(args.protocols) <= set(PROTOCOLS) or not args.protocols:
        p.error(f"--protocols takes a comma-separated subset of {PROTOCOLS}")
    return args


def main(argv: list[str]) -> int:
    from ssmlab.bench import machine_info

    args = parse_args(list(argv))
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
    for name in args.models:
        eval_s = None
        for protocol in args.protocols:
            row = {"model": name, "protocol": protocol}
            try:
                config = _config(name, args.data, protocol, args.batch_size, args.tie_order)
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
            print(
                f"{name:13s} {protocol:4s} epoch {cell['epoch_s']:7.1f} s "
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
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"train-epoch-{args.tag or device.type}"
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / f"{stem}.md").write_text(to_markdown(report))
    print(f"wrote {out / stem}.json and .md")
    return 0


def _fmt(value, digits=1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def to_markdown(report: dict) -> str:
    m, f, s = report["machine"], report["floor"], report["settings"]
    lines = [
        f"# One training epoch on {report['data']} against the scoring floor",
        "",
        (
            f"Written by `ssmlab bench train --data {report['data']}` "
            f"(`ssmlab/train/epoch_bench.py`) on {m.get('cpu')} · {m.get('cores')} cores · "
            f"{m.get('torch_threads')} torch threads · torch {m.get('torch')} · {m.get('date')}"
            f" · load average {m.get('load_average_1m')}."
        ),
        "",
        (
            f"Scoring floor = the naive fwd+bwd of `F.cross_entropy(h @ W.T, y)` over one epoch's "
            f"{f['targets']:,} training targets ({f['items']:,} items, d = {f['d']}, batches of "
            f"{f['batch']:,}): **{f['naive_s']:.1f} s**. The blocked linear cross-entropy the "
            f"models use does the same in {f['fused_s']:.1f} s (**{f['fused_speedup']:.2f}x** "
            "faster)."
        ),
        "",
        (
            f"Epoch = mean of {s['steps']} timed optimizer steps (a systematic sample over the "
            f"length-bucketed batches, after {s['warmup']} warm-up steps) x the number of "
            f"batches; batch {s['batch_size']} rows; tie order {s['tie_order']}. Tokens: "
            "processed (padding included) / real. Valid = one full-ranking validation pass."
        ),
        "",
        "| model | protocol | objective | batches | epoch s | x floor | tokens x | valid s |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report["rows"]:
        if r["status"] != "ok":
            lines.append(f"| {r['model']} | {r['protocol']} | {r['status']} | | | | | |")
            continue
        lines.append(
            f"| {r['model']} | {r['protocol']} | {r['objective']} | {r['batches']} | "
            f"{_fmt(r['epoch_s'])} | {_fmt(r['floor_ratio'], 2)} | "
            f"{_fmt(r['padding_ratio'], 3)} | {_fmt(r['eval_s'])} |"
        )
    return "\n".join(lines) + "\n"
