"""Discretization figures: step responses, stability of Ā, error against Δt (notebook 01).

The continuous SSM h'(t) = A h(t) + B x(t) [TiM4Rec Eq. (1)] becomes h_k = Ā h_{k-1} + B̄ x_k
[TiM4Rec Eq. (2)] once a method picks (Ā, B̄) from (A, B, Δ); ``ssm.discretize`` holds the methods
(zoh, bilinear, euler, mamba [TiM4Rec Eq. (13)]). The data helpers here call it for a scalar
(one eigenvalue) system and return numpy arrays; the builders turn arrays into figures.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ssmlab import ssm
from ssmlab.ssm.discretize import METHODS
from ssmlab.viz._style import (
    as_series,
    base_layout,
    color_of,
    finite_or_none,
    round_sig,
    thin,
    to_numpy,
)


def _eigenvalue(A) -> complex:
    value = complex(A)
    if not math.isfinite(value.real) or not math.isfinite(value.imag):
        raise ValueError(f"A: expected a finite eigenvalue, got {A!r}")
    return value


# ---------------------------------------------------------------- data helpers (numpy out)
def exact_step_response(A: complex, B: float, t) -> np.ndarray:
    """Exact state of h' = A h + B x for a unit step x = 1 and h(0) = 0: h(t) = B (e^{At} − 1) / A.

    Implements the closed form of [TiM4Rec Eq. (1)] for one (possibly complex) eigenvalue;
    A = 0 gives the limit h(t) = B t.

    Shapes:
        t: (k,) times          -> h: (k,) complex
    """
    a = _eigenvalue(A)
    t = np.asarray(t, dtype=np.float64)
    if a == 0:
        return (B * t).astype(np.complex128)
    return B * np.expm1(a * t) / a


def discrete_step_response(A: complex, B: float, dt: float, t_end: float, method: str):
    """Unit-step response of the discretized system h_k = Ā h_{k-1} + B̄ x_k, h_0 = 0.

    Implements [TiM4Rec Eq. (2)] with (Ā, B̄) from ``ssm.discretize(A, B, dt, method)`` and the
    state sequence from ``ssm.linear_scan``.

    Shapes:
        returns t: (k+1,) = 0, Δ, 2Δ, ...   h: (k+1,) complex (h[0] = 0)
    """
    if not dt > 0:
        raise ValueError(f"dt: expected a positive step, got {dt!r}")
    n_steps = max(1, math.ceil(t_end / dt - 1e-9))
    a = torch.tensor([_eigenvalue(A)], dtype=torch.complex128)
    A_bar, B_bar = ssm.discretize(
        a,
        torch.ones(1, dtype=torch.complex128) * B,
        torch.tensor(float(dt), dtype=torch.float64),
        method,
    )
    A_bar = A_bar.reshape(1, 1, 1).expand(1, n_steps, 1)  # (b l n)
    B_bar = B_bar.reshape(1, 1, 1).expand(1, n_steps, 1)  # (b l n), times x_k = 1
    h = ssm.linear_scan(A_bar, B_bar)[0, :, 0]  # (l,)
    h = np.concatenate([[0.0], h.numpy()]).astype(np.complex128)
    return np.arange(n_steps + 1) * dt, h


def amplification(z, method: str) -> np.ndarray:
    """|Ā| for Δ·λ = z: the factor one step multiplies the free state by (stable iff < 1).

    Shapes:
        z: (...) complex or real values of Δ·λ   -> (...) real
    """
    z_t = torch.as_tensor(np.asarray(z, dtype=np.complex128).ravel())
    A_bar, _ = ssm.discretize(
        z_t, torch.ones_like(z_t), torch.tensor(1.0, dtype=torch.float64), method
    )
    return np.abs(A_bar.numpy()).reshape(np.shape(z))


def step_errors(
    A: complex, B: float, dts: Sequence[float], t_end: float, methods: Sequence[str] = METHODS
) -> dict[str, np.ndarray]:
    """Max |h_k − h(kΔ)| over [0, t_end] of each method's step response, for every Δ in ``dts``."""
    out = {}
    for method in methods:
        errs = []
        for dt in dts:
            t, h = discrete_step_response(A, B, float(dt), t_end, method)
            errs.append(float(np.max(np.abs(h - exact_step_response(A, B, t)))))
        out[method] = np.asarray(errs)
    return out


