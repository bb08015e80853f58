# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Time-aware masks, packed sequences and the bidirectional pass
#
# Papers: **TiM4Rec** (Eq. 6, 9, 11, 12, 16–20; arXiv 2409.16182v3), **SSD4Rec** (2409.01192v2:
# variable-length packed sequences, masking, Bi-SSD), **SASRec** (1808.09781), **TiSASRec**
# (WSDM 2020).
#
# [← 03 · SSD duality](03_ssd_duality.ipynb) · [index](00_index.ipynb) ·
# next: [05 · training](05_training.ipynb)
#
# Notebook 03 showed that SSD is masked attention with a decaying mask $L$. Here we compare the
# masks four recommenders use, put time gaps into $L$ the way TiM4Rec's paper, its code and an
# idealization do, check that the result keeps the structure that makes SSD fast, and follow
# SSD4Rec: several users packed into one row, items masked at random, and a backward pass that
# must not reveal the target.

# %%
import numpy as np
import torch
from einops import einsum

from ssmlab import ssm, viz
from ssmlab.layers.attention import causal_mask, tisasrec_interval_matrix
from ssmlab.ssm.ssd import reverse_within

torch.set_default_dtype(torch.float64)  # the checks compare in double precision
_ = torch.manual_seed(0)

# %% [markdown]
# ## 1. Four masks side by side
#
# One user with 12 interactions (days). Row $i$ = output position; each colour bar says what a
# colour means:
#
# - **SASRec**: causal 0/1 mask, every past item weighs the same before the softmax;
# - **SSD with a constant step**: $L_{ij} = \exp\big(A\sum_{k=j+1}^{i}\Delta\big) = a^{\,i-j}$
#   (TiM4Rec Eq. 6). It depends on $i - j$ only: a Toeplitz matrix, the convolution kernel of an
#   LTI model such as S4. In SSD proper $\Delta_t = \mathrm{softplus}(\ldots x_t \ldots)$ depends
#   on the input (notebook 03), so its $L$ is **input-selective**, not a function of position;
# - **TiM4Rec, idealized**: the step is scaled by the raw time difference
#   $\mathcal{D}_k = t_k - t_{k-1}$ (Eq. 9), $\hat\Delta_k = \Delta\cdot\mathcal{D}_k$ (Eq. 18),
#   so $L_{ij} = \hat a_i \cdots \hat a_{j+1} = \exp\big(A\Delta(t_i - t_j)\big)$: the exponents
#   telescope, and $L$ decays with elapsed time. This is *not* what the model computes
#   (section 3);
# - **TiSASRec**: not a weight but an **index**: the bucket
#   $r_{ij} = \min(\lfloor |t_i - t_j| / r_{\min} \rfloor, k)$ of the time difference
#   $\hat d_{ij} = t_i - t_j$ (TiM4Rec Eq. 11), which looks up learned embeddings added to the
#   keys and values. Its cost is TiM4Rec's "Challenge II": $l^2$ embeddings of size $d$
#   (shown on the causal part, the pairs attention may use).

# %%
t = torch.tensor([0.0, 1.0, 1.5, 1.5, 2.0, 6.0, 6.2, 7.0, 15.0, 15.5, 16.0, 30.0])
seqlen, A = len(t), -0.3
masks = {
    "SASRec: causal": causal_mask(seqlen).double(),
    "SSD: L, constant Δ": ssm.ssd_mask(torch.ones(1, seqlen, 1), torch.tensor([A]))[0, 0],
    "TiM4Rec (idealized): raw gaps": viz.masks.time_aware_mask(t, A, dt=1.0),
    "TiSASRec: bucket index": tisasrec_interval_matrix(t[None], torch.tensor([seqlen]), 16)[0],
}
masks["TiSASRec: bucket index"] = masks["TiSASRec: bucket index"].double().tril()
ztitles = {"SASRec: causal": "0/1", "TiSASRec: bucket index": "index"}
ztitles |= {k: "weight" for k in masks if k not in ztitles}
fig = viz.masks.mask_grid(
    masks, title="Masks of four recommenders (12 interactions)", ztitles=ztitles
)
fig

# %% [markdown]
# ## Check

# %%
# idealized: the time differences telescope, sum_{k=j+1..i} D_k = t_i − t_j
exact = torch.exp(A * (t[:, None] - t[None, :])).tril()
torch.testing.assert_close(masks["TiM4Rec (idealized): raw gaps"], exact)
pos = torch.arange(seqlen).double()
torch.testing.assert_close(masks["SSD: L, constant Δ"], torch.exp(A * (pos[:, None] - pos)).tril())
assert torch.equal(masks["SASRec: causal"], torch.ones(seqlen, seqlen).tril())

