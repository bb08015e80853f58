"""TiSASRec: self-attention aware of absolute positions and of personalized time intervals.

Paper: [TiSASRec] Li, Wang & McAuley, "Time Interval Aware Self-Attention for Sequential
Recommendation", WSDM 2020. Authors' code: https://github.com/JiachengLi1995/TiSASRec; PyTorch
port (the one the TiM4Rec authors cite): https://github.com/pmixer/TiSASRec.pytorch. RecBole 1.2
has no TiSASRec; ``variant="original"`` keeps the authors' block and RecBole's right padding and
CE loss. ``variant="baseline"`` is the TiSASRec of TiM4Rec's Table 3, the TiM4Rec authors' own
baseline (https://github.com/AlwaysFHao/TiM4Rec ``baseline/TiSASRec/TiSASRec.py``,
``TiTransformer.py``): RecBole's SASRec plus interval keys and values, intervals
min(|t_i - t_j| in seconds, k).

Changes: see the class Note (loss, padding, causal interval scale, dropout on tables).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ssmlab.layers.attention import (
    IntervalTransformerBlock,
    TiSASRecBlock,
    attention_mask,
    clipped_interval_matrix,
    tisasrec_interval_matrix,
    transformer_layers,
)
from ssmlab.layers.dropout import Dropout
from ssmlab.layers.ffn import ACTIVATIONS, recbole_init
from ssmlab.models.base import ModelConfig, SequentialRecommender, register
from ssmlab.models.sasrec import check_item_seq

VARIANTS = ("original", "baseline")


@dataclass
class TiSASRecConfig(ModelConfig):
    """TiSASRec settings; ``dropout`` is the authors' dropout_rate (embeddings, FFN)."""

    n_heads: int = 2  # h: attention heads (authors' default 1)
    inner_size: int = 64  # width of the point-wise FFN (authors: = d)
    attn_dropout: float = 0.2  # dropout on attention weights (authors: = dropout_rate)
    hidden_act: str = "relu"  # FFN activation: "relu" (authors) or "gelu"
    time_span: int = 256  # k: intervals are clipped to 0..k
    layer_norm_eps: float = 1e-8  # LayerNorm epsilon (authors: 1e-8)
    variant: str = "original"  # "original" (the TiSASRec paper) or "baseline" (TiM4Rec's Table 3)

    def __post_init__(self):
        super().__post_init__()
        if self.variant not in VARIANTS:
            raise ValueError(
                f"TiSASRecConfig: variant must be one of {VARIANTS}, got {self.variant!r}"
            )
        if self.n_heads <= 0 or self.d_model % self.n_heads:
            raise ValueError(
                f"TiSASRecConfig: d_model ({self.d_model}) must be divisible by "
                f"n_heads ({self.n_heads})"
            )
        if self.inner_size <= 0 or self.time_span < 1:
            raise ValueError(
                f"TiSASRecConfig: inner_size and time_span must be >= 1, got "
                f"{self.inner_size}, {self.time_span}"
            )
        if not 0.0 <= self.attn_dropout < 1.0:
            raise ValueError(
                f"TiSASRecConfig: attn_dropout must be in [0, 1), got {self.attn_dropout}"
            )
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(
                f"TiSASRecConfig: hidden_act must be one of {sorted(ACTIVATIONS)}, "
                f"got {self.hidden_act!r}"
            )