# ---------------------------------------------------------------- builders (go.Figure out)
def step_response(
    t_exact,
    h_exact,
    discrete: Mapping[str, tuple],
    title: str = "Step response",
    unit: str | None = None,
) -> go.Figure:
    """Exact continuous response (line) against each method's discrete states (markers);
    ``unit`` names the time unit on the x axis.

    Shapes:
        t_exact, h_exact: (k,)  real or complex (the real part is drawn)
        discrete: method -> (t (m,), h (m,))
    """
    t_e, h_e = (
        to_numpy(t_exact, name="t_exact"),
        to_numpy(np.real(to_numpy(h_exact, None)), name="h_exact"),
    )
    if t_e.shape != h_e.shape or t_e.ndim != 1:
        raise ValueError(
            f"t_exact, h_exact: expected equal 1-D shapes, got {t_e.shape} and {h_e.shape}"
        )
    fig = go.Figure()
    t_e, h_e = thin(t_e, h_e)
    fig.add_trace(
        go.Scatter(x=t_e, y=h_e, mode="lines", name="exact", line=dict(color="#222", width=2))
    )
    for i, (method, (t, h)) in enumerate(discrete.items()):
        t_d = to_numpy(t, name=f"discrete[{method!r}] t")
        h_d = to_numpy(np.real(to_numpy(h, None)), name=f"discrete[{method!r}] h")
        t_d, h_d = thin(t_d, h_d)
        fig.add_trace(
            go.Scatter(
                x=t_d,
                y=finite_or_none(h_d),
                mode="lines+markers",
                name=method,
                marker=dict(size=5),
                line=dict(width=1, color=color_of(method, i)),
            )
        )
    return base_layout(fig, title, f"time t ({unit})" if unit else "time t", "state Re h(t)")


def stability_curve(
    z,
    gains: Mapping,
    marker: float | None = None,
    title: str = "One-step gain |Ā| on the negative real axis",
) -> go.Figure:
    """|Ā(z)| against z = Δ·λ (λ < 0): below the dashed line 1 the state decays, above it blows up.

    Shapes:
        z: (k,) real   gains: method -> (k,)
    """
    z_np = to_numpy(z, name="z")
    series = as_series(gains, "gains")
    fig = go.Figure()
    for i, (method, g) in enumerate(series.items()):
        if g.shape != z_np.shape:
            raise ValueError(
                f"gains[{method!r}]: expected shape {z_np.shape} like z, got {g.shape}"
            )
        x, y = thin(z_np, g)
        fig.add_trace(
            go.Scatter(
                x=x,
                y=finite_or_none(y),
                mode="lines",
                name=method,
                line=dict(color=color_of(method, i)),
            )
        )
    shapes = [
        dict(
            type="line", xref="paper", x0=0, x1=1, y0=1, y1=1, line=dict(dash="dash", color="#888")
        )
    ]
    if marker is not None:  # the current Δ·λ (widgets move it)
        x = round(float(marker), 4)
        shapes.append(
            dict(
                type="line",
                yref="paper",
                x0=x,
                x1=x,
                y0=0,
                y1=1,
                line=dict(dash="dot", color="#555"),
            )
        )
    fig = base_layout(fig, title, "Δ·λ", "|Ā|", shapes=shapes)
    fig.update_yaxes(range=[0, 2.5])
    return fig


