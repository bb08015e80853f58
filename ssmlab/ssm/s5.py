"""Time-aware S5: a MIMO diagonal SSM discretized with the observed time interval at every step.

SS4Rec's time-aware SSM [SS4Rec, "Time-Aware SSM"] is S5 [S5] with a variable step: the k-th
update uses dt_k (the observed interval assigned to step k, possibly times a learned per-state
timescale), so the state decays by exp(dt_k Lambda) over the real elapsed time. ``s5_scan_ref``
loops over time with the full B_bar_k matrix; ``s5_scan`` multiplies B into the input first and
runs ``linear_scan``.

Note: SS4Rec's paper (only a summary is available to us) gives no equation numbers we could
verify; the update is [TiM4Rec Eq. (2)] with a per-step dt and a diagonal (complex) A = Lambda.
"""

from __future__ import annotations

import torch

from ssmlab.ssm.discretize import discretize
from ssmlab.ssm.scan import linear_scan


def _check(u, dt, Lambda, B, C, D, h0):
    """Validate shapes; return (b, l, h, p)."""
    if u.dim() != 3:
        raise ValueError(f"u must have shape (b, l, h), got {tuple(u.shape)}")
    b, l, h = u.shape
    if Lambda.dim() != 1:
        raise ValueError(f"Lambda must have shape (p,), got {tuple(Lambda.shape)}")
    p = Lambda.shape[0]
    if dt.shape not in ((b, l), (b, l, p)):
        raise ValueError(
            f"dt must have shape (b, l) = {(b, l)} or (b, l, p) = {(b, l, p)}, "
            f"got {tuple(dt.shape)}"
        )
    if dt.is_complex():
        raise ValueError(f"dt must be real, got dtype {dt.dtype}")
    if B.shape != (p, h):
        raise ValueError(f"B must have shape (p, h) = {(p, h)}, got {tuple(B.shape)}")
    if C.shape != (h, p):
        raise ValueError(f"C must have shape (h, p) = {(h, p)}, got {tuple(C.shape)}")
    if D is not None and D.shape != (h,):
        raise ValueError(f"D must have shape (h,) = {(h,)}, got {tuple(D.shape)}")
    if h0 is not None and h0.shape != (b, p):
        raise ValueError(f"h0 must have shape (b, p) = {(b, p)}, got {tuple(h0.shape)}")
    return b, l, h, p


def _dtypes(u, dt, Lambda, B, C):
    """(real, complex-or-real) compute dtypes: at least float32, promoted over all inputs."""
    real = torch.float32
    for t in (u, dt, Lambda, B, C):
        real = torch.promote_types(real, t.real.dtype if t.is_complex() else t.dtype)
    if Lambda.is_complex() or B.is_complex() or C.is_complex():
        return real, {torch.float32: torch.complex64, torch.float64: torch.complex128}[real]
    return real, real


def s5_scan_ref(u, dt, Lambda, B, C, D=None, method="zoh", return_final_state=False, h0=None):
    """Sequential reference of ``s5_scan``: one discretization and one state update per step.

    Implements [TiM4Rec Eq. (2)] with a per-step dt (SS4Rec's time-aware S5):
    h_k = A_bar_k h_{k-1} + B_bar_k u_k, y_k = Re(C h_k) + D u_k, (A_bar_k, B_bar_k) from
    ``discretize(Lambda, B, dt_k, method)``. Computes in float32 or wider, casts y back to
    u's dtype.

    Shapes:
        u: (b, l, h) real input
        dt: (b, l) per-step interval, or (b, l, p) per-step and per-state step
        Lambda: (p,) diagonal of A, complex or real, Re < 0
        B: (p, h); C: (h, p); D: (h,) optional; h0: (b, p) optional initial state
        returns: y (b, l, h); with return_final_state, (y, h_last (b, p))
    """
    b, l, h, p = _check(u, dt, Lambda, B, C, D, h0)
    real, cplx = _dtypes(u, dt, Lambda, B, C)
    x, dt_, A_, B_, C_ = u.to(real), dt.to(real), Lambda.to(cplx), B.to(cplx), C.to(cplx)
    state = torch.zeros(b, p, dtype=cplx, device=u.device) if h0 is None else h0.to(cplx)
    ys = []
    for k in range(l):
        dt_k = dt_[:, k, None, None] if dt_.dim() == 2 else dt_[:, k, :, None]  # (b 1 1) | (b p 1)
        A_bar, B_bar = discretize(A_[:, None], B_, dt_k, method)  # (b p 1), (b p h)
        x_k = x[:, k].to(cplx)  # (b h)
        state = A_bar[..., 0] * state + torch.einsum("bph,bh->bp", B_bar, x_k)  # (b p)
        y_k = torch.einsum("hp,bp->bh", C_, state)  # (b h)
        y_k = y_k.real if y_k.is_complex() else y_k
        if D is not None:
            y_k = y_k + D.to(real) * x[:, k]
        ys.append(y_k)
    y = (torch.stack(ys, dim=1) if ys else x.new_zeros(b, 0, h)).to(u.dtype)  # (b l h)
    return (y, state) if return_final_state else y


