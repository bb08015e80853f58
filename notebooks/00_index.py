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
# # ssmlab · the tour
#
# State space models for sequential recommendation, one idea per notebook. Each notebook puts an
# equation (with its paper tag) above a short cell that calls `ssmlab`, draws it, and checks it.
# Drag the sliders to see states decay and masks change (every app is followed by a static
# snapshot, so the figures also show on GitHub or in a notebook opened without a kernel); run
# `pytest --nbval notebooks/` to check that every stored output is still what the code
# produces. Each notebook ends with exercises whose solutions are folded in *Solution* boxes and
# checked by a hidden cell. Where a paper and the code differ, a **Paper vs code** box says so.
#
# | notebook | what you will see | papers |
# |---|---|---|
# | [01_ssm_discretization](01_ssm_discretization.ipynb) | continuous SSM; ZOH vs bilinear vs Euler vs Mamba's approximation; Δt and eigenvalue sliders; stability regions; error against Δt; why Mamba's $\bar B$ grows with Δ and time-aware models must tame their gaps | TiM4Rec Eq. 1, 2, 13; S4; S5; Mamba |
# | [02_s5_vs_s6](02_s5_vs_s6.ipynb) | SS4Rec's S5 with the gap to the next interaction (and the query time) vs S6 with Δ from the input; the state relaxing under ZOH on an irregular timeline you can stretch; Δt = 0 and gaps of months; parallel scan = recurrence; an early item surviving many irrelevant ones | SS4Rec; TiM4Rec Eq. 2, 3, 13 |
# | [03_ssd_duality](03_ssd_duality.ipynb) | why a scalar A gives one shared mask (toggle scalar vs diagonal); SSD as masked attention with A and Δ sliders; quadratic = chunked = recurrent; the four steps of the chunked algorithm; the contraction order C(BᵀX); cost against length and the quadratic-vs-chunked crossover | TiM4Rec Eq. 6–8, 10, 20; Mamba2 |
# | [04_time_aware_masks](04_time_aware_masks.ipynb) | SASRec's causal mask, SSD's L, TiM4Rec's time-aware L (paper / code / idealized toggle, and Eq. 20's Δ̂X), TiSASRec's bucket index; the 1-SS property; packed sequences; Bernoulli masking; Bi-SSD and why the user-wise flip hides the target | TiM4Rec Eq. 9, 11, 12, 16–20; SSD4Rec |
# | [05_training](05_training.ipynb) | train TiM4Rec, SSD4Rec\*, SS4Rec and Mamba4Rec on the `toy` dataset (or ML-100K, Beauty, ML-1M on a GPU); training curves, metric table, the "w/o time" ablation, TiM4Rec's initialization and a probe of its learned steps, step time against length, the converged Amazon-Beauty runs beside Table 3; SS4Rec asked "what at time t" with a slider, and how its loss sees time | TiM4Rec Eq. 9, 16–18, 21–22; SS4Rec; SSD4Rec; Mamba4Rec |
#
# The papers: **SS4Rec** (arXiv 2502.08132), **TiM4Rec** (2409.16182), **SSD4Rec**
# (2409.01192); versions and the baselines' references are in `references.md`.
#
# Notation used throughout: $\Delta$ is `dt`, the input is $x$ (S4 calls it $u$), the state is
# $h$, $L$ is SSD's mask (never the length, which is $l$), $M = L \circ CB^\top$.

# %% [markdown]
# ## Glossary
#
# - **SSM (state space model)**: $h'(t) = Ah(t) + Bx(t)$, $y = Ch + Dx$; run on a sequence after
#   **discretization** with a step $\Delta$: $h_k = \bar A h_{k-1} + \bar B x_k$ (notebook 01).
# - **ZOH (zero-order hold)**: discretization that holds the input constant over the step and
#   solves the ODE exactly: $\bar A = e^{\Delta A}$, $\bar B = (\Delta A)^{-1}(e^{\Delta A} - I)\Delta B$.
# - **Scan**: computing every prefix state $h_1, \dots, h_l$ of the recurrence. A **parallel
#   (associative) scan** combines the steps $(\bar A_k, \bar B_k x_k)$ with the associative
#   operator $(a_1, b_1)\bullet(a_2, b_2) = (a_2a_1, a_2b_1 + b_2)$ in a tree of depth
#   $O(\log l)$ (notebook 02, `ssm/scan.py`).
# - **S4 / S5 / S6**: structured SSMs. S4 is linear time-invariant (one $\Delta$ for every
#   step, so the map is a convolution); **S5** runs one multi-input SSM with a diagonal $A$ by a
#   parallel scan, and SS4Rec feeds it real time gaps as steps; **S6** is Mamba's *selective*
#   SSM: $\Delta$, $B$, $C$ computed from the input (notebook 02).
# - **Selective**: parameters (here the step $\Delta_t$) that depend on the current input.
# - **softplus**: $\mathrm{softplus}(z) = \ln(1 + e^z)$, a smooth ReLU; keeps $\Delta > 0$.
# - **SSD (state space duality, Mamba-2)**: an S6 whose $A$ is a scalar per head, so the map is
#   a masked attention $Y = (L\circ CB^\top)(\Delta X)$ (notebook 03).
# - **Head / group**: SSD splits the channels into heads, each with its own $A$ and $\Delta$;
#   $B$ and $C$ are shared by the heads of a group (like grouped-query attention).
# - **1-SS (1-semiseparable) mask**: a lower-triangular $L$ whose blocks strictly below the
#   diagonal all have rank 1; here $L_{ij} = \exp(A\sum_{k=j+1}^{i}\Delta_k)$ (notebooks 03, 04).
# - **Segment sum / segment accumulation**: the sums $\sum_{k=j+1}^{i}\Delta_k A$ behind $L$.
# - **Chunked SSD**: the linear-time algorithm: quadratic inside chunks, states between them.
# - **Leave-one-out**: each user's last interaction is the test target, the one before it the
#   validation target (notebook 05).
# - **Full ranking**: the model scores every item, and the target's rank $r$ among all of them
#   is used (no sampled negatives).
# - **HR@K / NDCG@K / MRR@K**: the share of users with $r \le K$; the mean of
#   $1/\log_2(r+1)$ when $r \le K$; the mean of $1/r$ when $r \le K$ (0 otherwise).
# - **"last" / "all" objective**: train on one target per row (the next item after a prefix,
#   with **prefix augmentation**: every prefix of a history becomes a row) or on the next item at
#   every position of a sequence in one pass.
# - **Packed sequences**: several users' histories concatenated in one row, with `seq_idx`
#   marking each user, so no padding is computed (SSD4Rec, notebook 04).

