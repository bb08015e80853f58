"""The "what at time t" app of notebook 05: a log slider over the query gap -> SS4Rec's top-k.

SS4Rec answers "which item will this user pick at time t?": the gap from the last interaction
to the query time t is the S5 step of the last position [SS4Rec Sec. 3]. The app asks the same
history at every gap of a log grid (minutes to months) once, through a ``predict`` callable, and
the slider picks the row to draw: the top-k bars and, on the right, each item's probability
against the gap. ``viz`` never imports a model: the notebook passes ``predict``.

Needs the ``lab`` extra (ipywidgets, anywidget), like :mod:`ssmlab.viz.widgets`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import ipywidgets as widgets
import numpy as np

from ssmlab.viz import training
from ssmlab.viz.widgets import App

MINUTE, MONTH = 60.0, 30 * 86400.0


def gap_grid(lo: float = MINUTE, hi: float = 6 * MONTH, n: int = 49) -> np.ndarray:
    """``n`` log-spaced query gaps in seconds from ``lo`` to ``hi`` (default 1 min to 6 months).

    Shapes: -> (n,)
    """
    if not 0 < lo < hi or n < 2:
        raise ValueError(f"lo, hi, n: expected 0 < lo < hi and n >= 2, got {lo}, {hi}, {n}")
    return np.round(np.geomspace(lo, hi, n))


def query_time_app(
    predict: Callable[[np.ndarray], object],
    gaps: Sequence[float] | None = None,
    gap: float = 3600.0,
    k: int = 10,
    highlight: Sequence[int] = (),
    title: str = "SS4Rec: the next item at time t",
) -> App:
    """Slider over the query gap t − t_last (log scale) -> top-k next items and P(item) vs gap.

    ``predict(gaps)`` returns scores (g, n_items + 1) for the same history queried at each gap
    (seconds); it is called once, on ``gaps`` (default :func:`gap_grid`), and the slider moves
    over that grid. ``highlight``: item ids drawn green (e.g. the toy rule's true candidates).
    Controls: ``gap`` (seconds, snapped to the grid).

    Shapes: gaps (g,); predict(gaps) -> (g, n_items + 1)
    """
    grid = gap_grid() if gaps is None else np.asarray(gaps, dtype=np.float64)
    if grid.ndim != 1 or len(grid) < 2 or np.any(np.diff(grid) <= 0) or grid[0] <= 0:
        raise ValueError(f"gaps: expected >= 2 increasing positive seconds, got {grid.tolist()}")
    scores = training.to_numpy(predict(grid), None, name="predict(gaps)")
    if scores.ndim != 2 or scores.shape[0] != len(grid):
        raise ValueError(
            f"predict(gaps): expected scores (g, n_items + 1) with g = {len(grid)}, "
            f"got shape {scores.shape}"
        )
    probs = training.softmax(scores)
    ever_top = sorted({int(i) for row in scores for i in training.top_items(row, k)[0]})
    shown = sorted(ever_top, key=lambda i: -probs[:, i].max())[: 2 * k]
    ymax = round(float(probs[:, 1:].max()) * 1.1, 3)
    slider = widgets.SelectionSlider(
        options=[(training.gap_label(g), float(g)) for g in grid],
        value=float(grid[int(np.argmin(np.abs(np.log(grid / gap))))]),
        description="query gap",
        continuous_update=True,
        layout=widgets.Layout(width="520px"),
        style={"description_width": "90px"},
    )

    def redraw(gap):
        row = int(np.argmin(np.abs(grid - gap)))
        bars = training.topk_bars(
            scores[row], k, highlight, title=f"{title} (gap {training.gap_label(gap)})", ymax=ymax
        )
        lines = training.probability_vs_gap(
            grid, scores, shown, marker=float(grid[row]), title="P(item) against the query gap"
        )
        return [bars, lines]

    app = App("query_time", {"gap": slider}, redraw)
    app.gaps, app.scores = grid, scores
    return app


__all__ = ["MINUTE", "MONTH", "gap_grid", "query_time_app"]
