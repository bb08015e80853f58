"""LRURec: linear recurrent units (a complex diagonal linear recurrence) for recommendation.

Paper: [LRURec] Yue et al., "Linear Recurrent Units for Sequential Recommendation", WSDM 2024,
built on the LRU of Orvieto et al., "Resurrecting Recurrent Neural Networks for Long Sequences",
ICML 2023. Authors' code: https://github.com/yueqirex/LRURec (``model/lru.py``). RecBole 1.2 has
no LRURec.

Changes: the recurrence runs through :func:`ssmlab.ssm.linear_scan` (a blocked parallel scan)
instead of the authors' power-of-two doubling on left-padded input; complex linear maps are
stored as real/imaginary pairs of real parameters; see the class Note.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ssmlab.layers.dropout import Dropout
from ssmlab.layers.ffn import FeedForward
from ssmlab.layers.positions import at_positions
from ssmlab.models.base import ModelConfig, SequentialRecommender, register
from ssmlab.ssm import linear_scan

SCANS = ("parallel", "loop")


@dataclass
class LRURecConfig(ModelConfig):
    """LRURec settings; ``dropout`` is the authors' bert_dropout (= bert_attn_dropout, 0.2)."""

    expand: int = 2  # LRU state size N = expand * d (authors: 2d)
    r_min: float = 0.8  # ring init: eigenvalue modulus |lambda| in [r_min, r_max]
    r_max: float = 0.99
    inner_size: int = 256  # width of the FFN after each LRU layer (authors: 4d)
    layer_norm_eps: float = 1e-5  # LayerNorm epsilon (PyTorch default, as the authors)

    def __post_init__(self):
        super().__post_init__()
        if self.expand <= 0 or self.inner_size <= 0:
            raise ValueError(
                f"LRURecConfig: expand and inner_size must be > 0, got "
                f"{self.expand}, {self.inner_size}"
            )
        if not 0.0 <= self.r_min < self.r_max < 1.0:
            raise ValueError(
                f"LRURecConfig: need 0 <= r_min < r_max < 1, got "
                f"r_min={self.r_min}, r_max={self.r_max}"
            )


class LRULayer(nn.Module):
    """One LRU layer: h_t = lambda ⊙ h_{t-1} + gamma ⊙ (B x_t), y_t = LN(x_t + Dropout(Re(C h_t))).

    lambda = exp(-nu + i theta) with nu = exp(nu_log), theta = exp(theta_log) (the exponential
    parametrization of the LRU); gamma = sqrt(1 - |lambda|^2) normalizes the input; B and C are
    complex (with complex bias for B). At init |lambda| is uniform on the ring [r_min, r_max]
    in the sense of the LRU (|lambda|^2 uniform) and theta is uniform in [0, 2 pi).
    """

    def __init__(
        self,
        d_model: int,
        expand: int = 2,
        r_min: float = 0.8,
        r_max: float = 0.99,
        dropout: float = 0.2,
        eps: float = 1e-5,
    ):
        super().__init__()
        n = expand * d_model
        u1, u2 = torch.rand(n), torch.rand(n)
        nu_log = torch.log(-0.5 * torch.log(u1 * (r_max**2 - r_min**2) + r_min**2))
        theta_log = torch.log(2 * math.pi * u2)
        gamma_log = 0.5 * torch.log1p(-torch.exp(-2 * torch.exp(nu_log)))  # log sqrt(1-|lambda|^2)
        self.params_log = nn.Parameter(torch.stack([nu_log, theta_log, gamma_log]))  # (3 n)
        self.in_re = nn.Linear(d_model, n)  # B = B_re + i B_im (bias b_re + i b_im)
        self.in_im = nn.Linear(d_model, n)
        self.out_re = nn.Linear(n, d_model)  # Re(C h) = C_re h_re - C_im h_im + c_re
        self.out_im = nn.Linear(n, d_model, bias=False)
        self.dropout = Dropout(dropout)
        self.norm = nn.LayerNorm(d_model, eps=eps)

    def eigenvalues(self) -> torch.Tensor:
        """lambda = exp(-nu + i theta). Shapes: -> (n,) complex."""
        nu, theta, _ = self.params_log.exp()
        return torch.polar(torch.exp(-nu), theta)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, scan: str = "parallel", at=None
    ) -> torch.Tensor:
        """Shapes: x (b, l, d), mask (b, l) bool (real items) -> (b, l, d), or (b, d) at ``at``
        (b,) (the output projections and LayerNorm at one position per row).

        ``scan="parallel"`` uses :func:`ssmlab.ssm.linear_scan`; ``"loop"`` steps through time.
        As in the authors' code, no state is carried out of a padding position.
        """
        if scan not in SCANS:
            raise ValueError(f"scan must be one of {SCANS}, got {scan!r}")
        dtype = torch.promote_types(x.dtype, torch.float32)
        gamma = self.params_log[2].exp().to(dtype)
        lam = self.eigenvalues().to(torch.complex128 if dtype == torch.float64 else torch.complex64)
        bu = torch.complex(self.in_re(x).to(dtype), self.in_im(x).to(dtype)) * gamma  # (b l n)
        keep = F.pad(mask[:, :-1], (1, 0), value=True)  # (b l): carry h_{t-1} only if t-1 is real
        a = lam * keep[..., None]  # (b l n)
        if scan == "parallel":
            h = linear_scan(a, bu)  # (b l n) complex
        else:
            state, states = torch.zeros_like(bu[:, 0]), []
            for t in range(bu.size(1)):
                state = a[:, t] * state + bu[:, t]
                states.append(state)
            h = torch.stack(states, dim=1)
        h, x = at_positions(h, at), at_positions(x, at)  # (b l n), (b l d) or (b n), (b d)
        y = self.out_re(h.real.to(x.dtype)) - self.out_im(h.imag.to(x.dtype))  # (b l d) or (b d)
        return self.norm(x + self.dropout(y))


