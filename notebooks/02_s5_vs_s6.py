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
# # 02 · S5 with real time gaps vs S6 with input-dependent steps
#
# Papers: **SS4Rec** (arXiv 2502.08132v3: time-aware S5 layer, then relation-aware S6 layer),
# **TiM4Rec** (Eq. 2, 3, 9, 13; 2409.16182v3), **S5** (2208.04933), **Mamba** (2312.00752).
#
# Notebook 01 discretized an SSM with one fixed step $\Delta$. Sequential recommendation has two
# natural ways to pick a *different* step at every interaction $k$:
#
# - **S5, time-aware (SS4Rec):** $\Delta_k$ is the real time gap since the previous interaction;
# - **S6, selective (Mamba):** $\Delta_k$ is computed from the input $x_k$ itself.
#
# We watch what each choice does to the state, on a user whose timeline is very irregular.

# %%
import numpy as np
import torch
import torch.nn.functional as F

from ssmlab import ssm, viz
from ssmlab.ssm.discretize import time_gap_to_dt

torch.set_default_dtype(torch.float64)  # the checks compare in double precision
_ = torch.manual_seed(0)

# %% [markdown]
# ## 1. An irregular timeline
#
# Ten interactions (times in days): a burst of three within half an hour, one logged twice at
# the same second, a visit the next day, then gaps of a month and of two months. The model sees
# the time differences
#
# $$\mathcal{D}_0 = 0, \qquad \mathcal{D}_k = t_k - t_{k-1} \quad (k \ge 1)
# \qquad \text{(TiM4Rec Eq. 9)}$$

# %%
t = torch.tensor([0.0, 0.01, 0.02, 0.02, 1.0, 1.05, 3.0, 33.0, 95.0, 95.1])
time_gap = ssm.time_deltas(t[None])[0]  # (l,)
fig = viz.scans.timeline(t, title="One user's interactions (days)")
fig

# %% [markdown]
# ## Check

# %%
expected = torch.tensor([0.0, 0.01, 0.01, 0.0, 0.98, 0.05, 1.95, 30.0, 62.0, 0.1])
torch.testing.assert_close(time_gap, expected)

# %% [markdown]
# ## 2. S5: the step is the time gap
#
# With a diagonal state matrix $\Lambda$ (P eigenvalues), ZOH with the step $\Delta_k$ of each
# interaction gives (TiM4Rec Eq. 2, with a per-step $\Delta$ as in SS4Rec's time-aware SSM)
#
# $$h_k = \bar A_k h_{k-1} + \bar B_k x_k, \qquad \bar A_k = \exp(\Delta_k \Lambda), \qquad
# \bar B_k = (\Delta_k\Lambda)^{-1}\big(\exp(\Delta_k\Lambda) - I\big)\Delta_k B.$$
#
# Three eigenvalues give three memories: about three weeks ($\lambda = -0.05$/day), two days
# ($-0.5$) and five hours ($-5$). With $B = -\Lambda$ each state is a moving average in
# continuous time, $h_k = e^{\Delta_k\lambda} h_{k-1} + (1 - e^{\Delta_k\lambda})\,x_k$: the
# input weighs as much as the time it was held. Every interaction feeds $x_k = 1$; between
# interactions the state decays freely, $h(t) = e^{(t - t_k)\Lambda} h_k$.

# %%
Lambda = torch.tensor([-0.05, -0.5, -5.0])
dt = time_gap_to_dt(time_gap)  # days -> steps ("raw": unchanged)
h = viz.scans.s5_states(dt, Lambda, -Lambda, torch.ones(len(t)))  # (l, p), B = −Λ
t_path, h_path = viz.scans.continuous_path(t, h, Lambda)
names = [f"λ = {v:g}" for v in Lambda.tolist()]
title = "S5 states on the timeline"
fig = viz.scans.state_trajectory(t_path, h_path, names, events=t, title=title, xaxis="time (days)")
fig

# %% [markdown]
# ## 3. Try it: stretch time with a Δt-scale slider
#
# The slider multiplies every gap: $\Delta_k = s \cdot \mathcal{D}_k$ (a learned timescale plays
# this role in a trained model). Watch the trajectory and the bars
# $|\bar A_k| = |\exp(\Delta_k\Lambda)|$: the share of the old state that survives step $k$.
# (The widget appears when you run the notebook.)

