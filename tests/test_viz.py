"""ssmlab.viz: builders give the right traces and axis titles; data helpers match the math;
widget apps redraw in place when a control changes. Nothing is rendered."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("plotly")
from ssmlab import ssm, viz
from ssmlab.viz import discretization, masks, scans, timing


def _titles(fig):
    return fig.layout.xaxis.title.text, fig.layout.yaxis.title.text


# ---------------------------------------------------------------- discretization
def test_exact_step_response_solves_the_ode():
    t = np.linspace(0, 5, 501)
    h = discretization.exact_step_response(-2.0, 3.0, t)
    slope = np.gradient(h.real, t)[1:-1]
    np.testing.assert_allclose(slope, (-2.0 * h.real + 3.0)[1:-1], atol=1e-3)
    np.testing.assert_allclose(discretization.exact_step_response(0.0, 2.0, t), 2.0 * t)


@pytest.mark.parametrize("method", discretization.METHODS)
def test_discrete_step_response_matches_the_recurrence(method):
    lam, dt = -1.5, 0.3
    t, h = discretization.discrete_step_response(lam, 1.0, dt, 3.0, method)
    A64, B64 = torch.tensor([lam], dtype=torch.float64), torch.ones(1, dtype=torch.float64)
    A_bar, B_bar = (v.item() for v in ssm.discretize(A64, B64, dt, method))
    ref = [0.0]
    for _ in range(len(t) - 1):
        ref.append(A_bar * ref[-1] + B_bar)
    np.testing.assert_allclose(h.real, ref, rtol=1e-12, atol=1e-12)
    assert len(t) == 11 and t[1] == pytest.approx(dt)


def test_zoh_is_exact_and_amplification_values():
    t, h = discretization.discrete_step_response(-1.0, 1.0, 0.7, 5.0, "zoh")
    np.testing.assert_allclose(h, discretization.exact_step_response(-1.0, 1.0, t), atol=1e-12)
    z = np.array([-3.0, -0.5])
    np.testing.assert_allclose(discretization.amplification(z, "euler"), [2.0, 0.5])
    np.testing.assert_allclose(discretization.amplification(z, "zoh"), np.exp(z))
    np.testing.assert_allclose(
        discretization.amplification(z, "bilinear"), np.abs((1 + z / 2) / (1 - z / 2))
    )


def test_step_errors_orders():
    dts = np.array([1e-3, 1e-2])
    e = discretization.step_errors(-1.0, 1.0, dts, 2.0)
    assert set(e) == set(discretization.METHODS) and e["zoh"].max() < 1e-12
    assert 1.8 < np.log10(e["bilinear"][1] / e["bilinear"][0]) < 2.2
    assert 0.8 < np.log10(e["euler"][1] / e["euler"][0]) < 1.2


def test_kernel_builders_traces_and_titles():
    t = np.linspace(0, 4, 50)
    disc = {
        m: discretization.discrete_step_response(-1.0, 1.0, 0.5, 4.0, m)
        for m in discretization.METHODS
    }
    fig = discretization.step_response(t, discretization.exact_step_response(-1.0, 1.0, t), disc)
    assert len(fig.data) == 5 and [tr.name for tr in fig.data] == ["exact", *discretization.METHODS]
    assert _titles(fig) == ("time t", "state Re h(t)")

    z = np.linspace(-5, 0, 30)
    fig = discretization.stability_curve(
        z, {m: discretization.amplification(z, m) for m in discretization.METHODS}, marker=-1.0
    )
    assert len(fig.data) == 4 and len(fig.layout.shapes) == 2 and _titles(fig) == ("Δ·λ", "|Ā|")

    re, im = np.linspace(-3, 1, 9), np.linspace(-2, 2, 7)
    grid = re[None, :] + 1j * im[:, None]
    fig = discretization.stability_regions(
        re, im, {m: discretization.amplification(grid, m) for m in ("zoh", "euler")}
    )
    assert [tr.type for tr in fig.data] == ["contour", "contour"]
    assert fig.layout.xaxis.title.text == "Re(Δ·λ)" and fig.layout.yaxis.title.text == "Im(Δ·λ)"

    dts = np.logspace(-2, 0, 5)
    fig = discretization.error_vs_dt(dts, discretization.step_errors(-1.0, 1.0, dts, 2.0))
    assert len(fig.data) == 4 and fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert _titles(fig) == ("Δt", "max |h_k − h(kΔt)|")
    assert min(min(tr.y) for tr in fig.data) >= 1e-13  # the roundoff floor


def test_kernel_builders_reject_bad_input():
    with pytest.raises(ValueError, match="dt"):
        discretization.discrete_step_response(-1.0, 1.0, 0.0, 1.0, "zoh")
    with pytest.raises(ValueError, match="gains"):
        discretization.stability_curve(np.zeros(3), {"zoh": np.zeros(4)})
    with pytest.raises(ValueError, match="t_exact"):
        discretization.step_response(np.zeros(3), np.zeros(4), {})


# ---------------------------------------------------------------- scans
def test_s5_states_match_a_loop_and_keep_state_at_zero_gap():
    dt = np.array([0.0, 0.5, 0.0, 2.0, 30.0])
    lam = np.array([-0.1, -1.0])
    h = scans.s5_states(dt, lam, np.ones(2), np.ones(5))
    ref, state = [], np.zeros(2)
    for d in dt:
        a = np.exp(d * lam)
        b = np.where(d * lam == 0, d, (a - 1) / lam)
        state = a * state + b
        ref.append(state.copy())
    np.testing.assert_allclose(h.real, np.array(ref), atol=1e-12)
    np.testing.assert_array_equal(h[2], h[1])  # Δ = 0: unchanged
    np.testing.assert_allclose(scans.decay_factors(dt, lam), np.exp(dt[:, None] * lam[None]))


def test_scan_builders_traces_and_titles():
    t = np.array([0.0, 0.5, 2.0, 10.0])
    fig = scans.timeline(t)
    assert len(fig.data) == 1 and fig.layout.xaxis.title.text == "time (days)"
    h = np.random.default_rng(0).normal(size=(4, 3))
    fig = scans.state_trajectory(t, h, events=t)
    assert len(fig.data) == 4 and _titles(fig) == ("time", "state Re h")
    fig = scans.decay_bars(np.full((4, 3), 0.5), ["a", "b", "c"])
    assert len(fig.data) == 3 and _titles(fig) == ("interaction k", "|Ā_k| = |exp(Δ_k Λ)|")
    grid = np.logspace(-2, 2, 20)
    fig = scans.decay_curves(grid, {"λ = -1": np.exp(-grid)}, marker_dt=3.0)
    assert (
        len(fig.data) == 2
        and fig.layout.xaxis.type == "log"
        and _titles(fig) == ("step Δ", "|exp(Δλ)|")
    )
    fig = scans.delta_comparison({"S5": [0.1, 1.0], "S6": [0.5, 0.5]}, log=True)
    assert len(fig.data) == 2 and _titles(fig) == ("position k", "Δ_k")
    with pytest.raises(ValueError, match="h"):
        scans.state_trajectory(t, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="dt"):
        scans.decay_curves(np.array([0.0, 1.0]), {"a": [1.0, 0.5]})


# ---------------------------------------------------------------- masks
def test_time_aware_mask_and_chunk_split():
    t = np.array([0.0, 1.0, 1.0, 3.5, 4.0])
    L = masks.time_aware_mask(t, A=-0.5, dt=2.0)
    ref = torch.exp(-0.5 * 2.0 * (torch.tensor(t)[:, None] - torch.tensor(t)[None, :])).tril()
    torch.testing.assert_close(L, ref)
    diag, off = masks.chunk_split(L, 2)
    np.testing.assert_allclose(diag + off, L.numpy())
    assert diag[2, 1] == 0 and off[1, 0] == 0 and off[2, 1] != 0
    assert masks.chunk_boundaries(5, 2) == [0, 2, 4] and masks.sequence_boundaries(
        [0, 0, 1, 1, 1, 2]
    ) == [0, 2, 5]


def test_mask_builders_traces_and_titles():
    L = masks.time_aware_mask(np.cumsum(np.ones(8)), A=-0.3)
    fig = masks.heatmap(L)
    assert [tr.type for tr in fig.data] == ["heatmap"]
    assert tuple(fig.layout.yaxis.range) == (7.5, -0.5)  # row 0 on top, as a matrix reads
    assert _titles(fig) == (masks.COL, masks.ROW)
    fig = masks.mask_grid({"a": L, "b": -L, "c": torch.ones(8, 8, dtype=torch.bool)})
    assert [tr.type for tr in fig.data] == ["heatmap"] * 3
    assert fig.layout.xaxis.title.text == masks.COL and fig.layout.yaxis.title.text == masks.ROW
    assert fig.data[1].colorscale != fig.data[0].colorscale  # signed matrix: diverging scale
    fig = masks.duality_heatmaps(L, L, L)
    assert [a.text for a in fig.layout.annotations] == ["L (1-SS mask)", "CBᵀ", "M = L∘CBᵀ"]
    fig = masks.block_mask(L, 4)
    assert [tr.type for tr in fig.data] == ["heatmap", "scatter"]
    assert sum(v is None for v in fig.data[1].x) == 3  # blocks (0,0), (1,0), (1,1)
    fig = masks.packed_mask(L, [0, 0, 0, 1, 1, 2, 2, 2])
    assert sum(v is None for v in fig.data[1].x) == 3  # one box per sequence
    with pytest.raises(ValueError, match="seq_idx"):
        masks.packed_mask(L, [0, 1])
    with pytest.raises(ValueError, match="matrix"):
        masks.heatmap(np.zeros(4))


def test_heatmap_json_stays_small_and_rounded():
    L = masks.time_aware_mask(np.cumsum(np.random.default_rng(0).random(32)), A=-0.3)
    fig = masks.mask_grid({"a": L, "b": L, "c": L, "d": L})
    assert len(fig.to_json()) < 40_000
    z = np.asarray(fig.data[0].z, dtype=np.float64)
    np.testing.assert_allclose(z, np.round(z, 4), atol=1e-7)


# ---------------------------------------------------------------- timing
def test_timing_plot():
    seconds = {"sum": np.array([1e-4, 2e-4]), "cumsum": np.array([2e-4, 5e-4])}
    fig = timing.cost_vs_length([8, 16], seconds)
    assert len(fig.data) == 4 and [tr.name for tr in fig.data][2:] == ["O(l)", "O(l²)"]
    assert (
        _titles(fig) == ("sequence length l", "time per call (ms)")
        and fig.layout.xaxis.type == "log"
    )
    with pytest.raises(ValueError, match="lengths"):
        timing.cost_vs_length([0, 8], {"a": [1.0, 2.0]})


def test_efficiency_vs_length_panels():
    from ssmlab.viz._style import PALETTE

    cell = {"status": "ok", "train_epoch_s": 2.0, "infer_s": 0.1, "peak_mem_bytes": 2**21}
    rows = [
        {"model": m, "cells": [{**cell, "L": 8}, {**cell, "L": 16}, {"L": 32, "status": "skipped"}]}
        for m in ("sasrec", "tim4rec")
    ]
    settings = {"eval_users": 4, "device": "cpu", "batch_size": 4}
    fig = timing.efficiency_vs_length({"rows": rows, "settings": settings})
    assert len(fig.data) == 6 and [tr.showlegend for tr in fig.data[:3]] == [True, False, False]
    assert [tr.line.color for tr in fig.data[::3]] == list(PALETTE[:2])
    assert list(fig.data[2].x) == [8, 16] and list(fig.data[2].y) == [2.0, 2.0]  # MiB


# ---------------------------------------------------------------- widgets
def _apps():
    w = pytest.importorskip("ssmlab.viz.widgets")
    L = masks.time_aware_mask(np.cumsum(np.random.default_rng(0).random(16)), A=-0.3)
    t = [0.0, 0.01, 0.01, 1.0, 31.0]
    return [
        (w.discretization_app(), dict(dt=2.5)),
        (w.discretization_app(), dict(eigenvalue=-4.0)),
        (w.s5_decay_app(t, [-0.1, -2.0]), dict(scale=5.0)),
        (w.s6_delta_app(np.sin(np.arange(8))), dict(bias=2.0)),
        (w.chunk_app(L, 4), dict(chunk_size=8)),
        (
            w.gap_mask_app(
                [1.0, 2.0, 0.5], interval_fn=lambda ts: (ts[0, :, None] - ts[0, None, :]).abs()
            ),
            dict(gap_2=4.0),
        ),
    ]


def test_widget_apps_redraw_in_place_on_update():
    for app, change in _apps():
        assert isinstance(app, viz.widgets.App) and app.figures and app.children
        before = [json.dumps(fw.to_plotly_json()["data"], default=str) for fw in app.figures]
        ids = [id(fw) for fw in app.figures]
        app.update(**change)
        after = [json.dumps(fw.to_plotly_json()["data"], default=str) for fw in app.figures]
        assert before != after, app
        assert [id(fw) for fw in app.figures] == ids  # same FigureWidgets, updated in place
        assert all(app.controls[k].value == pytest.approx(v) for k, v in change.items())


def test_widget_slider_drag_redraws_and_bad_names_fail():
    app = viz.widgets.s5_decay_app([0.0, 1.0, 2.0], [-1.0])
    before = list(app.figures[1].data[0].y)
    app.controls["scale"].value = 10.0  # what a browser drag does
    assert list(app.figures[1].data[0].y) != before
    with pytest.raises(ValueError, match="unknown controls"):
        app.update(nope=1.0)
    assert repr(app) == "<ssmlab.viz.widgets.App 's5_decay': controls ['scale']>"


def test_every_widget_heatmap_names_its_colour_scale():
    for app, _ in _apps():
        for fw in app.figures:
            for trace in fw.data:
                if trace.type == "heatmap" and trace.showscale is not False:
                    assert trace.colorbar.title.text, (app, trace.name)
