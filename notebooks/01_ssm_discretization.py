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
# # 01 · From a continuous SSM to a recurrence: ZOH, bilinear, Euler and Mamba's shortcut
#
# Papers: **TiM4Rec** (Eq. 1, 2, 13; arXiv 2409.16182v3), **S4** (2111.00396),
# **Mamba** (2312.00752). Keys are defined in `references.md`.
#
# A state space model is a linear ODE. To run it on a sequence we *discretize* it with a step
# $\Delta$ (code: `dt`): each method turns $(A, B, \Delta)$ into $(\bar A, \bar B)$ for the
# recurrence $h_t = \bar A h_{t-1} + \bar B x_t$. This notebook compares four methods against the
# exact solution, then shows where each one breaks. (S4 calls the input $u$; we call it $x$.)
#
# All three papers use a **diagonal** $A$, so we can study one eigenvalue $\lambda$ at a time.
#
# [← index](00_index.ipynb) · next: [02 · S5 vs S6](02_s5_vs_s6.ipynb). Terms are defined in the
# [glossary](00_index.ipynb#Glossary).

# %%
import numpy as np
import pandas as pd
import torch

from ssmlab import ssm, viz

torch.set_default_dtype(torch.float64)  # the checks compare in double precision
_ = torch.manual_seed(0)

# %% [markdown]
# ## 1. The continuous SSM
#
# $$h'(t) = A\,h(t) + B\,x(t), \qquad y(t) = C\,h(t) + D\,x(t) \qquad \text{(TiM4Rec Eq. 1)}$$
#
# For one eigenvalue $A = \lambda < 0$, $B = 1$, a unit step input $x(t) = 1$ and $h(0) = 0$, the
# exact state is $h(t) = (e^{\lambda t} - 1)/\lambda$: it rises and settles at $-1/\lambda$.

# %%
lam = -1.0
t = np.linspace(0.0, 8.0, 161)
h_exact = viz.discretization.exact_step_response(lam, 1.0, t)
fig = viz.scans.state_trajectory(
    t,
    h_exact,
    names=["exact h(t)"],
    title="Continuous step response, λ = −1",
    xaxis="time t (s, with λ in 1/s)",
)
fig

# %% [markdown]
# ## Check

# %%
# h(t) solves h' = λh + 1 (central differences) and settles at −1/λ = 1
slope = np.gradient(h_exact.real, t)[1:-1]
np.testing.assert_allclose(slope, (lam * h_exact.real + 1.0)[1:-1], atol=2e-3)
assert abs(h_exact[-1].real - 1.0) < 1e-3

# %% [markdown]
# ## 2. Zero-order hold (ZOH)
#
# Holding the input constant over each step and solving the ODE exactly gives
#
# $$\bar A = \exp(\Delta A), \qquad \bar B = (\Delta A)^{-1}\big(\exp(\Delta A) - I\big)\,\Delta B,
# \qquad h_t = \bar A h_{t-1} + \bar B x_t \qquad \text{(TiM4Rec Eq. 2)}$$
#
# `ssm.discretize(A, B, dt, "zoh")` returns $(\bar A, \bar B)$; `ssm.linear_scan` runs the
# recurrence.

# %%
dt = 0.5
t_k, h_zoh = viz.discretization.discrete_step_response(lam, 1.0, dt, 8.0, "zoh")
fig = viz.discretization.step_response(
    t, h_exact, {"zoh": (t_k, h_zoh)}, title="ZOH lands exactly on the solution (Δt = 0.5)"
)
fig

# %% [markdown]
# ## Check

# %%
# for a piecewise-constant input ZOH is exact at the sample times, whatever the step
A_bar, B_bar = ssm.discretize(torch.tensor([lam]), torch.ones(1), dt, "zoh")
torch.testing.assert_close(A_bar, torch.exp(torch.tensor([dt * lam])))
h_true = viz.discretization.exact_step_response(lam, 1.0, t_k)
torch.testing.assert_close(torch.from_numpy(h_zoh), torch.from_numpy(h_true))