# %%
app = viz.widgets.s5_decay_app(t, Lambda, scale=1.0)
app

# %% [markdown]
# **Quick check.** *If Δ grows, how does $\bar A = \exp(\Delta\Lambda)$ change the weight of
# history?* Move the slider right, then answer.
#
# <details><summary>Answer</summary>
#
# Every $\lambda$ has a negative real part, so
# $|\exp(\Delta\lambda)| = e^{\Delta\,\mathrm{Re}\,\lambda}$ falls from 1 (at $\Delta = 0$)
# towards 0 as $\Delta$ grows: a long gap multiplies the old state by a small number, so the
# history weighs less and the items after the gap dominate. The fast states (large $|\lambda|$)
# forget after hours, the slow one keeps weeks.
# </details>

# %% [markdown]
# ## Check


# %%
# a 10x longer step keeps less of the old state at every interaction and in every state
def kept(app):
    return np.array([bar.y for bar in app.figures[1].data])


before = kept(app)
app.update(scale=10.0)
assert np.all(kept(app) <= before) and np.any(kept(app) < before)
app.update(scale=1.0)

# %% [markdown]
# ## 4. Δt = 0 and gaps of months
#
# $\exp(\Delta\lambda)$ against $\Delta$, with the month gap marked. Two limits matter:
#
# - $\Delta = 0$ (the duplicate interaction, and $\mathcal{D}_0$): $\bar A = 1$ keeps the whole
#   state and $\bar B = \Delta B = 0$: the interaction adds nothing. ZOH assumes the input acts
#   *over* the step, and a step of length 0 carries no input;
# - $\Delta$ of months: $\bar A \to 0$ forgets and $\bar B \to -\Lambda^{-1}B$ (here 1) stays
#   finite, so the state becomes "the last item only". Nothing overflows, even for gaps of years.

# %%
grid = np.logspace(-3, 3, 121)
curves = dict(zip(names, viz.scans.decay_factors(grid, Lambda).T))
fig = viz.scans.decay_curves(grid, curves, marker_dt=30.0)
fig

# %% [markdown]
# ## Check

# %%
assert np.array_equal(h[3], h[2])  # Δ = 0: the state is unchanged
A_bar, B_bar = ssm.discretize(Lambda, -Lambda, 1e9, "zoh")  # a gap of 30 years
assert torch.all(A_bar == 0) and torch.allclose(B_bar, torch.ones(3))  # forget; B̄ stays finite
gaps = torch.tensor([[0.0, 1e-6, 3e7, 1e9]])
y = ssm.s5_scan(torch.randn(1, 4, 2), gaps, Lambda, torch.randn(3, 2), torch.randn(2, 3))
assert torch.isfinite(y).all()

# %% [markdown]
# ## 5. The S5 layer: a parallel scan equals the recurrence
#
# `ssm.s5_scan(u, dt, Lambda, B, C, D)` is the time-aware layer SS4Rec builds on: input
# $u \in \mathbb{R}^{H}$, state $h \in \mathbb{R}^P$, output $y_k = C h_k + D u_k$.
# It runs all steps at once with a parallel (associative) scan. The loop below is the
# recurrence written out; they must agree.

# %%
b, seqlen, H, P = 2, 64, 4, 8
u, dt_u = torch.randn(b, seqlen, H), torch.rand(b, seqlen) * 2.0
Lam = -torch.rand(P) - 0.1
B_in, C_out, D_skip = torch.randn(P, H), torch.randn(H, P), torch.randn(H)
y_scan = ssm.s5_scan(u, dt_u, Lam, B_in, C_out, D_skip)
y_scan.shape

# %% [markdown]
# ## Check


