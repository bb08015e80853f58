"""Training figures: curves per epoch, metric tables and bars, the "w/o time" ablation, and the
top-k items a model predicts (notebook 05).

Inputs are plain data: the trainer's per-epoch records (``Trainer.history``: dicts with
``epoch``, ``train_loss`` and ``valid`` = {"hr@10": ..., "ndcg@10": ...}), result dicts
``{"hr@10": ..., ...}`` per model, and score vectors. Ceilings are the best HR/NDCG/MRR a scorer
can reach (``ssmlab.data.toy_ceiling``), drawn as dashed horizontal lines. Cost against sequence
length is drawn by :func:`ssmlab.viz.timing.cost_vs_length`. ``viz`` imports no model, trainer
or dataset: callers pass numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ssmlab.viz._style import TEMPLATE, base_layout, color_of, round_decimal, thin, to_numpy

CEILING_DASH = {0: "dash", 1: "dot", 2: "dashdot"}


def _check_histories(histories: Mapping) -> None:
    if not isinstance(histories, Mapping) or not histories:
        raise ValueError("histories: expected a non-empty dict model -> list of epoch records")
    for name, records in histories.items():
        if not records or not all(isinstance(r, Mapping) and "epoch" in r for r in records):
            raise ValueError(
                f"histories[{name!r}]: expected a non-empty list of dicts with "
                f"'epoch', 'train_loss' and 'valid' (Trainer.history)"
            )


def curve(records: Sequence[Mapping], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, values) of one quantity from epoch records; ``key`` is ``"train_loss"`` or a
    valid metric such as ``"ndcg@10"``. Epochs without validation are skipped.

    Shapes: records (e,) -> epochs (k,), values (k,), k <= e
    """
    epochs, values = [], []
    for r in records:
        value = r.get(key) if key == "train_loss" else (r.get("valid") or {}).get(key)
        if value is not None:
            epochs.append(r["epoch"])
            values.append(value)
    return np.asarray(epochs, dtype=np.int64), to_numpy(values, name=key)


def _ceiling_lines(fig: go.Figure, ceilings: Mapping[str, float] | None, xs, **where) -> None:
    """Dashed horizontal lines drawn as scatter traces (so they get a legend entry)."""
    for i, (label, value) in enumerate((ceilings or {}).items()):
        fig.add_trace(
            go.Scatter(
                x=[xs[0], xs[-1]],
                y=[round(float(value), 4)] * 2,
                mode="lines",
                name=label,
                line=dict(color="#555", width=1, dash=CEILING_DASH.get(i, "dash")),
            ),
            **where,
        )


def training_curves(
    histories: Mapping[str, Sequence[Mapping]],
    metric: str = "ndcg@10",
    ceilings: Mapping[str, float] | None = None,
    title: str = "Training curves",
) -> go.Figure:
    """Two panels: training loss per epoch, and the valid ``metric`` per epoch, one colour per
    model; ``ceilings`` (label -> value) become dashed lines on the metric panel.

    Traces: 2 per model (loss, metric), then one per ceiling.

    Shapes: histories: model -> (e,) epoch records (``Trainer.history``)
    """
    _check_histories(histories)
    fig = make_subplots(
        rows=1,
        cols=2,
        horizontal_spacing=0.1,
        subplot_titles=("training loss (CE over all items)", f"valid {metric}"),
    )
    last = 1
    for i, (name, records) in enumerate(histories.items()):
        color = color_of(name, i)
        for col, key in ((1, "train_loss"), (2, metric)):
            ep, val = curve(records, key)
            fig.add_trace(
                go.Scatter(
                    x=ep,
                    y=val,
                    mode="lines+markers",
                    name=name,
                    legendgroup=name,
                    showlegend=col == 1,
                    line=dict(color=color),
                ),
                row=1,
                col=col,
            )
            last = max(last, int(ep.max()) if len(ep) else 1)
    _ceiling_lines(fig, ceilings, [1, last], row=1, col=2)
    fig = base_layout(fig, title, "epoch", "loss", height=400)
    fig.update_xaxes(title_text="epoch", row=1, col=2)
    fig.update_yaxes(title_text=metric, row=1, col=2)
    return fig


