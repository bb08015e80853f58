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
# Papers: **TiM4Rec** (Eq. 4–8, 10, 20; arXiv 2409.16182v3), **Mamba2** (2405.21060),
# **SSD4Rec** (2409.01192v2).
#
# [← 02 · S5 vs S6](02_s5_vs_s6.ipynb) · [index](00_index.ipynb) ·
# next: [04 · time-aware masks](04_time_aware_masks.ipynb)
#
# **The problem.** Mamba's selective scan (notebook 02) is a recurrence: step $t$ needs step
# $t-1$. GPUs are fast at one thing, matrix multiplication on tensor cores (an A100 does about
# 312 TFLOPS of BF16 matmul but only 19 TFLOPS of other FP32 arithmetic, Mamba-2 blog Part III),
# and a scan uses none of it. SSD (Mamba-2) restricts $A$ so that the whole
# sequence-to-sequence map becomes one lower-triangular matrix $M$ applied to the input,
# $Y = MX$, with $M$ a decay mask $L$ times an attention-like score $CB^\top$. This notebook
# shows *why* that restriction is needed, then computes the same map three ways: quadratically
# (as attention), in chunks (linear in the length, mostly matmuls), and step by step.

# %%
import numpy as np
import torch
from einops import einsum

from ssmlab import ssm, viz
from ssmlab.bench import measure_lengths

torch.set_default_dtype(torch.float64)  # the checks compare in double precision
_ = torch.manual_seed(0)

# %% [markdown]
# ## 1. Why a scalar A: one mask shared by every state
#
# With a diagonal $A = \mathrm{diag}(A_1, \dots, A_N)$ (Mamba-1), state $n$ decays by its own
# $e^{\Delta_k A_n}$, so the input at $j$ reaches the output at $i$ through $N$ different masks,
#
# $$y_i = \sum_{n=1}^{N} \sum_{j \le i} L^{(n)}_{ij}\, C_{in} B_{jn}\, \Delta_j x_j, \qquad
# L^{(n)}_{ij} = \exp\Big(A_n \sum_{k=j+1}^{i} \Delta_k\Big),$$
#
# the "point-to-point" mask of TiM4Rec Eq. 10 (its Fig. 3). No single $l \times l$ matrix holds
# it. SSD sets $A = a\,I$ (a scalar per head): every $L^{(n)}$ is the same $L$, it leaves the
# sum over $n$, and what is left is masked attention,
#
# $$y_i = \sum_{j \le i} L_{ij}\,(C_i \cdot B_j)\,\Delta_j x_j, \qquad Y = (L \circ CB^\top)(\Delta X).$$
#
# Toggle between the two: with a diagonal $A$ the three states' masks differ; with a scalar
# $A$ they are one mask. The Δ-scale slider stretches every step.

# %%
dt_demo = torch.nn.functional.softplus(torch.randn(12))  # (l,) one sequence, one head
why = viz.widgets_ssd.scalar_vs_diagonal_app(dt_demo, A=(-0.1, -0.5, -2.0))
why.show()

# %% [markdown]
# **Quick check.** *Which property makes an SSM equivalent to masked attention?*
#
# <details><summary>Answer</summary>
#
# A state matrix that is a scalar times the identity ($A = aI$, per head): then all states
# share one decay mask $L$, which is **1-semiseparable** (every block strictly below the
# diagonal has rank 1, section 5), and the map is $Y = (L \circ CB^\top)(\Delta X)$, attention
# with the softmax replaced by a decaying causal mask. With a diagonal $A$ each state has its own
# mask and the sum over states does not collapse into one matrix.
# </details>

# %% [markdown]
# ## Check

# %%
z = [np.array(tr.z) for tr in why.figures[0].data if tr.type == "heatmap"]
assert not np.array_equal(z[0], z[2])  # diagonal A: the states' masks differ
why.update(kind=viz.widgets_ssd.A_KINDS[0])
z = [np.array(tr.z) for tr in why.figures[0].data if tr.type == "heatmap"]
assert all(np.array_equal(z[0], zi) for zi in z)  # scalar A: one shared mask
Ls = viz.masks.state_masks(dt_demo, [-0.5] * 3)  # the sum over states collapses
Bd, Cd, xd = torch.randn(12, 3), torch.randn(12, 3), torch.randn(12)
y_states = einsum(Ls, Cd, Bd, dt_demo * xd, "n i j, i n, j n, j -> i")
torch.testing.assert_close(y_states, (Ls[0] * (Cd @ Bd.T)) @ (dt_demo * xd))