# %%
def s5_loop(u, dt, Lambda, B, C, D):  # toy version: one step at a time
    A_bar, B_bar = ssm.discretize(Lambda[:, None], B, dt[..., None, None], "zoh")  # (b l p 1/h)
    h = torch.zeros(u.shape[0], Lambda.shape[0], dtype=u.dtype)
    ys = []
    for k in range(u.shape[1]):
        h = A_bar[:, k, :, 0] * h + torch.einsum("bph,bh->bp", B_bar[:, k], u[:, k])
        ys.append(torch.einsum("hp,bp->bh", C, h) + D * u[:, k])
    return torch.stack(ys, dim=1)


torch.testing.assert_close(y_scan, s5_loop(u, dt_u, Lam, B_in, C_out, D_skip))

# %% [markdown]
# ## 6. S6: the step comes from the input
#
# Mamba makes $\Delta$, $B$ and $C$ functions of the input, so they vary with the position
# (TiM4Rec Eq. 3). Its selection mechanism computes the step with a softplus, which keeps it
# positive:
#
# $$\Delta_t = \operatorname{softplus}(W x_t + b), \qquad \bar A_t = \exp(\Delta_t A), \qquad
# \bar B_t \approx \Delta_t B_t \quad \text{(TiM4Rec Eq. 13)}$$
#
# On the same ten interactions, S6 never looks at the timestamps: a large $\Delta_t$ means
# "this item matters, reset towards it", a small one "skip it, keep the state".

# %%
x = torch.randn(len(t))  # one input channel, e.g. an item feature
delta = F.softplus(1.5 * x - 0.5)  # W = 1.5, b = -0.5
steps = {"S5: Δ from timestamps": dt, "S6: Δ from the input": delta}  # Δ = 0: no bar (log axis)
fig = viz.scans.delta_comparison(steps, log=True)
fig

# %% [markdown]
# ## Check

# %%
# ssm.selective_scan (mamba_ssm semantics) = the loop h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t x_t
d, n, seqlen = 3, 4, 32
u6, dlt = torch.randn(1, d, seqlen), torch.randn(1, d, seqlen)
A6, B6, C6 = -torch.rand(d, n) - 0.5, torch.randn(1, n, seqlen), torch.randn(1, n, seqlen)
y6 = ssm.selective_scan(u6, dlt, A6, B6, C6, delta_softplus=True)
dl, h6, ys = F.softplus(dlt)[..., None], torch.zeros(1, d, n), []  # (b d l 1)
for k in range(seqlen):
    h6 = torch.exp(dl[:, :, k] * A6) * h6 + dl[:, :, k] * B6[:, None, :, k] * u6[:, :, k, None]
    ys.append(torch.einsum("bdn,bn->bd", h6, C6[..., k]))
torch.testing.assert_close(y6, torch.stack(ys, dim=-1))

# %% [markdown]
# ## 7. Try it: what sets Δ in S6?
#
# Change the input weight $W$ and the bias $b$: $\Delta_t$ and the kept share
# $|\exp(\Delta_t A)|$ follow the input values, whatever the time between interactions.

# %%
app6 = viz.widgets.s6_delta_app(x.numpy(), w=1.5, bias=-0.5)
app6

# %% [markdown]
# **Quick check.** *In S6, what determines Δ, and why does that help with long-range
# dependencies?*
#
# <details><summary>Answer</summary>
#
# The input: $\Delta_t = \operatorname{softplus}(W x_t + b)$ with learned $W, b$. An item the
# model finds irrelevant gets $\Delta_t \approx 0$, so $\bar A_t \approx 1$ and
# $\bar B_t \approx 0$: the state passes through untouched, and an old relevant item survives
# many irrelevant ones.
# A relevant item gets a large $\Delta_t$ and overwrites the state. S5 in SS4Rec instead takes
# $\Delta$ from the clock; SS4Rec stacks both layers.
# </details>

# %% [markdown]
# ## Check

# %%
first = np.array(app6.figures[0].data[1].y)
app6.update(bias=2.0)
assert np.all(np.array(app6.figures[0].data[1].y) > first)  # larger bias: larger Δ everywhere
app6.update(bias=-0.5)

# %% [markdown]
# **Takeaways.** S5 lets the clock set the step: long gaps forget, bursts keep. S6 lets the
# content set it. Both are the same recurrence, which a parallel scan computes exactly. Next:
# SSD writes it as masked attention (notebook 03).
