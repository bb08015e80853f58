"""S5Block: SS4Rec's time-aware S5 layer, the step of every state scaled by the real interval.

Follows the ``S5`` module of s5-pytorch (https://github.com/i404788/s5-pytorch, ``s5_model.py``)
that SS4Rec's code (https://github.com/XiaoWei-i/SS4Rec) calls as ``S5(x, time_interval)``:
a MIMO diagonal SSM with P complex states initialized from HiPPO-N [S5], B and C in the
eigenbasis, zero-order hold with a per-state step dt_p * interval [SS4Rec].
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ssmlab.ssm.discretize import METHODS, NORMS, time_gap_to_dt
from ssmlab.ssm.s5 import hippo_n_init, s5_scan


class S5Block(nn.Module):
    """Time-aware S5: y = Re(C h) + D x with h_t = A_bar(dt_t) h_{t-1} + B_bar(dt_t) x_t.

    Implements SS4Rec's time-aware SSM [SS4Rec] on the S5 layer [S5]: per state p the step at
    position t is dt_{t,p} = exp(log_step_p) * gap_t, where gap_t is the observed interval
    (``time_gap``, seconds, passed through ``time_gap_to_dt(norm=time_norm)``) and log_step is
    learned, initialized log-uniform in [dt_min, dt_max]. Lambda = Lambda_re + i Lambda_im is
    initialized from HiPPO-N (``hippo_n_init``), B_tilde = V^-1 B and C_tilde = C V with B, C
    LeCun-normal, D ~ U[0, 1), as in s5-pytorch's ``dense`` initialization.

    Causal: output t reads x_{<=t} and gap_{<=t}. SS4Rec feeds gap_t = t_{t+1} - t_t (the time
    until the next event, the query time at the last position): see ``ssmlab.models.ss4rec``.

    Note: the real part of Lambda is clipped at -1e-4 in the forward pass (S5's ``clip_eigs``;
    s5-pytorch leaves it free), so a gap of decades decays the state instead of overflowing.

    Shapes:
        x: (b, l, h)
        time_gap: (b, l) >= 0, integer or float seconds
        returns: (b, l, h), dtype of x
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 32,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        method: str = "zoh",
        time_norm: str = "raw",
        time_scale: float | None = None,
    ):
        super().__init__()
        if d_model <= 0 or d_state <= 0:
            raise ValueError(f"d_model and d_state must be > 0, got {d_model}, {d_state}")
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"need 0 < dt_min <= dt_max, got {dt_min}, {dt_max}")
        if method not in METHODS or time_norm not in NORMS:
            raise ValueError(
                f"method must be in {METHODS} and time_norm in {NORMS}, "
                f"got {method!r}, {time_norm!r}"
            )
        self.method, self.time_norm, self.time_scale = method, time_norm, time_scale
        h, p = d_model, d_state  # H, P
        Lambda, V = hippo_n_init(p)  # (p) complex, (p p) unitary: S = V diag(Lambda) V^H
        V = V.to(torch.complex64)
        self.Lambda_re = nn.Parameter(Lambda.real.float())
        self.Lambda_im = nn.Parameter(Lambda.imag.float())
        B = torch.randn(p, h) / math.sqrt(h)  # LeCun normal, fan_in = H
        B_tilde = V.conj().T @ B.to(torch.complex64)  # (p p) x (p h) -> (p h)
        self.B_re, self.B_im = nn.Parameter(B_tilde.real), nn.Parameter(B_tilde.imag)
        C = torch.complex(torch.randn(h, p), torch.randn(h, p)) / math.sqrt(p)
        C_tilde = C @ V  # (h p) x (p p) -> (h p)
        self.C_re, self.C_im = nn.Parameter(C_tilde.real), nn.Parameter(C_tilde.imag)
        self.D = nn.Parameter(torch.rand(h))
        u = torch.rand(p)
        self.log_step = nn.Parameter(u * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))

    def forward(self, x: torch.Tensor, time_gap: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[-1] != self.D.numel():
            raise ValueError(f"x must have shape (b, l, {self.D.numel()}), got {tuple(x.shape)}")
        if time_gap.shape != x.shape[:2]:
            raise ValueError(
                f"time_gap must have shape (b, l) = {tuple(x.shape[:2])}, "
                f"got {tuple(time_gap.shape)}"
            )
        dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        gap = time_gap_to_dt(time_gap, self.time_norm, self.time_scale, dtype=dtype)  # (b l)
        dt = gap[..., None] * self.log_step.to(dtype).exp()  # (b l 1) x (p) -> (b l p)
        Lambda = torch.complex(self.Lambda_re.clamp(max=-1e-4), self.Lambda_im)  # (p)
        B = torch.complex(self.B_re, self.B_im)  # (p h)
        C = torch.complex(self.C_re, self.C_im)  # (h p)
        return s5_scan(x, dt, Lambda, B, C, D=self.D, method=self.method)  # (b l h)
