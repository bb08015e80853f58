"""Mask heatmaps: SSD's L, CBᵀ and M = L∘CBᵀ, causal and time-aware masks, block structure.

SSD writes y = (L∘CBᵀ)x with the 1-semiseparable mask L [TiM4Rec Eq. (6)–(8)]; TiM4Rec puts the
time gaps into L [TiM4Rec Eq. (12), (19)]; SASRec uses a causal 0/1 mask and TiSASRec a clipped
relative-time matrix. The builders take the matrices (from ``ssm.ssd_mask``, from the layers, or
any (l, l) array) and draw them with row i (the output position) going down, as a matrix reads.
Notebooks 03 and 04.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ssmlab import ssm
from ssmlab.viz._style import as_matrix, base_layout, to_numpy

ROW, COL = "row i (output position)", "column j (input position)"


def chunk_boundaries(seqlen: int, chunk_size: int) -> list[int]:
    """Start positions 0, c, 2c, ... of the chunks of a length-``seqlen`` sequence."""
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size: expected a positive integer, got {chunk_size!r}")
    return list(range(0, int(seqlen), int(chunk_size)))


def sequence_boundaries(seq_idx) -> list[int]:
    """Start positions of the packed sequences: where ``seq_idx`` changes (0 included).

    Shapes:
        seq_idx: (l,) or (1, l) non-decreasing ints
    """
    s = np.asarray(to_numpy(seq_idx, None, name="seq_idx")).reshape(-1)
    return [0] + [int(i) for i in np.flatnonzero(np.diff(s) != 0) + 1]


# ---------------------------------------------------------------- data helpers
def chunk_split(L, chunk_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Split L into its diagonal chunk blocks and the rest (what the chunked SSD passes through
    the chunk states); the two parts add up to L.

    Shapes:
        L: (l, l)  -> diag: (l, l), off: (l, l)
    """
    m = as_matrix(L, "L", decimals=None)
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size: expected a positive integer, got {chunk_size!r}")
    chunk = np.arange(m.shape[0]) // int(chunk_size)  # (l,) chunk of each position
    same = chunk[:, None] == chunk[None, :]
    return np.where(same, m, 0.0), np.where(same, 0.0, m)


def time_aware_mask(timestamps, A: float = -0.5, dt: float = 1.0) -> torch.Tensor:
    """TiM4Rec's time-aware mask for one sequence: L = ssd_mask(Δ·D, A) with D from Eq. (9).

    Implements [TiM4Rec Eq. (9), (18), (19)] for a fixed Δ and one head (no learned MLP/conv on D).

    Shapes:
        timestamps: (l,)  -> (l, l)
    """
    t = torch.as_tensor(np.asarray(timestamps, dtype=np.float64))[None]  # (1 l)
    D = ssm.time_deltas(t)  # (1 l)
    return ssm.ssd_mask((dt * D)[..., None], torch.tensor([float(A)], dtype=torch.float64))[0, 0]


def _block_outline(starts: Sequence[int], seqlen: int, diagonal_only: bool) -> go.Scatter:
    """One line trace outlining the blocks that start at ``starts`` (the diagonal blocks, or every
    block on or below the diagonal). A single trace, not layout shapes: it stays cheap to draw
    and to update in a FigureWidget whatever the number of blocks."""
    ends = list(starts[1:]) + [seqlen]
    xs: list = []
    ys: list = []
    for a0, a1 in zip(starts, ends):
        for b0, b1 in [(a0, a1)] if diagonal_only else zip(starts, ends):
            if b0 > a0:
                continue  # above the diagonal: all zeros, nothing to outline
            x0, x1, y0, y1 = b0 - 0.5, b1 - 0.5, a0 - 0.5, a1 - 0.5
            xs += [x0, x1, x1, x0, x0, None]
            ys += [y0, y0, y1, y1, y0, None]
    return go.Scatter(
        x=xs,
        y=ys,
        mode="lines",
        line=dict(color="#111", width=1.5),
        hoverinfo="skip",
        showlegend=False,
        name="blocks",
    )


def _heat(
    m: np.ndarray, name: str, colorscale: str, zmid: float | None, showscale: bool, colorbar_x=None
):
    finite = m[np.isfinite(m)]
    kw = (
        dict(zmid=zmid)
        if zmid is not None
        else dict(zmin=float(finite.min(initial=0.0)), zmax=float(finite.max(initial=1.0)))
    )
    cb = (
        dict(len=0.8, thickness=10, x=colorbar_x)
        if colorbar_x is not None
        else dict(len=0.8, thickness=12)
    )
    return go.Heatmap(
        z=m.astype(np.float32),
        colorscale=colorscale,
        showscale=showscale,
        name=name,
        colorbar=cb,
        hovertemplate="i=%{y}, j=%{x}: %{z:.4f}<extra>" + name + "</extra>",
        **kw,
    )


