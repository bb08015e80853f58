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
from ssmlab.ssm.ssd import reverse_within
from ssmlab.viz._style import as_matrix, base_layout, round_sig, to_numpy

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


TIM4REC_VERSIONS = ("paper", "code", "idealized")


def _layer_norm(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    return torch.nn.functional.layer_norm(x, x.shape[-1:], eps=eps)


def tim4rec_mask(
    timestamps,
    A: float = -0.5,
    version: str = "code",
    dt: float = 1.0,
    dt_bias: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """TiM4Rec's time-aware mask L and its per-input step Δ̂ in three versions, for one head.

    𝒟 are the gaps of [TiM4Rec Eq. (9)] (𝒟_0 = 0), Δ the head's step (``dt``, fixed here; the
    model computes it from the input):

    - ``"paper"`` (Eq. 12 as printed): 𝒟 goes through LayerNorm (Sec. 3.2.2), then
      â_k = a·d_k with a = exp(ΔA), so L_ij = â_i ⋯ â_{j+1}, a *product* of gaps
      (d̂_ij ≈ d_i ⋯ d_j); Δ̂ = Δ·d (Eq. 18). d is zero-mean, so L and Δ̂ can be negative.
    - ``"code"`` (``ssmlab.layers.TimeAwareSSDBlock``, the authors' code, with the learned
      Eq. 16–17 maps at identity): Δ̂ = softplus(Δ·LN(𝒟) + dt_bias), L = ssd_mask(Δ̂, A).
    - ``"idealized"``: raw gaps, Δ̂ = Δ·𝒟; the exponents telescope and
      L_ij = exp(AΔ(t_i − t_j)). 𝒟_0 = 0 and duplicate timestamps give Δ̂ = 0.

    The output is Y = (L∘CBᵀ)(Δ̂ X) [TiM4Rec Eq. (20)]: input j enters scaled by Δ̂_j.

    Shapes:
        timestamps: (l,)  -> L: (l, l), dt_hat: (l,)
    """
    if version not in TIM4REC_VERSIONS:
        raise ValueError(f"version: expected one of {TIM4REC_VERSIONS}, got {version!r}")
    t = torch.as_tensor(np.asarray(to_numpy(timestamps, None, name="timestamps")))[None]  # (1 l)
    D = ssm.time_deltas(t)[0]  # (l,)
    A_t = torch.tensor([float(A)], dtype=torch.float64)
    if version == "idealized":
        dt_hat = dt * D
    elif version == "code":
        dt_hat = torch.nn.functional.softplus(dt * _layer_norm(D) + dt_bias)
    else:
        d = _layer_norm(D)
        a_hat = np.exp(dt * float(A)) * d.numpy()  # (l,) â_k = a·d_k
        n = len(a_hat)
        L = np.zeros((n, n))
        for i in range(n):
            L[i, i] = 1.0
            for j in range(i - 1, -1, -1):
                L[i, j] = L[i, j + 1] * a_hat[j + 1]
        return torch.from_numpy(L), dt * d
    return ssm.ssd_mask(dt_hat[None, :, None], A_t)[0, 0], dt_hat


def state_masks(dt, A) -> torch.Tensor:
    """One decay mask per state for a diagonal A: L⁽ⁿ⁾_ij = exp(A_n Σ_{k=j+1}^{i} Δ_k).

    A scalar A (all A_n equal, SSD) gives the same mask for every state, which factors out of
    the sum over states: y = (L∘CBᵀ)X [TiM4Rec Eq. (6)-(8)]. A diagonal A (Mamba-1) gives N
    different masks, the point-to-point mask of [TiM4Rec Eq. (10)], and no single L.

    Shapes:
        dt: (l,) positive   A: (n,) negative  -> (n, l, l)
    """
    d = torch.as_tensor(np.asarray(to_numpy(dt, None, name="dt")))
    a = torch.as_tensor(np.asarray(to_numpy(A, None, name="A")))
    if d.ndim != 1 or a.ndim != 1:
        raise ValueError(f"dt, A: expected 1-D vectors, got {tuple(d.shape)}, {tuple(a.shape)}")
    return ssm.ssd_mask(d[None, :, None].expand(1, -1, len(a)).contiguous(), a)[0]


def chunk_factors(dt, A: float, chunk_size: int) -> dict[str, np.ndarray]:
    """L cut into the four steps of the chunked SSD algorithm (mamba's ``ssd_minimal``).

    With c_i = A Σ_{k<=i} Δ_k and e(J) the last position of chunk J, for j in chunk J < I ∋ i:
    L_ij = exp(c_i − c_{e(I−1)}) · exp(c_{e(I−1)} − c_{e(J)}) · exp(c_{e(J)} − c_j):
      1. diagonal blocks: small masked attentions (quadratic inside a chunk);
      2. chunk states: input j decays to the end of its chunk, exp(c_{e(J)} − c_j) ("B terms");
      3. state passing: chunk J's state decays across the whole chunks up to I ("A terms");
      4. state to output: from the start of chunk I to position i, exp(c_i − c_{e(I−1)})
         ("C terms").
    Steps 2–4 are 0 on the diagonal blocks and their product is L below them; step 1 is 0
    below them. So ``step1 + step2 * step3 * step4 == L``.

    Shapes:
        dt: (l,) positive  -> four (l, l) arrays
    """
    d = np.asarray(to_numpy(dt, None, name="dt"), dtype=np.float64)
    c_size = int(chunk_size)
    if d.ndim != 1 or c_size < 1:
        raise ValueError(f"dt: expected (l,), chunk_size >= 1; got {d.shape}, {chunk_size!r}")
    n = len(d)
    cum = float(A) * np.cumsum(d)  # (l,) c_i
    chunk = np.arange(n) // c_size  # (l,)
    last = np.minimum((chunk + 1) * c_size - 1, n - 1)  # (l,) e(chunk of i)
    prev_end = chunk * c_size - 1  # (l,) e(I − 1), −1 for the first chunk
    below = chunk[:, None] > chunk[None, :]  # (l l) blocks passed through states
    L = ssm.ssd_mask(torch.as_tensor(d)[None, :, None], torch.tensor([float(A)]).double())[0, 0]
    diag = np.where(below, 0.0, L.numpy())
    safe_prev = np.maximum(prev_end, 0)
    step2 = np.exp(cum[last] - cum)[None, :].repeat(n, 0)  # exp(c_{e(J)} − c_j)
    step3 = np.exp(cum[safe_prev][:, None] - cum[last][None, :])  # exp(c_{e(I−1)} − c_{e(J)})
    step4 = np.exp(cum - cum[safe_prev])[:, None].repeat(n, 1)  # exp(c_i − c_{e(I−1)})
    zero = np.zeros((n, n))
    return {
        "1. diagonal blocks": diag,
        "2. chunk states": np.where(below, step2, zero),
        "3. state passing": np.where(below, step3, zero),
        "4. state to output": np.where(below, step4, zero),
    }


def bernoulli_masks(lengths: Sequence[int], ratio: float, draws: int = 8, seed: int = 0):
    """SSD4Rec's item masking in training: each input item is replaced by the mask token with
    probability ``ratio``, independently (a Bernoulli draw per position, redrawn every step),
    as ``SSD4Rec.mask_items`` does (kept where U[0, 1) >= ratio).

    Returns a (draws, t) 0/1 array, 1 = masked, t = sum(lengths) (the packed row), and the
    sequence start positions.

    Shapes:
        lengths: (n_users,)  -> (draws, t), list of n_users starts
    """
    if not 0.0 <= float(ratio) < 1.0:
        raise ValueError(f"ratio: expected a probability in [0, 1), got {ratio!r}")
    lens = [int(n) for n in lengths]
    if not lens or min(lens) < 1 or int(draws) < 1:
        raise ValueError(f"lengths, draws: expected positive, got {lengths!r}, {draws!r}")
    g = torch.Generator().manual_seed(int(seed))
    u = torch.rand((int(draws), sum(lens)), generator=g, dtype=torch.float64)
    masked = (u < float(ratio)).double().numpy()  # (draws t)
    return masked, [0, *np.cumsum(lens)[:-1].tolist()]


FLIPS = ("user-wise", "whole row")


def flip_reach(seq_idx, flip: str = "user-wise", flip_back: bool = False, decay: float = 0.8):
    """Which inputs j the backward term at output i reads in a packed row (Bi-SSD, SSD4Rec).

    The backward pass runs SSD on the flipped row and adds its output at position i
    (``flip_back=False``, the authors' code) or at the position that flips back to i
    (``flip_back=True``). ``flip="user-wise"`` reverses each sequence inside its own boundaries
    and keeps them apart (``reverse_within`` with ``seq_idx``, SSD4Rec); ``"whole row"`` flips
    the row as one sequence, as a plain bidirectional Mamba would. A constant decay a = ``decay``
    per step stands in for the learned one: reach[i, j] = a^(steps from j to i in the
    reversed pass), 0 where j is out of reach.

    Shapes:
        seq_idx: (t,) non-decreasing ints  -> (t, t)
    """
    if flip not in FLIPS:
        raise ValueError(f"flip: expected one of {FLIPS}, got {flip!r}")
    s = torch.as_tensor(np.asarray(to_numpy(seq_idx, None, name="seq_idx"))).long()[None]
    n = s.shape[1]
    seg = s if flip == "user-wise" else None
    perm = reverse_within(torch.arange(n)[None], seg)[0]  # flipped position -> original
    dt = torch.full((1, n, 1), 1.0, dtype=torch.float64)
    A = torch.tensor([float(np.log(decay))], dtype=torch.float64)
    L_rev = ssm.ssd_mask(dt, A, seg)[0, 0]  # (t t) in flipped order
    reach = torch.zeros(n, n, dtype=torch.float64)
    out_pos = perm if flip_back else torch.arange(n)  # flipped position read by output i
    for i in range(n):
        reach[i, perm] = L_rev[out_pos[i]]
    return reach.numpy()


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
    m: np.ndarray,
    name: str,
    colorscale: str,
    zmid: float | None,
    showscale: bool,
    colorbar_x=None,
    ztitle: str | None = None,
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
    if ztitle:
        cb["title"] = dict(text=ztitle, side="right")
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
    ztitle: str | None = None,
) -> go.Figure:
    """One (l, l) matrix as a heatmap, row 0 at the top; ``boundaries`` outlines blocks;
    ``ztitle`` names what a colour means (the colour bar's title, e.g. "weight").

    Shapes:
        matrix: (l, l) (or (1, l, l))   boundaries: start positions of blocks, optional
    """
    m = as_matrix(matrix, "matrix")
    scale, zmid = _colorscale_for(m)
    fig = go.Figure(_heat(m, title, colorscale or scale, zmid, True, ztitle=ztitle))
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
    ztitles: Mapping | str | None = None,
) -> go.Figure:
    """Several (l, l) matrices side by side, one panel and one colour bar each.

    ``ztitles``: one colour-bar title for every panel (a string) or per panel title (a dict).

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
        zt = ztitles if isinstance(ztitles, str) or ztitles is None else ztitles.get(name)
        cb_x = float(round_sig(domain[1] + 0.005))
        fig.add_trace(
            _heat(m, name, scale, zmid, True, colorbar_x=cb_x, ztitle=zt), row=1, col=i + 1
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


def masking_figure(
    masked, starts: Sequence[int], ratio: float, title: str | None = None
) -> go.Figure:
    """Bernoulli item masking of a packed row: one row per training step, dark = masked.

    Shapes:
        masked: (draws, t) 0/1   starts: sequence start positions
    """
    m = as_matrix(masked, "masked")
    frac = float(m.mean())
    title = title or f"Masked items, ρ = {ratio:.2f}: {frac:.0%} of {m.size} draws masked"
    fig = go.Figure(
        go.Heatmap(
            z=m.astype(np.float32),
            zmin=0.0,
            zmax=1.0,
            colorscale=[[0.0, "#deebf7"], [1.0, "#08306b"]],
            showscale=False,
            name="masked",
            hovertemplate="step %{y}, position %{x}: %{z}<extra>1 = masked</extra>",
        )
    )
    xs: list = []
    ys: list = []
    for s0 in list(starts)[1:]:  # a vertical line at each sequence start
        xs += [s0 - 0.5, s0 - 0.5, None]
        ys += [-0.5, m.shape[0] - 0.5, None]
    fig.add_trace(
        go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="#d62728", width=2), name="users")
    )
    fig = base_layout(
        fig, title, "position in the packed row", "training step", height=300, showlegend=False
    )
    fig.update_yaxes(range=[m.shape[0] - 0.5, -0.5])
    return fig


def duality_heatmaps(
    L, CB, M, title: str = "SSD as masked attention: M = L ∘ CBᵀ", ztitles=None
) -> go.Figure:
    """The three panels of the duality: L [TiM4Rec Eq. (6)], CBᵀ, M = L∘CBᵀ [TiM4Rec Eq. (7)].

    ``ztitles``: colour-bar titles, as in :func:`mask_grid`.

    Shapes:
        L, CB, M: (l, l)
    """
    return mask_grid({"L (1-SS mask)": L, "CBᵀ": CB, "M = L∘CBᵀ": M}, title=title, ztitles=ztitles)


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
