"""Shared look and data conversion for the figure builders (private).

Every builder turns its inputs into rounded numpy arrays with :func:`to_numpy` (so a stored
notebook output is small and the same on every run) and uses :data:`TEMPLATE`, a compact plotly
template: the default one adds about 7 kB of JSON to every figure stored in a notebook.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go

DECIMALS = 4

# One colour per discretization method / model, stable across figures.
COLORS = {
    "exact": "#222222",
    "zoh": "#1f77b4",
    "bilinear": "#2ca02c",
    "euler": "#d62728",
    "mamba": "#ff7f0e",
}
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")

TEMPLATE = go.layout.Template(
    layout=dict(
        font=dict(family="Arial, sans-serif", size=12),
        colorway=list(PALETTE),
        paper_bgcolor="white",
        plot_bgcolor="white",
        xaxis=dict(
            showgrid=True, gridcolor="#e5e5e5", zeroline=False, linecolor="#444", ticks="outside"
        ),
        yaxis=dict(
            showgrid=True, gridcolor="#e5e5e5", zeroline=False, linecolor="#444", ticks="outside"
        ),
        margin=dict(l=60, r=20, t=50, b=50),
        hovermode="closest",
    )
)


def to_numpy(x, decimals: int | None = DECIMALS, name: str = "x") -> np.ndarray:
    """A float numpy copy of a tensor, array or list, rounded to ``decimals`` (complex -> kept)."""
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch here
        x = x.detach().cpu()
        x = x.resolve_conj().numpy() if x.is_complex() else x.double().numpy()
    arr = np.asarray(x)
    if arr.dtype == object:
        raise ValueError(f"{name}: expected numbers, got an object array of shape {arr.shape}")
    if np.iscomplexobj(arr):
        arr = arr.astype(np.complex128)
        return np.round(arr, decimals) if decimals is not None else arr
    arr = arr.astype(np.float64)
    return np.round(arr, decimals) if decimals is not None else arr


def as_matrix(x, name: str, decimals: int | None = DECIMALS) -> np.ndarray:
    """A rounded real 2-D array; a (1, l, l) batch is squeezed. ValueError otherwise."""
    arr = to_numpy(x, decimals, name=name)
    while arr.ndim > 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D matrix (l, l), got shape {arr.shape}")
    if np.iscomplexobj(arr):
        raise ValueError(f"{name}: expected a real matrix, got complex values")
    return arr


def as_series(named: Mapping, name: str) -> dict[str, np.ndarray]:
    """Check a non-empty mapping label -> 1-D data and convert each entry with :func:`to_numpy`."""
    if not isinstance(named, Mapping) or len(named) == 0:
        raise ValueError(
            f"{name}: expected a non-empty dict label -> values, got {type(named).__name__}"
        )
    out = {}
    for key, value in named.items():
        arr = to_numpy(value, name=f"{name}[{key!r}]")
        if arr.ndim != 1:
            raise ValueError(f"{name}[{key!r}]: expected 1-D values, got shape {arr.shape}")
        out[str(key)] = arr
    return out


def finite_or_none(arr: np.ndarray) -> list:
    """A JSON-friendly list where NaN/inf become None (plotly draws a gap)."""
    return [float(v) if np.isfinite(v) else None for v in np.asarray(arr, dtype=np.float64).ravel()]


def base_layout(
    fig: go.Figure, title: str, xaxis: str, yaxis: str, height: int = 380, **kw
) -> go.Figure:
    """Apply the template, a title and both axis titles (every builder calls this)."""
    fig.update_layout(template=TEMPLATE, title=dict(text=title, x=0.01), height=height, **kw)
    fig.update_xaxes(title_text=xaxis)
    fig.update_yaxes(title_text=yaxis)
    return fig


def color_of(label: str, i: int) -> str:
    """The fixed colour of a method name, else the i-th palette colour."""
    return COLORS.get(label.lower(), PALETTE[i % len(PALETTE)])


def thin(*arrays: np.ndarray, max_points: int = 200) -> tuple[np.ndarray, ...]:
    """Keep at most ``max_points`` evenly spaced samples (the last one included) of 1-D arrays."""
    n = len(arrays[0])
    if n <= max_points:
        return arrays
    idx = np.unique(np.linspace(0, n - 1, max_points).round().astype(int))
    return tuple(a[idx] for a in arrays)


def round_sig(x, digits: int = 4) -> np.ndarray:
    """Round to ``digits`` significant digits (for log-scale data such as errors and timings)."""
    arr = np.asarray(x, dtype=np.float64)
    out = np.zeros_like(arr)
    nz = np.isfinite(arr) & (arr != 0)
    mag = np.floor(np.log10(np.abs(arr[nz])))
    out[nz] = np.round(arr[nz] / 10.0**mag, digits - 1) * 10.0**mag
    out[~nz] = arr[~nz]
    return out
