"""SSD4Rec*: TiM4Rec without time, a plain unidirectional SSD (Mamba2) recommender [TiM4Rec].

TiM4Rec's authors built SSD4Rec* as their baseline "strictly based on the SSD architecture" without
SSD4Rec's variable-length packing and bidirectional blocks [TiM4Rec] Section 4.1.2; it is also
TiM4Rec's "w/o Time" ablation. Authors' code: https://github.com/AlwaysFHao/TiM4Rec (``ssd.py``,
class ``SSD``, = ``TiSSD`` with ``is_time=False``). This version reuses :class:`TiM4Rec` with the
time path off (``use_time=False``): same layers, init and hyperparameters, no timestamps needed.
For the original SSD4Rec see ``ssmlab.models.ssd4rec``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ssmlab.models.base import register
from ssmlab.models.tim4rec import TiM4Rec, TiM4RecConfig


@dataclass
class SSD4RecStarConfig(TiM4RecConfig):
    """TiM4Rec's hyperparameters with the time path off (the fields about time are unused)."""

    use_time: bool = False  # must stay False: SSD4Rec* reads no timestamps

    def __post_init__(self):
        super().__post_init__()
        if self.use_time:
            raise ValueError(
                "SSD4RecStarConfig: use_time must be False (use the 'tim4rec' model "
                "for the time-aware version)"
            )


@register("ssd4rec_star")
class SSD4RecStar(TiM4Rec):
    """Embedding -> Dropout -> LN -> n_layers x (SSD block, Add & Norm, FFN); causal.

    Note: identical to ``TiM4Rec(use_time=False)``: the step is softplus(dt + dt_bias) and the
    time MLP, convolutions and gate are absent, so both objectives apply.
    """

    config_class = SSD4RecStarConfig
    uses_time = False
