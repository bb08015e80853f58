"""Shared look and data conversion for the figure builders (private).

Every builder turns its inputs into rounded numpy arrays with :func:`to_numpy` or
:func:`round_sig` (so a stored notebook output is small and the same on every run) and uses
:data:`TEMPLATE`, a compact plotly template: the default one adds about 7 kB of JSON to every figure
stored in a notebook.

Rounding goes through decimal text (``float(f"{x:.4f}")``): Python formats and parses floats
correctly rounded, so the stored double is the same on every platform and with every numpy, while
arithmetic rounding such as ``np.round(x / 10**m) * 10**m`` depends on libm's ``log10``/``pow`` in
the last bit, which strict nbval (comparing stored figures bit for bit) would see.
tests/test_notebook_floats.py checks that every float of a stored figure is such a value.
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
        if decimals is None:
            return arr
        return round_decimal(arr.real, decimals) + 1j * round_decimal(arr.imag, decimals)
    arr = arr.astype(np.float64)
    return round_decimal(arr, decimals) if decimals is not None else arr


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
    """Apply the template, a title and both axis titles, and round the subplot geometry (every
    builder calls this)."""
    fig.update_layout(template=TEMPLATE, title=dict(text=title, x=0.01), height=height, **kw)
    _round_geometry(fig)
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


def _through_text(x, spec: str) -> np.ndarray:
    """Each element formatted with ``spec`` and parsed back: the double nearest to the short
    decimal, the same on every platform. NaN, ±inf and -0.0 come back unchanged."""
    arr = np.asarray(x, dtype=np.float64)
    flat = np.fromiter((float(format(v, spec)) for v in arr.ravel().tolist()), np.float64, arr.size)
    return flat.reshape(arr.shape)


def round_decimal(x, decimals: int = DECIMALS) -> np.ndarray:
    """Round to ``decimals`` digits after the point, through decimal text (see the module doc)."""
    return _through_text(x, f".{int(decimals)}f")


def round_sig(x, digits: int = 4) -> np.ndarray:
    """Round to ``digits`` significant digits (for log-scale data such as errors and timings),
    through decimal text (see the module doc)."""
    if int(digits) < 1:
        raise ValueError(f"digits: expected a positive integer, got {digits!r}")
    return _through_text(x, f".{int(digits)}g")


def _round_geometry(fig: go.Figure) -> None:
    """Round the positions make_subplots computes (axis domains, subplot titles) and colour bars
    placed from them to 4 significant digits: make_subplots writes repeating decimals such as
    0.2577777777777778 into every stored figure."""

    def domain(axis) -> None:
        if axis.domain is not None:
            axis.domain = round_sig(axis.domain).tolist()

    def position(obj) -> None:
        for key in ("x", "y"):
            if isinstance(obj[key], float):
                obj[key] = float(round_sig(obj[key]))

    fig.for_each_xaxis(domain)
    fig.for_each_yaxis(domain)
    for note in fig.layout.annotations:
        position(note)
    for trace in fig.data:
        if "colorbar" in trace:
            position(trace.colorbar)