# %% [markdown]
# ## 2. The 1-semiseparable mask L
#
# With $a_k = \exp(\Delta_k A)$ the per-step decay (one head, scalar $A < 0$):
#
# $$L = \begin{bmatrix} 1 & & & \\ a_1 & 1 & & \\ a_2 a_1 & a_2 & 1 & \\
# \vdots & & \ddots & \ddots \\
# a_{t-1}\cdots a_1 & a_{t-1}\cdots a_2 & \cdots\ a_{t-1} & 1 \end{bmatrix}
# \qquad \text{(TiM4Rec Eq. 6)}$$
#
# so $L_{ij} = \exp\big(A\sum_{k=j+1}^{i}\Delta_k\big)$ for $j \le i$: how much of the input at
# $j$ is left at $i$. `ssm.ssd_mask(dt, A)` builds it from a "segment sum" (a masked cumulative
# sum of $\Delta_k A$ between $j$ and $i$; TiM4Rec calls it segment accumulation).

# %%
seqlen, n = 16, 4
dt = torch.nn.functional.softplus(torch.randn(1, seqlen, 1))  # (b l h), one head
A = torch.tensor([-0.5])  # (h,)
L = ssm.ssd_mask(dt, A)[0, 0]  # (l l)
fig = viz.masks.heatmap(
    L, title="L: decay from input j to output i (TiM4Rec Eq. 6)", ztitle="decay"
)
fig

# %% [markdown]
# ## 3. M = L ∘ CBᵀ
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
ztitles = {"L (1-SS mask)": "decay", "CBᵀ": "score", "M = L∘CBᵀ": "weight"}
fig = viz.masks.duality_heatmaps(L, CB, M, ztitles=ztitles)
fig

# %% [markdown]
# ## Check

# %%
x = torch.randn(1, seqlen, 1, 2)  # (b l h p)
y_attn = einsum(M, dt[0, :, 0, None] * x[0, :, 0], "i j, j p -> i p")  # Y = M (Δ X)
torch.testing.assert_close(ssm.ssd_quadratic(x, dt, A, B, C)[0, :, 0], y_attn)
assert torch.all(L.triu(1) == 0) and torch.all(L.diagonal() == 1)

# %% [markdown]
# **Try it.** Move the scalar $A$ and the step scale: $L$ and $M$ decay faster or slower,
# $CB^\top$ (the content) does not move. Only the product $\Delta A$ matters for $L$.

# %%
duality = viz.widgets_ssd.ssd_mask_app(dt[0, :, 0], B[0, :, 0], C[0, :, 0], A=-0.5)
duality.show()

# %% [markdown]
# ## Check

# %%
cb_before = np.array(duality.figures[0].data[1].z)
duality.update(A=-1.0)
L_half = np.array(duality.figures[0].data[0].z)
duality.update(A=-0.5, scale=2.0)  # Δ·A is the same: the same mask
np.testing.assert_allclose(np.array(duality.figures[0].data[0].z), L_half, atol=1e-4)
assert np.array_equal(np.array(duality.figures[0].data[1].z), cb_before)  # CBᵀ never moves
duality.update(scale=1.0)

