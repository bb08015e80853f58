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
# **TiM4Rec** (Eq. 2, 3, 13; 2409.16182v3), **S5** (2208.04933), **Mamba** (2312.00752).
#
# [← 01 · discretization](01_ssm_discretization.ipynb) · [index](00_index.ipynb) ·
# next: [03 · SSD duality](03_ssd_duality.ipynb)
#
# Notebook 01 discretized an SSM with one fixed step $\Delta$. Sequential recommendation has two
# natural ways to pick a *different* step at every interaction $k$:
#
# - **S5, time-aware (SS4Rec):** $\Delta_k$ is the real time until the *next* interaction,
#   and at the last one the time until the moment we ask "what next?" (the query time);
# - **S6, selective (Mamba):** $\Delta_k$ is computed from the input $x_k$ itself.
#
# We watch what each choice does to the state, on a user whose timeline is very irregular.

# %%
import numpy as np
import torch
import torch.nn.functional as F

from ssmlab import ssm, viz
from ssmlab.models.ss4rec import query_gaps
from ssmlab.ssm.discretize import time_gap_to_dt

torch.set_default_dtype(torch.float64)  # the checks compare in double precision
_ = torch.manual_seed(0)

# %% [markdown]
# ## 1. An irregular timeline, and SS4Rec's steps
#
# Ten interactions (times in days): a burst of three within half an hour, one logged twice at
# the same second, a visit the next day, then gaps of a month and of two months. We ask what
# comes next one day after the last interaction ($t_q = 96.1$). Under zero-order hold the input
# $x_k$ is held over the step that *follows* it, $[t_k, t_{k+1}]$, so SS4Rec's step is
#
# $$\Delta_k = t_{k+1} - t_k \quad (k < l-1), \qquad \Delta_{l-1} = t_q - t_{l-1}$$
#
# (`ssmlab.models.ss4rec.query_gaps`; `viz.scans.next_gaps` for one sequence). The labels
# below show each interaction's step.
#
# > **Paper vs code.** TiM4Rec's time difference $\mathcal{D}_k = t_k - t_{k-1}$ (Eq. 9, notebook
# > 04) looks *back*; SS4Rec's step looks *forward*, and its last step is the query gap, which
# > is how SS4Rec answers "what will this user do at time $t$" (notebook 05). The authors feed
# > raw seconds; ssmlab can normalize them first (`time_norm`).

# %%
t = torch.tensor([0.0, 0.01, 0.02, 0.02, 1.0, 1.05, 3.0, 33.0, 95.0, 95.1])
query = 96.1  # one day after the last interaction
time_gap = torch.as_tensor(viz.scans.next_gaps(t, query))  # (l,) SS4Rec's steps, days
fig = viz.scans.timeline(
    t, "One user's interactions (days); Δt = step", gap="next", query_time=query
)
fig

# %% [markdown]
# ## Check

# %%
expected = torch.tensor([0.01, 0.01, 0.0, 0.98, 0.05, 1.95, 30.0, 62.0, 0.1, 1.0])
torch.testing.assert_close(time_gap, expected)
items = torch.ones(1, len(t), dtype=torch.long)  # any non-padding item ids
model_gaps = query_gaps(items, t[None], at_time=torch.tensor([query]))[0]  # SS4Rec's own gaps
torch.testing.assert_close(model_gaps, expected)

# %% [markdown]
# ## 2. S5: the step is the time gap, and the state relaxes during it
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
# input weighs as much as the time it was held. The inputs alternate $x_k = \pm 1$. **Between
# interactions the state is not frozen and does not decay to 0:** with $x_k$ held, it relaxes
# from $h_{k-1}$ towards $x_k$,
#
# $$h(t) = e^{(t - t_k)\lambda} h_{k-1} + \big(1 - e^{(t - t_k)\lambda}\big)\,x_k,
# \qquad t \in [t_k, t_{k+1}],$$
#
# and reaches $h_k$ at $t_{k+1}$. The fast state follows each input within hours; the slow one
# averages over weeks.

# %%
Lambda = torch.tensor([-0.05, -0.5, -5.0])
dt = time_gap_to_dt(time_gap)  # days -> steps ("raw": unchanged)
x = torch.tensor([1.0, -1.0] * 5)  # alternating inputs: old and new can be told apart
h = viz.scans.s5_states(dt, Lambda, -Lambda, x)  # (l, p), B = −Λ
t_path, h_path = viz.scans.zoh_path(t, query, Lambda, -Lambda, x)
names = [f"λ = {v:g}/day" for v in Lambda.tolist()]
title = "S5 states under ZOH: each relaxes towards the held input"
fig = viz.scans.state_trajectory(t_path, h_path, names, events=t, title=title, xaxis="time (days)")
fig