# %%
import torch

from ssmlab import ssm, viz
from ssmlab.metrics import rank_metrics, target_ranks

viz.__all__  # the figure modules; widgets, widgets_ssd, widgets_training wire sliders to them

# %% [markdown]
# Which path do the kernels take on this machine? `"torch"` (the readable reference, on CPU) or
# `"mamba_ssm"` (the fused CUDA kernels, when installed on a GPU machine).

# %%
# NBVAL_IGNORE_OUTPUT
ssm.backend()

# %% [markdown]
# ## Check

# %%
# The path `ssm.backend()` names runs on this machine and computes what the step-by-step
# reference computes; the figure modules return one trace per curve and one heatmap per mask.
device = "cuda" if ssm.backend() == "mamba_ssm" else "cpu"
gen = torch.Generator().manual_seed(0)
x, B, C = (torch.randn(1, 16, *shape, generator=gen) for shape in ((2, 8), (1, 16), (1, 16)))
dt, A = torch.rand(1, 16, 2, generator=gen) + 0.1, -torch.rand(2, generator=gen) - 0.2
y = ssm.ssd(*(t.to(device) for t in (x, dt, A, B, C)), chunk_size=8).cpu()  # (1 16 2 8)
tol = 1e-4 if device == "cpu" else 1e-2  # the CUDA kernels may use TF32 matmuls
assert torch.allclose(y, ssm.ssd_recurrent(x, dt, A, B, C), atol=tol, rtol=tol)
t, h = viz.discretization.discrete_step_response(-1.0, 1.0, 0.5, 4.0, "zoh")
exact = viz.discretization.exact_step_response(-1.0, 1.0, t)
fig = viz.discretization.step_response(t, exact, {"zoh": (t, h)})
assert [trace.name for trace in fig.data] == ["exact", "zoh"]
masks = {"causal": torch.ones(16, 16).tril(), "SSD L": ssm.ssd_mask(dt, A)[0, 0]}
assert [trace.type for trace in viz.masks.mask_grid(masks).data] == ["heatmap", "heatmap"]

# %% [markdown]
# ## Exercises
#
# **Exercise 1.** Leave-one-out on one user whose items are, in time order, $(5, 2, 9, 7, 3)$:
# which item is the test target, which the validation target, and which history does the
# model see when it predicts the test target?
#
# <details><summary>Solution</summary>
#
# Test target 3, validation target 7. At test time the model sees $(5, 2, 9, 7)$ (the
# validation item is part of the history); at validation time it sees $(5, 2, 9)$.
# </details>
#
# **Exercise 2.** A model scores 5 items as $(0.1, 2.0, -1.0, 0.7, 3.0)$ for items $1..5$ and the
# target is item 4. What is its rank under full ranking, and its NDCG@10?
#
# <details><summary>Solution</summary>
#
# Two items score higher (items 5 and 2), so $r = 3$ and NDCG@10 $= 1/\log_2 4 = 0.5$.
# </details>

# %% jupyter={"source_hidden": true}
# hidden check of the two solutions above
history = [5, 2, 9, 7, 3]
assert (history[-1], history[-2], history[:-1]) == (3, 7, [5, 2, 9, 7])
scores = torch.tensor([[0.0, 0.1, 2.0, -1.0, 0.7, 3.0]])  # column 0: the padding id, ignored
rank = target_ranks(scores, torch.tensor([4]))
assert rank.tolist() == [3] and rank_metrics(rank, ks=(10,))["ndcg@10"].item() == 0.5

# %% [markdown]
# Start with [01 · discretization](01_ssm_discretization.ipynb).