def stability_regions(
    re, im, gains: Mapping, title: str = "Where |Ā| < 1 (blue: stable)"
) -> go.Figure:
    """One panel per method: |Ā| over the complex plane of z = Δ·λ, coloured around the level 1.

    Shapes:
        re: (nx,)  im: (ny,)  gains: method -> (ny, nx)
    """
    re_np, im_np = to_numpy(re, name="re"), to_numpy(im, name="im")
    if not isinstance(gains, Mapping) or not gains:
        raise ValueError("gains: expected a non-empty dict method -> (ny, nx) array")
    fig = make_subplots(rows=1, cols=len(gains), subplot_titles=list(gains), shared_yaxes=True)
    for i, (method, g) in enumerate(gains.items()):
        g = np.clip(to_numpy(g, 3, name=f"gains[{method!r}]"), 0.0, 2.0)
        if g.shape != (len(im_np), len(re_np)):
            raise ValueError(
                f"gains[{method!r}]: expected shape {(len(im_np), len(re_np))}, got {g.shape}"
            )
        fig.add_trace(
            go.Contour(
                x=re_np,
                y=im_np,
                z=g.astype(np.float32),
                zmin=0,
                zmax=2,
                colorscale="RdBu_r",
                contours=dict(start=0.25, end=1.75, size=0.25),
                showscale=(i == len(gains) - 1),
                name=method,
                colorbar=dict(title="|Ā|"),
            ),
            row=1,
            col=i + 1,
        )
    fig = base_layout(fig, title, "Re(Δ·λ)", "", height=320)
    fig.update_yaxes(title_text="Im(Δ·λ)", row=1, col=1)
    return fig


def error_vs_dt(
    dts, errors: Mapping, title: str = "Step-response error against Δt", floor: float = 1e-13
) -> go.Figure:
    """Log-log max error of each method against the step size; slope = order of accuracy.

    Errors below ``floor`` (roundoff, e.g. ZOH on a step input) are drawn at ``floor``.

    Shapes:
        dts: (k,)   errors: method -> (k,)
    """
    d = round_sig(to_numpy(dts, None, name="dts"))
    fig = go.Figure()
    for i, (method, e) in enumerate(errors.items()):
        e = np.maximum(to_numpy(e, None, name=f"errors[{method!r}]"), floor)
        if e.shape != d.shape:
            raise ValueError(
                f"errors[{method!r}]: expected shape {d.shape} like dts, got {e.shape}"
            )
        fig.add_trace(
            go.Scatter(
                x=d,
                y=round_sig(e),
                mode="lines+markers",
                name=method,
                line=dict(color=color_of(method, i)),
            )
        )
    fig = base_layout(fig, title, "Δt", "max |h_k − h(kΔt)|")
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log", exponentformat="power")
    return fig


def steady_state(A: complex, dts, method: str) -> np.ndarray:
    """The fixed point B̄/(1 − Ā) a constant unit input drives one state to, for every Δ (B = 1).

    ZOH gives −1/λ whatever Δ (the true steady state); Mamba's B̄ = ΔB gives
    Δ/(1 − e^{Δλ}), which grows like Δ: an input held over a long step counts Δ times.

    Shapes:
        dts: (k,) positive  -> (k,) real
    """
    d = torch.as_tensor(np.asarray(to_numpy(dts, None, name="dts"), dtype=np.float64))
    if d.ndim != 1 or torch.any(d <= 0):
        raise ValueError(f"dts: expected positive 1-D steps, got shape {tuple(d.shape)}")
    a = torch.tensor([_eigenvalue(A)], dtype=torch.complex128)
    A_bar, B_bar = ssm.discretize(a, torch.ones_like(a), d[:, None], method)  # (k 1)
    return (B_bar / (1 - A_bar)).real[:, 0].numpy()


def steady_state_curves(
    dts, curves: Mapping, title: str = "Where a constant input drives the state", unit: str = ""
) -> go.Figure:
    """Log-log fixed point B̄/(1 − Ā) against the step Δ, one line per method.

    Shapes:
        dts: (k,)   curves: method -> (k,)
    """
    d = round_sig(to_numpy(dts, None, name="dts"))
    fig = go.Figure()
    for i, (method, v) in enumerate(curves.items()):
        v = to_numpy(v, None, name=f"curves[{method!r}]")
        if v.shape != d.shape:
            raise ValueError(
                f"curves[{method!r}]: expected shape {d.shape} like dts, got {v.shape}"
            )
        fig.add_trace(
            go.Scatter(
                x=d, y=round_sig(v), mode="lines", name=method, line=dict(color=color_of(method, i))
            )
        )
    fig = base_layout(fig, title, f"step Δ{f' ({unit})' if unit else ''}", "B̄ / (1 − Ā)")
    fig.update_xaxes(type="log", exponentformat="power")
    fig.update_yaxes(type="log", exponentformat="power")
    return fig
