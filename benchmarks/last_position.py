"""Reading one position on the CPU: each model's last layer at the read position alone
(``encode(batch, at)``) against encoding every position and reading one (``LAST_ONLY = False``
in ``ssmlab.models.base``, the reference).

    python benchmarks/last_position.py [--data amazon-beauty] [--steps 12] [--threads 1] [--quick]

Two measurements, process CPU seconds on one intra-op thread:

1. training steps with the prefix rows (objective "last": one target per row, read at its last
   real position) at each model's preset batch size; the same length-bucketed batches, spread
   over the epoch's widths, initial weights and dropout seed. BERT4Rec trains with its cloze
   objective, which reads many positions, so it has no row here;
2. one validation pass over every user of ``--data`` (``ssmlab.train.evaluate``, batches of
   ``eval_batch_rows``), freshly initialised models at their presets, both ways. The report says
   how far the two passes' NDCG@10 differ (float rounding only).

Writes ``benchmarks/results/last-position-cpu.json`` and ``.md`` with machine info.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch

from ssmlab.bench.probe import machine_info, median_seconds
from ssmlab.bench.report import fmt_value, switched_steps_markdown, write_report, written_by
from ssmlab.bench.train import fast_path_parser, preset_switched_steps, switched
from ssmlab.config import load_config
from ssmlab.models import base, build_model, model_names
from ssmlab.train import eval_batch_rows, evaluate

OUT = Path(__file__).resolve().parent / "results"
SWITCH = (base, "LAST_ONLY")
SETTINGS = {"every_position": False, "last_only": True}
LABELS = {"every_position": "every position", "last_only": "last only"}
NO_LAST_ONLY = ("caser",)  # its representation is one step: nothing to skip
TRAIN_SKIP = ("bert4rec",)  # cloze training reads many positions


def models() -> list[str]:
    """Every registered model with a last-position path."""
    return [name for name in model_names() if name not in NO_LAST_ONLY]


def pass_rows(data: str, names, repeats: int) -> list[dict]:
    """One validation pass per model, both settings, the same untrained weights."""
    out = []
    for name in names:
        config = load_config(name, data, overrides=["data.tie_order=item"])
        dataset = config.data.load()
        torch.manual_seed(0)
        model = build_model(
            name, dataset.n_items, config=config.model, dataset_users=dataset.n_users
        )
        rows = eval_batch_rows(config.train.eval_batch_size, "cpu")
        batches = dataset.split().eval_batches("valid", rows, config.max_len, bucket=True)
        row, found = {"model": name, "users": len(dataset.split()), "rows": rows}, {}
        for label, value in SETTINGS.items():
            call = partial(_evaluate_into, found, label, model, batches)
            with switched(SWITCH, value):
                row[f"{label}_s"] = median_seconds(call, repeats, warmup=0, clock="process")
        row["speedup"] = row["every_position_s"] / row["last_only_s"]
        ndcg = [found[label]["ndcg@10"] for label in SETTINGS]
        row["ndcg@10"], row["ndcg_abs_diff"] = ndcg, abs(ndcg[0] - ndcg[1])
        out.append(row)
        print(name, {k: round(v, 2) for k, v in row.items() if k.endswith("_s")}, flush=True)
    return out


def _evaluate_into(found: dict, label: str, model, batches) -> None:
    found[label] = evaluate(model, batches, torch.device("cpu"))


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        "# Reading one position on the CPU: the last layer at the read position alone",
        "",
        written_by("benchmarks/last_position.py", m),
        "",
        f"Training steps on {report['data']} with the prefix rows (objective last: each row's "
        "last real position is read) at each preset's batch size; the same batches, spread "
        "over the epoch's widths, initial weights and dropout seed. Every position: the model "
        "encodes every position and the last is read (`LAST_ONLY = False`, the reference); "
        "last only: the last layer's position-wise parts run at the read position alone "
        "(SSD4Rec's since commit ec154a8; the other models' since this benchmark).",
        "",
    ]
    lines += switched_steps_markdown(report["train"], LABELS)
    lines += [
        "",
        f"One validation pass over every user of {report['data']} (`ssmlab.train.evaluate`, "
        "batches of `eval_batch_rows`; untrained weights at the presets), process CPU seconds:",
        "",
        "| model | users | batch | every position s | last only s | speed-up | NDCG@10 diff |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report["passes"]:
        lines.append(
            f"| {r['model']} | {r['users']:,} | {r['rows']} | "
            f"{fmt_value(r['every_position_s'], 1)} | {fmt_value(r['last_only_s'], 1)} | "
            f"**{fmt_value(r['speedup'])}x** | {r['ndcg_abs_diff']:.1e} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = fast_path_parser(__doc__, OUT).parse_args(argv)
    torch.set_num_threads(args.threads)
    names = ["sasrec", "tim4rec"] if args.quick else models()
    data, steps = ("toy", 2) if args.quick else (args.data, args.steps)
    last = ["train.objective=last", "data.tie_order=item"]
    report = {
        "benchmark": "last-position",
        "data": data,
        "machine": machine_info("cpu"),
        "settings": {"steps": steps, "threads": args.threads, "pass_repeats": 1},
        "train": [
            {"model": name} | preset_switched_steps(name, data, last, steps, SWITCH, SETTINGS)
            for name in names
            if name not in TRAIN_SKIP
        ],
        "passes": pass_rows(data, names, 1),
    }
    write_report(Path(args.out), "last-position-cpu", report, markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