# %% [markdown]
# ## Check

# %%
ends = np.append(t[1:].numpy(), query)  # step k ends at t_{k+1} (the last at the query time)
for k in range(len(t)):  # the path reaches the recurrence's h_k at the end of step k
    np.testing.assert_allclose(h_path[np.flatnonzero(t_path == ends[k])[-1]], h[k], atol=1e-12)
assert np.all(np.abs(h_path.real) <= 1 + 1e-12)  # a moving average of ±1 stays in [−1, 1]

# %% [markdown]
# ## 3. Try it: stretch time with a Δt-scale slider
#
# The slider multiplies every step: $\Delta_k = s \cdot (t_{k+1} - t_k)$ (a learned timescale
# plays this role in a trained model). Watch the trajectory and the bars
# $|\bar A_k| = |\exp(\Delta_k\Lambda)|$: the share of the old state that survives step $k$.
# Below the app, a static snapshot of its first state (for readers without a kernel).

# %%
app = viz.widgets.s5_decay_app(t, Lambda, scale=1.0, query_time=query, x=x)
app.show()

# %% [markdown]
# **Quick check.** *If Δ grows, how does $\bar A = \exp(\Delta\Lambda)$ change the weight of
# history?* Move the slider right, then answer.
#
# <details><summary>Answer</summary>
#
# Every $\lambda$ has a negative real part, so
# $|\exp(\Delta\lambda)| = e^{\Delta\,\mathrm{Re}\,\lambda}$ falls from 1 (at $\Delta = 0$)
# towards 0 as $\Delta$ grows: a long gap multiplies the old state by a small number, so the
# history weighs less and the input held over the long step dominates (the trajectory reaches
# $\pm 1$ before the next interaction). The fast states (large $|\lambda|$) forget after hours,
# the slow one keeps weeks.
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
# - $\Delta = 0$: the duplicate interaction logged at the same second as the next one (step
#   $k = 2$). $\bar A = 1$ keeps the whole state and $\bar B = \Delta B = 0$: that input adds
#   nothing. ZOH assumes the input acts *over* the step, and a step of length 0 carries none
#   (with the forward-looking step, the first interaction is not affected: its step is
#   $t_1 - t_0 > 0$);
# - $\Delta$ of months: $\bar A \to 0$ forgets and $\bar B \to -\Lambda^{-1}B$ (here 1) stays
#   finite, so the state becomes "the last item only". Nothing overflows, even for gaps of years.

# %%
grid = np.logspace(-3, 3, 121)
curves = dict(zip(names, viz.scans.decay_factors(grid, Lambda).T))
fig = viz.scans.decay_curves(grid, curves, marker_dt=30.0, unit="days")
fig

# %% [markdown]
# ## Check

# %%
assert np.array_equal(h[2], h[1])  # Δ_2 = 0: the state is unchanged, x_2 is not seen
assert np.all(np.abs(h[0]) > 0)  # the first interaction counts (Δ_0 = t_1 − t_0 > 0)
A_bar, B_bar = ssm.discretize(Lambda, -Lambda, 1e9, "zoh")  # a gap of 30 years
assert torch.all(A_bar == 0) and torch.allclose(B_bar, torch.ones(3))  # forget; B̄ stays finite
gaps = torch.tensor([[0.0, 1e-6, 3e7, 1e9]])
y = ssm.s5_scan(torch.randn(1, 4, 2), gaps, Lambda, torch.randn(3, 2), torch.randn(2, 3))
assert torch.isfinite(y).all()

# %% [markdown]
# ## 5. The S5 layer: a parallel scan equals the recurrence
#
# `ssm.s5_scan(x, dt, Lambda, B, C, D)` is the time-aware layer SS4Rec builds on: input
# $x \in \mathbb{R}^{H}$ (the function calls its argument `u`, S4's name), state
# $h \in \mathbb{R}^P$, output $y_k = C h_k + D x_k$. It runs all steps at once with a parallel
# (associative) scan: the pairs $(\bar A_k, \bar B_k x_k)$ combine with the associative
# operator $(a_1, b_1)\bullet(a_2, b_2) = (a_2 a_1,\ a_2 b_1 + b_2)$, so a tree of depth
# $O(\log l)$ computes every prefix (`ssm/scan.py`). The loop below is the recurrence written
# out; they must agree.

