"""Reproduction report: TiM4Rec Table 3 (ten models) plus SS4Rec, trained under the paper protocol.

Usage::

    python benchmarks/reproduce.py --data amazon-beauty [--models all|a,b] [--epochs N]
        [--time-budget-min M] [--eval-users N] [--device cuda] [--seeds 0] [--out benchmarks/results]

Each model trains with its packaged preset for the dataset (``ssmlab/configs/<model>-<data>.yaml``:
d = 64, 2 layers, batch 2048, Adam 1e-3, CE over all items, objective ``"last"`` = RecBole prefix
augmentation; BERT4Rec its own cloze objective), early stopping on valid NDCG@10 with the preset's
patience, then the best weights are tested (full ranking, leave-one-out). A model without a preset
for the dataset takes its ML-1M preset with the paper's dropout and max_len for that dataset
(TiM4Rec §4.1.4; see :func:`experiment_config`). ``--epochs`` and ``--time-budget-min`` cap a run
(smoke or CPU runs); a capped run is marked ``converged: false``. ``--eval-users N`` evaluates on a
fixed random sample of N users (cheaper, noisier; default: all users, the paper protocol).

Writes ``reproduction.json`` (merged with an existing file, so datasets can be run separately) and
``reproduction.md`` (per dataset: our metrics, the paper's, the relative gap) under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import time
from pathlib import Path

import numpy as np
import torch

from ssmlab.bench import machine_info
from ssmlab.config import load_config, preset_path
from ssmlab.data import Split, load_dataset
from ssmlab.train import Trainer
from ssmlab.train.efficiency import git_info

HERE = Path(__file__).resolve().parent

TABLE3_MODELS = (
    "caser",
    "gru4rec",
    "sasrec",
    "bert4rec",
    "tisasrec",
    "lrurec",
    "mamba4rec",
    "ssd4rec",
    "ssd4rec_star",
    "tim4rec",
)
ALL_MODELS = (*TABLE3_MODELS, "ss4rec")
# TiM4Rec §4.1.4: dropout 0.4 on Amazon, 0.2 on ML-1M / KuaiRand; max_len 200 ML-1M, 50 others.
PAPER_DATA_SETTINGS = {
    "ml-1m": {"dropout": 0.2, "max_len": 200},
    "amazon-beauty": {"dropout": 0.4, "max_len": 50},
    "kuairand": {"dropout": 0.2, "max_len": 50},
}
FALLBACK_PRESET_DATA = "ml-1m"  # every model has an ML-1M preset
FALLBACK_DATASETS = (*PAPER_DATA_SETTINGS, "ml-100k")  # MovieLens-100K: ML-1M settings as they are
METRIC_KEYS = [f"{kind}@{k}" for kind in ("hr", "ndcg", "mrr") for k in (10, 20, 50)]

# TiM4Rec [TiM4Rec Table 3], transcribed from /work/shared/papers/tim4rec-paper.md (arXiv
# 2409.16182 v3). Columns of the table: Caser, GRU4Rec, SASRec, BERT4Rec, TiSASRec, LRURec,
# Mamba4Rec, SSD4Rec*, TiM4Rec; rows R@10, R@20, R@50, N@10, N@20, N@50, M@10, M@20, M@50
# (R = Recall = our hr). "SSD4Rec*" is the authors' unidirectional, unpacked SSD4Rec = our
# ssd4rec_star; the table has no line for the original SSD4Rec (bidirectional, packed) nor SS4Rec.
_TABLE3_COLUMNS = (
    "caser",
    "gru4rec",
    "sasrec",
    "bert4rec",
    "tisasrec",
    "lrurec",
    "mamba4rec",
    "ssd4rec_star",
    "tim4rec",
)
_TABLE3_ROWS = {
    "ml-1m": {
        "hr@10": (0.2156, 0.2985, 0.3060, 0.2800, 0.3147, 0.3002, 0.3253, 0.3199, 0.3310),
        "hr@20": (0.3083, 0.3937, 0.4050, 0.3853, 0.4250, 0.4035, 0.4354, 0.4240, 0.4338),
        "hr@50": (0.4515, 0.5397, 0.5455, 0.5377, 0.5608, 0.5455, 0.5707, 0.5649, 0.5770),
        "ndcg@10": (0.1157, 0.1700, 0.1754, 0.1584, 0.1834, 0.1727, 0.1891, 0.1841, 0.1932),
        "ndcg@20": (0.1391, 0.1941, 0.2005, 0.1852, 0.2106, 0.1987, 0.2169, 0.2104, 0.2194),
        "ndcg@50": (0.1675, 0.2232, 0.2285, 0.2154, 0.2376, 0.2268, 0.2436, 0.2384, 0.2477),
        "mrr@10": (0.0853, 0.1307, 0.1357, 0.1214, 0.1424, 0.1337, 0.1474, 0.1425, 0.1512),
        "mrr@20": (0.0917, 0.1373, 0.1425, 0.1288, 0.1498, 0.1407, 0.1551, 0.1498, 0.1584),
        "mrr@50": (0.0963, 0.1420, 0.1471, 0.1337, 0.1542, 0.1452, 0.1593, 0.1542, 0.1629),
    },
    "amazon-beauty": {
        "hr@10": (0.0402, 0.0563, 0.0851, 0.0352, 0.0802, 0.0840, 0.0838, 0.0806, 0.0854),
        "hr@20": (0.0618, 0.0856, 0.1194, 0.0563, 0.1147, 0.1191, 0.1185, 0.1146, 0.1204),
        "hr@50": (0.1090, 0.1376, 0.1759, 0.0999, 0.1734, 0.1799, 0.1802, 0.1710, 0.1800),
        "ndcg@10": (0.0199, 0.0297, 0.0425, 0.0172, 0.0405, 0.0427, 0.0435, 0.0423, 0.0446),
        "ndcg@20": (0.0253, 0.0371, 0.0511, 0.0225, 0.0491, 0.0522, 0.0522, 0.0509, 0.0533),
        "ndcg@50": (0.0346, 0.0473, 0.0623, 0.0311, 0.0605, 0.0640, 0.0644, 0.0620, 0.0651),
        "mrr@10": (0.0138, 0.0217, 0.0294, 0.0117, 0.0282, 0.0300, 0.0311, 0.0306, 0.0321),
        "mrr@20": (0.0153, 0.0237, 0.0317, 0.0132, 0.0306, 0.0326, 0.0335, 0.0329, 0.0345),
        "mrr@50": (0.0167, 0.0253, 0.0335, 0.0145, 0.0325, 0.0345, 0.0354, 0.0347, 0.0363),
    },
    "kuairand": {
        "hr@10": (0.0801, 0.1020, 0.1055, 0.0938, 0.1057, 0.1036, 0.1094, 0.1055, 0.1109),
        "hr@20": (0.1344, 0.1659, 0.1704, 0.1537, 0.1710, 0.1663, 0.1768, 0.1717, 0.1774),
        "hr@50": (0.2561, 0.3017, 0.3074, 0.2873, 0.3060, 0.3078, 0.3154, 0.3088, 0.3202),
        "ndcg@10": (0.0395, 0.0564, 0.0584, 0.0510, 0.0590, 0.0570, 0.0608, 0.0588, 0.0611),
        "ndcg@20": (0.0531, 0.0724, 0.0747, 0.0660, 0.0753, 0.0727, 0.0777, 0.0754, 0.0779),
        "ndcg@50": (0.0770, 0.0911, 0.1016, 0.0923, 0.1019, 0.1005, 0.1050, 0.1024, 0.1060),
        "mrr@10": (0.0273, 0.0428, 0.0443, 0.0382, 0.0450, 0.0431, 0.0461, 0.0449, 0.0463),
        "mrr@20": (0.0310, 0.0471, 0.0487, 0.0422, 0.0494, 0.0473, 0.0508, 0.0494, 0.0508),
        "mrr@50": (0.0347, 0.0513, 0.0529, 0.0464, 0.0536, 0.0517, 0.0552, 0.0536, 0.0552),
    },
}
PAPER_TABLE3 = {
    data: {
        model: {metric: row[i] for metric, row in rows.items()}
        for i, model in enumerate(_TABLE3_COLUMNS)
    }
    for data, rows in _TABLE3_ROWS.items()
}


class BudgetReached(Exception):
    """Raised from a step callback when the training-time budget is spent."""


def experiment_config(model: str, data: str, overrides: list[str]):
    """The config of one run and where it came from (preset file, fallback, overrides).

    The paper datasets and ML-100K fall back to the model's ML-1M preset (with the paper's
    dropout and max_len for the dataset, none for ML-100K); other datasets (toy, csv:...) use
    ``load_config``'s defaults.
    """
    if preset_path(model, data).is_file():
        return load_config(model, data, overrides=overrides), preset_path(model, data).name
    if data not in FALLBACK_DATASETS:
        return load_config(model, data, overrides=overrides), "defaults (no preset)"
    base = preset_path(model, FALLBACK_PRESET_DATA)
    extra = [f"model.{k}={v}" for k, v in PAPER_DATA_SETTINGS.get(data, {}).items()]
    source = f"{base.name} (fallback)" + (f" + {', '.join(extra)}" if extra else "")
    return load_config(model, data, config_file=base, overrides=[*extra, *overrides]), source


def subsample_users(split: Split, n_users: int | None, seed: int) -> Split:
    """A Split over a fixed random sample of ``n_users`` users (all of them if None or more)."""
    if n_users is None or n_users >= len(split):
        return split
    if n_users < 1:
        raise ValueError(f"eval users must be >= 1, got {n_users}")
    idx = np.sort(np.random.default_rng(seed).choice(len(split), n_users, replace=False))
    starts, lengths = split.offsets[idx], split.lengths[idx]
    index = np.repeat(starts, lengths) + (
        np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    )
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return Split(offsets, split.items[index], split.times[index], split.n_items)


def run_one(model: str, dataset, args, seed: int) -> dict:
    """Train and test one model; returns the JSON record (test metrics at the top level)."""
    overrides = [f"train.seed={seed}", "train.progress=false"]
    if args.epochs is not None:
        overrides.append(f"train.epochs={args.epochs}")
    overrides += args.set
    config, source = experiment_config(model, args.data, overrides)
    trainer = Trainer(
        config, dataset=dataset, device=args.device, progress=False, verbose=not args.quiet
    )
    trainer.split = subsample_users(trainer.split, args.eval_users, seed)
    budget = None if args.time_budget_min is None else 60.0 * args.time_budget_min
    clock = {"train": 0.0, "mark": time.perf_counter()}

    def on_step(tr, **info):
        now = time.perf_counter()
        clock["train"] += now - clock["mark"]
        clock["mark"] = now
        if budget is not None and clock["train"] >= budget:
            raise BudgetReached

    def on_epoch(tr, **info):
        clock["mark"] = time.perf_counter()  # evaluation time is not training time

    trainer.add_callback("on_step_end", on_step)
    trainer.add_callback("on_epoch_end", on_epoch)
    start, capped = time.perf_counter(), None
    try:
        result = trainer.fit()
        if not trainer.stopped:
            capped = "epochs"
    except BudgetReached:  # the partial epoch is not validated; finish() tests the best weights
        capped = "time"
        result = trainer.finish()
    steps_per_epoch = len(trainer.train_batches)
    if config.train.steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, config.train.steps_per_epoch)
    record = {k: result["test"].get(k) for k in METRIC_KEYS}
    record.update(
        {
            "epochs": round(trainer.step / steps_per_epoch, 3),
            "steps": trainer.step,
            "steps_per_epoch": steps_per_epoch,
            "best_epoch": trainer.best["epoch"],
            "train_seconds": round(clock["train"], 1),
            "total_seconds": round(time.perf_counter() - start, 1),
            "seed": seed,
            "converged": bool(trainer.stopped),
            "capped": capped,
            "eval_users": len(trainer.split),
            "objective": config.train.objective,
            "batch_size": config.train.batch_size,
            "max_len": config.max_len,
            "config_source": source,
            "command": args.command,
            "valid": result["valid"],
        }
    )
    return record


def average_runs(runs: list[dict]) -> dict:
    """One record per model: metric means over seeds (the single run itself for one seed)."""
    if len(runs) == 1:
        return runs[0]
    out = dict(runs[0])
    for key in METRIC_KEYS + ["epochs", "train_seconds", "total_seconds"]:
        values = [r[key] for r in runs if r.get(key) is not None]
        out[key] = float(np.mean(values)) if values else None
    out.update(
        {
            "seed": [r["seed"] for r in runs],
            "converged": all(r["converged"] for r in runs),
            "runs": runs,
        }
    )
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="amazon-beauty", help="dataset registry name")
    p.add_argument("--models", default="all", help="'all' or comma-separated registry names")
    p.add_argument("--epochs", type=int, default=None, help="cap on epochs (default: the preset's)")
    p.add_argument(
        "--time-budget-min",
        type=float,
        default=None,
        help="cap on training minutes per model and seed (evaluation not counted)",
    )
    p.add_argument(
        "--eval-users",
        type=int,
        default=None,
        help="evaluate on a fixed random sample of N users (default: all)",
    )
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--set", action="append", default=[], help="extra override, e.g. train.lr=1e-3")
    p.add_argument("--data-dir", default=None, help="raw data folder (else SSMLAB_DATA_DIR)")
    p.add_argument("--out", default=str(HERE / "results"), help="results folder")
    p.add_argument("--note", default=None, help="free text stored with this dataset's results")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    p.add_argument(
        "--render-only",
        action="store_true",
        help="only rewrite reproduction.md from the existing reproduction.json",
    )
    args = p.parse_args(argv)
    args.models = (
        list(ALL_MODELS)
        if args.models == "all"
        else [m.strip().lower() for m in args.models.split(",") if m.strip()]
    )
    try:
        args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        p.error(f"--seeds must be comma-separated integers, got {args.seeds!r}")
    return args


def main(argv: list[str] | None = None) -> dict:
    """Run the models of ``--models`` on ``--data``; write and return the merged results."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "reproduction.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    if args.render_only:
        (out / "reproduction.md").write_text(markdown(results))
        return results
    dataset = load_dataset(args.data, data_dir=args.data_dir)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    section = results.setdefault(args.data, {})
    earlier = results.get("settings", {}).get(args.data, {}).get("command")
    for record in section.values():  # files from before records carried their command
        record.setdefault("command", earlier)
    machine = {**machine_info(device), **git_info(), "load_avg_start": list(os.getloadavg())}
    args.command = shlex.join(["python", "benchmarks/reproduce.py", *(argv or [])])
    settings = {
        "command": args.command,
        "epochs_cap": args.epochs,
        "time_budget_min": args.time_budget_min,
        "eval_users": args.eval_users,
        "device": device,
        "seeds": args.seeds,
        "overrides": args.set,
        "machine": machine,
        "note": args.note or results.get("settings", {}).get(args.data, {}).get("note"),
    }
    results.setdefault("settings", {})[args.data] = settings
    results["machine"] = settings["machine"]["device_name"]
    for model in args.models:
        runs = []
        for seed in args.seeds:
            print(f"== {args.data} {model} seed {seed}", flush=True)
            runs.append(run_one(model, dataset, args, seed))
            r = runs[-1]
            print(
                f"   test ndcg@10 {r['ndcg@10']:.4f} hr@10 {r['hr@10']:.4f} "
                f"({r['epochs']} epochs, {r['train_seconds']} s)",
                flush=True,
            )
        section[model] = average_runs(runs)
        results["notes"] = NOTES
        machine["load_avg_end"] = list(os.getloadavg())
        tmp = path.with_name(".reproduction.json.tmp")  # written after every model
        tmp.write_text(json.dumps(results, indent=1) + "\n")
        tmp.replace(path)
        (out / "reproduction.md").write_text(markdown(results))
    print(f"wrote {path} and reproduction.md")
    return results


