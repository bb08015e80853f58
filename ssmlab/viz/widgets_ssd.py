"""ipywidgets apps of notebooks 03 and 04: SSD's mask, scalar vs diagonal A, TiM4Rec's mask in
three versions, SSD4Rec's Bernoulli masking and its user-wise flip.

Each app is an :class:`ssmlab.viz.widgets.App` built from the pure builders of
:mod:`ssmlab.viz.masks`; ``app.update(name=value)`` redraws without a browser.
Needs the ``lab`` extra (ipywidgets, anywidget), like :mod:`ssmlab.viz.widgets`.
"""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import torch
from einops import einsum

from ssmlab import ssm
from ssmlab.viz import masks
from ssmlab.viz._style import round_sig, to_numpy
from ssmlab.viz.widgets import App, _log_slider, _look


def _toggle(name: str, options: Sequence, value) -> widgets.ToggleButtons:
    return widgets.ToggleButtons(
        options=list(options), value=value, description=name, style={"description_width": "110px"}
    )


# ---------------------------------------------------------------- notebook 03
def ssd_mask_app(dt, B, C, A: float = -0.5, scale: float = 1.0) -> App:
    """A and Δ-scale sliders -> L, CBᵀ and M = L∘CBᵀ [TiM4Rec Eq. (6)-(7)] for one head.

    The step is Δ_k = scale · dt_k: a larger |A| or a larger step forgets faster, CBᵀ does not
    move. Controls: ``A`` (−3 to −0.05), ``scale`` (log slider 0.1–10).

    Shapes:
        dt: (l,) positive   B, C: (l, n)
    """
    d = torch.as_tensor(to_numpy(dt, None, name="dt"))
    B_t, C_t = (torch.as_tensor(to_numpy(v, None, name=k)) for k, v in (("B", B), ("C", C)))
    if d.ndim != 1 or B_t.shape != C_t.shape or B_t.shape[0] != len(d):
        raise ValueError(
            f"dt (l,), B and C (l, n): got {tuple(d.shape)}, {tuple(B_t.shape)}, {tuple(C_t.shape)}"
        )
    CB = einsum(C_t, B_t, "i n, j n -> i j")  # (l l)
    controls = {
        "A": widgets.FloatSlider(
            value=A, min=-3.0, max=-0.05, step=0.05, description="scalar A", **_look()
        ),
        "scale": _log_slider("Δ scale", scale, 0.1, 10.0),
    }

    def redraw(A, scale):
        L = ssm.ssd_mask((scale * d)[None, :, None], torch.tensor([float(A)]).double())[0, 0]
        return [
            masks.duality_heatmaps(
                L,
                CB,
                L * CB,
                title=f"A = {A:.2f}, Δ = {scale:.3g}·dt: L moves, CBᵀ does not",
                ztitles={"L (1-SS mask)": "decay", "CBᵀ": "score", "M = L∘CBᵀ": "weight"},
            )
        ]

    return App("ssd_mask", controls, redraw, columns=1)


A_KINDS = ("scalar A (SSD)", "diagonal A (Mamba-1)")


def scalar_vs_diagonal_app(dt, A=(-0.1, -0.5, -2.0), kind: str = A_KINDS[1]) -> App:
    """Toggle scalar vs diagonal A -> the decay mask of every state, L⁽ⁿ⁾_ij = exp(A_n Σ Δ).

    With a scalar A (every A_n equal to the middle value) the N masks are one shared mask L, which
    factors out of the sum over states: y = (L∘CBᵀ)X, attention with one mask. With a diagonal A
    the masks differ [TiM4Rec Eq. (10)], so no single L exists. Controls: ``kind`` (toggle),
    ``scale`` (log slider 0.1–10 on the steps).

    Shapes:
        dt: (l,) positive   A: (n,) negative
    """
    d = to_numpy(dt, None, name="dt")
    a = to_numpy(A, None, name="A")
    if d.ndim != 1 or a.ndim != 1 or len(a) < 2:
        raise ValueError(f"dt: expected (l,), A: expected (n,), n >= 2; got {d.shape}, {a.shape}")
    controls = {"kind": _toggle("A is", A_KINDS, kind), "scale": _log_slider("Δ scale", 1, 0.1, 10)}

    def redraw(kind, scale):
        a_used = a if kind == A_KINDS[1] else np.full_like(a, float(np.median(a)))
        Ls = masks.state_masks(scale * d, a_used)  # (n l l)
        spread = float(round_sig(float((Ls - Ls[:1]).abs().max())))
        panels = {f"state n={n}, A_n = {v:g}": Ls[n] for n, v in enumerate(a_used)}
        note = "one shared mask" if spread == 0 else f"masks differ by up to {spread:g}"
        return [masks.mask_grid(panels, title=f"{kind}: {note}", ztitles="decay")]

    return App("scalar_vs_diagonal", controls, redraw, columns=1)


# ---------------------------------------------------------------- notebook 04
VERSION_LABELS = {
    "paper": "paper (Eq. 12: â = a·d)",
    "code": "code (softplus(Δ·LN(𝒟) + b))",
    "idealized": "idealized (raw gaps)",
}


