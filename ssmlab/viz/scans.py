"""Scan figures: state trajectories on irregular timelines, decay exp(ΔΛ), Δ per step (notebook 02).

S5 in SS4Rec discretizes interaction k with the gap to the *next* interaction,
Δ_k = t_{k+1} − t_k, and at the last position with the gap to the query time (the time we ask
"what next?") [SS4Rec], as ``ssmlab.models.ss4rec.query_gaps`` does: under zero-order hold the
input x_k is held over [t_k, t_{k+1}], and Ā_k = exp(Δ_k Λ) [TiM4Rec Eq. (2)]. S6 (Mamba)
computes Δ from the input instead. The data helpers call ``ssm.discretize`` and
``ssm.linear_scan``; the builders draw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import torch

from ssmlab import ssm
from ssmlab.viz._style import as_series, base_layout, color_of, finite_or_none, round_sig, to_numpy


def _vector(x, name: str, dtype=torch.float64) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(to_numpy(x, None, name=name)), dtype=dtype)
    if t.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D vector, got shape {tuple(t.shape)}")
    return t


# ---------------------------------------------------------------- data helpers
def s5_states(dt, Lambda, B, x, method: str = "zoh") -> np.ndarray:
    """States h_k = Ā_k h_{k-1} + B̄_k x_k of a diagonal SSM with a per-step Δ_k (S5 / SS4Rec).

    Implements [TiM4Rec Eq. (2)] with (Ā_k, B̄_k) = ``ssm.discretize(Λ, B, Δ_k, method)`` and the
    scan ``ssm.linear_scan``; one input channel, P states.

    Shapes:
        dt: (l,)  Lambda: (p,) complex or real  B: (p,)  x: (l,)  -> h: (l, p) complex
    """
    dt_t = _vector(dt, "dt")
    lam = _vector(Lambda, "Lambda", torch.complex128)
    B_t = _vector(B, "B", torch.complex128)
    x_t = _vector(x, "x", torch.complex128)
    if dt_t.shape != x_t.shape or lam.shape != B_t.shape:
        raise ValueError(
            f"dt, x: expected equal (l,) shapes, got {tuple(dt_t.shape)}, {tuple(x_t.shape)}; "
            f"Lambda, B: expected equal (p,), got {tuple(lam.shape)}, {tuple(B_t.shape)}"
        )
    A_bar, B_bar = ssm.discretize(lam[None, :], B_t[None, :], dt_t[:, None], method)  # (l p)
    h = ssm.linear_scan(A_bar[None], (B_bar * x_t[:, None])[None])  # (b l p), b = 1
    return h[0].numpy()


def decay_factors(dt, Lambda) -> np.ndarray:
    """|Ā| = |exp(Δ Λ)| for every Δ in ``dt`` and every eigenvalue (the weight history keeps).

    Shapes:
        dt: (k,)  Lambda: (p,)  -> (k, p)
    """
    lam = _vector(Lambda, "Lambda", torch.complex128)
    dt_t = _vector(dt, "dt")
    A_bar, _ = ssm.discretize(lam[None, :], torch.ones_like(lam)[None, :], dt_t[:, None], "zoh")
    return A_bar.abs().numpy()


def next_gaps(timestamps, query_time: float) -> np.ndarray:
    """SS4Rec's step input: the gap to the next interaction, t_{k+1} − t_k, and at the last
    position the gap to the query time, ``query_time`` − t_last (clamped at 0, as the model does).

    Implements SS4Rec's interval input [SS4Rec] (``ssmlab.models.ss4rec.query_gaps`` for one
    sequence without padding).

    Shapes:
        timestamps: (l,) sorted  -> (l,)
    """
    t = to_numpy(timestamps, None, name="timestamps")
    if t.ndim != 1 or len(t) == 0 or np.any(np.diff(t) < 0):
        raise ValueError(f"timestamps: expected a non-empty sorted 1-D vector, got {t.tolist()}")
    return np.maximum(np.diff(np.append(t, float(query_time))), 0.0)


def zoh_path(timestamps, query_time: float, Lambda, B, x, scale: float = 1.0, steps: int = 24):
    """The continuous-time state under zero-order hold, sampled inside every step.

    Input x_k is held over [t_k, t_{k+1}] (the last one up to ``query_time``), so inside step k
    the state moves from h_{k-1} along the exact solution with that input,
    h(t) = Ā(τ) h_{k-1} + B̄(τ) x_k with τ = scale·(t − t_k) and (Ā, B̄) = ZOH(Λ, B, τ)
    [TiM4Rec Eq. (2)]; with B = −Λ it relaxes from h_{k-1} towards x_k. The path is continuous
    (no jump at an interaction) and reaches h_k, the state the recurrence gives with
    Δ_k = scale·(t_{k+1} − t_k), at the end of step k. ``steps`` samples per step, spaced
    geometrically from the step's start and evenly (a fast relaxation right after an interaction
    and a slow one over months are both resolved).

    Shapes:
        timestamps: (l,)  Lambda: (p,)  B: (p,)  x: (l,)  -> t: (m,)  h: (m, p) complex
    """
    t_ev = to_numpy(timestamps, None, name="timestamps")
    gaps = next_gaps(t_ev, query_time)  # (l,)
    lam = _vector(Lambda, "Lambda", torch.complex128)
    B_t = _vector(B, "B", torch.complex128)
    x_t = _vector(x, "x", torch.complex128)
    if x_t.shape != (len(t_ev),) or lam.shape != B_t.shape:
        raise ValueError(
            f"x: expected shape ({len(t_ev)},) like timestamps, got {tuple(x_t.shape)}; "
            f"Lambda, B: expected equal (p,), got {tuple(lam.shape)}, {tuple(B_t.shape)}"
        )
    half = max(steps // 2, 2)
    u = np.unique(np.concatenate([[0.0], np.geomspace(1e-3, 1.0, half), np.linspace(0, 1, half)]))
    h_prev = torch.zeros_like(lam)
    ts, hs = [], []
    for k in range(len(t_ev)):
        tau = torch.as_tensor(scale * gaps[k] * u)  # (m,) time since t_k, in steps
        A_bar, B_bar = ssm.discretize(lam[None, :], B_t[None, :], tau[:, None], "zoh")  # (m p)
        ts.append(t_ev[k] + gaps[k] * u)
        hs.append((A_bar * h_prev + B_bar * x_t[k]).numpy())
        h_prev = torch.as_tensor(hs[-1][-1])
    return np.concatenate(ts), np.concatenate(hs)


def first_item_weight(delta, A) -> np.ndarray:
    """Weight of the first input x_0 in the S6 state h_t, for t = 0 .. l−1:
    Δ_0 · exp(A Σ_{k=1}^{t} Δ_k) (B = 1; Mamba's B̄_0 = Δ_0 B, then Ā_k = exp(Δ_k A)).

    Implements the decay of [TiM4Rec Eq. (3), (13)] for one input channel and diagonal A.

    Shapes:
        delta: (l,) positive   A: (n,) negative  -> (l, n)
    """
    d = _vector(delta, "delta")
    a = _vector(A, "A")
    if torch.any(d < 0):
        raise ValueError("delta: expected non-negative steps")
    cum = torch.cumsum(torch.cat([d.new_zeros(1), d[1:]]), 0)  # (l,) Σ_{k=1}^{t} Δ_k
    return (d[0] * torch.exp(cum[:, None] * a[None, :])).numpy()


# ---------------------------------------------------------------- builders
def timeline(
    timestamps,
    title: str = "An irregular timeline",
    unit: str = "days",
    gap: str = "previous",
    query_time: float | None = None,
) -> go.Figure:
    """Interactions as ticks on a time axis, labelled with their gap Δt to the previous one
    (``gap="previous"``, TiM4Rec's 𝒟) or to the next one (``gap="next"``, SS4Rec's step: the
    last one is the gap to ``query_time``, drawn as an open marker).

    Every tick carries its label on hover; labels are printed only where they do not overlap
    (a burst of interactions shares the label of its first one).

    Shapes:
        timestamps: (l,) sorted
    """
    t = to_numpy(timestamps, name="timestamps")
    if t.ndim != 1 or len(t) == 0:
        raise ValueError(f"timestamps: expected a non-empty 1-D vector, got shape {t.shape}")
    if gap not in ("previous", "next"):
        raise ValueError(f"gap: expected 'previous' or 'next', got {gap!r}")
    if gap == "next" and query_time is None:
        raise ValueError("gap='next' needs query_time (the gap of the last interaction)")
    gaps = np.diff(t, prepend=t[0]) if gap == "previous" else next_gaps(t, query_time)
    hover = [f"k={k}, t={tk:g}, Δt={g:.3g}" for k, (tk, g) in enumerate(zip(t, gaps))]
    text, last = [], None
    for k, (tk, g) in enumerate(zip(t, gaps)):
        room = last is None or tk - last > 0.06 * max(float(t[-1] - t[0]), 1e-12)
        text.append(f"k={k}<br>Δt={g:.3g}" if room else "")
        last = tk if room else last
    fig = go.Figure(
        go.Scatter(
            x=t,
            y=np.zeros_like(t),
            mode="markers+text",
            text=text,
            hovertext=hover,
            hoverinfo="text",
            textposition="top center",
            marker=dict(size=14, symbol="line-ns-open", line=dict(width=2)),
            name="interaction",
        )
    )
    if query_time is not None:
        fig.add_trace(
            go.Scatter(
                x=[float(query_time)],
                y=[0.0],
                mode="markers+text",
                text=["query"],
                textposition="top center",
                marker=dict(size=12, symbol="circle-open", line=dict(width=2)),
                name="query time",
            )
        )
    fig = base_layout(fig, title, f"time ({unit})", "", height=240, showlegend=False)
    fig.update_yaxes(visible=False, range=[-0.5, 1])
    return fig


def state_trajectory(
    t,
    h,
    names: Sequence[str] | None = None,
    events=None,
    title: str = "State trajectory",
    xaxis: str = "time",
) -> go.Figure:
    """One line per state component (real part) against time, with the interactions marked.

    Shapes:
        t: (m,)  h: (m,) or (m, p) real or complex  events: (l,) times of interactions, optional
    """
    t_np = to_numpy(t, name="t")
    h_np = np.real(np.asarray(to_numpy(h, name="h")))
    if h_np.ndim == 1:
        h_np = h_np[:, None]
    if h_np.ndim != 2 or h_np.shape[0] != len(t_np):
        raise ValueError(
            f"h: expected shape ({len(t_np)},) or ({len(t_np)}, p) like t, got {h_np.shape}"
        )
    names = list(names) if names is not None else [f"h[{i}]" for i in range(h_np.shape[1])]
    if len(names) != h_np.shape[1]:
        raise ValueError(f"names: expected {h_np.shape[1]} labels, got {len(names)}")
    fig = go.Figure()
    for i, name in enumerate(names):
        fig.add_trace(
            go.Scatter(
                x=t_np,
                y=finite_or_none(h_np[:, i]),
                mode="lines",
                name=name,
                line=dict(color=color_of(name, i)),
            )
        )
    if events is not None:
        ev = to_numpy(events, name="events")
        fig.add_trace(
            go.Scatter(
                x=ev,
                y=np.zeros_like(ev),
                mode="markers",
                name="interactions",
                marker=dict(symbol="triangle-up", size=9, color="#444"),
            )
        )
    return base_layout(fig, title, xaxis, "state Re h")


def decay_bars(
    A_bar, names: Sequence[str] | None = None, title: str = "How much history survives each step"
) -> go.Figure:
    """Grouped bars of |Ā_k| per interaction k and per state: 1 keeps everything, 0 forgets.

    Shapes:
        A_bar: (l, p) or (l,)
    """
    a = np.abs(np.asarray(to_numpy(A_bar, name="A_bar")))
    a = a[:, None] if a.ndim == 1 else a
    if a.ndim != 2:
        raise ValueError(f"A_bar: expected shape (l,) or (l, p), got {a.shape}")
    names = list(names) if names is not None else [f"state {i}" for i in range(a.shape[1])]
    fig = go.Figure(
        [
            go.Bar(
                x=np.arange(a.shape[0]),
                y=a[:, i],
                name=names[i],
                marker_color=color_of(names[i], i),
            )
            for i in range(a.shape[1])
        ]
    )
    fig = base_layout(fig, title, "interaction k", "|Ā_k| = |exp(Δ_k Λ)|", barmode="group")
    fig.update_yaxes(range=[0, 1.05])
    return fig


def decay_curves(
    dt,
    curves: Mapping,
    marker_dt: float | None = None,
    title: str = "exp(ΔΛ) against the step Δ",
    unit: str | None = None,
) -> go.Figure:
    """Weight |exp(Δλ)| kept from the previous state as Δ grows (log Δ axis), one curve per λ.

    Shapes:
        dt: (k,) positive   curves: label -> (k,)
    """
    d = round_sig(to_numpy(dt, None, name="dt"))
    if np.any(d <= 0):
        raise ValueError("dt: expected positive steps for a log axis")
    fig = go.Figure()
    for i, (label, c) in enumerate(as_series(curves, "curves").items()):
        if c.shape != d.shape:
            raise ValueError(f"curves[{label!r}]: expected shape {d.shape} like dt, got {c.shape}")
        fig.add_trace(
            go.Scatter(x=d, y=c, mode="lines", name=label, line=dict(color=color_of(label, i)))
        )
    if marker_dt is not None:  # a trace, not a shape: shapes on log axes take log10 positions
        m = float(round_sig(float(marker_dt)))
        fig.add_trace(
            go.Scatter(
                x=[m, m],
                y=[0, 1.05],
                mode="lines",
                name=f"Δ = {m:g}",
                line=dict(dash="dot", color="#555"),
            )
        )
    fig = base_layout(fig, title, f"step Δ ({unit})" if unit else "step Δ", "|exp(Δλ)|")
    fig.update_xaxes(type="log", exponentformat="power")
    fig.update_yaxes(range=[0, 1.05])
    return fig


def first_item_plot(
    weights: Mapping, title: str = "How much of the first item is left in the state"
) -> go.Figure:
    """Weight of the first input in the state h_t against the position t, one line per label
    (log y: a weight that survives stays near the top, a forgotten one drops by decades).

    Shapes:
        weights: label -> (l,) positive
    """
    if not isinstance(weights, Mapping) or not weights:
        raise ValueError("weights: expected a non-empty dict label -> (l,) values")
    fig = go.Figure()
    for i, (label, w) in enumerate(weights.items()):
        w = round_sig(to_numpy(w, None, name=f"weights[{label!r}]"))
        if w.ndim != 1:
            raise ValueError(f"weights[{label!r}]: expected 1-D values, got shape {w.shape}")
        fig.add_trace(
            go.Scatter(
                x=np.arange(len(w)),
                y=finite_or_none(np.where(w > 0, w, np.nan)),
                mode="lines+markers",
                name=label,
                marker=dict(size=4),
                line=dict(color=color_of(label, i)),
            )
        )
    fig = base_layout(fig, title, "position t (items after the first)", "weight of x₀ in h_t")
    fig.update_yaxes(type="log", exponentformat="power")
    return fig


def delta_comparison(
    series: Mapping,
    title: str = "Δ per step: from timestamps (S5) or from the input (S6)",
    log: bool = False,
) -> go.Figure:
    """Bars of Δ_k per position for each labelled source of Δ.

    Shapes:
        series: label -> (l,)
    """
    data = as_series(series, "series")
    fig = go.Figure(
        [
            go.Bar(x=np.arange(len(v)), y=v, name=label, marker_color=color_of(label, i))
            for i, (label, v) in enumerate(data.items())
        ]
    )
    fig = base_layout(fig, title, "position k", "Δ_k", barmode="group")
    if log:
        fig.update_yaxes(type="log")
    return fig
