"""Mamba4Rec: Mamba (S6) blocks with an FFN for next-item prediction [Mamba4Rec] [Mamba].

Authors' code: https://github.com/chengkai-liu/Mamba4Rec (``mamba4rec.py``, RecBole).
This version: the same layer stack and initialization in plain torch tensors (mamba-ssm's
selective-scan kernel is used on CUDA when installed, the torch reference elsewhere); the
padding embedding row is kept at 0; trains with the all-positions objective as well (causal).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ssmlab.layers.dropout import Dropout
from ssmlab.layers.ffn import FeedForward, recbole_init
from ssmlab.layers.mamba import MambaBlock
from ssmlab.layers.positions import at_positions
from ssmlab.models.base import ModelConfig, SequentialRecommender, register


@dataclass
class Mamba4RecConfig(ModelConfig):
    """Mamba4Rec hyperparameters (defaults: the paper's ML-1M setting, one layer)."""

    n_layers: int = 1  # number of Mamba layers (1 in Mamba4Rec's paper, 2 in TiM4Rec's table)
    d_state: int = 32  # N: SSM state size per channel
    d_conv: int = 4  # K: causal conv width
    expand: int = 2  # E: block expansion, d_inner = E * d
    dt_rank: int | None = None  # R: rank of the dt projection (None: ceil(d / 16))
    backend: str | None = None  # selective scan path: "torch", "mamba_ssm", None = auto

    def __post_init__(self):
        super().__post_init__()
        if min(self.d_state, self.d_conv, self.expand) <= 0:
            raise ValueError(
                f"Mamba4RecConfig: d_state, d_conv, expand must be > 0, got "
                f"{self.d_state}, {self.d_conv}, {self.expand}"
            )
        if self.dt_rank is not None and self.dt_rank <= 0:
            raise ValueError(f"Mamba4RecConfig: dt_rank must be > 0 or None, got {self.dt_rank}")


class MambaLayer(nn.Module):
    """h = LN(Dropout(Mamba(x)) + x) (no residual when the model has one layer); out = FFN(h).

    Shapes:
        x: (b, l, d); at: (b,) or None
        returns: (b, l, d), or (b, d) at ``at`` (out_proj, LayerNorm and FFN at one position)
    """

    def __init__(self, config: Mamba4RecConfig):
        super().__init__()
        d = config.d_model
        self.residual = config.n_layers > 1
        self.mamba = MambaBlock(
            d,
            d_state=config.d_state,
            d_conv=config.d_conv,
            expand=config.expand,
            dt_rank=config.dt_rank,
            backend=config.backend,
        )
        self.dropout = Dropout(config.dropout)
        self.norm = nn.LayerNorm(d, eps=1e-12)
        self.ffn = FeedForward(d, 4 * d, config.dropout, activation="gelu")

    def forward(self, x: torch.Tensor, at: torch.Tensor | None = None) -> torch.Tensor:
        h = self.dropout(self.mamba(x, at))  # (b l d) or (b d)
        h = self.norm(h + at_positions(x, at) if self.residual else h)
        return self.ffn(h)


@register("mamba4rec")
class Mamba4Rec(SequentialRecommender):
    """Item embedding -> Dropout -> LayerNorm -> n_layers x (Mamba, Add & Norm, FFN).

    Causal (Mamba's conv and scan read positions <= t), so both objectives apply.

    Note: as in the authors' code, a one-layer model has no residual around the Mamba block,
    and RecBole's initialization (N(0, 0.02) for every Linear, zero biases) is applied after
    construction, which also resets Mamba's dt_proj bias to 0 (a step of softplus(0) = 0.69).
    The padding row of the embedding is zeroed (RecBole leaves it random; it is never used at
    real positions and never ranked).
    """

    config_class = Mamba4RecConfig
    causal = True
    objectives = ("last", "all")

    def __init__(self, config: Mamba4RecConfig, n_items: int):
        super().__init__(config, n_items)
        self.emb_dropout = Dropout(config.dropout)
        self.emb_norm = nn.LayerNorm(config.d_model, eps=1e-12)
        self.layers = nn.ModuleList([MambaLayer(config) for _ in range(config.n_layers)])
        self.apply(recbole_init)

    def encode(
        self, batch: dict[str, torch.Tensor], at: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Hidden states at every position, or at ``at`` (the last layer's position-wise part
        there alone). Shapes: item_seq (b, l), at (b,) -> (b, l, d), or (b, d) with ``at``."""
        x = self.emb_norm(self.emb_dropout(self.item_embedding(batch["item_seq"])))  # (b l d)
        for i, layer in enumerate(self.layers):
            x = layer(x, at if i == len(self.layers) - 1 else None)
        return x
