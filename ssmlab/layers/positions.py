"""Reading one position per row: how a model's last layer skips the positions nobody scores.

Scoring reads each row's last real position (next-item prediction, evaluation), so a model can
run its last layer's position-wise parts (projections, norms, FFN, one attention query) there
alone; :func:`at_positions` is the one place that picks them.
"""

from __future__ import annotations

import torch


def at_positions(t: torch.Tensor, at: torch.Tensor | None) -> torch.Tensor:
    """Position ``at[i]`` of each row i, or ``t`` itself when ``at`` is None.

    Shapes: (b, l, ...), (b,) long -> (b, ...)
    """
    return t if at is None else t[torch.arange(t.shape[0], device=t.device), at]
