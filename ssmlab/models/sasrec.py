"""SASRec: causal self-attention over the item sequence.

Paper: [SASRec] Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018.
Authors' code: https://github.com/kang205/SASRec. This version follows RecBole 1.2
(``recbole/model/sequential_recommender/sasrec.py``, https://github.com/RUCAIBox/RecBole), the
implementation the TiM4Rec baselines were run with.

Changes from RecBole: plain tensors in and out (``SequentialRecommender``), boolean masks
(:func:`ssmlab.layers.attention.attention_mask`), and the "all" objective (every position predicts
the next item) besides RecBole's last-position CE.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ssmlab.layers.attention import TransformerBlock, attention_mask, transformer_layers
from ssmlab.layers.dropout import Dropout
from ssmlab.layers.ffn import ACTIVATIONS, recbole_init
from ssmlab.models.base import ModelConfig, SequentialRecommender, register


@dataclass
class SASRecConfig(ModelConfig):
    """SASRec settings (RecBole names in comments); ``dropout`` is RecBole's hidden_dropout_prob."""

    n_heads: int = 2  # h: attention heads (RecBole n_heads)
    inner_size: int = 256  # width of the point-wise FFN (RecBole inner_size)
    attn_dropout: float = 0.2  # dropout on attention weights (RecBole attn_dropout_prob)
    hidden_act: str = "gelu"  # FFN activation: "gelu" or "relu"
    layer_norm_eps: float = 1e-12  # LayerNorm epsilon

    def __post_init__(self):
        super().__post_init__()
        check_transformer_fields(self)


def check_transformer_fields(cfg) -> None:
    """Validation shared by the attention models' configs (SASRec, BERT4Rec)."""
    name = type(cfg).__name__
    if cfg.n_heads <= 0 or cfg.d_model % cfg.n_heads:
        raise ValueError(
            f"{name}: d_model ({cfg.d_model}) must be divisible by n_heads ({cfg.n_heads})"
        )
    if cfg.inner_size <= 0:
        raise ValueError(f"{name}: inner_size must be > 0, got {cfg.inner_size}")
    if not 0.0 <= cfg.attn_dropout < 1.0:
        raise ValueError(f"{name}: attn_dropout must be in [0, 1), got {cfg.attn_dropout}")
    if cfg.hidden_act not in ACTIVATIONS:
        raise ValueError(
            f"{name}: hidden_act must be one of {sorted(ACTIVATIONS)}, got {cfg.hidden_act!r}"
        )
    if cfg.layer_norm_eps <= 0:
        raise ValueError(f"{name}: layer_norm_eps must be > 0, got {cfg.layer_norm_eps}")


def check_item_seq(item_seq: torch.Tensor, max_len: int, name: str) -> None:
    """Clear error for a batch the model cannot take (learned positions cover max_len steps)."""
    if item_seq.dim() != 2:
        raise ValueError(f"{name}: item_seq must have shape (b, l), got {tuple(item_seq.shape)}")
    if item_seq.size(1) > max_len:
        raise ValueError(
            f"{name}: item_seq has length {item_seq.size(1)} > max_len {max_len}; "
            "truncate the history to the last max_len items"
        )


@register("sasrec")
class SASRec(SequentialRecommender):
    """SASRec as in RecBole: E_item + P (learned absolute positions), LayerNorm, dropout, then
    ``n_layers`` causal :class:`~ssmlab.layers.attention.TransformerBlock`; the output at position
    t is the user representation after items 0..t.

    Note:
        The authors' code uses pre-LayerNorm blocks, a ReLU FFN of width d built from 1x1 convs,
        scales item embeddings by sqrt(d) and trains with BCE on one sampled negative. RecBole (and
        so this version, as in the TiM4Rec baselines) uses post-LayerNorm blocks, a GELU FFN of
        width ``inner_size``, no scaling, and CE over all items. Sequences are right-padded, so
        position ids count from the first item (0..l-1), not from the end as in the authors' code.
    """

    config_class = SASRecConfig
    causal = True
    objectives = ("last", "all")

    def __init__(self, config: SASRecConfig, n_items: int):
        super().__init__(config, n_items)
        d = config.d_model
        self.position_embedding = nn.Embedding(config.max_len, d)
        self.emb_norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.emb_dropout = Dropout(config.dropout)
        self.blocks = transformer_layers(TransformerBlock, config)
        self.apply(recbole_init)  # N(0, 0.02) weights (RecBole initializer_range), zero biases

    def encode(
        self,
        batch: dict[str, torch.Tensor],
        return_weights: bool = False,
        at: torch.Tensor | None = None,
    ):
        """Hidden state after each position. Shapes: item_seq (b, l) -> (b, l, d); with ``at``
        (b,) the last block runs one query per row and returns (b, d).

        ``return_weights=True`` also returns each layer's attention weights (b, h, l, l), the
        last one's (b, h, 1, l) with ``at``.
        """
        item_seq = batch["item_seq"]
        check_item_seq(item_seq, self.config.max_len, type(self).__name__)
        positions = torch.arange(item_seq.size(1), device=item_seq.device)
        x = self.item_embedding(item_seq) + self.position_embedding(positions)  # (b l d)
        x = self.emb_dropout(self.emb_norm(x))
        mask = attention_mask(item_seq, causal=True)  # (b 1 l l)
        weights = []
        for i, block in enumerate(self.blocks):
            here = at if i == len(self.blocks) - 1 else None  # the last block: at only
            if return_weights:
                x, w = block(x, mask, return_weights=True, at=here)
                weights.append(w)
            else:
                x = block(x, mask, at=here)
        return (x, weights) if return_weights else x