# %% [markdown]
# ## 3. Three cheaper methods, and Mamba's shortcut
#
# | method | $\bar A$ | $\bar B$ |
# |---|---|---|
# | bilinear (S4) | $(I - \Delta A/2)^{-1}(I + \Delta A/2)$ | $(I - \Delta A/2)^{-1}\Delta B$ |
# | forward Euler | $I + \Delta A$ | $\Delta B$ |
# | Mamba / SSD | $\exp(\Delta A)$ | $\Delta B$ |
#
# Mamba keeps the exact $\bar A$ but replaces $\exp(\Delta A)$ by its first-order Maclaurin term
# inside $\bar B$:
#
# $$\bar B \approx (\Delta A)^{-1}(I + \Delta A - I)\,\Delta B = \Delta B
# \qquad \text{(TiM4Rec Eq. 13)}$$
#
# S5 and SS4Rec use ZOH: the official S5 code defaults to `--discretization zoh` (bilinear is an
# option), and ssmlab's `S5Block` uses ZOH too.
#
# > **Paper vs code: "Ā ≈ ΔA".** TiM4Rec Sec. 3.4 says the implementation "approximates the
# > exponential operation by directly computing $\bar A \approx \Delta A$", and its Eq. 18 writes
# > $\bar A = A\cdot\hat\Delta$. Read literally, $\Delta A < 0$ would be a negative decay. What
# > the kernels (mamba-ssm, SSD, ssmlab) pass around is $\Delta A$ as the **logarithm** of the
# > decay, and they exponentiate it: $\bar A = \exp(\Delta A)$, the exact ZOH value in the
# > table. Only $\bar B$ is approximated.
#
# The numbers for $\lambda = -1$, $\Delta = 0.1$:

# %%
A, B = torch.tensor([lam]), torch.ones(1)
rows = {m: [v.item() for v in ssm.discretize(A, B, 0.1, m)] for m in viz.discretization.METHODS}
table = pd.DataFrame(rows, index=["A_bar", "B_bar"]).T.round(6)
table

# %% [markdown]
# ## Check

# %%
# hand-computed values: e^-0.1 = 0.904837418, 1 - e^-0.1 = 0.095162582, 0.95/1.05, 0.1/1.05
expected = {
    "zoh": (0.904837418, 0.095162582),
    "bilinear": (0.95 / 1.05, 0.1 / 1.05),
    "euler": (0.9, 0.1),
    "mamba": (0.904837418, 0.1),
}
for method, (a, b) in expected.items():
    torch.testing.assert_close(torch.tensor(rows[method]), torch.tensor([a, b]), rtol=0, atol=1e-9)

# %% [markdown]
# At $\Delta t = 0.5$ the four methods already disagree. Only ZOH sits on the exact curve;
# Mamba's $\bar B = \Delta B$ overshoots by about $\Delta|\lambda|/2$ in relative terms.

# %%
disc = {
    m: viz.discretization.discrete_step_response(lam, 1.0, 0.5, 8.0, m)
    for m in viz.discretization.METHODS
}
fig = viz.discretization.step_response(
    t, h_exact, disc, title="Four discretizations, Δt = 0.5, λ = −1"
)
fig

# %% [markdown]
# ## Check

# %%
# steady state B_bar / (1 - A_bar): exact (-1/λ = 1) for ZOH, bilinear and Euler; Mamba's is off
for method, (_, h) in disc.items():
    err = abs(h[-1].real - 1.0)
    assert (err > 0.2) if method == "mamba" else (err < 1e-3), (method, err)

# %% [markdown]
# ## 4. Try it: Δt and eigenvalue sliders
#
# Drag **Δt** past $2/|\lambda|$: Euler's markers flip sign and grow, bilinear's ring around the
# solution, ZOH and Mamba stay bounded, but Mamba's settles *higher* as Δt grows (section 7
# explains why). The right panel marks the current $\Delta\lambda$ on the one-step gain
# $|\bar A|$. Below the sliders, a static snapshot of the first state is shown for readers
# without a running kernel.

# %%
app = viz.widgets.discretization_app(eigenvalue=-1.0, dt=0.5)
app.show()

# %% [markdown]
# ## Check

