"""SSD blocks: the Mamba2 mixer (``SSDBlock``) and TiM4Rec's time-aware version.

``SSDBlock`` follows mamba-ssm's ``modules/mamba2_simple.py`` without the inference cache:
in_proj -> (z, xBC, dt); causal depthwise conv + activation on xBC; SSD with
softplus(dt + dt_bias), A = -exp(A_log) per head and a per-head skip D; gated RMSNorm(y, z);
out_proj [Mamba2]. ``TimeAwareSSDBlock`` adds the time path of TiM4Rec's ``TiSSD``
(https://github.com/AlwaysFHao/TiM4Rec, ``ssd.py``) [TiM4Rec Eq. (16)-(18)].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ssmlab.layers.conv import CausalConv1d
from ssmlab.layers.dropout import Dropout
from ssmlab.layers.ffn import make_activation
from ssmlab.layers.mamba import inverse_softplus, log_uniform_dt
from ssmlab.layers.norm import GatedRMSNorm, PrefixLayerNorm
from ssmlab.layers.positions import at_positions
from ssmlab.ssm.ssd import ssd

TIME_MLPS = ("positional", "causal")


class SSDBlock(nn.Module):
    """Mamba2 mixer: scalar-per-head A, input-dependent dt, B, C (shared by ``n_groups`` groups).

    Implements the SSD layer of [Mamba2]: y = SSD(x, softplus(dt + dt_bias), A, B, C) + D x,
    i.e. Y = (L o C B^T)(dt X) with the 1-SS mask L of [TiM4Rec Eq. (6)-(8)]. Causal; with
    ``seq_idx`` neither the conv nor the state crosses a sequence boundary of a packed row.

    Shapes:
        x: (b, l, d_model)
        seq_idx: (b, l) int or None
        returns: (b, l, d_model)
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        d_conv: int = 4,
        expand: int = 2,
        head_dim: int = 64,
        n_groups: int = 1,
        chunk_size: int = 256,
        conv_act: str = "silu",
        bias: bool = False,
        conv_bias: bool = True,
        A_init_range: tuple[float, float] = (1.0, 16.0),
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        dt_init_floor: float = 1e-4,
        norm_eps: float = 1e-5,
        backend: str | None = None,
    ):
        super().__init__()
        self.d_inner = expand * d_model  # E*D
        if min(d_model, d_state, d_conv, expand, head_dim, n_groups, chunk_size) <= 0:
            raise ValueError(
                "d_model, d_state, d_conv, expand, head_dim, n_groups and chunk_size must be > 0"
            )
        if self.d_inner % head_dim:
            raise ValueError(
                f"expand * d_model = {self.d_inner} must be divisible by head_dim = {head_dim}"
            )
        self.n_heads = self.d_inner // head_dim  # H
        if self.n_heads % n_groups:
            raise ValueError(f"n_groups = {n_groups} must divide n_heads = {self.n_heads}")
        if not 0 < A_init_range[0] <= A_init_range[1]:
            raise ValueError(f"A_init_range must satisfy 0 < lo <= hi, got {A_init_range}")
        self.d_state, self.head_dim, self.n_groups = d_state, head_dim, n_groups  # N, P, G
        self.chunk_size, self.backend = chunk_size, backend
        d_xbc = self.d_inner + 2 * n_groups * d_state
        self.in_proj = nn.Linear(d_model, self.d_inner + d_xbc + self.n_heads, bias=bias)
        self.conv = CausalConv1d(d_xbc, d_conv, bias=conv_bias)
        self.act = make_activation(conv_act)
        self.dt_bias = nn.Parameter(
            inverse_softplus(log_uniform_dt(self.n_heads, dt_min, dt_max, dt_init_floor))
        )
        A = torch.empty(self.n_heads).uniform_(*A_init_range)
        self.A_log = nn.Parameter(torch.log(A))  # (h), A = -exp(A_log)
        self.D = nn.Parameter(torch.ones(self.n_heads))  # skip, one per head
        self.norm = GatedRMSNorm(self.d_inner, eps=norm_eps, norm_before_gate=False)
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias)
        self.step_hook = nn.Identity()  # hook point: the step fed to SSD (record_steps)

    def project(
        self, x: torch.Tensor, seq_idx: torch.Tensor | None = None, proj: torch.Tensor | None = None
    ):
        """in_proj, conv and activation: returns z, x, B, C and the raw (pre-softplus) dt.

        Implements [TiM4Rec Eq. (14)-(15)]. ``proj``: ``in_proj(x)`` when the caller has it
        already (``BiSSDBlock.prefix_forward`` shares it with its second pass).

        Shapes:
            x: (b, l, d_model); proj: (b, l, 2e + 2gn + h) or None
            returns: z (b, l, e), x (b, l, h, p), B and C (b, l, g, n), dt (b, l, h)
        """
        if x.dim() != 3 or x.shape[-1] != self.in_proj.in_features:
            raise ValueError(
                f"x must have shape (b, l, {self.in_proj.in_features}), got {tuple(x.shape)}"
            )
        gn = self.n_groups * self.d_state
        proj = self.in_proj(x) if proj is None else proj
        z, xbc, dt = proj.split([self.d_inner, self.d_inner + 2 * gn, self.n_heads], -1)
        xbc = self.act(self.conv(xbc, seq_idx))  # (b l e+2gn)
        xs, B, C = xbc.split([self.d_inner, gn, gn], dim=-1)
        xs = rearrange(xs, "b l (h p) -> b l h p", p=self.head_dim)
        B = rearrange(B, "b l (g n) -> b l g n", g=self.n_groups)
        C = rearrange(C, "b l (g n) -> b l g n", g=self.n_groups)
        return z, xs, B, C, dt

    def mix(self, z, xs, B, C, step, seq_idx=None, at=None) -> torch.Tensor:
        """SSD with a positive step, gated RMSNorm, out_proj (at one position per row with
        ``at``: the norm and out_proj then cost one position).

        Shapes:
            z: (b, l, e); xs: (b, l, h, p); B, C: (b, l, g, n); step: (b, l, h) positive
            at: (b,) or None
            returns: (b, l, d_model), or (b, d_model) with ``at``
        """
        step = self.step_hook(step)  # (b l h)
        A = -torch.exp(self.A_log.float())  # (h)
        y = ssd(
            xs, step, A, B, C, self.chunk_size, D=self.D, seq_idx=seq_idx, backend=self.backend
        )  # (b l h p)
        y = self.norm(at_positions(y.flatten(-2), at), at_positions(z, at))  # (b l e) or (b e)
        return self.out_proj(y)

    def forward(
        self,
        x: torch.Tensor,
        seq_idx: torch.Tensor | None = None,
        proj: torch.Tensor | None = None,
        at: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Shapes: x (b, l, d_model) -> (b, l, d_model), or (b, d_model) at ``at`` (b,); ``proj``
        as in :meth:`project`."""
        z, xs, B, C, dt = self.project(x, seq_idx, proj)
        step = F.softplus(dt + self.dt_bias)  # (b l h)
        return self.mix(z, xs, B, C, step, seq_idx, at)


class SequenceLinear(nn.Linear):
    """Linear map across positions, TiM4Rec's W in R^{T x T} acting on a (..., l) signal.

    ``causal=False``: the authors' ``nn.Linear(L, L)``; l must equal L (= max_len), so output t
    reads every position, future ones included. ``causal=True``: W is masked lower-triangular,
    out_t = b_t + sum_{j<=t} W_tj x_j, and any l <= L works (W and b are cut to l). With one
    output (the scalar gate of Linear(L, 1)) the causal form returns one value per position,
    b + sum_{j<=t} w_j x_j: the same weights applied to the prefix.

    Shapes:
        x: (..., l)
        returns: (..., out) when not causal; (..., l) when causal
    """

    def __init__(self, max_len: int, out_features: int | None = None, causal: bool = False):
        super().__init__(max_len, max_len if out_features is None else out_features)
        if self.out_features not in (1, max_len):
            raise ValueError(f"out_features must be 1 or max_len = {max_len}, got {out_features}")
        self.causal = causal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        l, L = x.shape[-1], self.in_features
        if not self.causal:
            if l != L:
                raise ValueError(
                    f"the positional (non-causal) time MLP needs l = max_len = {L}, got {l}"
                )
            return super().forward(x)
        if l > L:
            raise ValueError(f"x has {l} positions, more than max_len = {L}")
        if self.out_features == 1:
            return (x * self.weight[0, :l]).cumsum(-1) + self.bias  # (... l)
        return x @ self.weight[:l, :l].tril().T + self.bias[:l]  # (... l) x (l l) -> (... l)


class TimeAwareSSDBlock(SSDBlock):
    """TiM4Rec's time-aware SSD block: the step of each head is scaled by processed time gaps.

    Implements [TiM4Rec Eq. (16)-(18)] as the authors' code computes them, given the time
    feature 𝒟 (b, h, lt) (gaps after dropout and LayerNorm, or the previous block's output):
      Eq. (16): alpha = MLP(𝒟) across positions (Dropout, Linear(L, L), SiLU, Linear(L, L)),
                𝒟 <- alpha * 𝒟;
      Eq. (17): 𝒟 <- act(conv(𝒟)) with a causal depthwise conv per head, applied twice;
      Eq. (18): Delta_hat = softplus(dt * 𝒟 + dt_bias), fed to SSD as its step (A_bar = exp(A
                Delta_hat), B_bar = Delta_hat B), which builds the time-aware mask of Eq. (19).
    The next block gets 𝒟' = LN(g * 𝒟 + (1 - g) * 𝒟_conv) with g = sigmoid(Linear(Dropout(𝒟)))
    (the "gate residual" of Section 3.4; one gate per sequence, per position if ``p2p_residual``).

    ``time_mlp="positional"`` is the authors' form: Linear(L, L) and a LayerNorm over the L
    positions, so outputs at t depend on gaps after t (fine when only the last position is
    read). ``time_mlp="causal"`` masks both Linear maps lower-triangular, uses the prefix form
    of the scalar gate, and normalizes with prefix statistics (``PrefixLayerNorm``): output t
    then reads gaps <= t only. ``time_path=False`` skips Eq. (16)-(17) and the gate: the step is
    softplus(dt * 𝒟 + dt_bias) with the given 𝒟, and 𝒟 passes through unchanged.

    Note: the paper writes an outer sigma in Eq. (16) and one convolution in Eq. (17); the code
    (followed here) has no outer activation and two convolutions. The paper's Eq. (14) shows
    no z; the code (and this block) keeps Mamba2's z gate and gated RMSNorm.

    Shapes:
        x: (b, l, d_model)
        time_feat: (b, h, lt), lt = max_len (positional) or l (causal); lt >= l
        returns: (b, l, d_model) and the next time feature (b, h, lt)
    """

    def __init__(
        self,
        d_model: int,
        max_len: int,
        time_mlp: str = "positional",
        time_dropout: float = 0.0,
        p2p_residual: bool = False,
        time_path: bool = True,
        d_conv: int = 4,
        conv_bias: bool = True,
        norm_eps: float = 1e-5,
        **ssd_kwargs,
    ):
        super().__init__(
            d_model, d_conv=d_conv, conv_bias=conv_bias, norm_eps=norm_eps, **ssd_kwargs
        )
        if time_mlp not in TIME_MLPS:
            raise ValueError(f"time_mlp must be one of {TIME_MLPS}, got {time_mlp!r}")
        if max_len <= 0:
            raise ValueError(f"max_len must be > 0, got {max_len}")
        self.max_len, self.time_mlp_kind, self.time_path = max_len, time_mlp, time_path
        causal = time_mlp == "causal"
        if time_path:
            h = self.n_heads
            self.time_mlp = nn.Sequential(
                Dropout(time_dropout),
                SequenceLinear(max_len, causal=causal),
                nn.SiLU(),
                SequenceLinear(max_len, causal=causal),
            )
            self.time_conv1 = CausalConv1d(h, d_conv, bias=conv_bias)
            self.time_conv2 = CausalConv1d(h, d_conv, bias=conv_bias)
            self.time_gate = nn.Sequential(
                Dropout(time_dropout),
                SequenceLinear(max_len, max_len if p2p_residual else 1, causal=causal),
                nn.Sigmoid(),
            )
            self.time_norm = (
                PrefixLayerNorm(max_len, eps=norm_eps)
                if causal
                else nn.LayerNorm(max_len, eps=norm_eps)
            )

    def forward(self, x: torch.Tensor, time_feat: torch.Tensor, at: torch.Tensor | None = None):
        """Shapes: x (b, l, d_model), time_feat (b, h, lt) -> (b, l, d_model), or (b, d_model) at
        ``at`` (b,) (the gated norm and out_proj at one position, :meth:`SSDBlock.mix`), and the
        next time feature (b, h, lt)."""
        b, l, _ = x.shape
        h = self.n_heads
        if time_feat.dim() != 3 or time_feat.shape[:2] != (b, h) or time_feat.shape[2] < l:
            raise ValueError(
                f"time_feat must have shape (b, h, lt) = ({b}, {h}, >= {l}), "
                f"got {tuple(time_feat.shape)}"
            )
        z, xs, B, C, dt = self.project(x)
        if self.time_path:
            scaled = time_feat * self.time_mlp(time_feat)  # Eq. (16): (b h lt)
            conv = self.act(self.time_conv1(scaled.transpose(1, 2)))  # Eq. (17): (b lt h)
            conv = self.act(self.time_conv2(conv))  # (b lt h)
        else:
            conv = time_feat.transpose(1, 2)  # (b lt h)
        step = F.softplus(dt * conv[:, :l] + self.dt_bias)  # Eq. (18): (b l h)
        out = self.mix(z, xs, B, C, step, at=at)
        if not self.time_path:
            return out, time_feat
        gate = self.time_gate(time_feat)  # (b h 1) or (b h lt)
        next_feat = self.time_norm(gate * time_feat + (1 - gate) * conv.transpose(1, 2))  # (b h lt)
        return out, next_feat


@torch.no_grad()
def record_steps(model: nn.Module, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """The step Δ each SSD block of ``model`` feeds to SSD on ``batch``, one tensor per block in
    module order: softplus(dt + dt_bias) in an ``SSDBlock``, TiM4Rec's Δ̂ = softplus(dt·𝒟 +
    dt_bias) [TiM4Rec Eq. (18)] in a ``TimeAwareSSDBlock``. Runs ``model.encode`` in eval mode
    (dropout off) and restores the training flag.

    Shapes: batch item_seq (b, l) -> [(b, l, h)] * n_blocks
    """
    blocks = [m for m in model.modules() if isinstance(m, SSDBlock)]
    if not blocks:
        raise ValueError(f"{type(model).__name__} has no SSD block: no step to record")
    steps: list[torch.Tensor] = []
    hooks = [b.step_hook.register_forward_hook(lambda m, i, o: steps.append(o)) for b in blocks]
    was_training = model.training
    try:
        model.eval()
        model.encode(batch)
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return steps
