"""Full-ranking evaluation on the CPU: the fast path of ``ssmlab.metrics`` against its general
path (``FAST_PATH = False``, the reference), and evaluation batches of ``eval_batch_rows``.

    python benchmarks/ranking.py [--data amazon-beauty] [--threads 1] [--repeats 3] [--quick]

Two measurements, process CPU seconds on one intra-op thread:

1. ``RankingAccumulator.update`` alone (the finiteness check, ranks, metric sums) on random
   scores of the shape an evaluation batch has: 4,096 rows against the item counts of
   Amazon-Beauty, ML-1M and ML-100K;
2. one validation pass over every user of ``--data`` (``ssmlab.train.evaluate``: the model's
   scores and their ranking), freshly initialised models at their presets, three ways
   (:data:`PASSES`): the general ranking path at the preset's eval batch size, the fast path at
   that size, the fast path at ``ssmlab.train.eval_batch_rows`` (at most ``CPU_EVAL_ROWS``).
   Both ranking paths must give the same metrics; the report says whether they did.

Writes ``benchmarks/results/ranking-cpu.json`` and ``.md`` with machine info.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch

from ssmlab import metrics
from ssmlab.bench.probe import machine_info, median_seconds
from ssmlab.bench.report import fmt_value, write_report, written_by
from ssmlab.bench.train import fast_path_parser, switched
from ssmlab.config import load_config
from ssmlab.models import build_model
from ssmlab.train import eval_batch_rows, evaluate

OUT = Path(__file__).resolve().parent / "results"
SWITCH = (metrics, "FAST_PATH")
SETTINGS = {"general": False, "fast": True}
PASSES = {  # label: (FAST_PATH, batches of eval_batch_rows rather than the preset's size)
    "before": (False, False),
    "fast_ranking": (True, False),
    "fast_ranking_cpu_batches": (True, True),
}
ROWS = 4096  # the presets' eval_batch_size on Beauty
ITEMS = {"amazon-beauty": 12_101, "ml-1m": 3_416, "ml-100k": 1_349}  # 5-core item counts
MODELS = ("sasrec", "gru4rec", "tim4rec", "ssd4rec")  # d = 64, 64, 64, 256 on Beauty


def update_rows(shapes: dict[str, tuple[int, int]], repeats: int) -> list[dict]:
    """One accumulator update per shape ({label: (rows, items)}), both paths."""
    out = []
    for label, (rows, n_items) in shapes.items():
        gen = torch.Generator().manual_seed(0)
        scores = torch.randn(rows, n_items + 1, generator=gen)
        scores[:, 0] = float("-inf")  # as the models' scores() sets the padding column
        target = torch.randint(1, n_items + 1, (rows,), generator=gen)
        row = {"data": label, "rows": rows, "items": n_items}
        for name, value in SETTINGS.items():
            with switched(SWITCH, value):
                call = partial(metrics.RankingAccumulator().update, scores, target)
                row[f"{name}_s"] = median_seconds(call, repeats, clock="process")
        row["speedup"] = row["general_s"] / row["fast_s"]
        out.append(row)
        print(f"{label}: {row['general_s']:.3f} s -> {row['fast_s']:.3f} s", flush=True)
    return out


def pass_rows(data: str, models, repeats: int) -> list[dict]:
    """One validation pass per model and setting of :data:`PASSES`, the same untrained weights."""
    out = []
    for name in models:
        config = load_config(name, data, overrides=["data.tie_order=item"])
        dataset = config.data.load()
        torch.manual_seed(0)
        model = build_model(
            name, dataset.n_items, config=config.model, dataset_users=dataset.n_users
        )
        preset_rows = config.train.eval_batch_size
        row = {"model": name, "users": len(dataset.split()), "d_model": config.model.d_model}
        row |= {"eval_batch_size": preset_rows, "cpu_rows": eval_batch_rows(preset_rows, "cpu")}
        found = {}
        for label, (fast, capped) in PASSES.items():
            rows = row["cpu_rows"] if capped else preset_rows
            batches = dataset.split().eval_batches("valid", rows, config.max_len, bucket=True)
            call = partial(_evaluate_into, found, label, model, batches)
            with switched(SWITCH, fast):
                row[f"{label}_s"] = median_seconds(call, repeats, warmup=0, clock="process")
        before, *_, now = PASSES
        row["speedup"] = row[f"{before}_s"] / row[f"{now}_s"]
        row["same_metrics"] = found["before"] == found["fast_ranking"]
        row["ndcg@10"] = {label: found[label]["ndcg@10"] for label in PASSES}
        out.append(row)
        print(name, {k: round(v, 1) for k, v in row.items() if k.endswith("_s")}, flush=True)
    return out


def _evaluate_into(found: dict, label: str, model, batches) -> None:
    found[label] = evaluate(model, batches, torch.device("cpu"))


def markdown(report: dict) -> str:
    m, s = report["machine"], report["settings"]
    lines = [
        "# Full-ranking evaluation on the CPU: fast path against the general path",
        "",
        written_by("benchmarks/ranking.py", m),
        "",
        f"Median process CPU seconds of {s['repeats']} calls (after one untimed call) of "
        "`RankingAccumulator.update` on random scores, padding column -inf:",
        "",
        "| items of | rows x items | general s | fast s | speed-up |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for r in report["update"]:
        lines.append(
            f"| {r['data']} | {r['rows']} x {r['items']} | {fmt_value(r['general_s'], 3)} | "
            f"{fmt_value(r['fast_s'], 3)} | **{fmt_value(r['speedup'])}x** |"
        )
    lines += [
        "",
        f"One validation pass over every user of {report['data']} (`ssmlab.train.evaluate`: the "
        "model's scores and their ranking; untrained weights at the presets), three ways: "
        "before (general ranking path, the preset's eval batch size), with the fast ranking "
        "path, and with batches of at most `CPU_EVAL_ROWS` rows (`eval_batch_rows`, what "
        "training and `ssmlab eval` use on a CPU now). Same metrics: the first two ranked "
        "alike.",
        "",
        "| model | d | users | preset batch | CPU batch | before s | fast ranking s | "
        "and CPU batch s | speed-up | same metrics |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in report["passes"]:
        times = " | ".join(fmt_value(r[f"{label}_s"], 1) for label in PASSES)
        lines.append(
            f"| {r['model']} | {r['d_model']} | {r['users']:,} | {r['eval_batch_size']} | "
            f"{r['cpu_rows']} | {times} | **{fmt_value(r['speedup'])}x** | "
            f"{'yes' if r['same_metrics'] else 'NO'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = fast_path_parser(__doc__, OUT).parse_args(argv)
    torch.set_num_threads(args.threads)
    shapes = {"toy": (40, 30)} if args.quick else {k: (ROWS, n) for k, n in ITEMS.items()}
    data, models = ("toy", ("sasrec", "gru4rec")) if args.quick else (args.data, MODELS)
    pass_repeats = 1
    report = {
        "benchmark": "ranking",
        "data": data,
        "machine": machine_info("cpu"),
        "settings": {
            "repeats": args.repeats,
            "pass_repeats": pass_repeats,
            "threads": args.threads,
        },
        "update": update_rows(shapes, args.repeats),
        "passes": pass_rows(data, models, pass_repeats),
    }
    write_report(Path(args.out), "ranking-cpu", report, markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