# %%
# the app redraws through the same builders: at Δt = 3 (Δλ = −3) Euler's states blow up
app.update(dt=3.0, eigenvalue=-1.0)
euler = next(tr for tr in app.figures[0].data if tr.name == "euler")
assert max(abs(v) for v in euler.y if v is not None) > 5.0
app.update(dt=0.5)

# %% [markdown]
# ## 5. Where each method breaks: stability
#
# Without input the state evolves as $h_k = \bar A^k h_0$, so it decays iff $|\bar A| < 1$. With
# $z = \Delta\lambda$:
#
# - ZOH and Mamba: $|e^{z}| < 1 \iff \operatorname{Re} z < 0$, every stable ODE stays stable;
# - bilinear: $\left|\frac{1 + z/2}{1 - z/2}\right| < 1 \iff \operatorname{Re} z < 0$ too, but
#   $\bar A \to -1$ as $z \to -\infty$: a fast mode flips sign at every step instead of vanishing;
# - Euler: $|1 + z| < 1$, a disc of radius 1 around $-1$: $\Delta > 2/|\lambda|$ explodes.

# %%
z = np.linspace(-6.0, 0.0, 121)
gains = {m: viz.discretization.amplification(z, m) for m in viz.discretization.METHODS}
fig = viz.discretization.stability_curve(z, gains, marker=-2.0)
fig

# %% [markdown]
# The same gain over the complex plane of $z = \Delta\lambda$ (complex eigenvalues oscillate):
# blue is stable. The stable region of ZOH and bilinear is the whole left half-plane; Euler's is
# the small disc.

# %%
re, im = np.linspace(-4.0, 1.0, 41), np.linspace(-3.0, 3.0, 31)
grid = re[None, :] + 1j * im[:, None]
fig = viz.discretization.stability_regions(
    re, im, {m: viz.discretization.amplification(grid, m) for m in viz.discretization.METHODS}
)
fig

# %% [markdown]
# ## Check

# %%
g = {
    m: viz.discretization.amplification(np.array([-2.5, -100.0]), m)
    for m in viz.discretization.METHODS
}
assert g["euler"][0] > 1.0 and all(g[m][0] < 1.0 for m in ("zoh", "bilinear", "mamba"))
assert g["bilinear"][1] > 0.96  # Ā -> -1: the fast mode rings instead of dying
assert g["zoh"][1] < 1e-40 and g["mamba"][1] < 1e-40

# %% [markdown]
# ## 6. Error against Δt
#
# The largest error of the step response over $t \in [0, 4]$, on a log-log plot: the slope is
# the order of accuracy. ZOH is exact here (the input is constant), bilinear is second order,
# Euler and Mamba's $\bar B \approx \Delta B$ are first order.

# %%
dts = np.logspace(-3, 0, 13)
errors = viz.discretization.step_errors(lam, 1.0, dts, t_end=4.0)
fig = viz.discretization.error_vs_dt(dts, errors)
fig

# %% [markdown]
# ## Check

# %%
slopes = {
    m: np.polyfit(np.log(dts[:7]), np.log(errors[m][:7]), 1)[0]
    for m in ("bilinear", "euler", "mamba")
}
assert 1.9 < slopes["bilinear"] < 2.1, slopes
assert 0.9 < slopes["euler"] < 1.1 and 0.9 < slopes["mamba"] < 1.1, slopes
assert errors["zoh"].max() < 1e-12

# %% [markdown]
# ## 7. Why time-aware models must tame their gaps
#
# For a constant input the state settles at the fixed point $\bar B/(1 - \bar A)$. ZOH's
# $\bar B$ saturates at $-B/\lambda$ when $\Delta$ grows, so the fixed point stays at the true
# steady state $-B/\lambda$ whatever the step. Mamba's $\bar B = \Delta B$ does not saturate:
#
# $$\frac{\bar B}{1 - \bar A} = \frac{\Delta}{1 - e^{\Delta\lambda}}\,B
# \;\approx\; \Delta B \quad (\Delta|\lambda| \gg 1),$$
#
# 5.03 instead of 1 at $\Delta = 5$, $\lambda = -1$. An input held over a long step counts
# $\Delta$ times. This is the key fact for time-aware models: fed raw gaps in seconds
# ($\hat\Delta = \Delta\cdot\mathcal{D}$ with $\mathcal{D} \sim 10^6$), Mamba's $\bar B$ would
# multiply an input by about a million. TiM4Rec therefore passes its gaps through LayerNorm
# (and a softplus, notebook 04) before they touch $\Delta$; SS4Rec uses ZOH, whose $\bar B$ stays
# bounded, and learns a small step scale (notebook 05 also compresses the toy's gaps with
# `time_norm=log1p`).

