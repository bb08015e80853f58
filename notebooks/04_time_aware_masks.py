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
# Papers: **TiM4Rec** (Eq. 6, 9, 11, 12, 18, 19; arXiv 2409.16182v3), **SSD4Rec** (2409.01192v2:
# variable-length packed sequences, Bi-SSD), **SASRec** (1808.09781), **TiSASRec** (WSDM 2020).
#
# Notebook 03 showed that SSD is masked attention with a decaying mask $L$. Here we compare the
# masks four recommenders use, put real time gaps into $L$ the way TiM4Rec does, check that the
# result keeps the structure that makes SSD fast, and pack several users into one row (SSD4Rec).

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
# One user with 12 interactions (days). The masks, row $i$ = output position:
#
# - **SASRec**: causal 0/1 mask, every past item weighs the same before the softmax;
# - **SSD**: $L_{ij} = \exp\big(A\sum_{k=j+1}^{i}\Delta\big) = a^{\,i-j}$ with a constant step
#   (TiM4Rec Eq. 6): decay by position only;
# - **TiM4Rec**: the step is scaled by the time difference,
#   $\hat\Delta_k = \Delta\cdot\mathcal{D}_k$ (TiM4Rec Eq. 18, with $\mathcal{D}$ from Eq. 9), so
#   $\hat a_k = \exp(\hat\Delta_k A)$ and
#   $$L_{ij} = \hat a_i \hat a_{i-1} \cdots \hat a_{j+1} \qquad \text{(TiM4Rec Eq. 12, 19)}$$
#   decay by elapsed time;
# - **TiSASRec**: the relative time matrix $\hat d_{mn} = t_m - t_n$ (TiM4Rec Eq. 11), as TiSASRec
#   uses it: $\min(\lfloor |t_i - t_j| / r_{\min} \rfloor, k)$, embedded and added to the attention
#   (shown on the causal part, the pairs attention may use).

# %%
t = torch.tensor([0.0, 1.0, 1.5, 1.5, 2.0, 6.0, 6.2, 7.0, 15.0, 15.5, 16.0, 30.0])
seqlen, A = len(t), -0.3
masks = {
    "SASRec: causal": causal_mask(seqlen).double(),
    "SSD: L, constant Δ": ssm.ssd_mask(torch.ones(1, seqlen, 1), torch.tensor([A]))[0, 0],
    "TiM4Rec: L with Δ·D": viz.masks.time_aware_mask(t, A, dt=1.0),
    "TiSASRec: clipped |tᵢ − tⱼ|": tisasrec_interval_matrix(t[None], torch.tensor([seqlen]), 16)[0],
}
masks["TiSASRec: clipped |tᵢ − tⱼ|"] = masks["TiSASRec: clipped |tᵢ − tⱼ|"].double().tril()
fig = viz.masks.mask_grid(masks, title="Masks of four recommenders (12 interactions)")
fig

# %% [markdown]
# ## Check

# %%
# the time differences telescope: sum_{k=j+1..i} D_k = t_i − t_j, so L_ij = exp(A Δ (t_i − t_j))
exact = torch.exp(A * (t[:, None] - t[None, :])).tril()
torch.testing.assert_close(masks["TiM4Rec: L with Δ·D"], exact)
pos = torch.arange(seqlen).double()
torch.testing.assert_close(masks["SSD: L, constant Δ"], torch.exp(A * (pos[:, None] - pos)).tril())
assert torch.equal(masks["SASRec: causal"], torch.ones(seqlen, seqlen).tril())

# %% [markdown]
# ## 2. The 1-SS property survives the time gaps
#
# $L$ is **1-semiseparable**: every block taken on or below the diagonal,
# $L[k{:}, {:}k]$, has rank 1 (it is $\exp(A\hat c_i)\exp(-A\hat c_j)$ with $\hat c$ a cumulative
# sum). That is what lets SSD pass a state between chunks instead of materializing $L$
# (notebook 03).
# TiM4Rec inserts the time differences as steps precisely to keep it: using the matrix
# $\hat{\mathcal D}$ of Eq. 11 directly "compromises the 1-SS matrix property". TiSASRec's clipped
# interval matrix has no such structure, so it needs the full $l \times l$ attention.


