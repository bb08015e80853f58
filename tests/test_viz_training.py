"""ssmlab.viz.training and the "what at time t" app: traces, axis titles, tables, and the app
redrawing when its slider moves. Nothing is rendered, no model is trained."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("plotly")
from ssmlab.viz import training


def _history(losses, ndcgs):
    return [
        {"epoch": i + 1, "train_loss": lo, "valid": {"ndcg@10": n, "hr@10": 2 * n}}
        for i, (lo, n) in enumerate(zip(losses, ndcgs))
    ]


HIST = {
    "tim4rec": _history([4.5, 3.9, 3.1], [0.2, 0.3, 0.4]),
    "ssd4rec_star": _history([4.5, 3.6, 3.0], [0.2, 0.22, 0.23]),
}
RESULTS = {
    "tim4rec": {"hr@10": 0.8, "ndcg@10": 0.4, "mrr@10": 0.3},
    "ssd4rec_star": {"hr@10": 0.5, "ndcg@10": 0.22, "mrr@10": 0.14},
    "ss4rec": {"hr@10": 0.7, "ndcg@10": 0.35, "mrr@10": 0.25},
    "mamba4rec": {"hr@10": 0.49, "ndcg@10": 0.21, "mrr@10": 0.13},
}


def _titles(fig, i=""):
    return fig.layout[f"xaxis{i}"].title.text, fig.layout[f"yaxis{i}"].title.text


def test_curve_reads_loss_and_skips_epochs_without_validation():
    records = HIST["tim4rec"] + [{"epoch": 4, "train_loss": 2.9, "valid": None}]
    ep, loss = training.curve(records, "train_loss")
    assert ep.tolist() == [1, 2, 3, 4] and loss.tolist() == [4.5, 3.9, 3.1, 2.9]
    ep, ndcg = training.curve(records, "ndcg@10")
    assert ep.tolist() == [1, 2, 3] and ndcg.tolist() == [0.2, 0.3, 0.4]


def test_training_curves_traces_titles_and_ceiling_lines():
    fig = training.training_curves(HIST, "ndcg@10", ceilings={"time-blind ceiling": 0.227})
    assert len(fig.data) == 2 * len(HIST) + 1
    assert _titles(fig) == ("epoch", "loss") and _titles(fig, 2) == ("epoch", "ndcg@10")
    ceiling = fig.data[-1]
    assert ceiling.name == "time-blind ceiling" and list(ceiling.y) == [0.227, 0.227]
    assert list(ceiling.x) == [1, 3] and ceiling.xaxis == "x2"
    loss = next(t for t in fig.data if t.name == "tim4rec" and t.xaxis == "x")
    assert list(loss.y) == [4.5, 3.9, 3.1]
    with pytest.raises(ValueError, match="histories"):
        training.training_curves({})
    with pytest.raises(ValueError, match="tim4rec"):
        training.training_curves({"tim4rec": [{"loss": 1.0}]})


def test_metric_table_rows_columns_and_missing_metric():
    ceiling = {"time-blind ceiling": {"hr@10": 0.5, "ndcg@10": 0.227, "mrr@10": 0.146}}
    table = training.metric_table(RESULTS, ceilings=ceiling)
    assert list(table.columns) == ["hr@10", "ndcg@10", "mrr@10"]
    assert list(table.index) == [*RESULTS, "time-blind ceiling"]
    assert table.loc["tim4rec", "hr@10"] == 0.8
    with pytest.raises(ValueError, match="missing metrics"):
        training.metric_table({"a": {"hr@10": 1.0}})


def test_metric_and_ablation_bars():
    groups = {
        "tim4rec": "time-aware",
        "ss4rec": "time-aware",
        "ssd4rec_star": "time-blind",
        "mamba4rec": "time-blind",
    }
    fig = training.metric_bars(RESULTS, "hr@10", ceilings={"ceiling": 0.5}, groups=groups)
    assert [t.type for t in fig.data] == ["bar", "bar", "scatter"]
    assert list(fig.data[0].x) == ["tim4rec", "ss4rec"] and list(fig.data[0].y) == [0.8, 0.7]
    assert _titles(fig) == ("model", "hr@10")
    with pytest.raises(ValueError, match="no group"):
        training.metric_bars(RESULTS, groups={"tim4rec": "a"})
    pairs = [("tim4rec", "ssd4rec_star"), ("ss4rec", "mamba4rec")]
    fig = training.ablation_bars(RESULTS, pairs, "hr@10", ceilings={"ceiling": 0.5})
    assert [t.name for t in fig.data] == ["with time", "w/o time", "ceiling"]
    assert list(fig.data[0].y) == [0.8, 0.7] and list(fig.data[1].y) == [0.5, 0.49]
    assert list(fig.data[0].x) == ["tim4rec vs ssd4rec_star", "ss4rec vs mamba4rec"]
    assert _titles(fig) == ("pair (with time vs without)", "test hr@10")
    with pytest.raises(ValueError, match="without results"):
        training.ablation_bars(RESULTS, [("tim4rec", "sasrec")])


def test_compare_bars_gap_labels_and_missing_models():
    ours = {"sasrec": 0.0411, "gru4rec": 0.0316, "bert4rec": 0.03}
    paper = {"sasrec": 0.0425, "gru4rec": 0.0297}
    fig = training.compare_bars({"ours": ours, "paper": paper}, relative_to="paper")
    assert [t.name for t in fig.data] == ["ours", "paper"]
    assert list(fig.data[0].x) == ["sasrec", "gru4rec", "bert4rec"]
    assert list(fig.data[0].text) == ["-3.3%", "+6.4%", ""]  # no paper value for bert4rec
    assert list(fig.data[1].y) == [0.0425, 0.0297, None]
    assert list(fig.data[1].text)[:2] == ["0.0425", "0.0297"]
    assert fig.layout.barmode == "group" and _titles(fig) == ("model", "ndcg@10")
    plain = training.compare_bars({"item": ours, "file": {"sasrec": 0.035}})
    assert list(plain.data[1].text) == ["0.0350", "", ""]
    with pytest.raises(ValueError, match="not a series"):
        training.compare_bars({"ours": ours}, relative_to="paper")
    with pytest.raises(ValueError, match="non-empty"):
        training.compare_bars({})


def test_steps_vs_gap_one_trace_per_label_sorted_and_thinned():
    gaps = np.array([300.0, 9000.0, 310.0, 8800.0] * 100)
    steps = {"layer 1": np.where(gaps > 1000, 0.9, 0.1), "layer 2": np.full(400, 0.5)}
    fig = training.steps_vs_gap(gaps, steps, max_points=50)
    assert [t.name for t in fig.data] == ["layer 1", "layer 2"]
    x, y = np.asarray(fig.data[0].x), np.asarray(fig.data[0].y)
    assert len(x) <= 50 and (np.diff(x) >= 0).all()  # sorted by gap, thinned
    assert set(y[x < 1000]) == {0.1} and set(y[x > 1000]) == {0.9}
    assert fig.layout.xaxis.type == "log"
    with pytest.raises(ValueError, match="positive gaps"):
        training.steps_vs_gap(np.array([0.0, 1.0]), {"a": np.ones(2)})
    with pytest.raises(ValueError, match="expected 2 values"):
        training.steps_vs_gap(np.array([1.0, 2.0]), {"a": np.ones(3)})


def test_top_items_softmax_and_bars():
    scores = np.array([-np.inf, 0.0, 3.0, 1.0, 3.0, -1.0])
    ids, probs = training.top_items(scores, k=3)
    assert ids.tolist() == [2, 4, 3]  # tie 2/4 broken by id; padding never shown
    e = np.exp([0.0, 3.0, 1.0, 3.0, -1.0])
    np.testing.assert_allclose(probs, e[[1, 3, 2]] / e.sum())
    fig = training.topk_bars(scores, k=3, highlight=[4])
    assert len(fig.data) == 1 and list(fig.data[0].x) == ["item 2", "item 4", "item 3"]
    assert list(fig.data[0].marker.color) == ["#9e9e9e", "#2ca02c", "#9e9e9e"]
    assert _titles(fig) == ("top 3 items (green: a true candidate)", "P(next item)")
    with pytest.raises(ValueError, match="scores"):
        training.top_items(scores, k=6)


def test_probability_vs_gap_and_labels():
    gaps = np.array([60.0, 3600.0, 86400.0])
    scores = np.array([[-np.inf, 1.0, 0.0], [-np.inf, 0.0, 0.0], [-np.inf, 0.0, 1.0]])
    fig = training.probability_vs_gap(gaps, scores, items=[1, 2], marker=3600.0)
    assert len(fig.data) == 3 and fig.data[-1].name == "query gap"
    assert fig.layout.xaxis.type == "log" and _titles(fig)[1] == "P(item)"
    assert fig.data[1].y[1] == 0.5 and fig.data[0].y[0] > 0.7
    with pytest.raises(ValueError, match="scores"):
        training.probability_vs_gap(gaps, scores[:2], items=[1])
    assert [training.gap_label(s) for s in (30, 120, 7200, 2 * 86400, 90 * 86400)] == [
        "30 s",
        "2 min",
        "2 h",
        "2 days",
        "3 months",
    ]


# ---------------------------------------------------------------- widget
def test_query_time_app_slider_changes_the_bars():
    w = pytest.importorskip("ssmlab.viz.widgets_training")
    n_items = 12
    calls = []

    def predict(gaps):  # item 1 wins for short gaps, item 12 for long ones
        calls.append(len(gaps))
        s = np.zeros((len(gaps), n_items + 1))
        s[:, 0] = -np.inf
        frac = np.log(gaps / gaps[0]) / np.log(gaps[-1] / gaps[0])
        s[:, 1], s[:, n_items] = 4.0 * (1 - frac), 5.0 * frac
        return s

    grid = w.gap_grid(60.0, 1e7, 9)
    app = w.query_time_app(predict, grid, gap=60.0, k=3, highlight=[12])
    assert calls == [9]  # one batched call; the slider only picks a row
    bars, lines = app.figures
    assert bars.data[0].x[0] == "item 1" and lines.layout.xaxis.type == "log"
    before = list(bars.data[0].y)
    app.update(gap=float(grid[-1]))
    assert bars.data[0].x[0] == "item 12" and list(bars.data[0].y) != before
    assert bars.data[0].marker.color[0] == "#2ca02c"
    assert lines.data[-1].x[0] == grid[-1]  # the marker follows the slider
    assert calls == [9]
    with pytest.raises(ValueError, match="unknown controls"):
        app.update(dt=1.0)
    with pytest.raises(ValueError, match="predict"):
        w.query_time_app(lambda g: np.zeros((2, 5)), grid)
    with pytest.raises(ValueError, match="gaps"):
        w.query_time_app(predict, [10.0, 5.0])
