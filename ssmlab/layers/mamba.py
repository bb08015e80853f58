"""MambaBlock: the selective SSM (S6) block of Mamba1, as Mamba4Rec and SS4Rec use it.

Follows mamba-ssm's ``modules/mamba_simple.py`` (``Mamba``) without the inference cache:
in_proj -> (x, z); causal depthwise conv + SiLU on x; x_proj -> (dt, B, C); dt_proj; the
selective scan with softplus(dt + bias) and the gate silu(z); out_proj [Mamba].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import nn

from ssmlab.layers.conv import CausalConv1d
from ssmlab.layers.positions import at_positions
from ssmlab.ssm.s6 import selective_scan


def inverse_softplus(y: torch.Tensor) -> torch.Tensor:
    """x with softplus(x) = y, for y > 0 (the dt bias initialization of Mamba). Shapes: any."""
    return y + torch.log(-torch.expm1(-y))


def log_uniform_dt(n: int, dt_min: float, dt_max: float, floor: float = 1e-4) -> torch.Tensor:
    """n steps log-uniform in [dt_min, dt_max], clamped below at ``floor``. Shapes: -> (n,)"""
    if not 0 < dt_min <= dt_max:
        raise ValueError(f"need 0 < dt_min <= dt_max, got dt_min={dt_min}, dt_max={dt_max}")
    u = torch.rand(n)
    dt = torch.exp(u * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
    return dt.clamp(min=floor)


class MambaBlock(nn.Module):
    """Mamba1 mixer: input-dependent (selective) dt, B, C per position.

    Implements the selective SSM (S6) of [Mamba]: dt = softplus(dt_proj(x) + bias),
    A = -exp(A_log) (d_inner, d_state) initialized S4D-real (A_n = -n), h_t = exp(dt A) h_{t-1} +
    dt B_t x_t, y_t = C_t h_t + D x_t, gated by silu(z). Causal: output t reads inputs <= t.

    Shapes:
        x: (b, l, d_model); at: (b,) or None
        returns: (b, l, d_model), or (b, d_model) at ``at`` (out_proj at one position per row)
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | None = None,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        dt_init_floor: float = 1e-4,
        dt_scale: float = 1.0,
        bias: bool = False,
        conv_bias: bool = True,
        backend: str | None = None,
    ):
        super().__init__()
        if min(d_model, d_state, d_conv, expand) <= 0:
            raise ValueError("d_model, d_state, d_conv, expand must be > 0")
        self.d_inner = expand * d_model  # E*D in the paper
        self.d_state = d_state  # N
        self.dt_rank = math.ceil(d_model / 16) if dt_rank is None else dt_rank  # R
        self.backend = backend
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=bias)
        self.conv = CausalConv1d(self.d_inner, d_conv, bias=conv_bias)
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        # dt_proj: weight ~ U(+-dt_scale / sqrt(R)), bias = softplus^{-1}(log-uniform dt)
        bound = self.dt_rank**-0.5 * dt_scale
        nn.init.uniform_(self.dt_proj.weight, -bound, bound)
        with torch.no_grad():
            self.dt_proj.bias.copy_(
                inverse_softplus(log_uniform_dt(self.d_inner, dt_min, dt_max, dt_init_floor))
            )
        A = repeat(torch.arange(1, d_state + 1, dtype=torch.float32), "n -> d n", d=self.d_inner)
        self.A_log = nn.Parameter(torch.log(A))  # (d_inner n), A = -exp(A_log)
        self.D = nn.Parameter(torch.ones(self.d_inner))  # skip
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias)

    def forward(self, x: torch.Tensor, at: torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != self.in_proj.in_features:
            raise ValueError(
                f"x must have shape (b, l, {self.in_proj.in_features}), got {tuple(x.shape)}"
            )
        xs, z = self.in_proj(x).chunk(2, dim=-1)  # (b l e) each, e = d_inner
        xs = F.silu(self.conv(xs))  # (b l e)
        dt, B, C = self.x_proj(xs).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = dt @ self.dt_proj.weight.T  # (b l r) x (e r) -> (b l e); bias goes in the scan
        A = -torch.exp(self.A_log.float())  # (e n)
        y = selective_scan(
            rearrange(xs, "b l e -> b e l"),
            rearrange(dt, "b l e -> b e l"),
            A,
            rearrange(B, "b l n -> b n l"),
            rearrange(C, "b l n -> b n l"),
            D=self.D.float(),
            z=rearrange(z, "b l e -> b e l"),
            delta_bias=self.dt_proj.bias.float(),
            delta_softplus=True,
            backend=self.backend,
        )  # (b e l)
        return self.out_proj(at_positions(rearrange(y, "b e l -> b l e"), at))  # (b l d) or (b d)
