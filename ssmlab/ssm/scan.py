"""The first-order linear recurrence h_t = a_t * h_{t-1} + b_t, elementwise, along dim 1.

Every diagonal SSM reduces to it once discretized (a = A_bar_t, b = B_bar_t x_t, [TiM4Rec Eq. (2)]).
``linear_scan_ref`` is the sequential loop (ground truth); ``linear_scan_parallel`` is a parallel
scan with no Python loop over time and no division, so it is exact for complex a and for a = 0.
``linear_scan`` is the public entry point and takes the parallel path by default.

The scan composes steps (a1, b1) then (a2, b2) into (a2 a1, a2 b1 + b2), an associative operator;
the parallel path applies it by odd-even recursion (Blelloch-style: pair up neighbours, solve the
half-length recurrence, fill in the rest), O(l) work in O(log l) sequential levels.
"""

from __future__ import annotations

import torch


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
            raise ValueError(
                f"h0 must broadcast to (b, ...) = {tuple(state)}, got {tuple(h0.shape)}"
            )
    return a.expand(b.shape)


def _promote(a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None) -> torch.dtype:
    dtype = torch.promote_types(a.dtype, b.dtype)
    return dtype if h0 is None else torch.promote_types(dtype, h0.dtype)


def linear_scan_ref(
    a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None = None
) -> torch.Tensor:
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


def _scan_oddeven(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """All states of h_t = a_t h_{t-1} + b_t from a zero start, by odd-even recursion along dim 1.

    Pairs (2k, 2k+1) are composed into one step (a_{2k+1} a_{2k}, a_{2k+1} b_{2k} + b_{2k+1}), the
    half-length recurrence gives the states at odd positions, and one more step fills the even
    ones. Work O(l), depth O(log l), only products and sums.
    """
    l = b.shape[1]
    if l == 1:
        return b
    if l % 2:  # pad one neutral step (a = 1, b = 0) after the data
        a = torch.cat([a, a.new_ones(a[:, :1].shape)], dim=1)
        b = torch.cat([b, b.new_zeros(b[:, :1].shape)], dim=1)
    a_even, a_odd = a[:, 0::2], a[:, 1::2]  # (b l/2 ...)
    b_even, b_odd = b[:, 0::2], b[:, 1::2]
    h_odd = _scan_oddeven(a_odd * a_even, torch.addcmul(b_odd, a_odd, b_even))  # h_1, h_3, ...
    h_even = torch.cat(
        [b_even[:, :1], torch.addcmul(b_even[:, 1:], a_even[:, 1:], h_odd[:, :-1])], dim=1
    )  # h_0, h_2, ...
    return torch.stack([h_even, h_odd], dim=2).reshape(b.shape)[:, :l]  # interleave: (b l ...)


class _LinearScanFn(torch.autograd.Function):
    """The parallel scan with its adjoint: the backward pass is the same scan run in reverse.

    With g_t = dL/dh_t + conj(a_{t+1}) g_{t+1} (a reverse scan): dL/db_t = g_t,
    dL/da_t = g_t conj(h_{t-1}), dL/dh0 = conj(a_0) g_0 (PyTorch's conjugate convention).
    """

    @staticmethod
    def forward(ctx, a, b, h0):
        if h0 is not None:  # fold the initial state into the first input: h_0 = a_0 h0 + b_0
            b = b.clone()
            b[:, 0] += a[:, 0] * h0
        h = _scan_oddeven(a, b)  # (b l ...)
        ctx.save_for_backward(a, h, h0)
        return h

    @staticmethod
    def backward(ctx, grad_h):
        a, h, h0 = ctx.saved_tensors
        a_next = torch.cat([a[:, 1:], torch.zeros_like(a[:, :1])], dim=1).conj()  # a_{t+1}
        g = _scan_oddeven(a_next.flip(1), grad_h.flip(1)).flip(1)  # reverse scan (b l ...)
        h_start = torch.zeros_like(h[:, :1]) if h0 is None else h0.unsqueeze(1)
        h_prev = torch.cat([h_start, h[:, :-1]], dim=1)  # h_{t-1}
        grad_h0 = None if h0 is None else g[:, 0] * a[:, 0].conj()
        return g * h_prev.conj(), g, grad_h0


def linear_scan_parallel(
    a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None = None
) -> torch.Tensor:
    """Parallel prefix scan, equal to ``linear_scan_ref`` (no loop over time, no division).

    Implements the recurrence of [TiM4Rec Eq. (2)] by odd-even recursion (log2(l) levels of
    tensor ops on halving lengths; exact for complex a and for a = 0). The backward pass is the
    adjoint scan run in reverse (a custom autograd Function), so it costs about one more scan.

    Shapes:
        a: broadcastable to b, e.g. (b, l, ...) or (b, l, 1, ...); real or complex
        b: (b, l, ...)
        h0: (b, ...) optional initial state
        returns: h (b, l, ...), dtype promoted from a, b, h0
    """
    a = _check(a, b, h0)
    dtype = _promote(a, b, h0)
    if b.shape[1] == 0:
        return b.to(dtype)
    state = b.shape[:1] + b.shape[2:]
    h0 = None if h0 is None else h0.to(dtype).expand(state)
    return _LinearScanFn.apply(a.to(dtype), b.to(dtype), h0)


def linear_scan(
    a: torch.Tensor, b: torch.Tensor, h0: torch.Tensor | None = None, method: str = "parallel"
) -> torch.Tensor:
    """h_t = a_t * h_{t-1} + b_t elementwise along dim 1, all states returned.

    Implements the recurrence of [TiM4Rec Eq. (2)]. ``method="parallel"`` (default) runs
    ``linear_scan_parallel``; ``"sequential"`` runs the loop ``linear_scan_ref``, which on a CPU
    is faster when l is short and each step is large (e.g. l = 50 with 128 x 32 states per row:
    the loop's per-step tensors stay in cache, the parallel scan streams the whole tensor
    through memory log2(l) times).

    Shapes:
        a: broadcastable to b, e.g. (b, l, ...) or (b, l, 1, ...); real or complex
        b: (b, l, ...)
        h0: (b, ...) optional initial state
        returns: h (b, l, ...), dtype promoted from a, b, h0
    """
    if method == "parallel":
        return linear_scan_parallel(a, b, h0)
    if method == "sequential":
        return linear_scan_ref(a, b, h0)
    raise ValueError(f"method={method!r}: expected 'parallel' or 'sequential'")
