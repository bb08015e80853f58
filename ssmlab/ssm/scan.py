"""The first-order linear recurrence h_t = a_t * h_{t-1} + b_t, elementwise, along dim 1.

Every diagonal SSM reduces to it once discretized (a = A_bar_t, b = B_bar_t x_t, [TiM4Rec Eq. (2)]).
``linear_scan_ref`` is the sequential loop (ground truth); ``linear_scan_parallel`` is a blocked
parallel scan with no Python loop over time and no division, so it is exact for complex a and for
a = 0. ``linear_scan`` is the public entry point and takes the fast path.

The scan composes pairs (a, b) with (a1, b1) then (a2, b2) = (a2 a1, a2 b1 + b2), which is
associative; the parallel path applies it by doubling (Hillis-Steele) inside blocks, then scans
the block totals recursively and adds each block's carry (Blelloch's blocked scan).
"""

from __future__ import annotations

import torch

DEFAULT_CHUNK = 32


def _check(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None) -> torch.Tensor:
    """Validate shapes; return a expanded to b's shape."""
    if b.dim() < 2:
        raise ValueError(f"b must have shape (b, l, ...), got {tuple(b.shape)}")
    try:
        shape = torch.broadcast_shapes(a.shape, b.shape)
    except RuntimeError:
        shape = None
    if shape != b.shape:
        raise ValueError(f"a {tuple(a.shape)} must broadcast to b {tuple(b.shape)}")
    if h0 is not None:
        state = b.shape[:1] + b.shape[2:]
        try:
            ok = torch.broadcast_shapes(h0.shape, state) == state
        except RuntimeError:
            ok = False
        if not ok:
            raise ValueError(f"h0 must broadcast to (b, ...) = {tuple(state)}, got {tuple(h0.shape)}")
    return a.expand(b.shape)


def _promote(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None) -> torch.dtype:
    dtype = torch.promote_types(a.dtype, b.dtype)
    return dtype if h0 is None else torch.promote_types(dtype, h0.dtype)


def linear_scan_ref(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
    """Sequential reference: h_t = a_t * h_{t-1} + b_t for t = 0..l-1 (h_{-1} = h0 or 0).

    Implements the discrete recurrence of [TiM4Rec Eq. (2)] with a diagonal A_bar.

    Shapes:
        a: broadcastable to b, e.g. (b, l, ...) or (b, l, 1, ...); real or complex
        b: (b, l, ...)
        h0: (b, ...) optional initial state
        returns: h (b, l, ...), dtype promoted from a, b, h0
    """
    a = _check(a, b, h0)
    dtype = _promote(a, b, h0)
    h = torch.zeros(b.shape[:1] + b.shape[2:], dtype=dtype, device=b.device)
    if h0 is not None:
        h = h + h0.to(dtype)
    hs = [h.unsqueeze(1)[:, :0]]  # an empty (b 0 ...) start keeps l = 0 well defined
    # unbind (not a[:, t]) keeps the backward pass linear in l
    for a_t, b_t in zip(a.to(dtype).unbind(1), b.to(dtype).unbind(1)):
        h = a_t * h + b_t  # (b ...)
        hs.append(h.unsqueeze(1))
    return torch.cat(hs, dim=1)  # (b l ...)


def _doubling(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inclusive Hillis-Steele scan along dim 1: log2(l) steps of O(l) tensor ops.

    Returns (a_cum, h): a_cum[t] = a_t ... a_0 and h[t] = the state at t from a zero start.
    """
    l = b.shape[1]
    offset = 1
    while offset < l:
        # element t absorbs the prefix ending at t - offset (already a composed segment)
        b = torch.cat([b[:, :offset], a[:, offset:] * b[:, :-offset] + b[:, offset:]], dim=1)
        a = torch.cat([a[:, :offset], a[:, offset:] * a[:, :-offset]], dim=1)
        offset *= 2
    return a, b


def linear_scan_parallel(
    a: torch.Tensor,
    b: torch.Tensor,
    h0: torch.Tensor | None = None,
    chunk_size: int = DEFAULT_CHUNK,
) -> torch.Tensor:
    """Blocked parallel scan, equal to ``linear_scan_ref`` (no loop over time, no division).

    Implements the recurrence of [TiM4Rec Eq. (2)] as a parallel prefix scan: (1) doubling inside
    blocks of ``chunk_size`` steps; (2) the block totals form a recurrence of length l / chunk_size,
    scanned recursively; (3) each block adds its incoming carry times the block's cumulative a.
    Work O(l log chunk_size), depth O(log l); gradients via autograd.

    Shapes:
        a: broadcastable to b, e.g. (b, l, ...) or (b, l, 1, ...); real or complex
        b: (b, l, ...)
        h0: (b, ...) optional initial state
        returns: h (b, l, ...), dtype promoted from a, b, h0
    """
    if chunk_size < 2:
        raise ValueError(f"chunk_size must be >= 2, got {chunk_size}")
    a = _check(a, b, h0)
    dtype = _promote(a, b, h0)
    a, b = a.to(dtype), b.to(dtype)
    if h0 is not None:
        # fold the initial state into the first input: h_0 = a_0 h0 + b_0
        first = a[:, :1] * h0.to(dtype).unsqueeze(1) + b[:, :1]
        b = torch.cat([first, b[:, 1:]], dim=1)
    n, l = b.shape[:2]
    rest = b.shape[2:]
    if l <= chunk_size:
        return _doubling(a, b)[1]

    # (0) pad l to a multiple of the block size; the padding comes after the data: no effect
    n_chunks = -(-l // chunk_size)
    pad = n_chunks * chunk_size - l
    if pad:
        a = torch.cat([a, a.new_ones((n, pad) + rest)], dim=1)
        b = torch.cat([b, b.new_zeros((n, pad) + rest)], dim=1)
    # (1) scan inside each block: fold blocks into the batch dim
    a_blk = a.reshape((n * n_chunks, chunk_size) + rest)  # (b c) q ...
    b_blk = b.reshape((n * n_chunks, chunk_size) + rest)
    a_cum, h_loc = _doubling(a_blk, b_blk)
    a_cum = a_cum.reshape((n, n_chunks, chunk_size) + rest)  # (b c q ...)
    h_loc = h_loc.reshape((n, n_chunks, chunk_size) + rest)
    # (2) states at block ends: a recurrence over blocks with a = block product, b = local end state
    h_end = linear_scan_parallel(a_cum[:, :, -1], h_loc[:, :, -1], chunk_size=chunk_size)  # (b c ...)
    carry = torch.cat([torch.zeros_like(h_end[:, :1]), h_end[:, :-1]], dim=1)  # state entering block
    # (3) add each block's carry, decayed by the cumulative a inside the block
    h = h_loc + a_cum * carry.unsqueeze(2)  # (b c q ...)
    return h.reshape((n, n_chunks * chunk_size) + rest)[:, :l]


def linear_scan(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
    """h_t = a_t * h_{t-1} + b_t elementwise along dim 1, all states returned (fast path).

    Implements the recurrence of [TiM4Rec Eq. (2)]; dispatches to ``linear_scan_parallel``
    (``linear_scan_ref`` is the sequential reference it is tested against).

    Shapes:
        a: broadcastable to b, e.g. (b, l, ...) or (b, l, 1, ...); real or complex
        b: (b, l, ...)
        h0: (b, ...) optional initial state
        returns: h (b, l, ...), dtype promoted from a, b, h0
    """
    return linear_scan_parallel(a, b, h0)