# %%
b, seqlen, H, P = 2, 64, 4, 8
x_in, dt_in = torch.randn(b, seqlen, H), torch.rand(b, seqlen) * 2.0
Lam = -torch.rand(P) - 0.1
B_in, C_out, D_skip = torch.randn(P, H), torch.randn(H, P), torch.randn(H)
y_scan = ssm.s5_scan(x_in, dt_in, Lam, B_in, C_out, D_skip)
y_scan.shape

# %% [markdown]
# ## Check


# %%
def s5_loop(x, dt, Lambda, B, C, D):  # toy version: one step at a time
    A_bar, B_bar = ssm.discretize(Lambda[:, None], B, dt[..., None, None], "zoh")  # (b l p 1/h)
    h = torch.zeros(x.shape[0], Lambda.shape[0], dtype=x.dtype)
    ys = []
    for k in range(x.shape[1]):
        h = A_bar[:, k, :, 0] * h + torch.einsum("bph,bh->bp", B_bar[:, k], x[:, k])
        ys.append(torch.einsum("hp,bp->bh", C, h) + D * x[:, k])
    return torch.stack(ys, dim=1)


torch.testing.assert_close(y_scan, s5_loop(x_in, dt_in, Lam, B_in, C_out, D_skip))

# %% [markdown]
# ## 6. S6: the step comes from the input
#
# Mamba makes $\Delta$, $B$ and $C$ functions of the input, so they vary with the position
# (TiM4Rec Eq. 3). Its selection mechanism computes the step with a softplus,
# $\operatorname{softplus}(z) = \ln(1 + e^z)$, a smooth ReLU that keeps it positive:
#
# $$\Delta_t = \operatorname{softplus}(W x_t + b), \qquad \bar A_t = \exp(\Delta_t A), \qquad
# \bar B_t \approx \Delta_t B_t \quad \text{(TiM4Rec Eq. 13)}$$
#
# On the same ten interactions, S6 never looks at the timestamps: a large $\Delta_t$ means
# "this item matters, reset towards it", a small one "skip it, keep the state".

# %%
x_feat = torch.randn(len(t))  # one input channel, e.g. an item feature
delta = F.softplus(1.5 * x_feat - 0.5)  # W = 1.5, b = -0.5
steps = {"S5: Δ from timestamps": dt, "S6: Δ from the input": delta}  # Δ = 0: no bar (log axis)
fig = viz.scans.delta_comparison(steps, log=True)
fig

# %% [markdown]
# ## Check

# %%
# ssm.selective_scan (mamba_ssm semantics) = the loop h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t x_t
d, n, seqlen = 3, 4, 32
x6, dlt = torch.randn(1, d, seqlen), torch.randn(1, d, seqlen)
A6, B6, C6 = -torch.rand(d, n) - 0.5, torch.randn(1, n, seqlen), torch.randn(1, n, seqlen)
y6 = ssm.selective_scan(x6, dlt, A6, B6, C6, delta_softplus=True)
dl, h6, ys = F.softplus(dlt)[..., None], torch.zeros(1, d, n), []  # (b d l 1)
for k in range(seqlen):
    h6 = torch.exp(dl[:, :, k] * A6) * h6 + dl[:, :, k] * B6[:, None, :, k] * x6[:, :, k, None]
    ys.append(torch.einsum("bdn,bn->bd", h6, C6[..., k]))
torch.testing.assert_close(y6, torch.stack(ys, dim=-1))

# %% [markdown]
# ## 7. Try it: what sets Δ in S6?
#
# Change the input weight $W$ and the bias $b$: $\Delta_t$ and the kept share
# $|\exp(\Delta_t A)|$ follow the input values, whatever the time between interactions.

# %%
app6 = viz.widgets.s6_delta_app(x_feat.numpy(), w=1.5, bias=-0.5)
app6.show()

# %% [markdown]
# ## Check

# %%
first = np.array(app6.figures[0].data[1].y)
app6.update(bias=2.0)
assert np.all(np.array(app6.figures[0].data[1].y) > first)  # larger bias: larger Δ everywhere
app6.update(bias=-0.5)

