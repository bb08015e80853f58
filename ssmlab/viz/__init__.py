"""Plotly figure builders and ipywidgets apps for the notebooks (``from ssmlab import viz``).

- ``viz.discretization``: step responses, stability of Ā, error against Δt;
- ``viz.scans``: state trajectories on irregular timelines, exp(ΔΛ) decay, Δ per step;
- ``viz.masks``: heatmaps of L, CBᵀ, M = L∘CBᵀ, causal / time-aware / packed masks, chunk blocks;
- ``viz.timing``: cost against sequence length (times measured by ``ssmlab.bench``);
- ``viz.widgets``: sliders wired to the same builders (notebooks 01, 02 and the ``App`` class);
  ``viz.widgets_ssd`` (notebooks 03, 04) and ``viz.widgets_training`` (05); imported on first
  use: they load ipywidgets and anywidget.

Builders are pure: data in (tensors, arrays, lists), ``plotly.graph_objects.Figure`` out; no
``.show()``, no files. ``viz`` uses ``ssmlab.ssm`` and plain data only (SPEC.md), never the layers.
"""

from __future__ import annotations

import importlib

try:
    import plotly  # noqa: F401
except ImportError as err:  # pragma: no cover - depends on the installed extras
    raise ImportError("ssmlab.viz needs plotly: pip install 'ssmlab[lab]'") from err

from ssmlab.viz import discretization, masks, scans, timing

__all__ = ["discretization", "masks", "scans", "timing", "widgets"]
_LAZY = ("widgets", "widgets_ssd", "widgets_training")


def __getattr__(name: str):
    if name in _LAZY:
        try:
            return importlib.import_module(f"ssmlab.viz.{name}")
        except ImportError as err:  # pragma: no cover
            raise ImportError(
                f"ssmlab.viz.{name} needs ipywidgets and anywidget: pip install 'ssmlab[lab]'"
            ) from err
    raise AttributeError(f"module 'ssmlab.viz' has no attribute {name!r}")
