"""TiM4Rec: time-aware SSD (Mamba2) for next-item prediction [TiM4Rec] [Mamba2].

Authors' code: https://github.com/AlwaysFHao/TiM4Rec (``tim4rec.py``, ``ssd.py``, RecBole).
This version: the same layers, hyperparameters and initialization in plain torch (SSD through
``ssmlab.ssm.ssd``: mamba-ssm's kernel on CUDA when installed, the chunked torch path
elsewhere); gaps at padding are 0 by default, the authors' padding gaps as an option
(``time_gap_padding``, see the Note); and a causal variant of the time path
(``time_mlp="causal"``) so the model can also train with the all-positions objective.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ssmlab.layers.dropout import Dropout
from ssmlab.layers.ffn import FeedForward, recbole_init
from ssmlab.layers.norm import PrefixLayerNorm
from ssmlab.layers.positions import at_positions
from ssmlab.layers.ssd import TIME_MLPS, SSDBlock, TimeAwareSSDBlock
from ssmlab.models.base import ModelConfig, SequentialRecommender, register
from ssmlab.ssm.discretize import time_gap_to_dt
from ssmlab.ssm.ssd import time_deltas

ACTS = ("hardswish", "silu", "gelu", "relu")
TIME_GAP_PADDINGS = ("clamped", "official")


@dataclass
class TiM4RecConfig(ModelConfig):
    """TiM4Rec hyperparameters (defaults: the authors' ML-1M 64-d config, max_len aside)."""

    d_state: int = 32  # N: SSD state size
    d_conv: int = 4  # K: causal conv width (Eq. 15, 17)
    expand: int = 2  # E: d_inner = E * d
    head_dim: int = 32  # P: channels per head; heads H = E * d / P
    chunk_size: int = 32  # SSD block size (speed only)
    time_dropout: float = 0.2  # dropout inside the time MLP and gate (authors' time_drop_out)
    norm_eps: float = 1e-12  # LayerNorm / RMSNorm epsilon (1e-12 ML-1M, 1e-5 Beauty)
    time_mlp: str = "positional"  # "positional" (authors', Linear(L, L)) or "causal" (masked)
    time_gap_padding: str = "clamped"  # gaps at padding: "clamped" (0) or "official" (0 - t_last)
    p2p_residual: bool = False  # gate of the time residual: per position (True) or per sequence
    conv_act: str = "hardswish"  # sigma of Eq. 15/17 (the code's nn.Conv1d path uses Hardswish)
    ffn_act: str = "hardswish"  # FFN activation in the authors' code
    kaiming_conv_init: bool = True  # Kaiming-normal conv init (authors' is_kai_ming_init)
    use_time: bool = True  # False = "w/o Time" ablation = SSD4Rec*
    backend: str | None = None  # SSD path: "torch", "mamba_ssm", None = auto

    def __post_init__(self):
        super().__post_init__()
        name = type(self).__name__
        if min(self.d_state, self.d_conv, self.expand, self.head_dim, self.chunk_size) <= 0:
            raise ValueError(f"{name}: d_state, d_conv, expand, head_dim, chunk_size must be > 0")
        if (self.expand * self.d_model) % self.head_dim:
            raise ValueError(
                f"{name}: expand * d_model = {self.expand * self.d_model} must be "
                f"divisible by head_dim = {self.head_dim}"
            )
        if not 0.0 <= self.time_dropout < 1.0:
            raise ValueError(f"{name}: time_dropout must be in [0, 1), got {self.time_dropout}")
        if self.time_mlp not in TIME_MLPS:
            raise ValueError(f"{name}: time_mlp must be one of {TIME_MLPS}, got {self.time_mlp!r}")
        if self.time_gap_padding not in TIME_GAP_PADDINGS:
            raise ValueError(
                f"{name}: time_gap_padding must be one of {TIME_GAP_PADDINGS}, "
                f"got {self.time_gap_padding!r}"
            )
        for field in ("conv_act", "ffn_act"):
            if getattr(self, field) not in ACTS:
                raise ValueError(
                    f"{name}: {field} must be one of {ACTS}, got {getattr(self, field)!r}"
                )
        if self.norm_eps <= 0:
            raise ValueError(f"{name}: norm_eps must be > 0, got {self.norm_eps}")


def official_time_gaps(item_seq: torch.Tensor, time_seq: torch.Tensor, width: int) -> torch.Tensor:
    """Gaps 𝒟 as the authors compute them [TiM4Rec Eq. (9)], padding included.

    The authors' ``calculate_time_diff`` (TiM4Rec ``tim4rec.py:100-105``) differences RecBole's
    timestamp list, which is zero-padded on the right to max_len and held in float32 (RecBole
    ``sequential_dataset.py:141-149``): 𝒟_0 = 0, 𝒟_i = t_i - t_{i-1} at real positions, the first
    padding position holds 0 - t_last (about -1.3e9 s) and later ones 0. No clamping.

    Shapes:
        item_seq, time_seq: (b, l) right-padded, l <= width
        returns: (b, width) float32
    """
    pad = width - item_seq.shape[1]
    if pad < 0:
        raise ValueError(f"sequence length {item_seq.shape[1]} exceeds width {width}")
    t = F.pad(time_seq.masked_fill(item_seq == 0, 0), (0, pad)).float()  # (b w), RecBole's list
    return F.pad(t[:, 1:] - t[:, :-1], (1, 0))  # (b w), 0 at position 0


class TiSSDLayer(nn.Module):
    """h = LN(Dropout(block(x)) + x) (no residual for a one-layer model), out = FFN(h).

    The block is a ``TimeAwareSSDBlock`` (with time) or an ``SSDBlock`` (without); the time
    feature passes from layer to layer.

    Shapes:
        x: (b, l, d); time_feat: (b, h, lt) or None; at: (b,) or None
        returns: (b, l, d), or (b, d) at ``at`` (the block's gated norm and out_proj, the
        LayerNorm and FFN at one position per row), and the next time feature (or None)
    """

    def __init__(self, config: TiM4RecConfig):
        super().__init__()
        d = config.d_model
        kwargs = {
            "d_state": config.d_state,
            "d_conv": config.d_conv,
            "expand": config.expand,
            "head_dim": config.head_dim,
            "chunk_size": config.chunk_size,
            "conv_act": config.conv_act,
            "bias": True,
            "norm_eps": config.norm_eps,
            "backend": config.backend,
        }
        if config.use_time:
            self.block = TimeAwareSSDBlock(
                d,
                config.max_len,
                time_mlp=config.time_mlp,
                time_dropout=config.time_dropout,
                p2p_residual=config.p2p_residual,
                **kwargs,
            )
        else:
            self.block = SSDBlock(d, **kwargs)
        self.residual = config.n_layers > 1
        self.dropout = Dropout(config.dropout)
        self.norm = nn.LayerNorm(d, eps=config.norm_eps)
        self.ffn = FeedForward(d, 4 * d, config.dropout, activation=config.ffn_act)

    def forward(self, x, time_feat=None, at=None):
        if time_feat is None:
            h = self.block(x, at=at)
        else:
            h, time_feat = self.block(x, time_feat, at=at)
        h = self.dropout(h)  # (b l d) or (b d)
        h = self.norm(h + at_positions(x, at) if self.residual else h)
        return self.ffn(h), time_feat


@register("tim4rec")
class TiM4Rec(SequentialRecommender):
    """Embedding -> Dropout -> LN; gaps 𝒟 -> Dropout -> LN over positions; time-aware SSD layers.

    Implements the model of [TiM4Rec] Section 3: 𝒟 from the timestamps [TiM4Rec Eq. (9)], the
    time-aware SSD block [TiM4Rec Eq. (14)-(20)] with an FFN per layer, the last position's
    hidden state scored against every item embedding [TiM4Rec Eq. (21)-(22)].

    ``time_mlp="positional"`` (the authors' form) mixes gaps across all L = max_len positions
    and normalizes 𝒟 with statistics of the whole row: outputs at t read the gaps after t, so
    ``causal`` is False and only the last-position objective is offered. ``time_mlp="causal"``
    (masked lower-triangular maps, prefix gate, ``PrefixLayerNorm``) is causal and also trains
    with the all-positions objective. ``causal`` is set per instance, ``objectives`` by
    :meth:`objectives_for`.

    Note: the authors take gaps from RecBole's right-padded timestamp list, so the first padding
    position holds 0 - t_last (a huge negative gap) that dominates the LayerNorm over
    positions (``time_gap_padding="official"``, :func:`official_time_gaps`); by default
    (``"clamped"``) gaps are clamped at 0 and zeroed at padding (``time_deltas``), so the
    normalized time feature at real positions does not carry the sequence end. On Amazon-Beauty
    (Table 3's setting) the two give the same test NDCG@10 within seed noise (0.0433 official,
    0.0427-0.0435 over three seeds clamped; ``benchmarks/results/reproduction.md``). With
    ``time_mlp="causal"`` the two agree at real positions (prefix statistics never reach the
    first padding position). Sequences are
    padded internally to max_len for the positional maps (longer ones are rejected). As in
    the code, a one-layer model has no residual around the SSD block, the FFN uses Hardswish,
    and the paper's learning rate of 0.01 is 0.001 in the released configs.
    """

    config_class = TiM4RecConfig
    uses_time = True

    @classmethod
    def objectives_for(cls, config: TiM4RecConfig) -> tuple[str, ...]:
        """The objective "all" needs a causal model: the causal time path, or no time path."""
        causal = (not config.use_time) or config.time_mlp == "causal"
        return ("last", "all") if causal else ("last",)

    def __init__(self, config: TiM4RecConfig, n_items: int):
        super().__init__(config, n_items)
        self.objectives = self.objectives_for(config)
        self.causal = "all" in self.objectives
        self.n_heads = config.expand * config.d_model // config.head_dim
        self.emb_dropout = Dropout(config.dropout)
        self.emb_norm = nn.LayerNorm(config.d_model, eps=config.norm_eps)
        if config.use_time:
            self.time_dropout = Dropout(config.dropout)
            self.time_norm = (
                PrefixLayerNorm(config.max_len, eps=config.norm_eps)
                if config.time_mlp == "causal"
                else nn.LayerNorm(config.max_len, eps=config.norm_eps)
            )
        self.layers = nn.ModuleList([TiSSDLayer(config) for _ in range(config.n_layers)])
        self.apply(lambda m: recbole_init(m, kaiming_conv=config.kaiming_conv_init))

    def time_features(self, item_seq: torch.Tensor, time_seq: torch.Tensor) -> torch.Tensor:
        """𝒟 = LN(Dropout(gaps)) per head: [TiM4Rec Eq. (9)] then dropout and LayerNorm.

        Gaps are in seconds, 0 at position 0; at padding 0 (``time_gap_padding="clamped"``) or
        the authors' 0 - t_last then 0 (``"official"``). The positional form pads to max_len
        and normalizes over all L positions; the causal form uses prefix statistics.

        Shapes:
            item_seq, time_seq: (b, l)
            returns: (b, h, lt), lt = max_len (positional) or l (causal)
        """
        if time_seq is None:
            raise ValueError(f"{type(self).__name__} needs batch['time_seq'] (b, l) Unix seconds")
        if time_seq.shape != item_seq.shape:
            raise ValueError(
                f"time_seq must have the shape of item_seq {tuple(item_seq.shape)}, "
                f"got {tuple(time_seq.shape)}"
            )
        dtype = self.item_embedding.weight.dtype
        positional = self.config.time_mlp == "positional"
        if self.config.time_gap_padding == "official":  # negative at the first pad: not a dt
            width = self.config.max_len if positional else item_seq.shape[1]
            gap = official_time_gaps(item_seq, time_seq, width).to(dtype)  # (b lt)
            feat = self.time_dropout(gap)
        else:
            gap = time_deltas(time_seq).masked_fill(item_seq == 0, 0)  # (b l)
            feat = self.time_dropout(time_gap_to_dt(gap, "raw", dtype=dtype))
            if positional:
                feat = F.pad(feat, (0, self.config.max_len - feat.shape[1]))  # (b L)
        feat = self.time_norm(feat)  # (b lt)
        return feat[:, None, :].expand(-1, self.n_heads, -1)  # (b h lt)

    def encode(
        self, batch: dict[str, torch.Tensor], at: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Hidden states at every position, or with ``at`` at position ``at[i]`` of each row
        (the last layer's position-wise part there alone, :class:`TiSSDLayer`).

        Shapes: item_seq, time_seq (b, l), at (b,) -> (b, l, d), or (b, d) with ``at``.
        """
        item_seq = batch["item_seq"]
        if item_seq.dim() != 2:
            raise ValueError(f"item_seq must have shape (b, l), got {tuple(item_seq.shape)}")
        if self.config.use_time and item_seq.shape[1] > self.config.max_len:
            raise ValueError(
                f"sequence length {item_seq.shape[1]} exceeds max_len = "
                f"{self.config.max_len} (the time maps are sized by max_len)"
            )
        x = self.emb_norm(self.emb_dropout(self.item_embedding(item_seq)))  # (b l d)
        feat = self.time_features(item_seq, batch.get("time_seq")) if self.config.use_time else None
        for i, layer in enumerate(self.layers):
            x, feat = layer(x, feat, at if i == len(self.layers) - 1 else None)
        return x
