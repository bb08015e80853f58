"""The result files of ``ssmlab bench``: JSON, markdown tables, and the paper's reference values.

One writer (:func:`write_report`: ``<stem>.json``, ``.md`` and, with a figure, ``.html``) and one
markdown builder per benchmark, each reading the results dict its benchmark writes as JSON. The
efficiency benchmark's reference values are [TiM4Rec Table 5] (ML-1M, 64 d, one RTX 3090).
"""

from __future__ import annotations

import json
import math
from pathlib import Path


def write_report(
    out: Path, stem: str, report: dict, markdown: str, indent: int = 1, figure=None
) -> None:
    """Write ``out/<stem>.json`` and ``.md``, and ``.html`` for a plotly ``figure`` (plotly.js
    from its CDN)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(report, indent=indent) + "\n")
    (out / f"{stem}.md").write_text(markdown)
    written = ".json and .md"
    if figure is not None:
        figure.write_html(out / f"{stem}.html", include_plotlyjs="cdn")
        written = ".json, .md and .html"
    print(f"wrote {out / stem}{written}")


def written_by(script: str, machine: dict) -> str:
    """A report's provenance line: the script, the machine and the date it ran."""
    m = machine
    return (
        f"Written by `{script}` on {m.get('cpu')} · {m.get('cores')} cores · "
        f"{m.get('torch_threads')} torch thread(s) · torch {m.get('torch')} · {m.get('date')}."
    )