# %%
def max_offdiag_rank(m):
    return max(torch.linalg.matrix_rank(m[k:, :k]).item() for k in range(1, m.shape[0]))


{name: max_offdiag_rank(m) for name, m in masks.items()}

# %% [markdown]
# ## Check

# %%
ranks = {name: max_offdiag_rank(m) for name, m in masks.items()}
assert ranks["SSD: L, constant Δ"] == 1 and ranks["TiM4Rec: L with Δ·D"] == 1
assert ranks["TiSASRec: clipped |tᵢ − tⱼ|"] > 1

# %% [markdown]
# ## 3. Try it: edit the gaps between interactions
#
# One slider per gap $t_k - t_{k-1}$ (8 interactions). SSD's mask ignores time; TiM4Rec's darkens
# across long gaps and stays 1 across a gap of 0; TiSASRec's counts gaps in units of the
# smallest one. (The widget appears when the notebook runs.)


# %%
def tisasrec(ts):  # viz never imports the layers: the notebook passes this function in
    return tisasrec_interval_matrix(ts, torch.tensor([ts.shape[1]]), time_span=16)[0].tril()


gaps = [1.0, 0.5, 2.0, 0.0, 3.0, 1.0, 0.2]
app = viz.widgets.gap_mask_app(gaps, A=-0.5, dt=1.0, interval_fn=tisasrec)
app

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
# ## 4. Packed variable-length sequences (SSD4Rec)
#
# SSD4Rec concatenates the sequences of a batch into one row, without padding or truncation,
# and marks where each user starts (`seq_idx`). No state may cross a boundary: the mask becomes
# block-diagonal, one 1-SS block per user, and the time differences restart at 0 at every
# sequence start (TiM4Rec Eq. 9, per sequence).

# %%
seq_idx = torch.tensor([[0] * 5 + [1] * 4 + [2] * 7])  # (b l): users of lengths 5, 4, 7
seqlen = seq_idx.shape[1]
dt_p = torch.nn.functional.softplus(torch.randn(1, seqlen, 1))  # (b l h)
A1 = torch.tensor([-0.4])
L_packed = ssm.ssd_mask(dt_p, A1, seq_idx)[0, 0]
fig = viz.masks.packed_mask(L_packed, seq_idx[0], title="Three users packed in one row")
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
# ## 5. The bidirectional pass of SSD4Rec
#
# Bi-SSD runs the same SSD a second time on every sequence **reversed within its own
# boundaries**, then flips the result back: position $i$ then summarizes the *later* items of its
# own user. In the original order the backward mask is upper-triangular inside each block, and
# still never crosses users.

# %%
perm = reverse_within(torch.arange(seqlen)[None], seq_idx)[0]  # the within-sequence reversal
L_rev = ssm.ssd_mask(reverse_within(dt_p, seq_idx), A1, seq_idx)[0, 0]
L_bwd = L_rev[perm][:, perm]  # back to the original order
passes = {"forward pass": L_packed, "backward pass": L_bwd}
starts = viz.masks.sequence_boundaries(seq_idx)
fig = viz.masks.mask_grid(passes, title="Bi-SSD masks (SSD4Rec)", boundaries=starts)
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
# **Takeaways.** A causal mask treats the past uniformly; SSD's $L$ decays by position;
# TiM4Rec's $L$ decays by elapsed time and keeps the 1-SS structure (so it stays linear-time);
# TiSASRec's relative-time matrix carries more detail but needs quadratic attention. Packing
# users turns $L$ block-diagonal, and the backward pass of Bi-SSD mirrors each block.
# Notebook 05 trains these models.