def s5_scan(u, dt, Lambda, B, C, D=None, method="zoh", return_final_state=False, h0=None):
    """Time-aware S5 layer: diagonal MIMO SSM discretized with each step's own interval.

    Implements [TiM4Rec Eq. (2)] with a per-step dt as in SS4Rec's time-aware SSM [SS4Rec] and S5's
    parallel scan [S5]: B u_k is computed once (linearity), scaled by the discretization
    coefficient of step k, and scanned with ``linear_scan``; y_k = Re(C h_k) + D u_k.
    dt = 0 (no time passed: the state is kept, the input enters with weight 0 under ``zoh``) and
    huge dt (1e9 s: the state is forgotten, B_bar -> -B/Lambda) stay finite, with finite gradients.
    Same arguments and results as ``s5_scan_ref``; y is cast back to u's dtype, h_last is kept in
    the compute dtype (complex when Lambda, B or C is complex).

    Shapes:
        u: (b, l, h) real input
        dt: (b, l) per-step interval, or (b, l, p) per-step and per-state step
        Lambda: (p,) diagonal of A, complex or real, Re < 0
        B: (p, h); C: (h, p); D: (h,) optional; h0: (b, p) optional initial state
        returns: y (b, l, h); with return_final_state, (y, h_last (b, p))
    """
    b, l, _h, p = _check(u, dt, Lambda, B, C, D, h0)
    real, cplx = _dtypes(u, dt, Lambda, B, C)
    x = u.to(real)
    dt3 = dt.to(real)[..., None] if dt.dim() == 2 else dt.to(real)  # (b l 1) | (b l p)
    Bx = torch.einsum("blh,ph->blp", x.to(cplx), B.to(cplx))  # (b l h) x (p h) -> (b l p)
    A_bar, Bx_bar = discretize(Lambda.to(cplx), Bx, dt3, method)  # (b l p), (b l p)
    states = linear_scan(A_bar, Bx_bar, None if h0 is None else h0.to(cplx))  # (b l p)
    y = torch.einsum("blp,hp->blh", states, C.to(cplx))  # (b l p) x (h p) -> (b l h)
    y = y.real if y.is_complex() else y
    if D is not None:
        y = y + D.to(real) * x
    y = y.to(u.dtype)
    if not return_final_state:
        return y
    h_last = (
        states[:, -1]
        if l
        else (torch.zeros(b, p, dtype=cplx, device=u.device) if h0 is None else h0.to(cplx))
    )
    return y, h_last


def hippo_n_init(p: int, blocks: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """S5's HiPPO-N initialization: eigenvalues and eigenvectors of the normal part of HiPPO-LegS.

    HiPPO-LegS is A[n, k] = -sqrt((2n+1)(2k+1)) for n > k, -(n+1) on the diagonal, 0 above.
    Adding the rank-1 term P P^T with P_n = sqrt(n + 1/2) leaves its normal part
    S = -I/2 + K, K skew-symmetric with K[n, k] = -sqrt((2n+1)(2k+1))/2 below the diagonal and
    +sqrt((2n+1)(2k+1))/2 above. S = V diag(Lambda) V^H with Re(Lambda) = -1/2 exactly and the
    imaginary parts from the Hermitian eigendecomposition of -iK, as S5's ``make_DPLR_HiPPO``
    computes them [S5]. With ``blocks`` > 1 the p states form ``blocks`` independent blocks, each
    initialized from HiPPO-N of size p / blocks (S5's block-diagonal initialization), and V is
    block-diagonal. Every eigenvalue is returned (no conjugate-pair halving). Use V to move a
    dense B and C into the eigenbasis: B_tilde = V^H B, C_tilde = C V.

    Shapes:
        returns: Lambda (p,) complex64, V (p, p) complex64 unitary
    """
    if p < 1 or blocks < 1 or p % blocks:
        raise ValueError(f"p={p} must be a positive multiple of blocks={blocks}")
    m = p // blocks
    root = torch.sqrt(2 * torch.arange(m, dtype=torch.float64) + 1)  # (m)
    lower = torch.tril(0.5 * root[:, None] * root[None, :], diagonal=-1)  # (m m)
    skew = lower.T - lower  # K: + above, - below the diagonal
    # -iK is Hermitian: -iK = V diag(imag) V^H, so K = V diag(i imag) V^H
    imag, V = torch.linalg.eigh(-1j * skew.to(torch.complex128))
    Lambda = torch.complex(torch.full_like(imag, -0.5), imag)  # (m)
    Lambda = Lambda.repeat(blocks).to(torch.complex64)  # (p)
    V = torch.block_diag(*([V] * blocks)).to(torch.complex64)  # (p p)
    return Lambda, V