# %%
steps = np.logspace(-2, 6, 33)
fixed = {m: viz.discretization.steady_state(lam, steps, m) for m in ("zoh", "mamba")}
fig = viz.discretization.steady_state_curves(steps, fixed, title="Fixed point for λ = −1, input 1")
fig

# %% [markdown]
# ## Check

# %%
np.testing.assert_allclose(fixed["zoh"], 1.0, rtol=1e-9)  # −B/λ for every step
assert (
    abs(viz.discretization.steady_state(lam, [5.0], "mamba")[0] - 5.0 / (1 - np.exp(-5.0))) < 1e-12
)
assert fixed["mamba"][-1] > 0.99e6  # a gap of 10⁶ (raw seconds) counts the input 10⁶ times

# %% [markdown]
# ## Exercises
#
# **Exercise 1.** Write `zoh_b_bar(lam, dt)`, ZOH's $\bar B$ for a scalar $\lambda < 0$ and
# $B = 1$, from the formula of section 2, and evaluate it at $\lambda = -2$, $\Delta = 0.3$.
#
# <details><summary>Solution</summary>
#
# ```python
# def zoh_b_bar(lam, dt):
#     return (np.exp(dt * lam) - 1.0) / lam  # (Δλ)⁻¹(e^{Δλ} − 1)Δ·B with B = 1
#
# zoh_b_bar(-2.0, 0.3)  # 0.2256
# ```
# </details>
#
# **Exercise 2.** For $\lambda = -4$, from which step $\Delta$ on does forward Euler blow up,
# and what fixed point does Mamba's discretization reach at $\Delta = 2$ (input 1)?
#
# <details><summary>Solution</summary>
#
# Euler's $\bar A = 1 + \Delta\lambda$ must satisfy $|1 - 4\Delta| < 1$, so it blows up for
# $\Delta > 2/|\lambda| = 0.5$. Mamba's fixed point is $\Delta/(1 - e^{\Delta\lambda}) =
# 2/(1 - e^{-8}) \approx 2.0007$, eight times ZOH's $-1/\lambda = 0.25$.
# </details>


# %% jupyter={"source_hidden": true}
# hidden check of the two solutions above
def zoh_b_bar(lam, dt):
    return (np.exp(dt * lam) - 1.0) / lam


_, b_ref = ssm.discretize(torch.tensor([-2.0]), torch.ones(1), 0.3, "zoh")
assert abs(zoh_b_bar(-2.0, 0.3) - b_ref.item()) < 1e-12 and round(zoh_b_bar(-2.0, 0.3), 4) == 0.2256
below, above = viz.discretization.amplification(np.array([-4.0 * 0.49, -4.0 * 0.51]), "euler")
assert below < 1.0 < above  # Euler's |Ā| crosses 1 at Δ = 2/|λ| = 0.5
assert abs(viz.discretization.steady_state(-4.0, [2.0], "mamba")[0] - 2.0007) < 1e-4

# %% [markdown]
# **Takeaways.** ZOH is exact for inputs held over a step and stable for any $\Delta$; this is
# what lets SS4Rec use the real (and wildly varying) time gap as $\Delta$ (notebook 02). Mamba
# keeps ZOH's $\bar A$, so its stability, and simplifies $\bar B$ to $\Delta B$ (TiM4Rec Eq. 13),
# which SSD's matrix form relies on (notebook 03), at the price of a fixed point that grows with
# $\Delta$.
#
# [← index](00_index.ipynb) · next: [02 · S5 with real time gaps vs S6](02_s5_vs_s6.ipynb)