def fmt_value(value, digits: int = 2, scale: float = 1.0) -> str:
    """``scale * value`` with ``digits`` decimals, or "–" for None / NaN (a table cell)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{scale * value:.{digits}f}"


def switched_steps_markdown(rows: list[dict], labels: dict[str, str]) -> list[str]:
    """Table lines of ``ssmlab.bench.train.preset_switched_steps`` rows (with ``model`` and
    ``speedup``): the reference setting then the fast one, ``labels`` = {setting: header}."""
    (ref, ref_label), (fast, fast_label) = labels.items()
    lines = [
        f"| model | objective | batch | steps (of epoch) | widths | {ref_label} CPU s | "
        f"{fast_label} CPU s | speed-up | last loss ({ref_label} / {fast_label}) |",
        "| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | --- |",
    ]
    for t in rows:
        lines.append(
            f"| {t['model']} | {t['objective']} | {t['batch_size']} | {t['steps']} "
            f"({t['epoch_batches']}) | {min(t['widths'])}–{max(t['widths'])} | "
            f"{fmt_value(t[f'{ref}_s'], 1)} | {fmt_value(t[f'{fast}_s'], 1)} | "
            f"**{fmt_value(t['speedup'])}x** | {fmt_value(t[f'{ref}_last_loss'], 5)} / "
            f"{fmt_value(t[f'{fast}_last_loss'], 5)} |"
        )
    return lines


# -- ssmlab bench kernels -------------------------------------------------------------------
def kernels_markdown(report: dict) -> str:
    """``ssmlab bench kernels``: time and memory tables per method and length, growth exponents,
    the targets."""
    m, s = report["machine"], report["settings"]
    lines = [
        f"# Kernel benchmark ({m['device']})",
        "",
        (
            f"{m['date']} · {m['platform']} · {m['cpu']} · {m['cores']} cores "
            f"(torch threads: {m['torch_threads']}) · torch {m['torch']} · "
            f"device: {m['device_name']} "
            f"· ssm backend: {m['ssm_backend']} · load average (1 min) "
            f"{fmt_value(m['load_average_1m'])} before, "
            f"{fmt_value(m['load_average_1m_after'])} after"
        ),
        "",
        (
            f"Sizes: {s['sizes']} (d_model = n_heads * d_head); float32; "
            f"median of {s['repeats']} runs after one warm-up (fewer for slow points, see "
            f"the JSON's *_times). fwd under no_grad; "
            f"fwd+bwd = y.sum().backward(). "
            f"Peak memory: {s['memory_method']}."
        ),
        "",
    ]
    methods = list(dict.fromkeys(r["method"] for r in report["results"]))
    lengths = sorted({r["seqlen"] for r in report["results"]})
    by = {(r["method"], r["seqlen"]): r for r in report["results"]}
    tables = (
        ("Forward time (ms)", "fwd_s", 1e3, 2),
        ("Forward + backward time (ms)", "fwdbwd_s", 1e3, 2),
        ("Peak memory, forward + backward (MB)", "peak_mb_fwdbwd", 1, 1),
    )
    for title, key, scale, digits in tables:
        head = "| L | " + " | ".join(methods) + " |"
        lines += [f"## {title}", "", head, "| ---: |" + " ---: |" * len(methods)]
        for l in lengths:
            cells = []
            for name in methods:
                r = by.get((name, l))
                cells.append(
                    "skipped" if r is None or r["skipped"] else fmt_value(r[key], digits, scale)
                )
            lines.append(f"| {l} | " + " | ".join(cells) + " |")
        lines.append("")
    skips = [r for r in report["results"] if r["skipped"]]
    if skips:
        lines += [
            "Skipped: "
            + "; ".join(f"{r['method']} at L={r['seqlen']} ({r['skipped']})" for r in skips),
            "",
        ]
    lines += [
        "## Growth exponents (forward time ~ L^k, log-log fit over L >= 512)",
        "",
        "| method | k |",
        "| --- | ---: |",
    ]
    lines += [f"| {k} | {fmt_value(v)} |" for k, v in report["summary"]["exponents"].items()]
    lines += ["", "## Targets", "", "| target | value | met |", "| --- | ---: | :---: |"]
    for t in report["summary"]["targets"]:
        met = {None: "report only", True: "yes", False: "NO"}[t["met"]]
        met = "n/a (not measured)" if t["value"] is None else met
        lines.append(f"| {t['target']} | {fmt_value(t['value'])} | {met} |")
    return "\n".join(lines) + "\n"


# -- ssmlab bench train ---------------------------------------------------------------------
# [TiM4Rec Table 5]: ML-1M, 64 d, one RTX 3090; training time (s, presumably per epoch) and
# inference time (s). The paper's ratios: TiSASRec / SASRec training 1149.57 / 207.42 = 5.5x,
# SASRec / TiM4Rec 207.42 / 83.57 = 2.5x, TiM4Rec / SSD4Rec* 83.57 / 74.43 = +12 %.
PAPER_TABLE5 = {
    "train_s": {
        "sasrec": 207.42,
        "tisasrec": 1149.57,
        "lrurec": 260.92,
        "mamba4rec": 111.76,
        "ssd4rec_star": 74.43,
        "tim4rec": 83.57,
    },
    "infer_s": {
        "sasrec": 0.81,
        "tisasrec": 1.89,
        "lrurec": 0.77,
        "mamba4rec": 0.26,
        "ssd4rec_star": 0.18,
        "tim4rec": 0.21,
    },
}
# (name, numerator, denominator, shown as "x" ratio or "%" overhead, target)
RATIOS = (
    ("TiSASRec / SASRec", "tisasrec", "sasrec", "x", None),
    ("SASRec / TiM4Rec", "sasrec", "tim4rec", "x", None),
    ("Mamba4Rec / TiM4Rec", "mamba4rec", "tim4rec", "x", None),
    ("TiM4Rec vs SSD4Rec* (overhead)", "tim4rec", "ssd4rec_star", "%", "<= +3 %"),
)
MEASURES = (
    ("train_epoch_s", "train_s", "training time per epoch (s, estimated)"),
    ("infer_s", "infer_s", "inference time (s)"),
)


def _cell(results: dict, model: str, seqlen: int, key: str) -> float | None:
    for row in results["rows"]:
        if row["model"] == model:
            for c in row["cells"]:
                if c["L"] == seqlen and c["status"] == "ok":
                    return c.get(key)
    return None


def ratios(results: dict) -> list[dict]:
    """The paper's comparisons per max_len, from this run, next to the paper's value."""
    out = []
    for name, num, den, kind, target in RATIOS:
        for key, paper_key, label in MEASURES:
            pn, pd = PAPER_TABLE5[paper_key][num], PAPER_TABLE5[paper_key][den]
            paper = pn / pd if kind == "x" else 100 * (pn / pd - 1)
            values = {}
            for seqlen in results["settings"]["lengths"]:
                a, b = _cell(results, num, seqlen, key), _cell(results, den, seqlen, key)
                values[str(seqlen)] = (
                    None if not a or not b else a / b if kind == "x" else 100 * (a / b - 1)
                )
            out.append(
                {
                    "name": name,
                    "measure": label,
                    "kind": kind,
                    "values": values,
                    "paper_ml1m": paper,
                    "target": target if key == "train_epoch_s" else None,
                }
            )
    return out


def efficiency_markdown(results: dict) -> str:
    """Tables of time and memory per model and max_len, then the ratios against the paper."""
    m, s = results["machine"], results["settings"]
    lengths = s["lengths"]
    commit = (m.get("git_commit") or "unknown")[:12] + (
        " (uncommitted changes)" if m.get("git_dirty") else ""
    )
    load = "/".join(f"{x:.2f}" for x in m.get("load_avg_start", []))
    load_end = "/".join(f"{x:.2f}" for x in m.get("load_avg_end", []))
    lines = [
        f"# Training and inference efficiency ({s['device']})",
        "",
        (
            f"{m['date']} · {m['platform']} · {m['cpu']} · {m['cores']} cores · torch "
            f"{m['torch']} ({m['torch_threads']} threads) · device {m['device_name']} · "
            f"git {commit} · load average at start {load}, at end {load_end}"
        ),
        "",
        (
            f"Synthetic full-length sequences, {s['n_items']:,} items (Amazon-Beauty), each "
            "model's Beauty preset (d = 64, 2 layers) with max_len = L. Training time per "
            f"epoch = median of {s['steps']} optimizer step(s) at batch {s['batch_size']} "
            f"(after a warm-up step) x ceil({s['rows_per_epoch']:,} / {s['batch_size']}) "
            "steps (Beauty's prefix rows). Inference = full-ranking scores for "
            f"{s['eval_users']} users in batches of {s['eval_batch_size']}. Memory: "
            f"{s['memory']} during one training step (parameters and Adam state excluded)."
        ),
        "",
    ]
    if not s["device"].startswith("cuda"):
        lines += [
            (
                f"CPU run: batch {s['batch_size']} instead of the paper's 2048, so the "
                "epoch estimate carries the CPU's per-step overhead at that batch (small "
                "ops weigh more than at 2048); absolute times belong to this machine and "
                "its load (above), so compare the ratios between models. The paper's "
                "figures are ML-1M (L = 200) on an RTX 3090."
            ),
            "",
        ]
    head = "| model | " + " | ".join(f"L={n}" for n in lengths) + " |"
    rule = "| --- |" + " ---: |" * len(lengths)
    for key, title, scale, fmt in (
        ("train_epoch_s", "Training time per epoch (s, estimated)", 1.0, "{:.1f}"),
        ("train_step_s", f"Training step at batch {s['batch_size']} (ms)", 1e3, "{:.0f}"),
        ("infer_s", f"Inference, {s['eval_users']} users (s)", 1.0, "{:.3f}"),
        ("peak_mem_bytes", "Peak memory of a training step (MiB)", 2**-20, "{:.0f}"),
    ):
        lines += [f"## {title}", "", head, rule]
        for row in results["rows"]:
            by_len = {c["L"]: c for c in row["cells"]}
            vals = []
            for n in lengths:
                c = by_len.get(n, {"status": "skipped"})
                vals.append(
                    c["status"]
                    if c["status"] != "ok"
                    else "n/a"
                    if c.get(key) is None
                    else fmt.format(c[key] * scale)
                )
            lines.append(f"| {row['model']} | " + " | ".join(vals) + " |")
        lines.append("")
    notes = [
        f"- {row['model']} L={c['L']}: {c['status']}, {c['reason']}"
        for row in results["rows"]
        for c in row["cells"]
        if c["status"] != "ok"
    ]
    if notes:
        lines += ["Cells not measured:", "", *notes, ""]
    lines += [
        "## Ratios (this run) and the paper's (TiM4Rec Table 5, ML-1M, L = 200)",
        "",
        "| ratio | measure | " + " | ".join(f"L={n}" for n in lengths) + " | paper | target |",
        "| --- | --- |" + " ---: |" * (len(lengths) + 1) + " --- |",
    ]
    for r in results["ratios"]:
        fmt = (lambda v: f"{v:.2f}x") if r["kind"] == "x" else (lambda v: f"{v:+.1f}%")
        vals = ["–" if r["values"][str(n)] is None else fmt(r["values"][str(n)]) for n in lengths]
        lines.append(
            f"| {r['name']} | {r['measure']} | "
            + " | ".join(vals)
            + f" | {fmt(r['paper_ml1m'])} | {r['target'] or ''} |"
        )
    return "\n".join(lines) + "\n"


# -- ssmlab bench train --data -------------------------------------------------------------
def epoch_markdown(report: dict) -> str:
    """``ssmlab bench train --data``: each model's epoch against the scoring floor."""
    m, f, s = report["machine"], report["floor"], report["settings"]
    lines = [
        f"# One training epoch on {report['data']} against the scoring floor",
        "",
        (
            f"Written by `ssmlab bench train --data {report['data']}` "
            f"(`ssmlab/bench/train.py`) on {m.get('cpu')} · {m.get('cores')} cores · "
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
        name = r["model"] + (f" ({r['variant']})" if r.get("variant") else "")
        if r["status"] != "ok":
            lines.append(f"| {name} | {r['protocol']} | {r['status']} | | | | | |")
            continue
        lines.append(
            f"| {name} | {r['protocol']} | {r['objective']} | {r['batches']} | "
            f"{fmt_value(r['epoch_s'], 1)} | {fmt_value(r['floor_ratio'], 2)} | "
            f"{fmt_value(r['padding_ratio'], 3)} | {fmt_value(r['eval_s'], 1)} |"
        )
    return "\n".join(lines) + "\n"


# The committed result files of a source checkout (absent from an installed wheel).
RESULTS_DIR = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def read_reproduction(folder: Path | str, section: str) -> dict[str, dict]:
    """The rows of one section of ``<folder>/reproduction.json`` (``benchmarks/reproduce.py``):
    model (or labelled row) -> its record (test metrics, ``converged``, ``epochs``, ``runs`` per
    seed, ``log``). Raises with the sections there are when ``section`` is missing."""
    path = Path(folder) / "reproduction.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: the reproduction results live in benchmarks/results of a source "
            "checkout (git clone), written by benchmarks/reproduce.py"
        )
    results = json.loads(path.read_text())
    if section not in results:
        meta = ("settings", "machine")
        have = sorted(k for k, v in results.items() if isinstance(v, dict) and k not in meta)
        raise KeyError(f"{path}: no section {section!r}; have {have}")
    return results[section]


def read_histories(folder: Path | str, rows: dict[str, dict], seed: int = 0) -> dict[str, list]:
    """The per-epoch records (``Trainer.history``: epoch, train_loss, valid metrics, seconds) of
    each row's run with ``seed``, read from the JSON-lines log the row names (relative to
    ``folder``). Rows without a log for that seed are left out."""
    histories = {}
    for name, row in rows.items():
        log = row.get("runs", {}).get(str(seed), {}).get("log")
        if log and (Path(folder) / log).is_file():
            lines = (Path(folder) / log).read_text().splitlines()
            histories[name] = [json.loads(line) for line in lines if line.strip()]
    return histories


TABLE3_CSV = Path(__file__).with_name("tim4rec_table3.csv")


def paper_table3(data: str | None = None) -> dict:
    """[TiM4Rec Table 3] from ``tim4rec_table3.csv``: data -> model -> metric -> value (metrics
    hr/ndcg/mrr @ 10/20/50; models caser ... tim4rec, ssd4rec_star = SSD4Rec*); with ``data``
    only that dataset's models. Raises with the datasets there are for an unknown one."""
    lines = [ln for ln in TABLE3_CSV.read_text().splitlines() if ln and not ln.startswith("#")]
    header, *rows = (ln.split(",") for ln in lines)
    table: dict[str, dict[str, dict[str, float]]] = {}
    for name, metric, *values in rows:
        for model, value in zip(header[2:], values):
            table.setdefault(name, {}).setdefault(model, {})[metric] = float(value)
    if data is None:
        return table
    if data not in table:
        raise KeyError(f"TiM4Rec Table 3 has no {data!r}; it has {sorted(table)}")
    return table[data]


__all__ = [
    "PAPER_TABLE5",
    "RATIOS",
    "RESULTS_DIR",
    "efficiency_markdown",
    "epoch_markdown",
    "fmt_value",
    "kernels_markdown",
    "paper_table3",
    "ratios",
    "read_histories",
    "read_reproduction",
    "write_report",
    "written_by",
]
