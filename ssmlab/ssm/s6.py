"""Selective scan (S6, Mamba): the step Δ, B and C depend on the input.

Same shapes and semantics as mamba-ssm's ``selective_scan_fn`` [Mamba Alg. 2]: per channel d and
state n, h_t = exp(Δ_t A) h_{t−1} + Δ_t B_t u_t and y_t = C_t h_t + D u_t, optionally gated by
silu(z) (Mamba's discretization: Ā = exp(ΔA), B̄ ≈ ΔB, [TiM4Rec Eq. (13)]).

``selective_scan_ref`` is the step-by-step loop (ground truth, float32/float64 inside);
``selective_scan_parallel`` feeds the same recurrence to the parallel ``linear_scan``;
``selective_scan`` dispatches to mamba-ssm's CUDA kernel when asked and available.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ssmlab.ssm import backends
from ssmlab.ssm.scan import linear_scan


def _prepare(u, delta, A, B, C, delta_bias, delta_softplus):
    """Validate, upcast, apply bias/softplus; return (u, delta, dA, dBu, C) with time on dim 2."""
    if u.dim() != 3 or delta.shape != u.shape:
        raise ValueError(f"u and delta must both be (b, d, l), got {tuple(u.shape)} and {tuple(delta.shape)}")
    b, d, l = u.shape
    if A.dim() != 2 or A.shape[0] != d:
        raise ValueError(f"A must be (d, n) with d = {d}, got {tuple(A.shape)}")
    if A.is_complex():
        raise ValueError("complex A is not supported by the torch selective scan")
    n = A.shape[1]
    compute = torch.float64 if u.dtype == torch.float64 else torch.float32
    u, delta = u.to(compute), delta.to(compute)
    if delta_bias is not None:
        delta = delta + delta_bias.to(compute)[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    dA = torch.exp(torch.einsum("bdl,dn->bdln", delta, A.to(compute)))  # (b d l n)
    Bx = _expand(B, b, d, n, l, "B").to(compute)  # (b d n l) or (d n)
    Cx = _expand(C, b, d, n, l, "C").to(compute)
    if Bx.dim() == 2:
        dBu = torch.einsum("bdl,dn,bdl->bdln", delta, Bx, u)  # (b d l n)
    else:
        dBu = torch.einsum("bdl,bdnl,bdl->bdln", delta, Bx, u)
    return u, delta, dA, dBu, Cx


def _expand(M, b, d, n, l, name):
    """(d, n) constant, (b, n, l) shared, or (b, g, n, l) grouped -> (d, n) or (b, d, n, l)."""
    if M.dim() == 2 and tuple(M.shape) == (d, n):
        return M
    if M.dim() == 3 and tuple(M.shape) == (b, n, l):
        return M[:, None].expand(b, d, n, l)
    if M.dim() == 4 and M.shape[0] == b and M.shape[2:] == (n, l) and d % M.shape[1] == 0:
        return M.repeat_interleave(d // M.shape[1], dim=1)  # (b g n l) -> (b d n l)
    raise ValueError(f"{name} must be (d, n), (b, n, l) or (b, g, n, l) with g | d; got {tuple(M.shape)}")


def _output(h, u, Cx, D, z, out_dtype):
    if Cx.dim() == 2:
        y = torch.einsum("bdln,dn->bdl", h, Cx)  # (b d l n) x (d n) -> (b d l)
    else:
        y = torch.einsum("bdln,bdnl->bdl", h, Cx)  # (b d l n) x (b d n l) -> (b d l)
    if D is not None:
        y = y + D.to(y.dtype)[:, None] * u
    if z is not None:
        y = y * F.silu(z.to(y.dtype))
    return y.to(out_dtype)


def selective_scan_ref(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                       return_last_state=False):
    """Sequential reference of ``selective_scan`` (a Python loop over time).

    Implements [Mamba Alg. 2] with the discretization of [TiM4Rec Eq. (13)].

    Shapes: as ``selective_scan``.
    """
    out_dtype = u.dtype
    u, delta, dA, dBu, Cx = _prepare(u, delta, A, B, C, delta_bias, delta_softplus)
    h = dBu.new_zeros(dBu.shape[0], dBu.shape[1], dBu.shape[3])  # (b d n)
    hs = []
    for t in range(u.shape[2]):
        h = dA[:, :, t] * h + dBu[:, :, t]  # (b d n)
        hs.append(h)
    hs = torch.stack(hs, dim=2) if hs else dBu  # (b d l n)
    y = _output(hs, u, Cx, D, z, out_dtype)
    return (y, h) if return_last_state else y


def selective_scan_parallel(u, delta, A, B, C, D=None, z=None, delta_bias=None,
                            delta_softplus=False, return_last_state=False):
    """``selective_scan`` on the torch fast path: the recurrence via the parallel ``linear_scan``.

    Implements [Mamba Alg. 2] with the discretization of [TiM4Rec Eq. (13)].

    Shapes: as ``selective_scan``.
    """
    out_dtype = u.dtype
    u, delta, dA, dBu, Cx = _prepare(u, delta, A, B, C, delta_bias, delta_softplus)
    h = linear_scan(dA.transpose(1, 2), dBu.transpose(1, 2)).transpose(1, 2)  # (b d l n)
    y = _output(h, u, Cx, D, z, out_dtype)
    if return_last_state:
        return y, h[:, :, -1] if h.shape[2] else h.new_zeros(h.shape[0], h.shape[1], h.shape[3])
    return y


def selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                   return_last_state=False, backend=None):
    """S6 selective scan with mamba-ssm's ``selective_scan_fn`` semantics.

    Implements [Mamba Alg. 2]: Δ = softplus(delta + delta_bias) if ``delta_softplus`` else
    delta + delta_bias; h_t = exp(Δ_t A) h_{t−1} + Δ_t B_t u_t; y_t = C_t h_t + D u_t; y ← y·silu(z).
    ``backend``: None (``ssm.backend()``), ``"torch"`` or ``"mamba_ssm"`` (CUDA only).

    Shapes:
        u, delta: (b, d, l)
        A: (d, n) real (negative for a decaying state)
        B, C: (b, n, l) input-dependent, (b, g, n, l) grouped with g | d, or (d, n) constant
        D: (d,) optional skip; z: (b, d, l) optional gate; delta_bias: (d,) optional
        returns: y (b, d, l) [and last_state (b, d, n) if return_last_state]
    """
    if backends.resolve(backend, u, kernel="selective_scan_fn") == "mamba_ssm":
        fn = backends.mamba_kernel("selective_scan_fn")
        return fn(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
    return selective_scan_parallel(u, delta, A, B, C, D, z, delta_bias, delta_softplus,
                                   return_last_state)