# %% [markdown]
# ## 2. The 1-SS property survives the time gaps
#
# $L$ is **1-semiseparable**: every block strictly below the diagonal, $L[k{:}, {:}k]$, has
# rank 1 (it is $\exp(A\hat c_i)\exp(-A\hat c_j)$ with $\hat c$ a cumulative sum). That is what
# lets SSD pass a state between chunks instead of materializing $L$ (notebook 03). TiM4Rec
# inserts the time differences as steps precisely to keep it: using the matrix
# $\hat{\mathcal D}$ of Eq. 11 directly "compromises the 1-SS matrix property". The rank of
# TiSASRec's index matrix is shown only to make that point: it is an index, not a mask, and it
# has no low-rank structure that a linear-time algorithm could use.


# %%
def max_offdiag_rank(m):  # the largest rank of a block strictly below the diagonal
    return max(torch.linalg.matrix_rank(m[k:, :k]).item() for k in range(1, m.shape[0]))


{name: max_offdiag_rank(m) for name, m in masks.items()}

# %% [markdown]
# ## Check

# %%
ranks = {name: max_offdiag_rank(m) for name, m in masks.items()}
assert ranks["SSD: L, constant Δ"] == 1 and ranks["TiM4Rec (idealized): raw gaps"] == 1
assert ranks["TiSASRec: bucket index"] > 1

# %% [markdown]
# ## 3. TiM4Rec as the paper writes it, as the code computes it, and idealized
#
# Three versions of TiM4Rec's mask, all with $\hat\Delta_k$ in place of SSD's step:
#
# - **paper** (Eq. 12 as printed): $\mathcal D$ first goes through dropout and LayerNorm
#   (Sec. 3.2.2), then $\hat a_k = a\cdot d_k$, so $L_{ij} = \hat a_i\cdots\hat a_{j+1}$ is a
#   *product* of time differences, "$\hat d_{ij} \approx d_i d_{i-1} \cdots d_j$". After
#   LayerNorm the $d_k$ are zero-mean, so entries can be negative;
# - **code** (the authors' and `ssmlab.layers.TimeAwareSSDBlock`): the processed
#   $\mathcal D$ enters the step inside a softplus, $\hat\Delta = \mathrm{softplus}(\Delta\cdot
#   \mathcal D + b)$, with $L$ = `ssd_mask`$(\hat\Delta, A)$. Here the learned maps of Eq. 16–17
#   are set to the identity, so $\mathcal D = \mathrm{LN}(\text{gaps})$. No telescoping: the
#   mask decays with a *normalized* gap, never exactly with elapsed time;
# - **idealized** (section 1): raw gaps, $\hat\Delta = \Delta\cdot\mathcal D$.
#
# The mask is half of the story. The output is
#
# $$Y = \big(L \circ CB^\top\big)\big(\hat\Delta^\top X\big) \qquad \text{(TiM4Rec Eq. 20)},$$
#
# so the time difference also **scales each input column**. The right panel draws
# $L\cdot\mathrm{diag}(\hat\Delta)$, what input $j$ contributes to output $i$ when
# $CB^\top = 1$. In the idealization $\mathcal D_0 = 0$ and the duplicate timestamp give
# $\hat\Delta = 0$: those inputs are **invisible**. That is why the paper notes that "due to the
# presence of layer normalization, the actual value of $d_1$ will be non-zero", and the code
# adds a softplus: every input keeps a positive weight.
#
# > **Paper vs code.** (1) Eq. 12 multiplies the time differences; the code sums the
# > processed differences inside $\exp(A\cdot\mathrm{softplus}(\ldots))$, so a zero-mean
# > $\mathcal D$ never makes $L$ negative. (2) Eq. 12 and 19 print $\hat a_0$ on the diagonal;
# > the code has 1 there. (3) Eq. 16 has an outer $\sigma$ on $\alpha^{\mathcal D}$; the code has
# > none. (4) Eq. 17 has one causal convolution; the code applies two. (5) Eq. 18 writes
# > $\hat\Delta = \Delta\cdot\mathcal D$; the code computes
# > $\mathrm{softplus}(\Delta_{\text{raw}}\cdot\mathcal D + b)$. ssmlab follows the code; the
# > differences are also listed in `TimeAwareSSDBlock`'s docstring.

