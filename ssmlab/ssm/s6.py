"""Selective scan (S6, Mamba): the step Δ, B and C depend on the input.

Same arguments, shapes and semantics as mamba-ssm's ``selective_scan_fn`` (real A): for each
channel d and state n, h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t u_t and y_t = C_t h_t + D u_t, then
y_t * silu(z_t) [Mamba Alg. 2]; the discretization is Mamba's Ā = exp(ΔA), B̄ ≈ ΔB
[TiM4Rec Eq. (13)].

``selective_scan_ref`` is the step-by-step loop (ground truth); ``selective_scan_parallel`` feeds
the same recurrence to the parallel ``linear_scan``; ``selective_scan`` dispatches to mamba-ssm's
CUDA kernel when the backend says so and to the torch fast path otherwise. Both torch rungs
compute in float32 (float64 when an input is float64) and cast y back to u's dtype; the last
state stays in the compute dtype, as in mamba-ssm.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ssmlab.ssm import backends
from ssmlab.ssm.scan import linear_scan


def _expand_bc(M: torch.Tensor, name: str, b: int, d: int, n: int, l: int) -> torch.Tensor:
    """(d, n) constant, (b, n, l) shared or (b, g, n, l) grouped (g | d) -> (d n) or (b d n l)."""
    if M.is_complex():
        raise ValueError(f"{name} must be real (complex B/C are not supported), got {M.dtype}")
    if M.shape == (d, n):
        return M  # (d n)
    if M.shape == (b, n, l):
        return M.unsqueeze(1).expand(b, d, n, l)  # (b n l) -> (b d n l)
    if M.dim() == 4 and M.shape[0] == b and M.shape[2:] == (n, l) and d % M.shape[1] == 0:
        return M.repeat_interleave(d // M.shape[1], dim=1)  # (b g n l) -> (b d n l)
    raise ValueError(
        f"{name} must have shape (d, n) = {(d, n)}, (b, n, l) = {(b, n, l)} or "
        f"(b, g, n, l) with g dividing d = {d}; got {tuple(M.shape)}"
    )


def _discretize(u, delta, A, B, C, D, z, delta_bias, delta_softplus):
    """Validate; return (dA, dBu, C, dtype) with dA, dBu (b l d n) in the compute dtype.

    Time is put on dim 1 (contiguous) because that is the axis ``linear_scan`` runs along.
    """
    if u.dim() != 3:
        raise ValueError(f"u must have shape (b, d, l), got {tuple(u.shape)}")
    b, d, l = u.shape
    if delta.shape != u.shape:
        raise ValueError(f"delta must have shape (b, d, l) = {(b, d, l)}, got {tuple(delta.shape)}")
    if A.dim() != 2 or A.shape[0] != d or A.is_complex():
        raise ValueError(
            f"A must be real with shape (d, n), d = {d}; got {tuple(A.shape)} {A.dtype}"
        )
    n = A.shape[1]
    for name, t, shape in (("D", D, (d,)), ("z", z, (b, d, l)), ("delta_bias", delta_bias, (d,))):
        if t is not None and t.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, got {tuple(t.shape)}")
    dtype = torch.float32
    for t in (u, delta, A, B, C):
        dtype = torch.promote_types(dtype, t.dtype)
    delta = delta.to(dtype)
    if delta_bias is not None:
        delta = delta + delta_bias.to(dtype)[:, None]  # (b d l)
    if delta_softplus:
        delta = F.softplus(delta)
    Bx = _expand_bc(B, "B", b, d, n, l).to(dtype)
    Cx = _expand_bc(C, "C", b, d, n, l).to(dtype)
    dA = torch.exp(torch.einsum("bdl,dn->bldn", delta, A.to(dtype)))  # Ā = exp(ΔA) (b l d n)
    du = delta * u.to(dtype)  # (b d l)
    if Bx.dim() == 2:
        dBu = torch.einsum("bdl,dn->bldn", du, Bx)  # B̄u = ΔBu (b l d n)
    else:
        dBu = torch.einsum("bdl,bdnl->bldn", du, Bx)
    return dA, dBu, Cx, dtype


def _readout(h, u, Cx, D, z, dtype):
    """y = C h + D u, gated by silu(z); h (b l d n) -> y (b d l) in the compute dtype."""
    if Cx.dim() == 2:
        y = torch.einsum("bldn,dn->bdl", h, Cx)  # (b l d n) x (d n) -> (b d l)
    else:
        y = torch.einsum("bldn,bdnl->bdl", h, Cx)  # (b l d n) x (b d n l) -> (b d l)
    if D is not None:
        y = y + D.to(dtype)[:, None] * u.to(dtype)
    if z is not None:
        y = y * F.silu(z.to(dtype))
    return y


def selective_scan_ref(
    u,
    delta,
    A,
    B,
    C,
    D=None,
    z=None,
    delta_bias=None,
    delta_softplus=False,
    return_last_state=False,
):
    """Sequential reference of ``selective_scan``: a Python loop over time.

    Implements [Mamba Alg. 2] with the discretization of [TiM4Rec Eq. (13)]; computes in float32
    (float64 if any input is), casts y back to u's dtype at the end.

    Shapes: as ``selective_scan``.
    """
    dA, dBu, Cx, dtype = _discretize(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    b, _l, d, n = dA.shape
    h = dA.new_zeros(b, d, n)  # (b d n)
    hs = [h.unsqueeze(1)[:, :0]]  # an empty (b 0 d n) start keeps l = 0 well defined
    for dA_t, dBu_t in zip(dA.unbind(1), dBu.unbind(1)):
        h = dA_t * h + dBu_t  # (b d n)
        hs.append(h.unsqueeze(1))
    y = _readout(torch.cat(hs, dim=1), u, Cx, D, z, dtype).to(u.dtype)  # (b d l)
    return (y, h) if return_last_state else y


def selective_scan_parallel(
    u,
    delta,
    A,
    B,
    C,
    D=None,
    z=None,
    delta_bias=None,
    delta_softplus=False,
    return_last_state=False,
):
    """``selective_scan`` on the torch fast path: the recurrence through ``linear_scan``.

    Implements [Mamba Alg. 2] with the discretization of [TiM4Rec Eq. (13)]; same results as
    ``selective_scan_ref`` (the state tensor (b, l, d, n) is materialized, as in mamba's reference).

    Shapes: as ``selective_scan``.
    """
    dA, dBu, Cx, dtype = _discretize(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    h = linear_scan(dA, dBu)  # scan over l: (b l d n)
    y = _readout(h, u, Cx, D, z, dtype).to(u.dtype)  # (b d l)
    if not return_last_state:
        return y
    return y, (h[:, -1] if h.shape[1] else h.new_zeros(h.shape[0], h.shape[2], h.shape[3]))


def selective_scan(
    u,
    delta,
    A,
    B,
    C,
    D=None,
    z=None,
    delta_bias=None,
    delta_softplus=False,
    return_last_state=False,
    backend=None,
):
    """S6 selective scan with the semantics of mamba-ssm's ``selective_scan_fn``.

    Implements [Mamba Alg. 2]: Δ = delta + delta_bias, then softplus(Δ) if ``delta_softplus``;
    h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t u_t [TiM4Rec Eq. (13)]; y_t = C_t h_t + D u_t;
    y <- y * silu(z). ``backend``: None (``ssm.backend()``), ``"torch"``
    (``selective_scan_parallel``)
    or ``"mamba_ssm"`` (CUDA tensors only; as in mamba-ssm, no gradient flows through last_state).

    Shapes:
        u, delta: (b, d, l)
        A: (d, n) real, negative for a decaying state
        B, C: (b, n, l) input-dependent, (b, g, n, l) grouped with g dividing d, or (d, n) constant
        D: (d,) optional skip; z: (b, d, l) optional gate; delta_bias: (d,) optional
        returns: y (b, d, l) in u's dtype; with return_last_state, (y, last_state (b, d, n))
    """
    if backends.resolve(backend, u, kernel="selective_scan_fn") == "mamba_ssm":
        kernel = backends.mamba_kernel("selective_scan_fn")
        return kernel(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
    return selective_scan_parallel(
        u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state
    )