NOTES = (
    "Metrics are test-set full-ranking hr@K (= Recall@K for one target), ndcg@K, mrr@K of the "
    "best-valid-NDCG@10 weights. 'converged' is true only when early stopping ended the run; "
    "'capped' says what cut it short ('epochs' or 'time'). Paper numbers: TiM4Rec Table 3 "
    "(PAPER_TABLE3 in benchmarks/reproduce.py)."
)

SHORT = {"hr": "R", "ndcg": "N", "mrr": "M"}


def _short(metric: str) -> str:
    kind, k = metric.split("@")
    return f"{SHORT[kind]}@{k}"


def _load(values) -> str:
    return "?" if not values else "/".join(f"{v:.1f}" for v in values)


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.4f}"


def _gap(ours, paper) -> str:
    return "–" if ours is None or not paper else f"{100 * (ours - paper) / paper:+.0f}%"


def markdown(results: dict) -> str:
    """The report: per dataset our table, the paper's with relative gaps, and a ranking."""
    datasets = [k for k in results if k not in ("machine", "notes", "settings")]
    lines = [
        "# Reproduction of TiM4Rec Table 3",
        "",
        (
            "Test-set full ranking (leave-one-out; R@K = HR@K = Recall@K for one target, N = "
            "NDCG, M = MRR) of the weights with the best valid NDCG@10. Paper numbers: "
            "[TiM4Rec Table 3] (ML-1M, Amazon-Beauty, KuaiRand; 64 d, 2 layers)."
        ),
        "",
    ]
    for data in datasets:
        models = results[data]
        s = results.get("settings", {}).get(data, {})
        m = s.get("machine", {})
        capped = [k for k, r in models.items() if not r.get("converged")]
        lines += [
            f"## {data}",
            "",
            (
                f"Command: `{s.get('command', '?')}` · device {m.get('device_name', '?')} · "
                f"{m.get('cores', '?')} cores · torch {m.get('torch', '?')} · "
                f"{m.get('date', '?')} · git {str(m.get('git_commit'))[:12]}"
                f"{' (uncommitted changes)' if m.get('git_dirty') else ''} · load average "
                f"{_load(m.get('load_avg_start'))} at start, {_load(m.get('load_avg_end'))} "
                "at end"
            ),
            "",
        ]
        if capped:
            which = ", ".join(
                f"{k} ({models[k].get('capped')} cap, {models[k].get('epochs')} epochs)"
                for k in capped
            )
            lines += [
                (
                    f"**Capped, not converged**: {which}. Their numbers are snapshots of "
                    "unfinished training, not a verdict on the implementation. Full runs: "
                    f"`python benchmarks/reproduce.py --data {data} --device cuda` (preset "
                    "epochs and early stopping, all users)."
                ),
                "",
            ]
        if s.get("note"):
            lines += [s["note"], ""]
        commands = {r["command"] for r in models.values() if r.get("command")} - {s.get("command")}
        if commands:  # models of this dataset written by earlier invocations
            lines += [
                "Other models of this table were written by:",
                "",
                *[
                    f"- `{c}`: " + ", ".join(n for n, r in models.items() if r.get("command") == c)
                    for c in sorted(commands)
                ],
                "",
            ]
        head = "| model | " + " | ".join(_short(k) for k in METRIC_KEYS)
        lines += [
            "### Ours",
            "",
            head + " | epochs | train s | stopped by |",
            "| --- |" + " ---: |" * (len(METRIC_KEYS) + 2) + " --- |",
        ]
        for name, r in models.items():
            stop = "early stop" if r.get("converged") else f"{r.get('capped')} cap"
            lines.append(
                f"| {name} | "
                + " | ".join(_fmt(r.get(k)) for k in METRIC_KEYS)
                + f" | {r.get('epochs')} | {r.get('train_seconds')} | {stop} |"
            )
        paper = PAPER_TABLE3.get(data)
        if paper:
            lines += [
                "",
                "### Paper (TiM4Rec Table 3) and relative gap (ours − paper) / paper",
                "",
                head + " |",
                "| --- |" + " ---: |" * len(METRIC_KEYS),
            ]
            for name in [n for n in _TABLE3_COLUMNS if n in models] + [
                n for n in models if n not in _TABLE3_COLUMNS
            ]:
                ref = paper.get(name)
                cells = (
                    [
                        "no paper number"
                        if ref is None
                        else f"{ref[k]:.4f} ({_gap(models[name].get(k), ref[k])})"
                        for k in METRIC_KEYS
                    ]
                    if ref
                    else ["–"] * len(METRIC_KEYS)
                )
                label = name + ("" if ref else " (not in Table 3)")
                lines.append(f"| {label} | " + " | ".join(cells) + " |")
        order = sorted(models, key=lambda n: -(models[n].get("ndcg@10") or 0))
        lines += ["", "Ranking by test N@10 (ours): " + " > ".join(order)]
        if paper:
            ref_order = sorted([n for n in order if n in paper], key=lambda n: -paper[n]["ndcg@10"])
            lines.append("Ranking by N@10 (paper, same models): " + " > ".join(ref_order))
        lines.append("")
    lines += [f"Notes: {results.get('notes', '')}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main(__import__("sys").argv[1:])
