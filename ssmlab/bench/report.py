"""Report of the efficiency benchmark (:mod:`ssmlab.train.efficiency`): ratios, markdown, plotly.

The paper's reference values are [TiM4Rec Table 5] (ML-1M, 64 d, one RTX 3090). Everything here
reads the results dict that ``ssmlab bench train`` writes as JSON.
"""

from __future__ import annotations

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


def markdown(results: dict) -> str:
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


def html_report(results: dict):
    """Plotly figure: training time, inference time and memory against max_len (log-log)."""
    from plotly.subplots import make_subplots

    panels = (
        ("train_epoch_s", "training s / epoch (est.)", 1.0),
        ("infer_s", f"inference s ({results['settings']['eval_users']} users)", 1.0),
        ("peak_mem_bytes", "peak memory of a step (MiB)", 2**-20),
    )
    fig = make_subplots(rows=1, cols=3, subplot_titles=[p[1] for p in panels])
    for i, row in enumerate(results["rows"]):
        ok = [c for c in row["cells"] if c["status"] == "ok"]
        for col, (key, _, scale) in enumerate(panels, start=1):
            pts = [(c["L"], c[key] * scale) for c in ok if c.get(key) is not None]
            fig.add_scatter(
                x=[p[0] for p in pts],
                y=[p[1] for p in pts],
                mode="lines+markers",
                name=row["model"],
                legendgroup=row["model"],
                showlegend=col == 1,
                line={"color": COLORS[i % len(COLORS)]},
                row=1,
                col=col,
            )
    fig.update_xaxes(type="log", title_text="max_len L")
    fig.update_yaxes(type="log")
    s = results["settings"]
    fig.update_layout(
        title=f"Efficiency vs max_len ({s['device']}, batch {s['batch_size']})",
        height=450,
        width=1300,
        template="plotly_white",
    )
    return fig


COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


__all__ = ["PAPER_TABLE5", "RATIOS", "html_report", "markdown", "ratios"]
