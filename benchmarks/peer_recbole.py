"""Peer comparison with RecBole 1.2.1's SASRec on exactly our split (driven by peer_recbole.sh).

Three steps, each run by its own interpreter:

``export`` (ssmlab's venv): writes our processed dataset (5-core, ids 1..n, per-user time order)
as a RecBole atomic file ``<out>/<name>/<name>.inter`` with ``user_id:token item_id:token
timestamp:float``. Equal timestamps within a user get +0.001 s per repeat so that RecBole's sort
by time keeps our order (the leave-one-out targets are then the same items).

``run`` (the RecBole venv; imports nothing from ssmlab): SASRec with our preset's settings (max_len
50, d = 64, 2 layers, 8 heads as ssmlab's SASRec presets (RecBole's default is 2), inner 256,
dropout 0.4 on Beauty / 0.2 else, batch 2048, Adam 1e-3,
CE over all items, leave-one-out 'LS' split, time order, full ranking, HR/NDCG/MRR@10/20/50).
Times every training epoch and writes ``<out>/recbole-<name>.json`` (per-epoch seconds, valid
and test metrics of the last epoch).

``compare`` (ssmlab's venv): trains ssmlab's SASRec with the same settings until its valid NDCG@10
reaches RecBole's best, with the prefix objective (RecBole's rows) and the all-positions one, and
writes ``benchmarks/results/peer-recbole-<name>.json`` and ``.md``: per-epoch training time of
both, and training time to RecBole's accuracy.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def export(data: str, out: Path) -> Path:
    """Write ``data`` (ssmlab's processing) as a RecBole .inter file; returns its path."""
    import numpy as np

    from ssmlab.data import load_dataset

    split = load_dataset(data).split()  # the users and order our trainer sees
    users = np.repeat(np.arange(1, len(split) + 1), split.lengths)
    times = split.times.astype(np.float64)
    pos = np.arange(len(times))
    same = np.r_[False, (times[1:] == times[:-1]) & (users[1:] == users[:-1])]
    run_start = np.maximum.accumulate(np.where(~same, pos, 0))  # first index of each tie run
    times = times + 1e-3 * (pos - run_start)
    folder = out / data
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{data}.inter"
    with open(path, "w") as fh:
        fh.write("user_id:token\titem_id:token\ttimestamp:float\n")
        fh.writelines(f"{u}\t{i}\t{t:.3f}\n" for u, i, t in zip(users, split.items, times))
    print(f"wrote {path}: {len(split)} users, {len(times)} interactions")
    return path


def run(
    data: str,
    out: Path,
    epochs: int,
    dropout: float | None,
    device: str,
    n_heads: int = 8,
    max_len: int = 50,
) -> dict:
    """Train RecBole's SASRec on the exported file; time each epoch; evaluate valid and test."""
    import numpy as np
    import torch

    for name, alias in (("float", float), ("int", int), ("bool", bool)):  # old numpy aliases
        if not hasattr(np, name):
            setattr(np, name, alias)
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.sequential_recommender import SASRec
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    if dropout is None:
        dropout = 0.4 if "amazon" in data else 0.2
    settings = {
        "data_path": str(out),
        "checkpoint_dir": str(out / "saved"),
        "device": device,
        "use_gpu": device != "cpu",
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "MAX_ITEM_LIST_LENGTH": max_len,
        "hidden_size": 64,
        "inner_size": 256,
        "n_layers": 2,
        "n_heads": n_heads,
        "hidden_dropout_prob": dropout,
        "attn_dropout_prob": dropout,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-12,
        "initializer_range": 0.02,
        "loss_type": "CE",
        "train_neg_sample_args": None,
        "train_batch_size": 2048,
        "eval_batch_size": 4096,
        "learning_rate": 0.001,
        "epochs": epochs,
        "stopping_step": 10,
        "eval_args": {
            "split": {"LS": "valid_and_test"},
            "order": "TO",
            "mode": "full",
            "group_by": "user",
        },
        "metrics": ["Hit", "NDCG", "MRR"],
        "topk": [10, 20, 50],
        "valid_metric": "NDCG@10",
        "seed": 2020,
        "reproducibility": True,
        "show_progress": False,
        "log_wandb": False,
    }
    config = Config(model="SASRec", dataset=data, config_dict=settings)
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    model = SASRec(config, train_data.dataset).to(config["device"])
    trainer = Trainer(config, model)
    epoch_seconds, cpu_seconds, valid, valid_per_epoch = [], [], None, []
    for epoch in range(epochs):
        start, cpu = time.perf_counter(), time.process_time()
        loss = trainer._train_epoch(train_data, epoch, show_progress=False)
        epoch_seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.process_time() - cpu)  # all threads of this process
        start = time.perf_counter()
        scores = trainer.evaluate(valid_data, load_best_model=False)
        valid = {k: float(v) for k, v in scores.items()}
        valid_per_epoch.append(valid)
        print(
            f"epoch {epoch + 1}: loss {float(loss):.4f}, train {epoch_seconds[-1]:.1f} s, "
            f"valid {valid} ({time.perf_counter() - start:.1f} s)",
            flush=True,
        )
    test = dict(trainer.evaluate(test_data, load_best_model=False))
    result = {
        "peer": "RecBole 1.2.1 SASRec",
        "data": data,
        "epochs": epochs,
        "train_seconds_per_epoch": epoch_seconds,
        "train_cpu_seconds_per_epoch": cpu_seconds,
        "torch_threads": torch.get_num_threads(),
        "valid": valid,
        "test": test,
        "valid_per_epoch": valid_per_epoch,
        "rows_per_epoch": len(train_data.dataset),
        "settings": settings,
    }
    path = out / f"recbole-{data}.json"
    path.write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(f"wrote {path}")
    return result


