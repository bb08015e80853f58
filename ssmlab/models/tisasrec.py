"""TiSASRec: self-attention aware of absolute positions and of personalized time intervals.

Paper: [TiSASRec] Li, Wang & McAuley, "Time Interval Aware Self-Attention for Sequential
Recommendation", WSDM 2020. Authors' code: https://github.com/JiachengLi1995/TiSASRec; PyTorch
port (the one the TiM4Rec authors cite): https://github.com/pmixer/TiSASRec.pytorch. RecBole 1.2
has no TiSASRec; we keep the authors' block and RecBole's right padding and CE loss.

Changes: see the class Note (loss, padding, causal interval scale, dropout on tables).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ssmlab.layers.attention import TiSASRecBlock, attention_mask, tisasrec_interval_matrix
from ssmlab.layers.ffn import ACTIVATIONS
from ssmlab.models.base import ModelConfig, SequentialRecommender
from ssmlab.models.sasrec import check_item_seq


@dataclass
class TiSASRecConfig(ModelConfig):
    """TiSASRec settings; ``dropout`` is the authors' dropout_rate (embeddings, FFN)."""

    n_heads: int = 2  # h: attention heads (authors' default 1)
    inner_size: int = 64  # width of the point-wise FFN (authors: = d)
    attn_dropout: float = 0.2  # dropout on attention weights (authors: = dropout_rate)
    hidden_act: str = "relu"  # FFN activation: "relu" (authors) or "gelu"
    time_span: int = 256  # k: intervals are clipped to 0..k
    layer_norm_eps: float = 1e-8  # LayerNorm epsilon (authors: 1e-8)

    def __post_init__(self):
        super().__post_init__()
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
    """

    config_class = TiSASRecConfig
    causal = True
    objectives = ("last", "all")

    def __init__(self, config: TiSASRecConfig, n_items: int):
        super().__init__(config, n_items)
        d = config.d_model
        self.pos_k = nn.Embedding(config.max_len, d)  # P^K
        self.pos_v = nn.Embedding(config.max_len, d)  # P^V
        self.interval_k = nn.Embedding(config.time_span + 1, d)  # E_K over r = 0..k
        self.interval_v = nn.Embedding(config.time_span + 1, d)  # E_V
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            TiSASRecBlock(
                d,
                config.n_heads,
                config.inner_size,
                config.dropout,
                config.attn_dropout,
                config.hidden_act,
                config.layer_norm_eps,
            )
            for _ in range(config.n_layers)
        )
        self.last_norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        for param in self.parameters():
            if param.dim() >= 2:
                nn.init.xavier_normal_(param)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()

    def encode(self, batch: dict[str, torch.Tensor], reference: bool = False) -> torch.Tensor:
        """Hidden state after each position.

        Shapes: item_seq (b, l), item_seq_len (b,), time_seq (b, l) -> (b, l, d).
        """
        item_seq, item_seq_len = batch["item_seq"], batch["item_seq_len"]
        check_item_seq(item_seq, self.config.max_len, "TiSASRec")
        time_seq = batch.get("time_seq")
        if time_seq is None or time_seq.shape != item_seq.shape:
            got = None if time_seq is None else tuple(time_seq.shape)
            raise ValueError(f"TiSASRec needs time_seq of shape {tuple(item_seq.shape)}, got {got}")
        b, seqlen = item_seq.shape
        real = item_seq > 0  # (b l)
        x = self.item_embedding(item_seq) * math.sqrt(self.config.d_model)
        x = self.dropout(x) * real[..., None]  # (b l d)
        positions = torch.arange(seqlen, device=item_seq.device)
        pos_k = self.dropout(self.pos_k(positions).expand(b, seqlen, -1))  # (b l d)
        pos_v = self.dropout(self.pos_v(positions).expand(b, seqlen, -1))
        interval = tisasrec_interval_matrix(time_seq, item_seq_len, self.config.time_span)
        # interval: (b l l) long, causal per-row scale
        emb_k = self.dropout(self.interval_k.weight)  # (r d)
        emb_v = self.dropout(self.interval_v.weight)
        mask = attention_mask(item_seq, causal=True)  # (b 1 l l)
        for block in self.blocks:
            x = block(x, mask, real, pos_k, pos_v, interval, emb_k, emb_v, reference=reference)
        return self.last_norm(x)