# %%
t8 = torch.tensor([0.0, 1.0, 1.5, 1.5, 2.0, 6.0, 6.2, 7.0])  # index 3 repeats index 2's time
tim = viz.widgets_ssd.tim4rec_mask_app(t8, A=-0.5, dt=1.0, version="idealized")
tim.show()

# %% [markdown]
# ## Check

# %%
versions = {v: viz.masks.tim4rec_mask(t8, -0.5, v, 1.0) for v in viz.masks.TIM4REC_VERSIONS}
dt_ideal, dt_code = versions["idealized"][1], versions["code"][1]
assert torch.nonzero(dt_ideal == 0).flatten().tolist() == [0, 3]  # invisible inputs
assert torch.all(dt_code > 0)  # softplus: every input is seen
assert (versions["paper"][0] < 0).any()  # a product of zero-mean differences changes sign
tim.update(version="code")
assert "every input" in tim.figures[0].layout.title.text

# %% [markdown]
# ## 4. Try it: edit the gaps between interactions
#
# One slider per gap $t_k - t_{k-1}$ (8 interactions). SSD's constant-step mask ignores time;
# TiM4Rec's (idealized) darkens across long gaps and stays 1 across a gap of 0; TiSASRec's
# bucket index counts gaps in units of the smallest one.


# %%
def tisasrec(ts):  # viz never imports the layers: the notebook passes this function in
    return tisasrec_interval_matrix(ts, torch.tensor([ts.shape[1]]), time_span=16)[0].tril()


gaps = [1.0, 0.5, 2.0, 0.0, 3.0, 1.0, 0.2]
app = viz.widgets.gap_mask_app(gaps, A=-0.5, dt=1.0, interval_fn=tisasrec)
app.show()

# %% [markdown]
# ## Check

# %%
before = [np.array(tr.z) for tr in app.figures[0].data if tr.type == "heatmap"]
app.update(gap_5=5.0)
after = [np.array(tr.z) for tr in app.figures[0].data if tr.type == "heatmap"]
assert np.array_equal(before[0], after[0])  # SSD's mask does not see time
assert not np.array_equal(before[1], after[1])
assert after[1][5, 4] < before[1][5, 4]  # a longer gap t5 − t4 decays more
app.update(gap_5=3.0)

# %% [markdown]
# ## 5. Packed variable-length sequences (SSD4Rec)
#
# SSD4Rec concatenates the sequences of a batch into one row, without padding or truncation,
# and marks where each user starts (`seq_idx`). No state may cross a boundary: the mask becomes
# block-diagonal, one 1-SS block per user. SSD4Rec itself reads no timestamps; if a time-aware
# step (TiM4Rec's $\mathcal D$, Eq. 9) is used on a packed row, its differences must restart at
# 0 at every sequence start. That combination is ssmlab's (`time_deltas(t, seq_idx)`), not a
# paper's.

# %%
seq_idx = torch.tensor([[0] * 5 + [1] * 4 + [2] * 7])  # (b l): users of lengths 5, 4, 7
seqlen = seq_idx.shape[1]
dt_p = torch.nn.functional.softplus(torch.randn(1, seqlen, 1))  # (b l h)
A1 = torch.tensor([-0.4])
L_packed = ssm.ssd_mask(dt_p, A1, seq_idx)[0, 0]
title = "Three users packed in one row"
fig = viz.masks.packed_mask(L_packed, seq_idx[0], title=title)
fig.data[0].colorbar.title.text = "decay"
fig

# %% [markdown]
# ## Check

# %%
same = seq_idx[0, :, None] == seq_idx[0, None, :]
assert torch.all(L_packed[~same] == 0)  # nothing crosses users
xp = torch.randn(1, seqlen, 1, 3)  # (b l h p)
Bp, Cp = torch.randn(1, seqlen, 1, 4), torch.randn(1, seqlen, 1, 4)  # (b l g n)
y_packed = ssm.ssd(xp, dt_p, A1, Bp, Cp, chunk_size=4, seq_idx=seq_idx)
users = (slice(0, 5), slice(5, 9), slice(9, 16))
parts = [ssm.ssd(xp[:, u], dt_p[:, u], A1, Bp[:, u], Cp[:, u], chunk_size=4) for u in users]
torch.testing.assert_close(y_packed, torch.cat(parts, dim=1))
D = ssm.time_deltas(torch.arange(seqlen)[None].double(), seq_idx)[0]
assert torch.all(D[[0, 5, 9]] == 0) and torch.all(D[[1, 6, 10]] == 1)  # restart per user