def compare(
    data: str,
    out: Path,
    results: Path,
    objectives: list[str],
    max_epochs: int,
    extra: tuple[str, ...] = (),
) -> dict:
    """Train ssmlab's SASRec with RecBole's settings until its valid NDCG@10 reaches RecBole's best.

    Reads ``<out>/recbole-<data>.json`` (the ``run`` step). For each objective ("last" = the same
    prefix rows as RecBole, "all" = one pass per sequence) it records the training seconds of
    every epoch and the cumulative training time (evaluation excluded, as for RecBole) at which
    valid NDCG@10 first reaches RecBole's best valid NDCG@10. Writes ``peer-recbole-<data>.json``
    and ``.md`` under ``results``. ``extra``: more ``--set`` overrides (smoke tests).
    """
    import os

    import torch

    from ssmlab.bench.probe import machine_info
    from ssmlab.config import load_config, preset_path
    from ssmlab.data import load_dataset
    from ssmlab.train import Trainer

    peer = json.loads((out / f"recbole-{data}.json").read_text())
    curve = [v["ndcg@10"] for v in peer["valid_per_epoch"]]
    best = max(range(len(curve)), key=curve.__getitem__)
    target = curve[best]
    peer_time = sum(peer["train_seconds_per_epoch"][: best + 1])
    peer_cpu = peer.get("train_cpu_seconds_per_epoch")  # runs before 2026-12-01 lack it
    dataset = load_dataset(data)
    st = peer["settings"]
    overrides = [
        f"model.max_len={st['MAX_ITEM_LIST_LENGTH']}",
        f"model.dropout={st['hidden_dropout_prob']}",
        f"model.attn_dropout={st['attn_dropout_prob']}",
        f"model.n_heads={st['n_heads']}",
        f"train.batch_size={st['train_batch_size']}",
        f"train.lr={st['learning_rate']}",
        f"train.epochs={max_epochs}",
        "train.patience=none",
        "train.progress=false",
        f"train.seed={st['seed']}",
        *extra,
    ]
    path = results / f"peer-recbole-{data}.json"
    ours = {}  # runs of earlier invocations against the same RecBole run are kept
    old = json.loads(path.read_text()) if path.is_file() else None
    same_cpu = old is not None and old["machine"]["cpu"] == machine_info("cpu")["cpu"]
    if same_cpu and old["recbole"]["best_valid_ndcg@10"] == target:
        ours = old["ssmlab"]
        for key, run in ours.items():  # reports written before runs carried these keys
            run.setdefault("objective", key)
            run.setdefault("overrides", [])
            run.setdefault("max_epochs", len(run["train_seconds_per_epoch"]))
    for objective in objectives:
        config = load_config(
            "sasrec",
            data,
            config_file=preset_path("sasrec", "ml-1m"),
            overrides=[*overrides, f"train.objective={objective}"],
        )
        trainer = Trainer(config, dataset=dataset, device="cpu", progress=False, verbose=False)
        trainer.add_callback("on_epoch_end", stop_at(target))
        result = trainer.fit()
        seconds = [e["train_seconds"] for e in trainer.history]  # evaluation excluded
        cpu = [e["train_cpu_seconds"] for e in trainer.history]
        valid = [e["valid"]["ndcg@10"] for e in trainer.history]
        reached = next(
            (
                {
                    "epoch": i + 1,
                    "train_seconds": round(sum(seconds[: i + 1]), 3),
                    "train_cpu_seconds": round(sum(cpu[: i + 1]), 3),
                }
                for i, v in enumerate(valid)
                if v >= target
            ),
            None,
        )
        key = objective + "".join(f", {o}" for o in extra)
        ours[key] = {
            "objective": objective,
            "overrides": list(extra),
            "max_epochs": max_epochs,
            "train_seconds_per_epoch": seconds,
            "train_cpu_seconds_per_epoch": cpu,
            "valid_ndcg@10_per_epoch": valid,
            "reached": reached,
            "test": result["test"],
        }
        print(
            f"ssmlab sasrec ({objective}): epochs {seconds}, valid N@10 {valid}, reached {reached}",
            flush=True,
        )
    report = {
        "benchmark": "peer-recbole",
        "data": data,
        "machine": machine_info("cpu"),
        "torch_threads": torch.get_num_threads(),
        "load_avg_end": list(os.getloadavg()),
        "recbole": {
            "train_seconds_per_epoch": peer["train_seconds_per_epoch"],
            "valid_ndcg@10_per_epoch": curve,
            "best_epoch": best + 1,
            "best_valid_ndcg@10": target,
            "train_seconds_to_best": peer_time,
            "train_cpu_seconds_per_epoch": peer_cpu,
            "train_cpu_seconds_to_best": sum(peer_cpu[: best + 1]) if peer_cpu else None,
            "torch_threads": peer.get("torch_threads"),
            "test": peer["test"],
            "settings": st,
        },
        "ssmlab": ours,
    }
    results.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
    (results / f"peer-recbole-{data}.md").write_text(peer_markdown(report))
    print(f"wrote {results / f'peer-recbole-{data}'}.json and .md")
    return report