def tim4rec_mask_app(
    timestamps, A: float = -0.5, dt: float = 1.0, dt_bias: float = 0.0, version: str = "code"
) -> App:
    """Toggle paper / code / idealization -> TiM4Rec's L and the weight L·diag(Δ̂) of each input.

    See :func:`ssmlab.viz.masks.tim4rec_mask` for the three versions. The right panel is what
    the model applies to the inputs when CBᵀ = 1: Y = (L∘CBᵀ)(Δ̂ X) [TiM4Rec Eq. (20)], so a
    column with Δ̂_j = 0 is an input the model cannot see. Controls: ``version`` (toggle),
    ``dt`` (the head's Δ, 0.1–3).

    Shapes:
        timestamps: (l,)
    """
    if version not in masks.TIM4REC_VERSIONS:
        raise ValueError(f"version: expected one of {masks.TIM4REC_VERSIONS}, got {version!r}")
    options = [(VERSION_LABELS[v], v) for v in masks.TIM4REC_VERSIONS]
    controls = {
        "version": _toggle("TiM4Rec as", options, version),
        "dt": widgets.FloatSlider(
            value=dt, min=0.1, max=3.0, step=0.1, description="head step Δ", **_look()
        ),
    }

    def redraw(version, dt):
        L, dt_hat = masks.tim4rec_mask(timestamps, A, version, dt, dt_bias)
        zero = [int(j) for j in np.flatnonzero(np.abs(dt_hat.numpy()) < 1e-12)]
        note = f"inputs {zero} have Δ̂ = 0" if zero else "every input has Δ̂ ≠ 0"
        panels = {"L": L, "L·diag(Δ̂): weight of input j (Eq. 20)": L * dt_hat[None, :]}
        return [
            masks.mask_grid(
                panels, title=f"TiM4Rec, {VERSION_LABELS[version]}: {note}", ztitles="weight"
            )
        ]

    return App("tim4rec_masks", controls, redraw, columns=1)


def bernoulli_app(lengths: Sequence[int], ratio: float = 0.1, draws: int = 8) -> App:
    """Masking-ratio slider -> which items of a packed row SSD4Rec masks, over several steps.

    Each item is masked independently with probability ρ (``SSD4Rec.mask_items``): about ρ·t
    items per step, a different set every step, and the rows of different users alike.
    Controls: ``ratio`` (0 to 0.9), ``seed`` (the draw).
    """
    controls = {
        "ratio": widgets.FloatSlider(
            value=ratio, min=0.0, max=0.9, step=0.05, description="mask ratio ρ", **_look()
        ),
        "seed": widgets.IntSlider(value=0, min=0, max=20, description="seed", **_look()),
    }

    def redraw(ratio, seed):
        masked, starts = masks.bernoulli_masks(lengths, ratio, draws, seed)
        return [masks.masking_figure(masked, starts, ratio)]

    return App("bernoulli", controls, redraw, columns=1)


def flip_app(seq_idx, items: Sequence[int], targets: Sequence[int], flip: str = "user-wise") -> App:
    """Toggles for the flip (user-wise / whole row) and flip-back -> what the backward term of
    Bi-SSD lets each position read, with the cells that hold a segment's own target marked ✕.

    ``items`` is the packed row, ``targets`` the next item of each segment (e.g. with prefix
    augmentation a user's shorter prefix is followed by a longer one that contains its target).
    Controls: ``flip`` (toggle), ``flip_back`` (toggle; False is the authors' code).

    Shapes:
        seq_idx, items: (t,)   targets: (n_segments,)
    """
    s = np.asarray(seq_idx).reshape(-1)
    it = np.asarray(items).reshape(-1)
    if s.shape != it.shape or len(targets) != len(np.unique(s)):
        raise ValueError(
            f"seq_idx, items: expected equal (t,), targets one per segment; got {s.shape}, "
            f"{it.shape}, {len(targets)} targets for {len(np.unique(s))} segments"
        )
    tgt = np.asarray(targets)[np.searchsorted(np.unique(s), s)]  # (t,) target of i's segment
    starts = masks.sequence_boundaries(s)
    controls = {
        "flip": _toggle("flip", masks.FLIPS, flip),
        "flip_back": _toggle("flip back", [("no (authors' code)", False), ("yes", True)], False),
    }

    def redraw(flip, flip_back):
        reach = masks.flip_reach(s, flip, flip_back)
        leak = (reach > 0) & (it[None, :] == tgt[:, None])  # (t t) reads its own target
        rows, cols = np.nonzero(leak)
        fig = masks.heatmap(
            reach,
            title=f"Backward term, {flip} flip: {len(rows)} cells read the row's own target",
            boundaries=starts,
            ztitle="weight",
        )
        fig.add_trace(
            go.Scatter(
                x=cols.tolist(),
                y=rows.tolist(),
                mode="markers",
                marker=dict(symbol="x", size=12, color="#d62728"),
                name="reads its target",
            )
        )
        fig.update_xaxes(
            tickvals=list(range(len(it))), ticktext=[f"{j}: item {v}" for j, v in enumerate(it)]
        )
        return [fig]

    return App("flip", controls, redraw, columns=1)


__all__ = [
    "A_KINDS",
    "bernoulli_app",
    "flip_app",
    "scalar_vs_diagonal_app",
    "ssd_mask_app",
    "tim4rec_mask_app",
]
