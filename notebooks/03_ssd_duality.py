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
# # 03 · SSD: a state space model is a masked attention
#
# Papers: **TiM4Rec** (Eq. 4–8, 20; arXiv 2409.16182v3), **Mamba2** (2405.21060),
# **SSD4Rec** (2409.01192v2).
#
# SSD (Mamba2) restricts $A$ to a scalar per head. Then the whole sequence-to-sequence map is one
# lower-triangular matrix $M$ applied to the input, $Y = MX$, and $M$ factors into a decay mask
# $L$ times an attention-like score $CB^\top$. The same map can be computed three ways:
# quadratically (as attention), in chunks (linear in the length), or step by step (a recurrence).

# %%
import numpy as np
import torch
from einops import einsum

from ssmlab import ssm, viz

torch.set_default_dtype(torch.float64)  # the checks compare in double precision
_ = torch.manual_seed(0)

# %% [markdown]
# ## 1. The 1-semiseparable mask L
#
# With $a_k = \exp(\Delta_k A)$ the per-step decay (one head, scalar $A < 0$):
#
# $$L = \begin{bmatrix} 1 & & & \\ a_1 & 1 & & \\ a_2 a_1 & a_2 & 1 & \\
# \vdots & & \ddots & \ddots \\
# a_{t-1}\cdots a_1 & a_{t-1}\cdots a_2 & \cdots\ a_{t-1} & 1 \end{bmatrix}
# \qquad \text{(TiM4Rec Eq. 6)}$$
#
# so $L_{ij} = \exp\big(A\sum_{k=j+1}^{i}\Delta_k\big)$ for $j \le i$: how much of the input at
# $j$ is left at $i$. `ssm.ssd_mask(dt, A)` builds it.

# %%
seqlen, n = 16, 4
dt = torch.nn.functional.softplus(torch.randn(1, seqlen, 1))  # (b l h), one head
A = torch.tensor([-0.5])  # (h,)
L = ssm.ssd_mask(dt, A)[0, 0]  # (l l)
fig = viz.masks.heatmap(L, title="L: decay from input j to output i (TiM4Rec Eq. 6)")
fig

# %% [markdown]
# ## 2. M = L ∘ CBᵀ
#
# With input-dependent $B_j, C_i \in \mathbb{R}^N$ (the "keys" and "queries"),
#
# $$M = L \circ CB^\top \quad \text{(TiM4Rec Eq. 7)}, \qquad
# Y = (L \circ CB^\top)X = (L \circ QK^\top)V \quad \text{(TiM4Rec Eq. 8)}$$
#
# masked attention without the softmax, where the mask decays instead of being 0/1. In the code
# (and TiM4Rec Eq. 20) the input is scaled by the step first, $\bar B_j = \Delta_j B_j$ (Eq. 13),
# so the map is $Y = (L \circ CB^\top)(\Delta X)$.

# %%
B, C = torch.randn(1, seqlen, 1, n), torch.randn(1, seqlen, 1, n)  # (b l g n)
CB = einsum(C[0, :, 0], B[0, :, 0], "i n, j n -> i j")  # (l l)
M = L * CB
fig = viz.masks.duality_heatmaps(L, CB, M)
fig

# %% [markdown]
# ## Check

# %%
x = torch.randn(1, seqlen, 1, 2)  # (b l h p)
y_attn = einsum(M, dt[0, :, 0, None] * x[0, :, 0], "i j, j p -> i p")  # Y = M (Δ X)
torch.testing.assert_close(ssm.ssd_quadratic(x, dt, A, B, C)[0, :, 0], y_attn)
assert torch.all(L.triu(1) == 0) and torch.all(L.diagonal() == 1)

# %% [markdown]
# ## 3. Three forms of one map
#
# - **quadratic** (`ssd_quadratic`): build $M$ and multiply, $O(l^2)$, like attention;
# - **chunked** (`ssd_chunked`, what `ssd` runs on CPU): quadratic inside blocks of
#   `chunk_size`, a state of size $N$ passed between blocks, linear in $l$;
# - **recurrent** (`ssd_recurrent`): $h_t = a_t h_{t-1} + \Delta_t B_t x_t^\top$,
#   $y_t = h_t C_t$, one step at a time.
#
# Same arguments, same output, on a batch with several heads:

