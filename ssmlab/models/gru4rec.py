"""GRU4Rec: a GRU over the item embeddings.

Paper: [GRU4Rec] Hidasi et al., "Session-based Recommendations with Recurrent Neural Networks",
ICLR 2016, with the data augmentation of Tan et al., "Improved Recurrent Neural Networks for
Session-based Recommendations", DLRS 2016. Authors' code: https://github.com/hidasib/GRU4Rec.
This version follows RecBole 1.2 (``recbole/model/sequential_recommender/gru4rec.py``,
https://github.com/RUCAIBox/RecBole): embedding, dropout, GRU (no bias), dense back to d.

Changes from RecBole: plain tensors; the "all" objective besides last-position CE.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ssmlab.layers.dropout import Dropout
from ssmlab.layers.positions import at_positions
from ssmlab.models.base import ModelConfig, SequentialRecommender, register


@dataclass
class GRU4RecConfig(ModelConfig):
    """GRU4Rec settings: ``d_model`` is RecBole's embedding_size, ``n_layers`` its num_layers,
    ``dropout`` its dropout_prob (on the embeddings only)."""

    hidden_size: int = 128  # width of the GRU state (RecBole hidden_size)

    def __post_init__(self):
        super().__post_init__()
        if self.hidden_size <= 0:
            raise ValueError(f"GRU4RecConfig: hidden_size must be > 0, got {self.hidden_size}")


@register("gru4rec")
class GRU4Rec(SequentialRecommender):
    """Embedding -> dropout -> ``n_layers``-layer GRU (bias-free) -> Linear(hidden, d).

    Note:
        The original trains session-parallel mini-batches with ranking losses (BPR, TOP1) and
        sampled negatives; RecBole (and this version) trains on padded prefixes with CE over all
        items. Right padding keeps the GRU causal: padding only follows the real items.
    """

    config_class = GRU4RecConfig
    causal = True
    objectives = ("last", "all")

    def __init__(self, config: GRU4RecConfig, n_items: int):
        super().__init__(config, n_items)
        self.emb_dropout = Dropout(config.dropout)
        self.gru = nn.GRU(
            config.d_model,
            config.hidden_size,
            num_layers=config.n_layers,
            bias=False,
            batch_first=True,
        )
        self.dense = nn.Linear(config.hidden_size, config.d_model)
        nn.init.xavier_normal_(self.item_embedding.weight)  # RecBole's init
        nn.init.xavier_uniform_(self.gru.weight_hh_l0)  # RecBole: first layer only
        nn.init.xavier_uniform_(self.gru.weight_ih_l0)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()

    def encode(
        self, batch: dict[str, torch.Tensor], at: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Hidden state after each position, or at ``at`` (the output dense there alone).
        Shapes: item_seq (b, l), at (b,) -> (b, l, d), or (b, d) with ``at``."""
        item_seq = batch["item_seq"]
        if item_seq.dim() != 2:
            raise ValueError(
                f"GRU4Rec: item_seq must have shape (b, l), got {tuple(item_seq.shape)}"
            )
        x = self.emb_dropout(self.item_embedding(item_seq))  # (b l d)
        out, _ = self.gru(x)  # (b l hidden)
        return self.dense(at_positions(out, at))
