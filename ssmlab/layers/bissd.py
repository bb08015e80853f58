"""BiSSDBlock: SSD4Rec's masked bidirectional SSD layer (Bi-SSD + FFN).

Follows the authors' ``BiSSDLayer`` (https://github.com/ZhangYifeng1995/SSD4Rec, ``ssd4rec.py``):
one Mamba2 block run on the packed row and again on every sequence reversed within its own
boundaries (shared weights), combined as fwd + beta * bwd + x, then LayerNorm, dropout and the
position-wise FFN [SSD4Rec, masked Bi-SSD block].
"""

from __future__ import annotations

import torch
from torch import nn

from ssmlab.layers.dropout import Dropout
from ssmlab.layers.ffn import FeedForward
from ssmlab.layers.ssd import SSDBlock
from ssmlab.ssm.ssd import reverse_within


class BiSSDBlock(nn.Module):
    """h = Dropout(LN(SSD(x) + beta * SSD(rev(x)) + x)); out = FFN(h), FFN with GELU.

    ``rev`` reverses each sequence of a packed row in place (``reverse_within``): no element and
    no state leaves its sequence. ``flip_back=False`` is the authors' code: the backward output
    is added in reversed order, so at the last position of a sequence the backward term is the
    reversed pass's final state (it has read the whole sequence, back to its first item).
    ``flip_back=True`` reverses it again, so position t reads items t..end of its sequence
    (``ssd_bidirectional``'s convention).

    Not causal: outputs read every item of their own sequence.

    ``lengths`` (right-padded rows, one sequence each, ``seq_idx`` None): each row's first
    ``lengths`` positions are reversed and the padding stays after them, so in both passes the
    padding comes after every real position and, SSD and its conv being causal, never reaches
    one: the real positions equal those of the same sequences packed with ``seq_idx``, without
    the packed row's masked (l, l) blocks. Outputs at padding positions are not meaningful.

    Shapes:
        x: (b, l, d_model)
        seq_idx: (b, l) int or None (None: each row is one sequence)
        lengths: (b,) int in [1, l] or None
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
    ) -> torch.Tensor:
        if lengths is None:
            rev_idx = seq_idx
        elif seq_idx is not None:
            raise ValueError("pass seq_idx (packed rows) or lengths (padded rows), not both")
        else:  # the real prefix and the padding as two segments: each reversed in place
            rev_idx = padding_segments(lengths, x.shape[1])  # (b l)
        fwd = self.ssd(x, seq_idx)  # (b l d)
        bwd = self.ssd(reverse_within(x, rev_idx), seq_idx)  # reversed order: (b l d)
        if self.flip_back:
            bwd = reverse_within(bwd, rev_idx)
        h = self.dropout(self.norm(fwd + self.beta * bwd + x))  # (b l d)
        return self.ffn(h)


def padding_segments(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """0 at each row's first ``lengths`` positions, 1 after them. Shapes: (b,) -> (b, width)."""
    if lengths.dim() != 1 or (lengths < 1).any() or (lengths > width).any():
        raise ValueError(f"lengths must be a (b,) tensor in [1, {width}], got {lengths.tolist()}")
    return (torch.arange(width, device=lengths.device) >= lengths[:, None]).int()