# %% [markdown]
# ## 4. Three forms of one map
#
# - **quadratic** (`ssd_quadratic`): build $M$ and multiply, $O(l^2)$, like attention;
# - **chunked** (`ssd_chunked`, what `ssd` runs on CPU): quadratic inside blocks of
#   `chunk_size`, a state passed between blocks, linear in $l$;
# - **recurrent** (`ssd_recurrent`): with a state $h_t \in \mathbb{R}^{P \times N}$ per head,
#   $h_t = a_t h_{t-1} + \Delta_t\, x_t B_t^\top$ and $y_t = h_t C_t$, one step at a time.
#
# Shapes: `x` is (b, l, h, p): $h$ **heads**, each with its own scalar $A$ and step $\Delta$,
# and $p$ channels per head; `B`, `C` are (b, l, g, n): $g$ **groups** of $N$-dimensional keys
# and queries, shared by $h/g$ heads each (like grouped-query attention). Same arguments, same
# output:

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
# ## 5. The chunked algorithm in four steps
#
# Cut $L$ into chunks of size $c$. Every block **strictly below** the diagonal blocks is a
# product of three decays, so it has rank 1 (this is what 1-semiseparable means). With
# $c_i = A\sum_{k \le i}\Delta_k$ and $e(J)$ the last position of chunk $J$, for $j$ in chunk
# $J$ and $i$ in a later chunk $I$:
#
# $$L_{ij} = \underbrace{e^{c_i - c_{e(I-1)}}}_{\text{4. state to output}}\;
# \underbrace{e^{c_{e(I-1)} - c_{e(J)}}}_{\text{3. state passing}}\;
# \underbrace{e^{c_{e(J)} - c_j}}_{\text{2. chunk state}}$$
#
# The four steps of `ssd_chunked` (mamba-ssm's `ssd_minimal`):
#
# 1. **diagonal blocks**: a small masked attention inside each chunk, $O(c^2)$ per chunk;
# 2. **chunk states**: each chunk sums its inputs, decayed to the chunk's end, into a state
#    $s_J = \sum_{j \in J} e^{c_{e(J)} - c_j}\,\Delta_j x_j B_j^\top$ ($P \times N$);
# 3. **state passing**: a short recurrence over the $l/c$ chunks carries each state forward
#    across whole chunks;
# 4. **state to output**: position $i$ reads the state entering its chunk, decayed to $i$,
#    through $C_i$.
#
# Each panel below shows the factor that step contributes to every entry of $L$ (steps 2–4 only
# below the diagonal blocks); step 1 plus the product of steps 2–4 is $L$.

# %%
steps4 = viz.masks.chunk_factors(dt[0, :, 0], A.item(), chunk_size=4)
starts = viz.masks.chunk_boundaries(seqlen, 4)
title = "The four steps of the chunked SSD, chunk size 4"
fig = viz.masks.mask_grid(steps4, title, boundaries=starts, diagonal_only=False, ztitles="factor")
fig

# %% [markdown]
# ## Check

# %%
s1, s2, s3, s4 = steps4.values()
torch.testing.assert_close(torch.from_numpy(s1 + s2 * s3 * s4), L)
for c in (2, 4, 8):  # every block below the diagonal blocks has rank 1; all chunk sizes agree
    blocks = [L[i : i + c, j : j + c] for i in range(c, seqlen, c) for j in range(0, i, c)]
    assert all(torch.linalg.matrix_rank(blk).item() == 1 for blk in blocks)
    y_c = ssm.ssd_chunked(x4, dt4, A4, B4, C4, chunk_size=c)
    torch.testing.assert_close(y_c, forms["ssd_quadratic"])

# %% [markdown]
# ## 6. The contraction order: C (Bᵀ X), the linear-attention trick
#
# Without a mask, attention can be computed in two orders: $(CB^\top)X$ builds an $l \times l$
# matrix, $O(l^2(N + P))$; $C(B^\top X)$ first sums the inputs into one $N \times P$ matrix,
# $O(lNP)$: linear in $l$. The causal decaying mask forbids the second order globally, but not
# between chunks: steps 2–4 *are* it (a chunk state is $B^\top X$ over the chunk, with decays),
# and only the diagonal blocks keep the quadratic order. Below: the output of chunk 1
# (positions 4–7) = its diagonal block + $C_i$ times the state of chunk 0, decayed.

# %%
xs = dt[0, :, 0, None] * x[0, :, 0]  # (l p) Δ·X, one head
Bh, Ch = B[0, :, 0], C[0, :, 0]  # (l n)
state0 = einsum(torch.from_numpy(s2[4, :4]), xs[:4], Bh[:4], "j, j p, j n -> p n")  # step 2
inner = einsum(M[4:8, 4:8], xs[4:8], "i j, j p -> i p")  # step 1
outer = einsum(torch.from_numpy(s4[4:8, 0]), Ch[4:8], state0, "i, i n, p n -> i p")  # step 4
chunk1 = inner + outer

# %% [markdown]
# ## Check

# %%
torch.testing.assert_close(chunk1, y_attn[4:8])  # the same as the quadratic form
X1 = torch.randn(seqlen, 2)  # no mask: the two orders agree
torch.testing.assert_close((Ch @ Bh.T) @ X1, Ch @ (Bh.T @ X1))

# %% [markdown]
# Try other chunk sizes with the slider:

# %%
app = viz.widgets.chunk_app(L, chunk_size=4, choices=(2, 4, 8, 16))
app.show()

