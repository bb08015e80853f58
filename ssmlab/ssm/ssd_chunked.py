"""SSD by blocks: the chunked torch path, linear in the sequence length.

The (l, l) matrix M = L o C B^T of [TiM4Rec Eq. (7)] is cut into (chunk_size, chunk_size)
blocks. Diagonal blocks are small masked-attention products; every off-diagonal block is low
rank because L is 1-semiseparable, and factors into "B terms" (the state each chunk leaves),
"A terms" (the decay carrying states across chunks) and "C terms" (states read out), the four
steps of mamba-ssm's ``ssd_minimal`` [Mamba2]. Written from those four steps, with two changes:
the state passing is a sequential loop over chunks (linear, not quadratic, in the chunk count),
and changes of ``seq_idx`` zero the decay across them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange

from ssmlab.ssm.ssd_common import decay_mask, finish, prepare


def ssd_chunked(
    x,
    dt,
    A,
    B,
    C,
    chunk_size=64,
    D=None,
    seq_idx=None,
    initial_states=None,
    return_final_states=False,
):
    """SSD by the block decomposition of its 1-SS mask: O(l * chunk_size) time and memory.

    Implements [TiM4Rec Eq. (8)] (and Eq. (20) when dt = Delta * D) without materializing the
    (l, l) mask. Any length works: the inputs are padded with dt = 0 (decay 1, no input) to a
    multiple of ``chunk_size`` and the output is trimmed, so the final state is unchanged; a
    sequence shorter than ``chunk_size`` is a single chunk (no padding).
    ``seq_idx`` changes reset the state; ``initial_states`` reach the first sequence only.

    Shapes:
        x: (b, l, h, p)
        dt: (b, l, h) positive
        A: (h,) negative
        B, C: (b, l, g, n), g divides h
        D: (h,) or (h, p) or None
        seq_idx: (b, l) int or None
        initial_states: (b, h, p, n) or None
        returns y: (b, l, h, p), and final states (b, h, p, n) if ``return_final_states``
    """
    v = prepare(x, dt, A, B, C, chunk_size, D, seq_idx, initial_states)
    b, seqlen, h, p = v.x.shape
    n = v.B.shape[-1]
    # a sequence shorter than a chunk is one chunk of its own length: the same result without
    # padding it to chunk_size (SSD4Rec's chunk 256 on histories of 50 would cost 5x more)
    chunk_size = max(1, min(chunk_size, seqlen))
    pad = (-seqlen) % chunk_size
    xdt = v.x * v.dt[..., None]  # (b l h p)
    dA = v.dt * v.A  # (b l h)
    Bh, Ch = v.B, v.C
    # starts[b, t]: a new sequence of the packed row starts at t (its carried-in state is dropped)
    starts = torch.zeros(b, seqlen, dtype=torch.bool, device=xdt.device)
    if v.seg is not None:
        starts[:, 1:] = v.seg[:, 1:] != v.seg[:, :-1]
    if pad:  # zeros at the end: dt = 0 means decay 1 and no input; no sequence starts there
        xdt, Bh, Ch = (F.pad(t, (0, 0, 0, 0, 0, pad)) for t in (xdt, Bh, Ch))
        dA = F.pad(dA, (0, 0, 0, pad))
        starts = F.pad(starts, (0, pad))
    chunk = dict(q=chunk_size)
    xdt = rearrange(xdt, "b (c q) h p -> b c q h p", **chunk)
    Bh = rearrange(Bh, "b (c q) h n -> b c q h n", **chunk)
    Ch = rearrange(Ch, "b (c q) h n -> b c q h n", **chunk)
    dA = rearrange(dA, "b (c q) h -> b h c q", **chunk)
    starts = rearrange(starts, "b (c q) -> b c q", **chunk)
    # segment ids inside each chunk: positions i >= j share one when no sequence starts in (j, i]
    seg_in_chunk = starts.long().cumsum(dim=-1)  # (b c q)
    no_start_yet = seg_in_chunk == 0  # (b c q): the state entering the chunk still reaches q

    # 1. diagonal blocks: masked attention inside each chunk
    L = decay_mask(dA, None if v.seg is None else seg_in_chunk[:, None])  # (b h c q s)
    scores = torch.einsum("bcqhn,bcshn->bhcqs", Ch, Bh)  # C B^T per chunk
    y_diag = torch.einsum("bhcqs,bcshp->bcqhp", L * scores, xdt)  # (b c q h p)

    n_chunks = xdt.shape[1]
    if n_chunks == 1 and v.h0 is None and not return_final_states:
        # one chunk, no state in or out (a history shorter than the chunk): steps 2-4 add 0
        return finish(y_diag[:, 0], None, v, return_final_states)  # (b l h p)

    # 2. B terms: the state each chunk leaves, from its own inputs (last row of its mask)
    decay_to_end = L[..., -1, :]  # (b h c s)
    chunk_states = torch.einsum("bhcs,bcshn,bcshp->bchpn", decay_to_end, Bh, xdt)  # (b c h p n)

    # 3. A terms: pass states across chunks, h_in[c+1] = decay[c] * h_in[c] + chunk_states[c]
    chunk_decay = torch.exp(dA.sum(dim=-1)) * no_start_yet[:, None, :, -1]  # (b h c)
    state = v.h0 if v.h0 is not None else xdt.new_zeros(b, h, p, n)
    entering = []
    for c in range(n_chunks):
        entering.append(state)
        state = chunk_decay[:, :, c, None, None] * state + chunk_states[:, c]  # (b h p n)
    entering = torch.stack(entering, dim=1)  # (b c h p n)

    # 4. C terms: read the entering state out, decayed from the chunk start to q
    decay_from_start = torch.exp(dA.cumsum(dim=-1)) * no_start_yet[:, None]  # (b h c q)
    y_off = torch.einsum("bcqhn,bchpn,bhcq->bcqhp", Ch, entering, decay_from_start)

    y = rearrange(y_diag + y_off, "b c q h p -> b (c q) h p")[:, :seqlen]  # (b l h p)
    return finish(y, state, v, return_final_states)