def metric_table(
    results: Mapping[str, Mapping[str, float]],
    metrics: Sequence[str] = ("hr@10", "ndcg@10", "mrr@10"),
    ceilings: Mapping[str, Mapping[str, float]] | None = None,
    decimals: int = 4,
) -> pd.DataFrame:
    """One row per model (and per ceiling, labelled), one column per metric, rounded.

    Shapes: results: model -> {metric: float}; ceilings: label -> {metric: float}
    """
    if not isinstance(results, Mapping) or not results:
        raise ValueError("results: expected a non-empty dict model -> {metric: value}")
    rows = {**results, **(ceilings or {})}
    for name, row in rows.items():
        missing = [m for m in metrics if m not in row]
        if missing:
            raise ValueError(f"results[{name!r}]: missing metrics {missing}; has {sorted(row)}")
    table = pd.DataFrame(
        {m: [float(rows[n][m]) for n in rows] for m in metrics},
        index=pd.Index(list(rows), name="model"),
    )
    return table.round(decimals)


def metric_bars(
    results: Mapping[str, Mapping[str, float]],
    metric: str = "hr@10",
    ceilings: Mapping[str, float] | None = None,
    groups: Mapping[str, str] | None = None,
    title: str | None = None,
) -> go.Figure:
    """Test ``metric`` per model as bars (one trace per group, e.g. "time-aware" /
    "time-blind"), with ``ceilings`` as dashed lines.

    Traces: one bar trace per group (one in all without ``groups``), then one per ceiling.

    Shapes: results: model -> {metric: float}; groups: model -> group label
    """
    if not isinstance(results, Mapping) or not results:
        raise ValueError("results: expected a non-empty dict model -> {metric: value}")
    groups = groups or dict.fromkeys(results, "test")
    unknown = sorted(set(results) - set(groups))
    if unknown:
        raise ValueError(f"groups: no group for models {unknown}")
    fig = go.Figure()
    labels = list(dict.fromkeys(groups[n] for n in results))
    for i, label in enumerate(labels):
        names = [n for n in results if groups[n] == label]
        values = [round(float(results[n][metric]), 4) for n in names]
        fig.add_trace(
            go.Bar(
                x=names,
                y=values,
                name=label,
                text=[f"{v:.3f}" for v in values],
                textposition="outside",
                marker_color=color_of(label, i),
            )
        )
    names = list(results)
    _ceiling_lines(fig, ceilings, [names[0], names[-1]])
    fig = base_layout(fig, title or f"Test {metric}", "model", metric)
    fig.update_yaxes(range=[0, 1.1])
    return fig


def ablation_bars(
    results: Mapping[str, Mapping[str, float]],
    pairs: Sequence[tuple[str, str]],
    metric: str = "hr@10",
    ceilings: Mapping[str, float] | None = None,
    title: str = "Ablation: the same model with and without time",
) -> go.Figure:
    """Grouped bars: for each (with time, without time) pair of models, ``metric`` of both.

    Traces: "with time", "w/o time", then one per ceiling. x: "TiM4Rec vs SSD4Rec*"-style labels.

    Shapes: results: model -> {metric: float}; pairs: (k,) of (model, model)
    """
    if not pairs:
        raise ValueError("pairs: expected at least one (with_time, without_time) pair")
    missing = sorted({m for p in pairs for m in p} - set(results))
    if missing:
        raise ValueError(f"pairs name models without results: {missing}; have {sorted(results)}")
    x = [f"{a} vs {b}" for a, b in pairs]
    fig = go.Figure()
    for j, label in enumerate(("with time", "w/o time")):
        values = [round(float(results[p[j]][metric]), 4) for p in pairs]
        fig.add_trace(
            go.Bar(
                x=x,
                y=values,
                name=label,
                text=[f"{v:.3f}" for v in values],
                textposition="outside",
                marker_color="#2ca02c" if j == 0 else "#7f7f7f",
            )
        )
    _ceiling_lines(fig, ceilings, [x[0], x[-1]])
    fig = base_layout(fig, title, "pair (with time vs without)", f"test {metric}", barmode="group")
    fig.update_yaxes(range=[0, 1.1])
    return fig