# %%
b, seqlen64, h, p, g, n = 2, 64, 4, 8, 2, 16
x4, dt4 = torch.randn(b, seqlen64, h, p), torch.nn.functional.softplus(torch.randn(b, seqlen64, h))
A4 = -torch.rand(h) - 0.2
B4, C4 = torch.randn(b, seqlen64, g, n), torch.randn(b, seqlen64, g, n)
three = (ssm.ssd_quadratic, ssm.ssd_chunked, ssm.ssd_recurrent)
forms = {f.__name__: f(x4, dt4, A4, B4, C4, chunk_size=16) for f in three}
{name: tuple(y.shape) for name, y in forms.items()}

# %% [markdown]
# ## Check

# %%
torch.testing.assert_close(forms["ssd_chunked"], forms["ssd_quadratic"])
torch.testing.assert_close(forms["ssd_recurrent"], forms["ssd_quadratic"])
torch.testing.assert_close(ssm.ssd(x4, dt4, A4, B4, C4, chunk_size=16), forms["ssd_quadratic"])

# %% [markdown]
# ## 4. The block structure behind the chunked form
#
# Cut $L$ into chunks of size $c$. The **diagonal blocks** are small masked attentions computed
# directly. Every block **below** them only needs the state at the chunk boundary: it is the
# product of a column of decays and a row of decays, a rank-1 matrix. That is what makes
# the chunked form linear in $l$ (TiM4Rec Sec. 2.4, "segment accumulation").

# %%
diag, off = viz.masks.chunk_split(L, 4)
parts = {"L": L, "diagonal blocks": diag, "below: through states": off}
starts = viz.masks.chunk_boundaries(seqlen, 4)
fig = viz.masks.mask_grid(parts, "L in chunks of 4", boundaries=starts, diagonal_only=False)
fig

# %% [markdown]
# Try other chunk sizes with the slider (the widget appears when the notebook runs):

# %%
app = viz.widgets.chunk_app(L, chunk_size=4, choices=(2, 4, 8, 16))
app

# %% [markdown]
# ## Check

# %%
torch.testing.assert_close(torch.from_numpy(diag + off), L)
for c in (2, 4, 8):  # every block below the diagonal blocks has rank 1; all chunk sizes agree
    blocks = [L[i : i + c, j : j + c] for i in range(c, seqlen, c) for j in range(0, i, c)]
    assert all(torch.linalg.matrix_rank(blk).item() == 1 for blk in blocks)
    y_c = ssm.ssd_chunked(x4, dt4, A4, B4, C4, chunk_size=c)
    torch.testing.assert_close(y_c, forms["ssd_quadratic"])

# %% [markdown]
# ## 5. Cost against length
#
# Measured live on this machine (small sizes, a few seconds). The quadratic form grows like
# $l^2$, the chunked form like $l$; the Python-loop recurrence is linear too but pays per step.
# Your numbers will differ, so this cell's output is not compared by `pytest --nbval`.

# %%
# NBVAL_IGNORE_OUTPUT
lengths = [32, 64, 128, 256, 512]


def inputs(seqlen):  # x, dt, A, B, C for one row, 2 heads, float32 as in training
    shapes = ((2, 16), (2,), (1, 16), (1, 16))
    x, dt, B, C = (torch.randn(1, seqlen, *s, dtype=torch.float32) for s in shapes)
    return x, dt.sigmoid(), -torch.rand(2, dtype=torch.float32) - 0.1, B, C


named = {f.__name__: f for f in three}
seconds = viz.timing.measure_lengths(named, inputs, lengths, chunk_size=32)  # 1 thread, median of 5
fig = viz.timing.cost_vs_length(lengths, seconds, title="SSD forms: time per call (this CPU)")
fig

# %% [markdown]
# ## Check

# %%
assert all(np.all(np.isfinite(s)) and np.all(s > 0) for s in seconds.values())
assert set(seconds) == {"ssd_quadratic", "ssd_chunked", "ssd_recurrent"}
assert all(len(s) == len(lengths) for s in seconds.values())

# %% [markdown]
# **Takeaways.** SSD's output is a masked attention $Y = (L \circ CB^\top)(\Delta X)$ whose mask
# $L$ is 1-semiseparable, and that structure lets the chunked form run in linear time while
# giving the same numbers. Notebook 04 puts time into $L$ (TiM4Rec) and packs several users
# into one row (SSD4Rec).
