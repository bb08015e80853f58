"""SSD (Mamba2, structured state space duality): three forms of one map, and the dispatcher.

For each head the state h_t (p, n) follows h_t = exp(dt_t A) h_{t-1} + dt_t x_t B_t^T and the
output is y_t = h_t C_t + D x_t, the semantics of mamba-ssm's ``mamba_chunk_scan_combined`` with
``dt`` already positive (no softplus, no bias). The ladder [Mamba2], STYLE.md section 5:

1. ``ssd_recurrent``: the step-by-step recurrence (ground truth, a Python loop over time);
2. ``ssd_quadratic``: the masked-attention form Y = (L o C B^T)(dt X) [TiM4Rec Eq. (7)-(8)];
3. ``ssd_chunked``: the block decomposition, linear in the length (``ssd_chunked.py``);
4. ``ssd``: mamba-ssm's Triton kernel on CUDA when it imports, else ``ssd_chunked``.

All rungs take the same arguments. ``seq_idx`` (b, l) marks packed sequences: a change of
``seq_idx`` resets the state (the decay across it is 0), in every form; ``initial_states`` reach
only the first sequence of each row, as in mamba-ssm. Computation runs in float32 (float64 for
float64 inputs) and the results are cast back to ``x.dtype``.

TiM4Rec's time-aware SSD (Eq. (18)-(20)) is this same map fed with dt = Delta * D, where D comes
from ``time_deltas`` [TiM4Rec Eq. (9)]; the layer that builds it lives in ``ssmlab.layers``.
"""

from __future__ import annotations

import torch

from ssmlab.ssm import backends
from ssmlab.ssm.ssd_chunked import ssd_chunked
from ssmlab.ssm.ssd_common import decay_mask, finish, prepare, segment_sum
from ssmlab.ssm.ssd_packed import check_seq_idx, reverse_within, segment_ids, time_deltas

# The torch path runs a sequence of at most this many positions as one chunk whatever
# chunk_size says (a speed choice, same map): on one CPU thread, cutting 33-50 positions into
# chunks of 32 (padded to 64: two blocks and the state passing) costs 2.3-6x more than one
# block, and a TiM4Rec Beauty epoch 1.25x more; at 200 positions one block is 2.6x slower
# than chunks of 32 (benchmarks/ssd_chunk.py -> benchmarks/results/ssd-chunk-cpu.md).
TORCH_ONE_CHUNK = 64

__all__ = [
    "reverse_within",
    "segment_sum",
    "ssd",
    "ssd_bidirectional",
    "ssd_chunked",
    "ssd_mask",
    "ssd_quadratic",
    "ssd_recurrent",
    "time_deltas",
]


def ssd_mask(
    dt: torch.Tensor, A: torch.Tensor, seq_idx: torch.Tensor | None = None
) -> torch.Tensor:
    """The 1-semiseparable (1-SS) mask L of SSD: L[i, j] = exp(sum_{k=j+1..i} dt_k A), j <= i.

    Implements [TiM4Rec Eq. (6)] with a_k = exp(dt_k A); fed with TiM4Rec's dt = Delta * D
    (Eq. (18)) it is the time-aware structured mask of [TiM4Rec Eq. (12), (19)]. L is 0 above the
    diagonal and 0 between positions of different sequences of a packed row (``seq_idx``): a
    block-diagonal mask, one 1-SS block per sequence.

    Note: Eq. (12) and (19) print a_0 on the diagonal; here the diagonal is the empty product 1,
    as in Eq. (6). With TiM4Rec's D_0 = 0 the two agree at position 0 (a_0 = exp(0) = 1).
    The sums are built by a masked cumulative sum (``segment_sum``), never as a difference of two
    large cumulative sums, so a large dt gives exact zeros and no NaN (values or gradients).

    Shapes:
        dt: (b, l, h) positive
        A: (h,) negative
        seq_idx: (b, l) int or None
        returns L: (b, h, l, l), dtype of ``dt``
    """
    if not isinstance(dt, torch.Tensor) or dt.dim() != 3 or not dt.is_floating_point():
        raise ValueError(f"dt must be a float tensor (b, l, h), got {getattr(dt, 'shape', dt)}")
    b, seqlen, h = dt.shape
    if not isinstance(A, torch.Tensor) or A.shape != (h,):
        raise ValueError(f"A must have shape (h,) = ({h},), got {getattr(A, 'shape', A)}")
    check_seq_idx(seq_idx, b, seqlen)
    work = torch.float64 if dt.dtype == torch.float64 else torch.float32
    dA = (dt.to(work) * A.to(work)).transpose(1, 2)  # (b h l)
    seg = None if seq_idx is None else segment_ids(seq_idx)[:, None]  # (b 1 l)
    return decay_mask(dA, seg).to(dt.dtype)  # (b h l l)