def compare_bars(
    series: Mapping[str, Mapping[str, float]],
    metric: str = "ndcg@10",
    relative_to: str | None = None,
    title: str | None = None,
) -> go.Figure:
    """Grouped bars of one metric: one bar group per model, one bar per series (e.g. "ours" and
    "paper", or tie order "item" and "file"). With ``relative_to`` the other series' bars are
    labelled with their relative gap to that series ("-3.3%"), else with their value.

    Traces: one bar trace per series, in the order given; x: the models of the first series.

    Shapes: series: label -> {model: value}
    """
    if not isinstance(series, Mapping) or not series:
        raise ValueError("series: expected a non-empty dict label -> {model: value}")
    if relative_to is not None and relative_to not in series:
        raise ValueError(f"relative_to={relative_to!r} is not a series; have {list(series)}")
    models = list(next(iter(series.values())))
    ref = series.get(relative_to or "", {})
    fig = go.Figure()
    for i, (label, values) in enumerate(series.items()):
        ys = [round(float(values[m]), 4) if m in values else None for m in models]
        if relative_to is None or label == relative_to:
            text = ["" if y is None else f"{y:.4f}" for y in ys]
        else:
            text = [
                "" if y is None or m not in ref else f"{100 * (y / float(ref[m]) - 1):+.1f}%"
                for m, y in zip(models, ys)
            ]
        fig.add_trace(
            go.Bar(
                x=models,
                y=ys,
                name=label,
                text=text,
                textposition="outside",
                marker_color=color_of(label, i),
            )
        )
    return base_layout(fig, title or f"Test {metric}", "model", metric, barmode="group")


