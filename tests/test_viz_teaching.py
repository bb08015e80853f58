"""ssmlab.viz, the figures of notebooks v2: each teaching helper agrees with the model it draws
(SS4Rec's gaps, ZOH inside a step, S6's memory, TiM4Rec's three masks, the chunked algorithm's
four steps, scalar vs diagonal A, SSD4Rec's masking and flip), and every new app redraws."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("plotly")
from ssmlab import ssm, viz
from ssmlab.models.ss4rec import query_gaps
from ssmlab.viz import masks, scans

T = np.array([0.0, 1.0, 1.5, 1.5, 2.0, 6.0, 6.2, 7.0])


# ---------------------------------------------------------------- notebook 01
def test_steady_state_zoh_is_exact_mamba_grows_with_the_step():
    dts = np.array([0.1, 1.0, 5.0, 1e6])
    np.testing.assert_allclose(viz.discretization.steady_state(-1.0, dts, "zoh"), 1.0, rtol=1e-12)
    mamba = viz.discretization.steady_state(-1.0, dts, "mamba")
    np.testing.assert_allclose(mamba, dts / (1 - np.exp(-dts)), rtol=1e-12)
    assert round(float(mamba[2]), 2) == 5.03
    fig = viz.discretization.steady_state_curves(dts, {"zoh": np.ones(4), "mamba": mamba}, unit="s")
    assert fig.layout.xaxis.title.text == "step Δ (s)" and fig.layout.yaxis.type == "log"
    with pytest.raises(ValueError, match="positive"):
        viz.discretization.steady_state(-1.0, [0.0], "zoh")


# ---------------------------------------------------------------- notebook 02
def test_next_gaps_are_ss4rec_query_gaps():
    t = torch.tensor([[10, 12, 12, 20]])
    ref = query_gaps(torch.ones_like(t), t, at_time=torch.tensor([25]))[0]
    np.testing.assert_array_equal(scans.next_gaps(t[0].numpy(), 25.0), ref.numpy())
    assert scans.next_gaps([0.0, 1.0], 0.5).tolist() == [1.0, 0.0]  # a past query reads "now"
    with pytest.raises(ValueError, match="sorted"):
        scans.next_gaps([1.0, 0.0], 2.0)


def test_zoh_path_is_continuous_and_reaches_the_recurrence():
    lam, x, query = np.array([-0.5, -3.0]), np.array([1.0, -1.0, 0.5, 2.0]), 9.0
    t_ev = np.array([0.0, 1.0, 1.0, 4.0])
    h = scans.s5_states(scans.next_gaps(t_ev, query), lam, -lam, x)  # (l p)
    tp, hp = scans.zoh_path(t_ev, query, lam, -lam, x, steps=40)
    assert hp.shape == (len(tp), 2) and np.all(np.diff(tp) >= 0)
    for k, end in enumerate([1.0, 1.0, 4.0, 9.0]):  # the end of step k holds h_k
        np.testing.assert_allclose(hp[np.flatnonzero(tp == end)[-1]], h[k], atol=1e-12)
    for k, start in enumerate(t_ev[1:], 1):  # no jump: step k starts where step k-1 ended
        at = np.flatnonzero(tp == start)
        np.testing.assert_allclose(hp[at], np.repeat(h[k - 1][None], len(at), 0)[:, :], atol=1e-12)
    inside = (tp >= 4.0) & (tp <= 9.0)  # last step: relaxes monotonically towards x_3 = 2
    assert np.all(np.diff(hp[inside, 1].real) >= -1e-12) and abs(hp[-1, 1] - 2.0) < 1e-6


def test_first_item_weight_matches_a_selective_scan():
    delta = np.array([1.0, 0.01, 0.01, 0.5, 0.01])
    A = np.array([-1.0, -0.2])
    w = scans.first_item_weight(delta, A)
    x = torch.zeros(1, 2, 5, dtype=torch.float64)
    x[..., 0] = 1.0  # only the first input is non-zero
    B = torch.ones(1, 1, 5, dtype=torch.float64)
    dt = torch.as_tensor(delta).expand(1, 2, 5)
    for n in range(2):  # C picks state n; one state per channel via a diagonal A of size 1
        C = torch.ones(1, 1, 5, dtype=torch.float64)
        An = torch.full((2, 1), A[n], dtype=torch.float64)
        y = ssm.selective_scan(x, dt, An, B, C)  # (b d l)
        np.testing.assert_allclose(w[:, n], y[0, 0].numpy(), rtol=1e-10)
    fig = scans.first_item_plot({"S6": w[:, 0], "LTI": w[:, 1]})
    assert fig.layout.yaxis.type == "log" and len(fig.data) == 2


# ---------------------------------------------------------------- notebook 03
def test_scalar_A_gives_one_shared_mask_and_the_duality():
    dt = torch.rand(6, dtype=torch.float64) + 0.1
    Ls = masks.state_masks(dt, [-0.5, -0.5, -0.5])
    assert torch.equal(Ls[0], Ls[1]) and torch.equal(Ls[0], Ls[2])
    B, C, x = (torch.randn(6, 3, dtype=torch.float64) for _ in range(3))
    y_states = torch.einsum("nij,in,jn,j->i", Ls, C, B, dt * x[:, 0])  # sum over states
    y_attn = (Ls[0] * (C @ B.T)) @ (dt * x[:, 0])  # one mask: (L∘CBᵀ)(ΔX)
    torch.testing.assert_close(y_states, y_attn)
    Ld = masks.state_masks(dt, [-0.1, -0.5, -2.0])
    assert (Ld[0] - Ld[2]).abs().max() > 0.1  # diagonal A: one mask per state


@pytest.mark.parametrize("chunk_size", [1, 3, 4, 16])
def test_chunk_factors_rebuild_L(chunk_size):
    dt = torch.rand(10, dtype=torch.float64) + 0.1
    f = masks.chunk_factors(dt, -0.7, chunk_size)
    L = ssm.ssd_mask(dt[None, :, None], torch.tensor([-0.7], dtype=torch.float64))[0, 0]
    rebuilt = (
        f["1. diagonal blocks"]
        + f["2. chunk states"] * f["3. state passing"] * f["4. state to output"]
    )
    np.testing.assert_allclose(rebuilt, L.numpy(), atol=1e-12)
    if chunk_size >= 10:  # one chunk: nothing passes through states
        assert not f["2. chunk states"].any()


# ---------------------------------------------------------------- notebook 04
def test_tim4rec_mask_versions():
    A, dt = -0.3, 1.0
    L, dt_hat = masks.tim4rec_mask(T, A, "idealized", dt)
    exact = np.tril(np.exp(A * dt * (T[:, None] - T[None, :])))
    np.testing.assert_allclose(L.numpy(), exact, atol=1e-12)
    assert np.flatnonzero(dt_hat.numpy() == 0).tolist() == [0, 3]  # D_0 = 0 and the duplicate

    L, dt_hat = masks.tim4rec_mask(T, A, "code", dt, dt_bias=0.5)
    D = torch.as_tensor(np.diff(T, prepend=T[0]))
    ref = torch.nn.functional.softplus(dt * torch.nn.functional.layer_norm(D, (8,)) + 0.5)
    torch.testing.assert_close(dt_hat, ref)
    assert torch.all(dt_hat > 0)  # softplus: no input is silenced
    Lref = ssm.ssd_mask(ref[None, :, None], torch.tensor([A], dtype=torch.float64))[0, 0]
    torch.testing.assert_close(L, Lref)

    L, dt_hat = masks.tim4rec_mask(T, A, "paper", dt)
    a_hat = np.exp(dt * A) * dt_hat.numpy() / dt  # â_k = a·d_k
    assert L[5, 2].item() == pytest.approx(a_hat[3] * a_hat[4] * a_hat[5])  # a product of gaps
    assert (dt_hat < 0).any()  # LayerNorm makes d signed
    with pytest.raises(ValueError, match="version"):
        masks.tim4rec_mask(T, A, "nope")


def test_bernoulli_masks_follow_the_ratio():
    m, starts = masks.bernoulli_masks([5, 4, 7], 0.3, draws=400, seed=1)
    assert m.shape == (400, 16) and starts == [0, 5, 9]
    assert abs(m.mean() - 0.3) < 0.03 and set(np.unique(m)) <= {0.0, 1.0}
    assert not masks.bernoulli_masks([5], 0.0)[0].any()
    with pytest.raises(ValueError, match="ratio"):
        masks.bernoulli_masks([5], 1.0)


def test_flip_reach_matches_the_bissd_conventions():
    seq_idx = torch.tensor([[0, 0, 1, 1, 1, 2, 2, 2, 2]])
    same = (seq_idx[0, :, None] == seq_idx[0, None, :]).numpy()
    ends = [1, 4, 8]
    back = masks.flip_reach(seq_idx[0], "user-wise", flip_back=True)
    assert not back[~same].any() and not np.tril(back, -1).any()  # reads i..end of its user
    authors = masks.flip_reach(seq_idx[0], "user-wise", flip_back=False)
    assert not authors[~same].any()
    for start, end in zip([0, 2, 5], ends):  # the last position reads its whole user
        assert (authors[end, start : end + 1] > 0).all()
    whole = masks.flip_reach(seq_idx[0], "whole row", flip_back=False)
    assert whole[~same].any()  # crosses users
    # the reach is the linear map of the backward pass of a 1-channel SSD with that decay
    x = torch.eye(9, dtype=torch.float64)[:, :, None, None].transpose(0, 1)  # (b=9 l h p)
    dt = torch.ones(1, 9, 1, dtype=torch.float64).expand(9, -1, -1)
    A = torch.tensor([np.log(0.8)], dtype=torch.float64)
    B = C = torch.ones(9, 9, 1, 1, dtype=torch.float64)
    sidx = seq_idx.expand(9, -1)
    _, y_bwd = ssm.ssd_bidirectional(x, dt, A, B, C, seq_idx=sidx, chunk_size=4)
    np.testing.assert_allclose(back, y_bwd[:, :, 0, 0].T.numpy(), atol=1e-12)


# ---------------------------------------------------------------- heatmaps
def test_colorbar_titles():
    fig = masks.mask_grid({"a": np.eye(3), "b": np.eye(3)}, ztitles={"a": "weight"})
    assert fig.data[0].colorbar.title.text == "weight" and fig.data[1].colorbar.title.text is None
    fig = masks.heatmap(np.eye(3), ztitle="index")
    assert fig.data[0].colorbar.title.text == "index"


# ---------------------------------------------------------------- apps
def _new_apps():
    W = viz.widgets_ssd
    rng = np.random.default_rng(0)
    return [
        (viz.widgets.s5_decay_app(T, [-0.5, -2.0]), dict(scale=5.0)),
        (viz.widgets.s6_memory_app(), dict(n_irrelevant=40)),
        (
            W.ssd_mask_app(np.full(8, 0.5), rng.normal(size=(8, 2)), rng.normal(size=(8, 2))),
            dict(A=-2.0),
        ),
        (W.scalar_vs_diagonal_app(np.ones(6)), dict(kind=W.A_KINDS[0])),
        (W.tim4rec_mask_app(T, version="code"), dict(version="idealized")),
        (W.bernoulli_app([5, 4, 7]), dict(ratio=0.5)),
        (W.flip_app([0, 0, 1, 1, 1], [4, 8, 3, 7, 5], [6, 9]), dict(flip="whole row")),
    ]


def test_new_apps_redraw_in_place():
    for app, change in _new_apps():
        before = [json.dumps(fw.to_plotly_json()["data"], default=str) for fw in app.figures]
        app.update(**change)
        after = [json.dumps(fw.to_plotly_json()["data"], default=str) for fw in app.figures]
        assert before != after, app


def test_teaching_apps_answer_their_questions():
    W = viz.widgets_ssd
    mem = viz.widgets.s6_memory_app(n_irrelevant=30, delta_irrelevant=0.01)
    s6, lti = (np.array(tr.y, dtype=float) for tr in mem.figures[0].data)
    assert s6[-1] > 0.7 and lti[-1] < 1e-10  # the early item survives only in S6
    sd = W.scalar_vs_diagonal_app(np.ones(6))
    assert "differ" in sd.figures[0].layout.title.text
    sd.update(kind=W.A_KINDS[0])
    z = [np.array(tr.z) for tr in sd.figures[0].data if tr.type == "heatmap"]
    assert all(np.array_equal(z[0], zi) for zi in z) and "shared" in sd.figures[0].layout.title.text
    tm = W.tim4rec_mask_app(T, version="idealized")
    assert "[0, 3]" in tm.figures[0].layout.title.text
    fl = W.flip_app([0, 0, 1, 1, 1, 2, 2, 2, 2], [4, 8, 3, 7, 5, 3, 7, 5, 9], [6, 9, 2])
    assert len(fl.figures[0].data[-1].x) == 0  # user-wise: no position reads its target
    fl.update(flip="whole row")
    assert len(fl.figures[0].data[-1].x) > 0


def test_show_displays_the_app_and_a_static_snapshot(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    app = viz.widgets.s6_memory_app()
    app.show()
    assert shown[0] is app and len(shown) == 1 + len(app.figures)
    assert all(f.layout.title.text.startswith("Static snapshot: ") for f in shown[1:])
    assert shown[1].data[0].y == app.figures[0].data[0].y  # the app's first state
