"""BiSSDBlock: SSD4Rec's masked bidirectional SSD layer (Bi-SSD + FFN).

Follows the authors' ``BiSSDLayer`` (https://github.com/ZhangYifeng1995/SSD4Rec, ``ssd4rec.py``):
one Mamba2 block run on the packed row and again on every sequence reversed within its own
boundaries (shared weights), combined as fwd + beta * bwd + x, then LayerNorm, dropout and the
position-wise FFN [SSD4Rec, masked Bi-SSD block].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssmlab.layers.dropout import Dropout
from ssmlab.layers.ffn import FeedForward
from ssmlab.layers.positions import at_positions
from ssmlab.layers.ssd import SSDBlock
from ssmlab.ssm.ssd import reverse_within
from ssmlab.ssm.ssd_common import prepare


class BiSSDBlock(nn.Module):
    """h = Dropout(LN(SSD(x) + beta * SSD(rev(x)) + x)); out = FFN(h), FFN with GELU.

    ``rev`` reverses each sequence of a packed row in place (``reverse_within``): no element and
    no state leaves its sequence. ``flip_back=False`` is the authors' code: the backward output
    is added in reversed order, so at the last position of a sequence the backward term is the
    reversed pass's final state (it has read the whole sequence, back to its first item).
    ``flip_back=True`` reverses it again, so position t reads items t..end of its sequence
    (``ssd_bidirectional``'s convention).

    Not causal: outputs read every item of their own sequence (``prefix_forward``: output t
    from the prefix up to t, for every t in one pass).

    ``lengths`` (right-padded rows, one sequence each, ``seq_idx`` None): each row's first
    ``lengths`` positions are reversed and the padding stays after them, so in both passes the
    padding comes after every real position and, SSD and its conv being causal, never reaches
    one: the real positions equal those of the same sequences packed with ``seq_idx``, without
    the packed row's masked (l, l) blocks. Outputs at padding positions are not meaningful.

    Shapes:
        x: (b, l, d_model)
        seq_idx: (b, l) int or None (None: each row is one sequence)
        lengths: (b,) int in [1, l] or None
        at: (b,) int or None: return only position ``at`` of each row (b, d_model)
        returns: (b, l, d_model)
    """

    def __init__(
        self,
        d_model: int,
        beta: float = 0.1,
        dropout: float = 0.2,
        flip_back: bool = False,
        ffn_eps: float = 1e-12,
        **ssd_kwargs,
    ):
        super().__init__()
        self.beta, self.flip_back = beta, flip_back
        self.ssd = SSDBlock(d_model, **ssd_kwargs)
        self.norm = nn.LayerNorm(d_model, eps=ffn_eps)
        self.dropout = Dropout(dropout)
        self.ffn = FeedForward(
            d_model, 4 * d_model, dropout, activation="gelu", eps=ffn_eps, dropout_after_norm=True
        )

    def forward(
        self,
        x: torch.Tensor,
        seq_idx: torch.Tensor | None = None,
        lengths: torch.Tensor | None = None,
        at: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if lengths is None:
            rev_idx = seq_idx
        elif seq_idx is not None:
            raise ValueError("pass seq_idx (packed rows) or lengths (padded rows), not both")
        else:  # the real prefix and the padding as two segments: each reversed in place
            rev_idx = padding_segments(lengths, x.shape[1])  # (b l)
        fwd = self.ssd(x, seq_idx, at=at)  # (b l d) or (b d)
        if self.flip_back:  # position t of the output is position len-1-t of the reversed pass
            bwd = at_positions(
                reverse_within(self.ssd(reverse_within(x, rev_idx), seq_idx), rev_idx), at
            )
        else:
            bwd = self.ssd(reverse_within(x, rev_idx), seq_idx, at=at)  # reversed order
        return self.combine(fwd, bwd, at_positions(x, at))

    def combine(self, fwd: torch.Tensor, bwd: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """FFN(Dropout(LN(fwd + beta * bwd + x))), position-wise: at every position, or at the
        one position per row the passes were read at (``at``: the whole block then runs its
        norms, out_proj and FFN at that position alone).

        Shapes: fwd, bwd, x (b, l, d) -> (b, l, d), or (b, d) -> (b, d)
        """
        return self.ffn(self.dropout(self.norm(fwd + self.beta * bwd + x)))

    def prefix_forward(self, x: torch.Tensor, at: torch.Tensor | None = None) -> torch.Tensor:
        """Output t of the block run on the prefix ``x[:, :t+1]`` alone, for every t in one pass.

        The prefix protocol's training rows (every history ending at t) without running the
        block once per prefix: the forward pass is causal, so its output t is the same for
        every prefix that contains t; the backward pass's output at t (``flip_back=False``) is
        its last step on the reversed prefix, read from :func:`reversed_prefix_outputs`.
        Position t of a padded row is exact for t < its length (the padding lies after it).

        Shapes:
            x: (b, l, d_model)
            at: (b,) or None (then every position)
            returns: (b, l, d_model), or (b, d_model) at ``at``
        """
        if self.flip_back:
            raise ValueError("prefix_forward follows the authors' flip_back=False only")
        proj = self.ssd.in_proj(x)  # both passes start from it
        fwd = self.ssd(x, proj=proj, at=at)  # causal: output t reads x[:, :t+1] only
        bwd = reversed_prefix_outputs(self.ssd, x, proj, at)  # (b l d) or (b d)
        return self.combine(fwd, bwd, at_positions(x, at))


def shift(t: torch.Tensor, s: int) -> torch.Tensor:
    """``out[:, i] = t[:, i - s]``, zeros for i < s. Shapes: (b, l, ...) -> (b, l, ...)"""
    if s == 0:
        return t
    return torch.cat(
        [t.new_zeros(t.shape[0], min(s, t.shape[1]), *t.shape[2:]), t[:, : max(t.shape[1] - s, 0)]],
        1,
    )


def reversed_prefix_outputs(
    ssd: SSDBlock, x: torch.Tensor, proj: torch.Tensor | None = None, at: torch.Tensor | None = None
) -> torch.Tensor:
    """``out[:, t] = ssd(x[:, :t+1].flip(1))[:, t]`` for every t, in one pass.

    The last step of an SSD block run on the reversed prefix x_t, ..., x_0 reads its final
    state. Element j of the prefix enters that state first decayed by the steps of x_{j-1},
    ..., x_0 that come after it in reversed order:

        h_t = sum_{j<=t} exp(sum_{k<j} dt_k A) dt_j B_t(j) x_t(j)^T,
        y_t = C_t(0) . h_t + D x_t(0),   out_t = out_proj(RMSNorm(y_t * silu(z_0))),

    a sum that grows with t (a cumulative sum over j), with the weights of [TiM4Rec Eq. (6)-(8)]
    read from the start of the row. The conv of the reversed pass is anti-causal: at j it reads
    x_j, ..., x_{j+K-1}, cut at the prefix's end t, so B_t(j), x_t(j) and C_t(0) equal the full
    values for j <= t-K+1 and are recomputed with the taps that stay inside for the last K-1
    terms (and for t < K-1). Costs O(l) beside the forward pass, no (l, l) mask.

    Shapes:
        x: (b, l, d_model); proj: ``ssd.in_proj(x)`` (b, l, 2e + 2n + h) if the caller has it
        at: (b,) or None: only column ``at`` of each row (the norm and out_proj at it alone)
        returns: (b, l, d_model); column t is the reversed prefix's last output; (b, d) at ``at``
    """
    if ssd.n_groups != 1:
        raise ValueError(f"reversed_prefix_outputs needs n_groups = 1, got {ssd.n_groups}")
    b, l, _ = x.shape
    e, n, p, k = ssd.d_inner, ssd.d_state, ssd.head_dim, ssd.conv.kernel_size
    proj = ssd.in_proj(x) if proj is None else proj
    z, u, dt = proj.split([e, e + 2 * n, ssd.n_heads], -1)
    w, bias = ssd.conv.weight[:, 0, :], ssd.conv.bias  # (c K): w[:, K-1] multiplies x_j
    # cut[m]: the anti-causal conv with taps 0..m (x_j, ..., x_{j+m}), then the activation
    cut, acc = [], u * w[:, k - 1] + (0 if bias is None else bias)  # (b l c)
    for m in range(k):
        if 0 < m < l:
            acc = acc + F.pad(u[:, m:] * w[:, k - 1 - m], (0, 0, 0, m))  # reads x_{j+m}
        xs, B, C = ssd.act(acc).split([e, n, n], dim=-1)
        cut.append((xs.unflatten(-1, (ssd.n_heads, p)), B, C))  # (b l h p), (b l n), (b l n)
    step = F.softplus(dt + ssd.dt_bias)  # (b l h)
    A = -torch.exp(ssd.A_log.float())  # (h)
    v = prepare(
        cut[-1][0], step, A, cut[-1][1][:, :, None], cut[-1][2][:, :, None], 1, ssd.D, None, None
    )  # checks shapes, casts to the compute dtype
    dA = v.dt * v.A  # (b l h)
    # weight of x_j in every final state: decay of the steps before j (exclusive cumulative sum)
    weight = torch.exp(F.pad(dA.cumsum(1)[:, :-1], (0, 0, 1, 0))) * v.dt  # (b l h)

    def term(xs, B, C0, at=slice(None)):  # weight_j (C0 . B(j)) x(j) at positions ``at``
        gain = weight[:, at] * torch.einsum("bln,bn->bl", B[:, at].to(v.x.dtype), C0)[..., None]
        return gain[..., None] * xs[:, at].to(v.x.dtype)  # (b l h p)

    c0 = cut[-1][2][:, 0].to(v.x.dtype)  # (b n): C of x_0 with its full window
    # terms with the full window (j <= t-K+1), summed, then the last K-1 terms with cut windows
    full = term(cut[-1][0], cut[-1][1], c0).cumsum(1)  # (b l h p)
    y = shift(full, k - 1)  # y_t = full_{t-K+1}
    for m in range(k - 1):  # x_{t-m} sees taps 0..m
        y = y + shift(term(cut[m][0], cut[m][1], c0), m)
    rows = []
    for t in range(min(k - 1, l)):  # C_t(0) and x_t(0) themselves are cut: recompute t < K-1
        ct0 = cut[t][2][:, 0].to(v.x.dtype)
        rows.append(sum(term(*cut[t - j][:2], ct0, at=slice(j, j + 1)) for j in range(t + 1)))
    y = torch.cat([*rows, y[:, len(rows) :]], 1)
    x0 = torch.stack([cut[min(t, k - 1)][0][:, 0] for t in range(min(k, l))], 1)  # (b t h p)
    x0 = torch.cat([x0, x0[:, -1:].expand(b, l - x0.shape[1], -1, -1)], 1)
    y = (y + ssd.D[:, None] * x0.to(y.dtype)).to(x.dtype).flatten(-2)  # (b l e)
    gate = z[:, :1].expand_as(z) if at is None else z[:, 0]  # z of x_0: the gate of every t
    return ssd.out_proj(ssd.norm(at_positions(y, at), gate))


def padding_segments(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """0 at each row's first ``lengths`` positions, 1 after them. Shapes: (b,) -> (b, width)."""
    if lengths.dim() != 1 or (lengths < 1).any() or (lengths > width).any():
        raise ValueError(f"lengths must be a (b,) tensor in [1, {width}], got {lengths.tolist()}")
    return (torch.arange(width, device=lengths.device) >= lengths[:, None]).int()