def softmax(scores) -> np.ndarray:
    """Probabilities over items from scores; column 0 (padding, -inf) gets 0.

    Shapes: scores (..., n_items + 1) -> same
    """
    s = np.asarray(to_numpy(scores, None, name="scores"), dtype=np.float64)
    s = s - np.max(s, axis=-1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(axis=-1, keepdims=True)


def top_items(scores, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Ids and probabilities (softmax of ``scores``) of the ``k`` most likely items, best first;
    ties go to the smaller id.

    Shapes: scores (n_items + 1,) with column 0 = padding -> ids (k,), probs (k,)
    """
    p = softmax(scores)
    if p.ndim != 1 or not 1 <= k < p.shape[0]:
        raise ValueError(f"scores: expected (n_items + 1,) with k={k} < length, got {p.shape}")
    p[0] = -1.0  # padding is never recommended
    ids = np.argsort(-p, kind="stable")[:k]
    return ids, p[ids]


def topk_bars(
    scores,
    k: int = 10,
    highlight: Sequence[int] = (),
    title: str = "Top items",
    ymax: float | None = None,
) -> go.Figure:
    """Bar chart of the ``k`` most likely next items (softmax of ``scores``), best first; items in
    ``highlight`` (e.g. the toy rule's true candidates) are green, the others grey.

    Traces: 1 bar trace (so a widget can update it in place).

    Shapes: scores (n_items + 1,) with column 0 = padding
    """
    ids, probs = top_items(scores, k)
    good = {int(i) for i in highlight}
    colors = ["#2ca02c" if int(i) in good else "#9e9e9e" for i in ids]
    fig = go.Figure(
        go.Bar(
            x=[f"item {i}" for i in ids],
            y=round_decimal(probs),
            marker_color=colors,
            name="P(next item)",
        )
    )
    fig = base_layout(fig, title, f"top {k} items (green: a true candidate)", "P(next item)")
    fig.update_layout(template=TEMPLATE)
    if ymax is not None:
        fig.update_yaxes(range=[0, ymax])
    return fig


def probability_vs_gap(
    gaps_seconds,
    scores,
    items: Sequence[int],
    marker: float | None = None,
    title: str = "P(item) against the query gap",
) -> go.Figure:
    """One line per item in ``items``: its probability (softmax over all items) as the query
    gap grows (log x axis), with a vertical line at ``marker`` seconds.

    Traces: one per item, then the marker (if given).

    Shapes: gaps_seconds (g,) increasing; scores (g, n_items + 1)
    """
    gaps = to_numpy(gaps_seconds, None, name="gaps_seconds")
    p = softmax(scores)
    if p.ndim != 2 or p.shape[0] != gaps.shape[0]:
        raise ValueError(
            f"scores: expected (g, n_items + 1) with g = {gaps.shape[0]}, got {p.shape}"
        )
    fig = go.Figure()
    for i, item in enumerate(items):
        fig.add_trace(
            go.Scatter(
                x=gaps,
                y=round_decimal(p[:, int(item)]),
                mode="lines",
                name=f"item {int(item)}",
                line=dict(color=color_of("", i)),
            )
        )
    if marker is not None:
        fig.add_trace(
            go.Scatter(
                x=[marker, marker],
                y=[0, round(float(p.max()), 4)],
                mode="lines",
                name="query gap",
                line=dict(color="#222", dash="dot", width=1),
            )
        )
    fig = base_layout(fig, title, "query gap t − t_last (seconds)", "P(item)")
    fig.update_xaxes(type="log")
    return fig


def steps_vs_gap(
    gaps_seconds,
    steps: Mapping[str, object],
    max_points: int = 300,
    title: str = "Learned step against the gap",
) -> go.Figure:
    """One scatter trace per label (e.g. per layer or per model): the step Δ each position fed
    to its SSM (``ssmlab.layers.ssd.record_steps``, mean over heads) against the gap before that
    position, log x. A model that uses time spreads its steps along the gaps; a time-blind one
    gives the same cloud at every gap.

    Traces: one per label, each thinned to ``max_points`` points.

    Shapes: gaps_seconds (k,) > 0; steps: label -> (k,)
    """
    gaps = to_numpy(gaps_seconds, None, name="gaps_seconds").ravel()
    if not steps:
        raise ValueError("steps: expected a non-empty dict label -> (k,) steps")
    if (gaps <= 0).any():
        raise ValueError("gaps_seconds: expected positive gaps (drop padding and first positions)")
    order = np.argsort(gaps, kind="stable")
    fig = go.Figure()
    for i, (label, values) in enumerate(steps.items()):
        ys = to_numpy(values, None, name=f"steps[{label!r}]").ravel()
        if ys.shape != gaps.shape:
            raise ValueError(f"steps[{label!r}]: expected {gaps.shape[0]} values, got {ys.shape}")
        x, y = thin(gaps[order], ys[order], max_points=max_points)
        fig.add_trace(
            go.Scatter(
                x=round_decimal(x),
                y=round_decimal(y),
                mode="markers",
                name=label,
                marker=dict(color=color_of(label, i), size=5, opacity=0.6),
            )
        )
    fig = base_layout(fig, title, "gap before the position (seconds)", "step Δ (mean over heads)")
    fig.update_xaxes(type="log")
    return fig


GAP_TICKS = {
    60: "1 min",
    3600: "1 h",
    86400: "1 day",
    604800: "1 week",
    2592000: "30 days",
    31536000: "1 year",
}


def gap_label(seconds: float) -> str:
    """A readable duration: '45 s', '12 min', '3.5 h', '2.1 days', '3.2 months'."""
    s = float(seconds)
    for unit, size in (("months", 2592000), ("days", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"{s / size:.3g} {unit}"
    return f"{s:.3g} s"


__all__ = [
    "GAP_TICKS",
    "ablation_bars",
    "compare_bars",
    "curve",
    "gap_label",
    "metric_bars",
    "metric_table",
    "probability_vs_gap",
    "softmax",
    "steps_vs_gap",
    "top_items",
    "topk_bars",
    "training_curves",
]