@register("tisasrec")
class TiSASRec(SequentialRecommender):
    """TiSASRec: item embeddings x sqrt(d) (no position added to the input); each layer attends
    with keys k_j + P^K_j + R^K_ij and values v_j + P^V_j + R^V_ij, where P are absolute position
    embeddings and R = E[r_ij] embeds the clipped personalized interval r_ij
    (:func:`~ssmlab.layers.attention.tisasrec_interval_matrix`); final LayerNorm.

    Note:
        - Loss: the authors train with BCE on one sampled negative per position; here CE over all
          items (SPEC), with the "last" (RecBole prefix) or "all" objective.
        - Padding: right-padded (positions 0..l-1 from the first item) and padding *keys* are
          masked; the authors' code left-pads (the newest item always at position l - 1); the
          PyTorch port masks padding queries only.
        - r_min: computed from the row's visible history (the authors use the user's whole
          sequence), and causally: row i uses the smallest nonzero gap among items 0..i, so the
          model is strictly causal; for the last position this is the whole visible history.
        - r_ij = floor(|t_i - t_j| / r_min) as the paper writes it; the authors' code rounds each
          scaled timestamp, round(t / r_min), before taking differences (off by at most 1).
        - Interval embeddings: one table per K and V of ``time_span + 1`` rows (the authors' port
          sizes the K table by the item count, a slip); dropout is applied to the tables (shared
          by all pairs of a batch) rather than to each (b, l, l, d) entry, so the fast exact
          gather/scatter attention can be used. ``reference=True`` runs the materialized form.
        - Init: Xavier-normal on every matrix, as in the PyTorch port.

    ``variant="baseline"`` (TiM4Rec's Table 3 row;
    TiM4Rec ``baseline/TiSASRec/TiSASRec.py:87-110``):
    E_item + P (learned positions on the input), LayerNorm, dropout, then ``n_layers``
    :class:`~ssmlab.layers.attention.IntervalTransformerBlock` (RecBole's post-LN layer with
    E_K[r_ij] added to the keys and E_V[r_ij] to the values), no final LayerNorm, N(0, 0.02) init
    (RecBole). r_ij = min(|t_i - t_j|, k) in seconds, no r_min
    (:func:`~ssmlab.layers.attention.clipped_interval_matrix`). Differences from that code:
    dropout on the interval tables rather than on each (b, l, l, d) lookup (as above), and the
    padding row of the item table is 0 (RecBole's is random; padding keys are masked).
    """

    config_class = TiSASRecConfig
    causal = True
    objectives = ("last", "all")
    uses_time = True

    def __init__(self, config: TiSASRecConfig, n_items: int):
        super().__init__(config, n_items)
        d = config.d_model
        baseline = config.variant == "baseline"
        if baseline:
            self.position_embedding = nn.Embedding(config.max_len, d)  # P, added to the input
            self.emb_norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        else:
            self.pos_k = nn.Embedding(config.max_len, d)  # P^K
            self.pos_v = nn.Embedding(config.max_len, d)  # P^V
        self.interval_k = nn.Embedding(config.time_span + 1, d)  # E_K over r = 0..k
        self.interval_v = nn.Embedding(config.time_span + 1, d)  # E_V
        self.dropout = Dropout(config.dropout)
        block = IntervalTransformerBlock if baseline else TiSASRecBlock
        self.blocks = transformer_layers(block, config)
        if baseline:
            self.apply(recbole_init)  # N(0, 0.02) weights, zero biases (TiSASRec.py:66-76)
        else:
            self.last_norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
            for param in self.parameters():
                if param.dim() >= 2:
                    nn.init.xavier_normal_(param)
            with torch.no_grad():
                self.item_embedding.weight[0].zero_()

    def encode(
        self, batch: dict[str, torch.Tensor], reference: bool = False, at=None
    ) -> torch.Tensor:
        """Hidden state after each position (``reference=True``: materialized attention), or
        at ``at`` (the last block runs one query per row).

        Shapes: item_seq (b, l), item_seq_len (b,), time_seq (b, l), at (b,) -> (b, l, d), or
        (b, d) with ``at``.
        """
        item_seq, item_seq_len = batch["item_seq"], batch["item_seq_len"]
        check_item_seq(item_seq, self.config.max_len, "TiSASRec")
        time_seq = batch.get("time_seq")
        if time_seq is None or time_seq.shape != item_seq.shape:
            got = None if time_seq is None else tuple(time_seq.shape)
            raise ValueError(f"TiSASRec needs time_seq of shape {tuple(item_seq.shape)}, got {got}")
        mask = attention_mask(item_seq, causal=True)  # (b 1 l l)
        b, seqlen = item_seq.shape
        positions = torch.arange(seqlen, device=item_seq.device)
        if self.config.variant == "baseline":
            emb_k = self.dropout(self.interval_k.weight)  # (r d)
            emb_v = self.dropout(self.interval_v.weight)
            x = self.item_embedding(item_seq) + self.position_embedding(positions)  # (b l d)
            x = self.dropout(self.emb_norm(x))
            interval = clipped_interval_matrix(time_seq, self.config.time_span)  # (b l l)
            for i, block in enumerate(self.blocks):
                here = at if i == len(self.blocks) - 1 else None
                x = block(x, mask, interval, emb_k, emb_v, reference=reference, at=here)
            return x
        real = item_seq > 0  # (b l)
        x = self.item_embedding(item_seq) * math.sqrt(self.config.d_model)
        x = self.dropout(x) * real[..., None]  # (b l d)
        pos_k = self.dropout(self.pos_k(positions).expand(b, seqlen, -1))  # (b l d)
        pos_v = self.dropout(self.pos_v(positions).expand(b, seqlen, -1))
        interval = tisasrec_interval_matrix(time_seq, item_seq_len, self.config.time_span)
        # interval: (b l l) long, causal per-row scale
        emb_k = self.dropout(self.interval_k.weight)  # (r d)
        emb_v = self.dropout(self.interval_v.weight)
        for i, block in enumerate(self.blocks):
            here = at if i == len(self.blocks) - 1 else None
            x = block(x, mask, real, pos_k, pos_v, interval, emb_k, emb_v, reference, here)
        return self.last_norm(x)