def stop_at(target: float):
    """An ``on_epoch_end`` callback that stops training once valid NDCG@10 reaches ``target``."""

    def on_epoch(trainer, record, **info):
        if record["valid"]["ndcg@10"] >= target:
            trainer.stopped = True

    return on_epoch


def peer_markdown(r: dict) -> str:
    """The comparison table: per-epoch time, N@10, time to RecBole's best valid N@10."""
    from ssmlab.bench.report import fmt_value

    m, rb = r["machine"], r["recbole"]

    def mean(xs):
        return sum(xs) / len(xs)

    lines = [
        f"# Peer comparison: RecBole 1.2.1 SASRec vs ssmlab SASRec ({r['data']})",
        "",
        f"{m['date']} · {m['cpu']} · {m['cores']} cores · torch {m['torch']} "
        f"({r['torch_threads']} threads) · written by `benchmarks/peer_recbole.sh` "
        "(RecBole side) and `benchmarks/peer_recbole.py compare` (ssmlab side).",
        "",
        "Same processed data and leave-one-out split (exported from ssmlab), same settings: "
        "max_len 50, d = 64, 2 layers, 8 heads, inner 256, batch 2048, Adam 1e-3, CE over "
        "all items, full ranking. Training seconds exclude evaluation on both sides. "
        f"RecBole ran {len(rb['train_seconds_per_epoch'])} epoch(s); its best valid "
        f"NDCG@10 ({rb['best_valid_ndcg@10']:.4f}, epoch {rb['best_epoch']}) is the target.",
        "",
        "| run | s / epoch (mean) | epochs | valid N@10 per epoch | training s to "
        "target | speed-up to target | CPU s to target | speed-up (CPU s) | test N@10 (end) |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    rb_cpu = rb.get("train_cpu_seconds_to_best")
    lines.append(
        f"| RecBole SASRec (prefix rows) | {mean(rb['train_seconds_per_epoch']):.1f} | "
        f"{len(rb['train_seconds_per_epoch'])} | "
        f"{', '.join(f'{v:.4f}' for v in rb['valid_ndcg@10_per_epoch'])} | "
        f"{rb['train_seconds_to_best']:.1f} | 1x | {fmt_value(rb_cpu, 1)} | "
        f"{'1x' if rb_cpu else '–'} | "
        f"{rb['test']['ndcg@10']:.4f} |"
    )
    for o in r["ssmlab"].values():
        objective = o["objective"]
        reached = o["reached"]
        to = (
            f"{reached['train_seconds']:.1f}" if reached else f"not within {o['max_epochs']} epochs"
        )
        speed = f"{rb['train_seconds_to_best'] / reached['train_seconds']:.1f}x" if reached else "–"
        cpu = (reached or {}).get("train_cpu_seconds")
        cpu_speed = f"{rb_cpu / cpu:.1f}x" if rb_cpu and cpu else "–"
        label = "prefix rows, as RecBole" if objective == "last" else "all positions"
        if o["overrides"]:
            label += "; " + ", ".join(o["overrides"])
        lines.append(
            f"| ssmlab SASRec (`{objective}`: {label}) | "
            f"{mean(o['train_seconds_per_epoch']):.1f} | "
            f"{len(o['train_seconds_per_epoch'])} | "
            f"{', '.join(f'{v:.4f}' for v in o['valid_ndcg@10_per_epoch'])} | {to} | "
            f"{speed} | {fmt_value(cpu, 1)} | {cpu_speed} | {o['test']['ndcg@10']:.4f} |"
        )
    lines += [
        "",
        "The ssmlab runs stop at the first epoch whose valid NDCG@10 reaches the target; "
        "their test N@10 is that of the best valid epoch so far. CPU s = the process's CPU "
        f"time (all its threads; RecBole {rb.get('torch_threads') or '?'} torch thread(s), "
        f"ssmlab {r['torch_threads']}): unlike wall time it does not grow when other jobs "
        "share the cores.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("step", choices=["export", "run", "compare"])
    p.add_argument("--data", default="amazon-beauty")
    p.add_argument("--out", default="/tmp/recbole-peer", help="atomic files and results")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--dropout", type=float, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--n-heads", type=int, default=8, help="ssmlab's SASRec presets: 8")
    p.add_argument("--max-len", type=int, default=50)
    p.add_argument("--objectives", default="last,all", help="compare: ssmlab objectives")
    p.add_argument("--max-epochs", type=int, default=20, help="compare: cap on ssmlab epochs")
    p.add_argument("--results", default=str(Path(__file__).resolve().parent / "results"))
    p.add_argument(
        "--set",
        action="append",
        default=[],
        help="compare: ssmlab override on top of RecBole's settings, e.g. "
        "train.batch_size=128 (recorded in the report)",
    )
    args = p.parse_args(argv)
    out = Path(args.out).resolve()
    if args.step == "export":
        export(args.data, out)
    elif args.step == "compare":
        compare(
            args.data,
            out,
            Path(args.results),
            args.objectives.split(","),
            args.max_epochs,
            tuple(args.set),
        )
    else:
        run(args.data, out, args.epochs, args.dropout, args.device, args.n_heads, args.max_len)


if __name__ == "__main__":
    main()