# %% [markdown]
# ## 8. Try it: an early item survives many irrelevant ones
#
# The long-range half of the question. One relevant item (its $\Delta = 1$ writes it into the
# state), then $n$ irrelevant ones. S6 can give the irrelevant ones a tiny $\Delta$ (their
# input says "skip me"): each multiplies the state by $e^{\Delta A} \approx 1$ and adds
# $\Delta B x \approx 0$. An LTI model (S4, one $\Delta$ for every step) cannot: the first
# item's weight $\Delta_0 \prod_{k \ge 1} e^{\Delta_k A}$ falls by $e^{\Delta A}$ at every step.
# Slide the number of irrelevant items and their $\Delta$ (log scale on the left: each grid
# line is a factor 10).

# %%
memory = viz.widgets.s6_memory_app(n_irrelevant=20, delta_irrelevant=0.01)
memory.show()

# %% [markdown]
# **Quick check.** *In S6, what determines Δ, and why does that help with long-range
# dependencies?* Move both sliders, then answer.
#
# <details><summary>Answer</summary>
#
# The input: $\Delta_t = \operatorname{softplus}(W x_t + b)$ with learned $W, b$. An item the
# model finds irrelevant gets $\Delta_t \approx 0$, so $\bar A_t \approx 1$ and
# $\bar B_t \approx 0$: the state passes through untouched, and an old relevant item survives
# many irrelevant ones (after 60 items with $\Delta = 0.01$ it keeps $e^{-0.6} \approx 55\%$ of
# its weight; with a constant $\Delta = 1$, $e^{-60} \approx 10^{-26}$). A relevant item gets a
# large $\Delta_t$ and overwrites the state. S5 in SS4Rec instead takes $\Delta$ from the
# clock; SS4Rec stacks both layers. SS4Rec's open question, a step that depends on *both* the
# input and the time, is what TiM4Rec does: $\hat\Delta = \Delta(x)\cdot\mathcal{D}(t)$
# (notebook 04).
# </details>

# %% [markdown]
# ## Check

# %%
s6_w, lti_w = (np.array(tr.y, dtype=float) for tr in memory.figures[0].data)
assert s6_w[-1] > 0.8 and lti_w[-1] < 1e-8  # 20 irrelevant items: S6 keeps it, LTI forgets
memory.update(n_irrelevant=60)
s6_w = np.array(memory.figures[0].data[0].y, dtype=float)
assert abs(s6_w[-1] - np.exp(-0.6)) < 1e-3
memory.update(n_irrelevant=20)

# %% [markdown]
# ## Exercises
#
# **Exercise 1.** A user interacts at days $t = (0, 2, 2, 7)$ and we ask at day 10. Give
# SS4Rec's steps $\Delta_k$ (raw days), and say which interaction the S5 state cannot see.
#
# <details><summary>Solution</summary>
#
# $\Delta = (2, 0, 5, 3)$: each step runs to the next interaction, the last to the query. The
# interaction at index 1 has $\Delta_1 = 0$, so $\bar B_1 = 0$: under ZOH an input held for no
# time adds nothing (the state after it equals the state before it).
# </details>
#
# **Exercise 2.** With $A = -1$ and $\Delta = 0.01$ on every irrelevant item, after how many
# irrelevant items has the first item's weight in the S6 state fallen below half its value?
#
# <details><summary>Solution</summary>
#
# The weight is multiplied by $e^{-0.01}$ per item: $e^{-0.01 n} < 1/2 \iff n > 100\ln 2
# \approx 69.3$, so after **70** items.
# </details>

# %% jupyter={"source_hidden": true}
# hidden check of the two solutions above
steps_ex = viz.scans.next_gaps([0.0, 2.0, 2.0, 7.0], 10.0)
assert steps_ex.tolist() == [2.0, 0.0, 5.0, 3.0]
h_ex = viz.scans.s5_states(steps_ex, [-0.5], [0.5], [1.0, -1.0, 1.0, 1.0])
assert np.array_equal(h_ex[1], h_ex[0])  # index 1 is invisible
w_ex = viz.scans.first_item_weight([1.0] + [0.01] * 80, [-1.0])[:, 0]
assert int(np.argmax(w_ex < 0.5 * w_ex[0])) == 70

# %% [markdown]
# **Takeaways.** S5 lets the clock set the step: the input is held until the next interaction,
# long gaps forget, bursts keep, and a zero gap hides an input. S6 lets the content set it, and
# a tiny step on irrelevant items carries an early item across them. Both are the same
# recurrence, which a parallel scan computes exactly.
#
# [← 01](01_ssm_discretization.ipynb) · [index](00_index.ipynb) · next: SSD writes it as masked
# attention, [03 · SSD duality](03_ssd_duality.ipynb)