def _colorscale_for(m: np.ndarray) -> tuple[str, float | None]:
    """Blues for non-negative masks, a diverging scale centred on 0 for signed matrices."""
    return ("RdBu_r", 0.0) if np.nanmin(m) < 0 else ("Blues", None)


def heatmap(
    matrix,
    title: str = "Mask",
    boundaries: Sequence[int] | None = None,
    diagonal_only: bool = True,
    colorscale: str | None = None,
) -> go.Figure:
    """One (l, l) matrix as a heatmap, row 0 at the top; ``boundaries`` outlines blocks.

    Shapes:
        matrix: (l, l) (or (1, l, l))   boundaries: start positions of blocks, optional
    """
    m = as_matrix(matrix, "matrix")
    scale, zmid = _colorscale_for(m)
    fig = go.Figure(_heat(m, title, colorscale or scale, zmid, True))
    if boundaries is not None:
        fig.add_trace(_block_outline(list(boundaries), m.shape[0], diagonal_only))
    fig = base_layout(fig, title, COL, ROW, height=420, width=480)
    n = m.shape[0] - 0.5
    fig.update_yaxes(range=[n, -0.5], scaleanchor="x", constrain="domain")  # row 0 on top
    fig.update_xaxes(range=[-0.5, m.shape[1] - 0.5], constrain="domain")
    return fig


def mask_grid(
    matrices: Mapping,
    title: str = "Masks side by side",
    boundaries: Sequence[int] | None = None,
    diagonal_only: bool = True,
    colorscales: Mapping | None = None,
) -> go.Figure:
    """Several (l, l) matrices side by side, one panel and one colour bar each.

    Shapes:
        matrices: panel title -> (l, l)   boundaries: block starts drawn on every panel, optional
    """
    if not isinstance(matrices, Mapping) or not matrices:
        raise ValueError("matrices: expected a non-empty dict title -> (l, l) matrix")
    mats = {str(k): as_matrix(v, f"matrices[{k!r}]") for k, v in matrices.items()}
    k = len(mats)
    fig = make_subplots(
        rows=1, cols=k, subplot_titles=list(mats), horizontal_spacing=0.22 / k + 0.04
    )
    for i, (name, m) in enumerate(mats.items()):
        scale, zmid = _colorscale_for(m)
        scale = (colorscales or {}).get(name, scale)
        domain = fig.layout[f"xaxis{i + 1 if i else ''}"].domain
        fig.add_trace(
            _heat(m, name, scale, zmid, True, colorbar_x=domain[1] + 0.005), row=1, col=i + 1
        )
        if boundaries is not None:
            fig.add_trace(
                _block_outline(list(boundaries), m.shape[0], diagonal_only), row=1, col=i + 1
            )
        fig.update_yaxes(range=[m.shape[0] - 0.5, -0.5], row=1, col=i + 1)  # row 0 on top
        fig.update_xaxes(range=[-0.5, m.shape[1] - 0.5], row=1, col=i + 1)
    fig = base_layout(fig, title, "j", "", height=340, width=330 * k)
    fig.update_yaxes(title_text=ROW, row=1, col=1)  # the other panels share its meaning
    fig.update_xaxes(title_text=COL, row=1, col=1)
    return fig


def duality_heatmaps(L, CB, M, title: str = "SSD as masked attention: M = L ∘ CBᵀ") -> go.Figure:
    """The three panels of the duality: L [TiM4Rec Eq. (6)], CBᵀ, M = L∘CBᵀ [TiM4Rec Eq. (7)].

    Shapes:
        L, CB, M: (l, l)
    """
    return mask_grid({"L (1-SS mask)": L, "CBᵀ": CB, "M = L∘CBᵀ": M}, title=title)


def block_mask(L, chunk_size: int, title: str | None = None) -> go.Figure:
    """L with its chunk grid drawn: diagonal blocks are computed as small quadratic attentions,
    the blocks below pass through the chunk states (rank 1 each for a 1-SS mask).

    Shapes:
        L: (l, l)
    """
    m = as_matrix(L, "L")
    title = (
        title or f"Chunks of size {int(chunk_size)}: diagonal blocks quadratic, the rest via states"
    )
    return heatmap(
        m, title, boundaries=chunk_boundaries(m.shape[0], chunk_size), diagonal_only=False
    )


def packed_mask(L, seq_idx, title: str = "Packed sequences: one block per sequence") -> go.Figure:
    """A packed (variable-length) mask with a box around each sequence's diagonal block.

    Shapes:
        L: (l, l)   seq_idx: (l,)
    """
    m = as_matrix(L, "L")
    n = np.asarray(to_numpy(seq_idx, None, name="seq_idx")).size
    if n != m.shape[0]:
        raise ValueError(f"seq_idx: expected {m.shape[0]} entries like L, got {n}")
    starts = sequence_boundaries(seq_idx)
    return heatmap(m, title, boundaries=starts, diagonal_only=True)