@register("lrurec")
class LRURec(SequentialRecommender):
    """LRURec: E_item -> Dropout -> LayerNorm (no positions: the recurrence orders the items),
    ``n_layers`` x (:class:`LRULayer` -> FFN with residual + LN); scores = h · E_item + b_item.

    Note:
        - Right padding: the recurrence is causal, so padding after the items changes nothing;
          the authors left-pad to a power of two for their doubling scan.
        - One dropout rate for embeddings, LRU output and FFN (the authors' two rates are both
          0.2 by default). Init: truncated normal (std 0.02, in [-0.04, 0.04]) on every parameter
          but the LayerNorms and ``params_log``, real and imaginary parts alike, as the authors.
        - Objectives: the authors train every position (our "all"); "last" is the RecBole
          protocol used by the TiM4Rec baselines. CE over all items, with the authors' item bias.
    """

    config_class = LRURecConfig
    causal = True
    objectives = ("last", "all")

    def __init__(self, config: LRURecConfig, n_items: int):
        super().__init__(config, n_items)
        d = config.d_model
        self.emb_dropout = Dropout(config.dropout)
        self.emb_norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.layers = nn.ModuleList(
            LRULayer(
                d, config.expand, config.r_min, config.r_max, config.dropout, config.layer_norm_eps
            )
            for _ in range(config.n_layers)
        )
        self.ffns = nn.ModuleList(
            FeedForward(d, config.inner_size, config.dropout, "gelu", config.layer_norm_eps)
            for _ in range(config.n_layers)
        )
        self.output_bias = nn.Parameter(torch.zeros(n_items + 1))
        for name, param in self.named_parameters():
            if "norm" not in name and "params_log" not in name:
                nn.init.trunc_normal_(param, mean=0.0, std=0.02, a=-0.04, b=0.04)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()

    def encode(
        self, batch: dict[str, torch.Tensor], scan: str = "parallel", at=None
    ) -> torch.Tensor:
        """Hidden state after each position, or at ``at`` (the last layer's projections, norm
        and FFN there alone). Shapes: item_seq (b, l), at (b,) -> (b, l, d), or (b, d)."""
        item_seq = batch["item_seq"]
        if item_seq.dim() != 2:
            raise ValueError(
                f"LRURec: item_seq must have shape (b, l), got {tuple(item_seq.shape)}"
            )
        mask = item_seq > 0  # (b l)
        x = self.emb_norm(self.emb_dropout(self.item_embedding(item_seq)))  # (b l d)
        for i, (layer, ffn) in enumerate(zip(self.layers, self.ffns, strict=True)):
            x = ffn(layer(x, mask, scan=scan, at=at if i == len(self.layers) - 1 else None))
        return x

    def output_layer(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Item embeddings (n_items + 1, d) plus the per-item output bias (n_items + 1,)."""
        return self.item_embedding.weight, self.output_bias
