"""SS4Rec: continuous-time recommendation with a time-aware S5 and a relation-aware S6 [SS4Rec].

Authors' code: https://github.com/XiaoWei-i/SS4Rec (``ss4rec.py`` on RecBole, with s5-pytorch's
``S5`` and mamba-ssm's ``Mamba``). Per layer: h = LN(x + Dropout(S5(x, gaps))),
out = LN(h + Dropout(Mamba(h))); no FFN. The gap at position i is t_{i+1} - t_i, and at the last
position the gap to the *query* time (the target's timestamp): the model answers "what will
this user do at time t".
This version: the same layers in plain torch; the query time is an explicit argument
(``forward(..., at_time=...)``); gaps may be normalized (``time_norm``; the authors feed raw
seconds); causal, so it also trains with the all-positions objective (``target_times``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ssmlab.layers.dropout import Dropout
from ssmlab.layers.ffn import recbole_init
from ssmlab.layers.mamba import MambaBlock
from ssmlab.layers.positions import at_positions
from ssmlab.layers.s5 import S5Block
from ssmlab.models.base import ModelConfig, SequentialRecommender, last_index, register
from ssmlab.ssm.discretize import METHODS, NORMS


@dataclass
class SS4RecConfig(ModelConfig):
    """SS4Rec hyperparameters (defaults: d=64, two layers, P = N = 32)."""

    s5_state: int = 32  # P: S5 state size (authors' d_P)
    dt_min: float = 1e-3  # lower end of the initial per-state step (log-uniform)
    dt_max: float = 1e-1  # upper end of the initial per-state step
    discretization: str = "zoh"  # S5 discretization of each step
    time_norm: str = "raw"  # gap -> dt before the learned scale: raw (authors'), log1p, scale
    time_scale: float | None = None  # divisor for time_norm="scale" (e.g. median gap, seconds)
    d_state: int = 32  # N: S6 (Mamba) state size
    d_conv: int = 4  # K: Mamba causal conv width
    expand: int = 2  # E: Mamba expansion
    embedding_norm: bool = False  # Dropout + LN on the embeddings (off in the authors' code)
    backend: str | None = None  # selective-scan path: "torch", "mamba_ssm", None = auto

    def __post_init__(self):
        super().__post_init__()
        if min(self.s5_state, self.d_state, self.d_conv, self.expand) <= 0:
            raise ValueError("SS4RecConfig: s5_state, d_state, d_conv, expand must be > 0")
        if not 0 < self.dt_min <= self.dt_max:
            raise ValueError(
                f"SS4RecConfig: need 0 < dt_min <= dt_max, got {self.dt_min}, {self.dt_max}"
            )
        if self.discretization not in METHODS:
            raise ValueError(
                f"SS4RecConfig: discretization must be one of {METHODS}, "
                f"got {self.discretization!r}"
            )
        if self.time_norm not in NORMS:
            raise ValueError(
                f"SS4RecConfig: time_norm must be one of {NORMS}, got {self.time_norm!r}"
            )
        if (self.time_norm == "scale") != (self.time_scale is not None):
            raise ValueError(
                "SS4RecConfig: time_scale (> 0) is required by, and only used with, "
                f"time_norm='scale'; got time_norm={self.time_norm!r}, "
                f"time_scale={self.time_scale!r}"
            )
        if self.time_scale is not None and not self.time_scale > 0:
            raise ValueError(f"SS4RecConfig: time_scale must be > 0, got {self.time_scale}")


class SSLayer(nn.Module):
    """h = LN(x + Dropout(S5(x, gaps))); out = LN(h + Dropout(S6(h))), one shared LayerNorm.

    Shapes:
        x: (b, l, d); time_gap: (b, l); at: (b,) or None
        returns: (b, l, d), or (b, d) at ``at`` (S6's out_proj and the LayerNorm there alone)
    """

    def __init__(self, config: SS4RecConfig):
        super().__init__()
        d = config.d_model
        self.s5 = S5Block(
            d,
            config.s5_state,
            config.dt_min,
            config.dt_max,
            method=config.discretization,
            time_norm=config.time_norm,
            time_scale=config.time_scale,
        )
        self.s6 = MambaBlock(
            d,
            d_state=config.d_state,
            d_conv=config.d_conv,
            expand=config.expand,
            backend=config.backend,
        )
        self.dropout = Dropout(config.dropout)
        self.norm = nn.LayerNorm(d, eps=1e-12)

    def forward(self, x: torch.Tensor, time_gap: torch.Tensor, at=None) -> torch.Tensor:
        h = self.norm(x + self.dropout(self.s5(x, time_gap)))  # (b l d)
        return self.norm(at_positions(h, at) + self.dropout(self.s6(h, at)))  # (b l d) or (b d)


def query_gaps(item_seq, time_seq, item_seq_len=None, at_time=None, target_times=None):
    """Gap to the next timestamp at every position: t_{i+1} - t_i, the query time at the last.

    Implements SS4Rec's interval input [SS4Rec]. Position i uses ``target_times[i]`` when given
    (all-positions batches), else the next item's timestamp; the last real position uses
    ``at_time`` when given (else ``target_times`` or gap 0). Gaps are clamped at 0 (a query
    before the last event reads as "now") and are 0 at padding.

    Shapes:
        item_seq, time_seq: (b, l)
        item_seq_len, at_time: (b,) or None
        target_times: (b, l) or None
        returns: (b, l), dtype of time_seq
    """
    if time_seq is None:
        raise ValueError("SS4Rec needs batch['time_seq'] (b, l) Unix seconds")
    if time_seq.shape != item_seq.shape:
        raise ValueError(
            f"time_seq must have the shape of item_seq {tuple(item_seq.shape)}, "
            f"got {tuple(time_seq.shape)}"
        )
    nxt = torch.zeros_like(time_seq)
    nxt[:, :-1] = time_seq[:, 1:]
    if target_times is not None:
        nxt = torch.where(target_times > 0, target_times.to(time_seq.dtype), nxt)
    if at_time is not None:
        b = item_seq.shape[0]
        if at_time.shape != (b,):
            raise ValueError(f"at_time must have shape ({b},), got {tuple(at_time.shape)}")
        if item_seq_len is None:
            item_seq_len = (item_seq != 0).sum(1)
        rows = torch.arange(b, device=item_seq.device)
        nxt = nxt.clone()
        nxt[rows, (item_seq_len - 1).clamp(min=0)] = at_time.to(time_seq.dtype)
    return (nxt - time_seq).clamp(min=0).masked_fill(item_seq == 0, 0)


@register("ss4rec")
class SS4Rec(SequentialRecommender):
    """Item embedding -> n_layers x (time-aware S5, Add & Norm, S6, Add & Norm) -> last position.

    ``forward(item_seq, item_seq_len, time_seq, at_time)`` asks for the next item at the query
    time ``at_time`` (b,) (Unix seconds); ``calculate_loss``/``full_sort_predict`` take it from
    ``batch["target_time"]``, and the all-positions objective from ``batch["target_times"]``.
    Causal: output i reads items <= i and timestamps <= i + 1 (the query time of position i).

    Note: the authors apply no dropout or LayerNorm to the embeddings (``embedding_norm=False``),
    use one LayerNorm for both Add & Norm steps of a layer, feed raw seconds as intervals, and
    apply RecBole's init (which also zeroes Mamba's dt_proj bias). The S5 eigenvalues' real
    parts are clipped at -1e-4 (see ``S5Block``).
    """

    config_class = SS4RecConfig
    causal = True
    objectives = ("last", "all")
    uses_time = True

    def __init__(self, config: SS4RecConfig, n_items: int):
        super().__init__(config, n_items)
        self.emb_dropout = Dropout(config.dropout)
        self.emb_norm = nn.LayerNorm(config.d_model, eps=1e-12)
        self.layers = nn.ModuleList([SSLayer(config) for _ in range(config.n_layers)])
        self.apply(recbole_init)

    def forward(self, item_seq, item_seq_len, time_seq=None, at_time=None, **extra) -> torch.Tensor:
        """Hidden state for the next item at time ``at_time``.

        Shapes: item_seq (b, l), item_seq_len (b,), time_seq (b, l), at_time (b,) -> (b, d).

        Without ``at_time`` the query time is ``target_time`` (if passed), else the last event's.
        """
        if at_time is None:
            at_time = extra.pop("target_time", None)
        batch = {
            "item_seq": item_seq,
            "item_seq_len": item_seq_len,
            "time_seq": time_seq,
            "at_time": at_time,
            **extra,
        }
        return self.encode_at(batch, last_index(item_seq_len))

    def encode(
        self, batch: dict[str, torch.Tensor], at: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Hidden states at every position, or at ``at`` (the last layer's S6 out_proj and
        LayerNorm there alone). Shapes: item_seq, time_seq (b, l), at (b,) -> (b, l, d), or
        (b, d) with ``at``."""
        item_seq = batch["item_seq"]
        gap = query_gaps(
            item_seq,
            batch.get("time_seq"),
            batch.get("item_seq_len"),
            batch.get("at_time"),
            batch.get("target_times"),
        )  # (b l)
        x = self.item_embedding(item_seq)  # (b l d)
        if self.config.embedding_norm:
            x = self.emb_norm(self.emb_dropout(x))
        for i, layer in enumerate(self.layers):
            x = layer(x, gap, at if i == len(self.layers) - 1 else None)
        return x