# %% [markdown]
# ## 6. Try it: Bernoulli masking of the input items (SSD4Rec)
#
# In training SSD4Rec replaces each input item by the mask token with probability $\rho$
# (`mask_ratio`, 0.1 by default), independently of every other item: one Bernoulli($\rho$)
# draw per position, redrawn at every training step (`SSD4Rec.mask_items`: keep where
# $U[0,1) \ge \rho$). Each row below is one training step over the packed row of section 5.

# %%
masking = viz.widgets_ssd.bernoulli_app([5, 4, 7], ratio=0.1, draws=8)
masking.show()

# %% [markdown]
# **Quick check.** *How does the Bernoulli distribution choose the masked items?*
#
# <details><summary>Answer</summary>
#
# Each item independently, with the same probability $\rho$: no position, user or item is
# preferred. A row of $t$ items has on average $\rho t$ masked items (binomially distributed),
# and a new set is drawn at every step, so over an epoch every item is hidden now and then
# and the model must predict it from its context. At evaluation nothing is masked.
# </details>

# %% [markdown]
# ## Check

# %%
drawn, _ = viz.masks.bernoulli_masks([5, 4, 7], 0.3, draws=2000, seed=0)
assert abs(drawn.mean() - 0.3) < 0.01  # the rate is ρ
assert abs(drawn[:, :5].mean() - drawn[:, 9:].mean()) < 0.02  # the same for every user
masking.update(ratio=0.0)
assert not np.array(masking.figures[0].data[0].z).any()  # ρ = 0: nothing masked
masking.update(ratio=0.1)

# %% [markdown]
# ## 7. The bidirectional pass of SSD4Rec
#
# Bi-SSD runs the same SSD (shared weights) a second time on every sequence **reversed within
# its own boundaries** (`reverse_within`), and combines the two passes as
#
# $$h = \mathrm{fwd}(x) + \beta\cdot\mathrm{bwd}(x) + x, \qquad \beta = 0.1$$
#
# (`layers/bissd.py`), then LayerNorm, dropout and an FFN. How the backward output is aligned
# matters:
#
# - **flip back** (`flip_back=True`, `ssm.ssd_bidirectional`): the backward output is reversed
#   again, so position $i$ summarizes the *later* items of its own user; the figure below shows
#   this mask, upper-triangular inside each block;
# - **no flip back** (`flip_back=False`, the **authors' code and SSD4Rec's default**): the
#   backward output is added in reversed order, so at the last position of a user, the only
#   one scored, the backward term is the reversed pass's final state: a summary of the whole
#   sequence back to its first item.

# %%
perm = reverse_within(torch.arange(seqlen)[None], seq_idx)[0]  # the within-sequence reversal
L_rev = ssm.ssd_mask(reverse_within(dt_p, seq_idx), A1, seq_idx)[0, 0]
L_bwd = L_rev[perm][:, perm]  # back to the original order
passes = {"forward pass": L_packed, "backward pass, flipped back": L_bwd}
starts = viz.masks.sequence_boundaries(seq_idx)
fig = viz.masks.mask_grid(
    passes, title="Bi-SSD masks, flip_back=True (SSD4Rec)", boundaries=starts, ztitles="decay"
)
fig

# %% [markdown]
# ## Check

# %%
y_fwd, y_bwd = ssm.ssd_bidirectional(xp, dt_p, A1, Bp, Cp, seq_idx=seq_idx, chunk_size=4)
CB = einsum(Cp[0, :, 0], Bp[0, :, 0], "i n, j n -> i j")
y_mask = einsum(L_bwd * CB, dt_p[0] * xp[0, :, 0], "i j, j p -> i p")  # (L_bwd ∘ CBᵀ)(Δ X)
torch.testing.assert_close(y_bwd[0, :, 0], y_mask)
torch.testing.assert_close(y_fwd, y_packed)
assert torch.all(L_bwd.tril(-1) == 0) and torch.all(L_bwd[~same] == 0)

# %% [markdown]
# ## 8. Try it: why the user-wise flip keeps the target hidden
#
# A packed training row with RecBole's prefix augmentation: user B's history $(4, 8)$ with
# target 6, then user A's prefix $(3, 7, 5)$ with target **9**, then A's longer prefix
# $(3, 7, 5, 9)$ with target 2. The heatmap shows which inputs $j$ the backward term at each
# output $i$ reads (a constant decay stands in for the learned one); a red ✕ marks a cell where a
# position reads its own segment's target. Toggle the flip and the alignment.