def ssd_recurrent(
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
    """SSD as a recurrence, one step at a time: the ground truth of the ladder.

    Implements the discretized SSM of [TiM4Rec Eq. (2)] with a scalar-times-identity A per head,
    B_bar = dt B [TiM4Rec Eq. (13)] and A_bar = exp(dt A) (Eq. (18) writes the exponent A * dt;
    mamba-ssm's kernels, and this package, take its exp): h_t = exp(dt_t A) h_{t-1} +
    dt_t x_t B_t^T, y_t = h_t C_t + D x_t. At a change of ``seq_idx`` the carried state is
    multiplied by 0. ``chunk_size`` is accepted and ignored.

    Shapes:
        x: (b, l, h, p)
        dt: (b, l, h) positive
        A: (h,) negative
        B, C: (b, l, g, n), g divides h (head i reads group i // (h // g))
        D: (h,) or (h, p) or None
        seq_idx: (b, l) int or None
        initial_states: (b, h, p, n) or None
        returns y: (b, l, h, p), and final states (b, h, p, n) if ``return_final_states``
    """
    v = prepare(x, dt, A, B, C, chunk_size, D, seq_idx, initial_states)
    b, _, h, p = v.x.shape
    n = v.B.shape[-1]
    decay = torch.exp(v.dt * v.A)  # (b l h)
    if v.seg is not None:
        same = torch.ones_like(v.seg, dtype=torch.bool)
        same[:, 1:] = v.seg[:, 1:] == v.seg[:, :-1]  # False where a new sequence starts
        decay = decay * same[..., None]  # (b l h)
    xdt = v.x * v.dt[..., None]  # (b l h p)
    state = v.h0 if v.h0 is not None else v.x.new_zeros(b, h, p, n)
    ys = [xdt.new_zeros(b, 0, h, p)]  # keeps l = 0 well defined
    # unbind once: slicing [:, t] inside the loop makes the backward pass grow as l^2
    steps = zip(xdt.unbind(1), v.B.unbind(1), v.C.unbind(1), decay.unbind(1))
    for x_t, B_t, C_t, decay_t in steps:
        inject = torch.einsum("bhp,bhn->bhpn", x_t, B_t)  # (b h p n)
        state = decay_t[:, :, None, None] * state + inject  # (b h p n)
        ys.append(torch.einsum("bhpn,bhn->bhp", state, C_t).unsqueeze(1))  # (b 1 h p)
    y = torch.cat(ys, dim=1)  # (b l h p)
    return finish(y, state, v, return_final_states)


def ssd_quadratic(
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
    """SSD as masked attention: Y = (L o C B^T)(dt X), materializing the (l, l) matrices.

    Implements [TiM4Rec Eq. (7)-(8)] (M = L o C B^T, Y = M X) with the dt-scaled input of
    [TiM4Rec Eq. (20)] and L from ``ssd_mask``. An initial state enters through the decay from
    the start of the row, exp(sum_{k<=i} dt_k A), for the row's first sequence only. The final
    state is the last row of L applied to the B terms, plus the decayed initial state.
    ``chunk_size`` is accepted and ignored. Memory is O(b h l^2): a teaching reference.

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
    dA = (v.dt * v.A).transpose(1, 2)  # (b h l)
    seg = None if v.seg is None else v.seg[:, None]  # (b 1 l)
    L = decay_mask(dA, seg)  # (b h l s)
    scores = torch.einsum("blhn,bshn->bhls", v.C, v.B)  # C B^T: (b h l s)
    M = L * scores  # Eq. (7): (b h l s)
    xdt = v.x * v.dt[..., None]  # (b s h p)
    y = torch.einsum("bhls,bshp->blhp", M, xdt)  # Eq. (8): (b h l s) x (b s h p) -> (b l h p)
    final = torch.einsum("bhs,bshn,bshp->bhpn", L[:, :, -1], v.B, xdt)  # (b h p n)
    if v.h0 is not None:
        from_start = torch.exp(torch.cumsum(dA, dim=-1))  # decay from the row start: (b h l)
        if v.seg is not None:
            from_start = from_start * (v.seg == 0)[:, None]  # first sequence only
        y = y + torch.einsum("blhn,bhpn,bhl->blhp", v.C, v.h0, from_start)
        final = final + from_start[:, :, -1, None, None] * v.h0
    return finish(y, final, v, return_final_states)


def ssd(
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
    backend=None,
):
    """SSD with the fastest available path: mamba-ssm's fused kernel on CUDA, else chunked torch.

    Same map and arguments as ``ssd_recurrent`` / ``ssd_quadratic`` / ``ssd_chunked``, plus
    ``backend`` ("torch", "mamba_ssm" or None for ``ssmlab.ssm.backend()``). The mamba-ssm path
    calls ``mamba_chunk_scan_combined`` with ``seq_idx`` renumbered 0, 1, 2, ... per row (the
    kernel expects that, and it then applies ``initial_states`` to the first sequence only) and
    casts its final state (the kernel may return float32) to ``x.dtype``. float64 inputs take the
    torch path whatever the backend: the kernel computes in float32 (``tests/kernels``: it agrees
    with the float64 path only to float32 round-off). Any length works on both paths. The
    torch path takes a sequence of at most ``TORCH_ONE_CHUNK`` positions as one chunk.

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
    choice = backends.resolve(backend, x, kernel="mamba_chunk_scan_combined")
    if choice == "torch" or x.dtype == torch.float64:
        seqlen = x.shape[1] if isinstance(x, torch.Tensor) and x.dim() == 4 else 0
        if type(chunk_size) is int and 0 < chunk_size < seqlen <= TORCH_ONE_CHUNK:
            chunk_size = seqlen  # one block: no padding to a multiple, no state passing
        return ssd_chunked(
            x,
            dt,
            A,
            B,
            C,
            chunk_size,
            D=D,
            seq_idx=seq_idx,
            initial_states=initial_states,
            return_final_states=return_final_states,
        )
    prepare(x, dt, A, B, C, chunk_size, D, seq_idx, initial_states, check_only=True)
    kernel = backends.mamba_kernel("mamba_chunk_scan_combined")
    seg = None if seq_idx is None else segment_ids(seq_idx).to(torch.int32).contiguous()
    out = kernel(
        x,
        dt,
        A,
        B,
        C,
        chunk_size,
        D=D,
        initial_states=initial_states,
        seq_idx=seg,
        return_final_states=return_final_states,
    )
    if not return_final_states:
        return out  # (b l h p)
    y, final = out
    return y, final.to(x.dtype)


def ssd_bidirectional(x, dt, A, B, C, seq_idx=None, chunk_size=64, D=None, backend=None):
    """SSD4Rec's Bi-SSD core: the same SSD run forward and on each sequence reversed.

    The backward pass reverses every sequence of a packed row within its own boundaries
    (``reverse_within``), runs ``ssd`` with the same parameters, and flips the result back, so
    y_bwd[t] summarizes positions t..end of t's own sequence [SSD4Rec, masked Bi-SSD block]. No
    state and no reversal crosses a change of ``seq_idx``. Combining the two outputs is left to
    the layer (``ssmlab.layers``).

    Shapes:
        x: (b, l, h, p)
        dt: (b, l, h) positive
        A: (h,) negative
        B, C: (b, l, g, n), g divides h
        seq_idx: (b, l) int or None
        D: (h,) or (h, p) or None
        returns (y_fwd, y_bwd): each (b, l, h, p), in the original order
    """
    y_fwd = ssd(x, dt, A, B, C, chunk_size, D=D, seq_idx=seq_idx, backend=backend)
    x_r, dt_r, B_r, C_r = (reverse_within(t, seq_idx) for t in (x, dt, B, C))
    y_rev = ssd(x_r, dt_r, A, B_r, C_r, chunk_size, D=D, seq_idx=seq_idx, backend=backend)
    return y_fwd, reverse_within(y_rev, seq_idx)