# %% [markdown]
# ## 7. Cost against length, and the crossover
#
# Measured live on this machine (small sizes, a few seconds). The quadratic form grows like
# $l^2$, the chunked form like $l$; the Python-loop recurrence is linear too but pays per step.
# Your numbers will differ, so this cell's output is not compared by `pytest --nbval`.
#
# Asymptotics are not the whole story: on short sequences the quadratic form is often
# *faster*. It is one batched matmul, while the chunked form runs four steps with several small
# einsums and a loop over chunks, whose fixed overhead dominates while $l^2$ is small. On the
# 2-core CPU where this notebook was written, quadratic won up to $l \approx 128$ (0.78 vs
# 0.88 ms at 128, 3.37 vs 0.98 ms at 256). Recommendation histories are often that short
# (SASRec and TiM4Rec cap them at 50–200), so the quadratic form is a sound choice there; the
# chunked form matters for long histories and on GPUs, where its blocks are tensor-core
# matmuls.

# %%
# NBVAL_IGNORE_OUTPUT
lengths = [32, 64, 128, 256, 512]


def inputs(seqlen):  # x, dt, A, B, C for one row, 2 heads, float32 as in training
    shapes = ((2, 16), (2,), (1, 16), (1, 16))
    x, dt, B, C = (torch.randn(1, seqlen, *s, dtype=torch.float32) for s in shapes)
    return x, dt.sigmoid(), -torch.rand(2, dtype=torch.float32) - 0.1, B, C


named = {f.__name__: f for f in three}
seconds = measure_lengths(named, inputs, lengths, chunk_size=32)  # 1 thread, median of 5
quad, chunked = seconds["ssd_quadratic"], seconds["ssd_chunked"]
print(
    "quadratic faster than chunked at l =", [n for n, q, c in zip(lengths, quad, chunked) if q < c]
)
fig = viz.timing.cost_vs_length(lengths, seconds, title="SSD forms: time per call (this CPU)")
fig

# %% [markdown]
# ## Check

# %%
assert all(np.all(np.isfinite(s)) and np.all(s > 0) for s in seconds.values())
assert set(seconds) == {"ssd_quadratic", "ssd_chunked", "ssd_recurrent"}
assert all(len(s) == len(lengths) for s in seconds.values())

# %% [markdown]
# ## Exercises
#
# **Exercise 1.** Build $L$ by hand from `dt` and `A` (one head) with a cumulative sum:
# $L_{ij} = \exp\big(A(s_i - s_j)\big)$ for $j \le i$ and 0 above, with $s = \mathrm{cumsum}(\Delta)$.
#
# <details><summary>Solution</summary>
#
# ```python
# s = torch.cumsum(dt[0, :, 0], 0)
# L_hand = torch.exp(A * (s[:, None] - s[None, :])).tril()
# ```
# (`ssm.ssd_mask` sums the $\Delta_k$ between $j$ and $i$ directly instead of subtracting two
# large cumulative sums, which loses precision on long sequences.)
# </details>
#
# **Exercise 2.** For unmasked (linear) attention with $l = 1000$, $N = 16$, $P = 64$, count
# the multiply-adds of $(CB^\top)X$ and of $C(B^\top X)$.
#
# <details><summary>Solution</summary>
#
# $(CB^\top)X$: $l^2N + l^2P = 10^6 \cdot 80 = 8\times 10^7$. $C(B^\top X)$: $lNP + lNP =
# 2\,048\,000 \approx 2\times 10^6$, 39 times fewer, and the ratio grows with $l$.
# </details>

# %% jupyter={"source_hidden": true}
# hidden check of the two solutions above
s_cum = torch.cumsum(dt[0, :, 0], 0)
L_hand = torch.exp(A * (s_cum[:, None] - s_cum[None, :])).tril()
torch.testing.assert_close(L_hand, L)
l_, n_, p_ = 1000, 16, 64
assert l_ * l_ * n_ + l_ * l_ * p_ == 80_000_000 and 2 * l_ * n_ * p_ == 2_048_000

# %% [markdown]
# **Takeaways.** A scalar $A$ per head makes every state share one 1-semiseparable mask, so
# SSD's output is a masked attention $Y = (L \circ CB^\top)(\Delta X)$. The rank-1 blocks let the
# chunked form reorder the contraction as $C(B^\top X)$ between chunks and run in linear time
# with the same numbers; on short sequences the plain quadratic form can still be faster.
#
# [← 02](02_s5_vs_s6.ipynb) · [index](00_index.ipynb) · next: time in the mask (TiM4Rec) and
# packed users (SSD4Rec), [04 · time-aware masks](04_time_aware_masks.ipynb)