# %%
row_seq = [0, 0, 1, 1, 1, 2, 2, 2, 2]
row_items = [4, 8, 3, 7, 5, 3, 7, 5, 9]
flip = viz.widgets_ssd.flip_app(row_seq, row_items, targets=[6, 9, 2])
flip.show()

# %% [markdown]
# **Quick check.** *Why does flipping the sequence (user-wise) keep the model from seeing the
# target?*
#
# <details><summary>Answer</summary>
#
# The target of a segment is never among its own inputs (it is the item that comes next), so a
# backward pass that stays inside the segment can read every input of it, even "later" ones,
# without seeing the answer. The user-wise flip reverses each segment in place and
# `seq_idx` keeps the reversed pass inside it. Flipping the **whole row** instead lets a
# position read the segments packed after it: here A's shorter prefix reads the longer prefix,
# which contains its target 9. The authors' alignment (no flip back) makes the last position
# read its *whole* segment; flipping back makes it read only itself. Either way the user-wise
# flip never crosses a boundary.
# </details>

# %% [markdown]
# ## Check

# %%
leaks = lambda app: len(app.figures[0].data[-1].x)  # noqa: E731  (cells marked ✕)
assert leaks(flip) == 0
flip.update(flip="whole row")
assert leaks(flip) > 0
flip.update(flip="user-wise", flip_back=True)
assert leaks(flip) == 0
flip.update(flip_back=False)
reach = viz.masks.flip_reach(row_seq, "user-wise", flip_back=False)
assert (reach[4, 2:5] > 0).all() and not reach[4, 5:].any()  # A's short prefix: its own items

# %% [markdown]
# ## Exercises
#
# **Exercise 1.** Interactions at $t = (0, 1, 3, 3.5)$ days, $A = -0.5$, $\Delta = 1$. In the
# idealized TiM4Rec mask, what is $L_{3,0}$, and which inputs does $\hat\Delta$ silence?
#
# <details><summary>Solution</summary>
#
# The exponents telescope: $L_{3,0} = \exp\big(-0.5\cdot(3.5 - 0)\big) = e^{-1.75} \approx 0.1738$.
# $\hat\Delta = (0, 1, 2, 0.5)$: only input 0 ($\mathcal D_0 = 0$) is silenced.
# </details>
#
# **Exercise 2.** A packed row holds users of lengths 2, 3 and 4. With the user-wise flip and
# the authors' alignment (no flip back), which positions does the backward term at position 4
# read, and at position 2?
#
# <details><summary>Solution</summary>
#
# Position 4 is the last of the second user (positions 2–4): it reads the reversed pass's final
# state, i.e. positions **2, 3, 4**. Position 2 is that user's first position: it receives the
# reversed pass's first output, which has read only the user's last item, position **4**.
# </details>

# %% jupyter={"source_hidden": true}
# hidden check of the two solutions above
L_ex, dt_ex = viz.masks.tim4rec_mask([0.0, 1.0, 3.0, 3.5], -0.5, "idealized", 1.0)
assert abs(L_ex[3, 0].item() - 0.1738) < 1e-4 and dt_ex.tolist() == [0.0, 1.0, 2.0, 0.5]
reach_ex = viz.masks.flip_reach([0, 0, 1, 1, 1, 2, 2, 2, 2], "user-wise", flip_back=False)
assert np.flatnonzero(reach_ex[4]).tolist() == [2, 3, 4]
assert np.flatnonzero(reach_ex[2]).tolist() == [4]

# %% [markdown]
# **Takeaways.** A causal mask treats the past uniformly; SSD's $L$ decays by input-selected
# steps (by position only when the step is constant); TiM4Rec's paper, code and idealization put
# time into $L$ in three different ways, all keeping the 1-SS structure (so linear time), and
# Eq. 20 also scales each input by its $\hat\Delta$. TiSASRec's relative-time index carries
# more detail but needs quadratic attention. Packing users turns $L$ block-diagonal; masking
# hides random items; the user-wise backward pass reads a whole user without reaching a target.
#
# [← 03](03_ssd_duality.ipynb) · [index](00_index.ipynb) · next: notebook 05 trains these
# models, [05 · training](05_training.ipynb)
