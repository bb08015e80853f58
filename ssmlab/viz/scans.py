"""Scan figures: state trajectories on irregular timelines, decay exp(ΔΛ), Δ per step (notebook 02).

S5 in SS4Rec discretizes with the real gap Δ_k = t_k − t_{k-1} [TiM4Rec Eq. (9)], so a state decays
by Ā_k = exp(Δ_k Λ) between two interactions [TiM4Rec Eq. (2)]; S6 (Mamba) computes Δ from the
input instead. The data helpers call ``ssm.discretize`` and ``ssm.linear_scan``; the builders draw.
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


def continuous_path(t_events, h_events, Lambda, scale: float = 1.0, max_points: int = 200):
    """The state between interactions: h(t) = exp(scale·(t − t_k) Λ) h_k (free decay), on a grid.

    The returned curve has a jump at every interaction (the input enters there) and is drawn with
    about ``max_points`` samples in all: the same number per non-empty gap, half spaced
    geometrically from the gap's start and half evenly, so a fast decay right after an interaction
    and a slow one over months are both resolved. Each piece ends with the decayed value at the
    next interaction, so the jump is drawn vertical. The last piece extends 5% of the time span
    past the last interaction.

    Shapes:
        t_events: (l,)  h_events: (l, p)  Lambda: (p,)  -> t: (m,)  h: (m, p) complex
    """
    t_ev = to_numpy(t_events, None, name="t_events")
    h_ev = np.asarray(h_events, dtype=np.complex128)
    lam = np.asarray(to_numpy(Lambda, None, name="Lambda"), dtype=np.complex128)
    if h_ev.ndim != 2 or h_ev.shape != (len(t_ev), len(lam)):
        raise ValueError(f"h_events: expected shape {(len(t_ev), len(lam))}, got {h_ev.shape}")
    span = max(float(t_ev[-1] - t_ev[0]), 1e-12)
    ends = np.append(t_ev[1:], t_ev[-1] + 0.05 * span)  # (l,) end of each free-decay piece
    gaps = ends - t_ev
    per_gap = max(2, (max_points - len(t_ev)) // max(int(np.sum(gaps > 0)), 1))
    ts, hs = [], []
    for k in range(len(t_ev)):
        if gaps[k] > 0:  # geometric and even steps from 0 up to the value just before the jump
            half = max(per_gap // 2, 2)
            u = np.unique(
                np.concatenate([[0.0], np.geomspace(1e-3, 1.0, half), np.linspace(0, 1, half)])
            )
            grid = t_ev[k] + gaps[k] * u
        else:
            grid = t_ev[k : k + 1]
        ts.append(grid)
        hs.append(np.exp(scale * (grid - t_ev[k])[:, None] * lam[None, :]) * h_ev[k][None, :])
    return np.concatenate(ts), np.concatenate(hs)


# ---------------------------------------------------------------- builders
def timeline(timestamps, title: str = "An irregular timeline", unit: str = "days") -> go.Figure:
    """Interactions as ticks on a time axis, labelled with their gap Δt to the previous one.

    Every tick carries its label on hover; labels are printed only where they do not overlap
    (a burst of interactions shares the label of its first one).

    Shapes:
        timestamps: (l,) sorted
    """
    t = to_numpy(timestamps, name="timestamps")
    if t.ndim != 1 or len(t) == 0:
        raise ValueError(f"timestamps: expected a non-empty 1-D vector, got shape {t.shape}")
    gaps = np.diff(t, prepend=t[0])
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
    dt, curves: Mapping, marker_dt: float | None = None, title: str = "exp(ΔΛ) against the step Δ"
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
    fig = base_layout(fig, title, "step Δ", "|exp(Δλ)|")
    fig.update_xaxes(type="log", exponentformat="power")
    fig.update_yaxes(range=[0, 1.05])
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
