"""Cost against sequence length: log-log figures of measured times (notebooks 03, 05, benchmarks).

SSD's quadratic form costs O(l²) per head, its chunked form O(l) (blocks of a fixed size), and the
step-by-step recurrence O(l) sequential steps [TiM4Rec Sec. 2.4]. ``cost_vs_length`` draws the
times :func:`ssmlab.bench.measure_lengths` measures, with dashed O(l) and O(l²) guides anchored at
the first point of the first curve; ``efficiency_vs_length`` draws ``ssmlab bench train``'s
results. Nothing here measures.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go

from ssmlab.viz._style import PALETTE, base_layout, color_of, round_sig, to_numpy


def cost_vs_length(
    lengths, seconds: Mapping, title: str = "Cost against sequence length", guides: bool = True
) -> go.Figure:
    """Log-log time per call (ms) against length l, one curve per method, with O(l), O(l²) guides.

    Shapes:
        lengths: (k,)   seconds: method -> (k,)
    """
    ls = to_numpy(lengths, None, name="lengths")
    if ls.ndim != 1 or np.any(ls <= 0):
        raise ValueError(f"lengths: expected positive 1-D lengths, got {ls.tolist()}")
    if not isinstance(seconds, Mapping) or not seconds:
        raise ValueError("seconds: expected a non-empty dict method -> (k,) times")
    fig = go.Figure()
    first = None
    for i, (name, s) in enumerate(seconds.items()):
        ms = to_numpy(s, None, name=f"seconds[{name!r}]") * 1e3
        if ms.shape != ls.shape:
            raise ValueError(
                f"seconds[{name!r}]: expected shape {ls.shape} like lengths, got {ms.shape}"
            )
        first = ms if first is None else first
        fig.add_trace(
            go.Scatter(
                x=ls,
                y=round_sig(ms),
                mode="lines+markers",
                name=str(name),
                line=dict(color=color_of(str(name), i)),
            )
        )
    if guides and len(ls) > 1:
        for power, label in ((1, "O(l)"), (2, "O(l²)")):
            guide = first[0] * (ls / ls[0]) ** power
            fig.add_trace(
                go.Scatter(
                    x=ls,
                    y=round_sig(guide),
                    mode="lines",
                    name=label,
                    line=dict(dash="dash", color="#999" if power == 1 else "#555", width=1),
                )
            )
    fig = base_layout(fig, title, "sequence length l", "time per call (ms)")
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    return fig


def efficiency_vs_length(results: Mapping) -> go.Figure:
    """Training time, inference time and peak memory against max_len (log-log), one curve per
    model: the figure of ``ssmlab bench train`` (``results`` is the dict it writes as JSON:
    ``rows`` of ``{"model", "cells": [{"L", "status", "train_epoch_s", "infer_s",
    "peak_mem_bytes"}, ...]}`` and ``settings``)."""
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
                line={"color": PALETTE[i % len(PALETTE)]},
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
