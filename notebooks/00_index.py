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
# Drag the sliders to see states decay and masks change; run `pytest --nbval notebooks/` to check
# that every stored output is still what the code produces.
#
# | notebook | what you will see | papers |
# |---|---|---|
# | [01_ssm_discretization](01_ssm_discretization.ipynb) | continuous SSM; ZOH vs bilinear vs Euler vs Mamba's approximation; Δt and eigenvalue sliders; stability regions; error against Δt | TiM4Rec Eq. 1, 2, 13; S4; Mamba |
# | [02_s5_vs_s6](02_s5_vs_s6.ipynb) | S5 with Δt from real timestamps vs S6 with Δ from the input; an irregular timeline you can stretch; Δt = 0 and gaps of months; parallel scan = recurrence | SS4Rec; TiM4Rec Eq. 2, 3, 9, 13 |
# | [03_ssd_duality](03_ssd_duality.ipynb) | SSD as masked attention: L, CBᵀ, M heatmaps; quadratic = chunked = recurrent; chunk-size slider; cost against length | TiM4Rec Eq. 6–8, 20; Mamba2 |
# | [04_time_aware_masks](04_time_aware_masks.ipynb) | SASRec's causal mask, SSD's L, TiM4Rec's time-aware L, TiSASRec's relative-time matrix; the 1-SS property; packed sequences and the Bi-SSD backward pass | TiM4Rec Eq. 9, 11, 12, 18, 19; SSD4Rec |
# | [05_training](05_training.ipynb) | train TiM4Rec, SSD4Rec\*, SS4Rec and Mamba4Rec on the `toy` dataset (or ML-100K, Beauty, ML-1M on a GPU); training curves, metric table, the "w/o time" ablation, step time against length; SS4Rec asked "what at time t" with a slider | TiM4Rec Eq. 9, 16–18, 21–22; SS4Rec; SSD4Rec; Mamba4Rec |
#
# The papers: **SS4Rec** (arXiv 2502.08132), **TiM4Rec** (2409.16182), **SSD4Rec**
# (2409.01192); versions and the baselines' references are in `references.md`.
#
# Notation used throughout: $\Delta$ is `dt`, the input is $x$ (S4 calls it $u$), the state is
# $h$, $L$ is SSD's mask (never the length, which is $l$), $M = L \circ CB^\top$.

# %%
from ssmlab import ssm, viz

viz.__all__  # the figure modules: kernels, masks, scans, timing; widgets wires sliders to them

# %% [markdown]
# Which path do the kernels take on this machine? `"torch"` (the readable reference, on CPU) or
# `"mamba_ssm"` (the fused CUDA kernels, when installed on a GPU machine).

# %%
# NBVAL_IGNORE_OUTPUT
ssm.backend()

# %% [markdown]
# ## Check

# %%
assert ssm.backend() in ("torch", "mamba_ssm")
assert callable(viz.kernels.step_response) and callable(viz.masks.mask_grid)
