"""Selective scan (S6, Mamba): the step Δ, B and C depend on the input.

Same arguments, shapes and semantics as mamba-ssm's ``selective_scan_fn`` (real A): for each
channel d and state n, h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t u_t and y_t = C_t h_t + D u_t, then
y_t * silu(z_t) [Mamba Alg. 2]; the discretization is Mamba's Ā = exp(ΔA), B̄ ≈ ΔB
[TiM4Rec Eq. (13)].

The ladder: ``selective_scan_ref`` is the step-by-step loop under autograd (ground truth);
``selective_scan_parallel`` feeds the same recurrence to the parallel ``linear_scan`` (log-depth,
for accelerators: it materializes (b, l, d, n) tensors several times over);
``selective_scan_recurrent`` is the CPU fast path: the same loop over time with a hand-written
backward pass (the adjoint recurrence run in reverse), blocked over the batch so that each
step's (rows, d, n) tensors stay in cache, and keeping only every ``CHUNK``-th state (the
backward pass recomputes a chunk's states before it walks back through them), so its time and
memory are linear in l. ``selective_scan`` dispatches to mamba-ssm's CUDA kernel when the backend
says so, else to ``selective_scan_recurrent`` on a CPU and ``selective_scan_parallel`` on other
devices. The torch rungs compute in float32 (float64 when an input is float64) and cast y back to
u's dtype; the last state stays in the compute dtype, as in mamba-ssm.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ssmlab.ssm import backends
from ssmlab.ssm.scan import linear_scan


def _check_bc(M: torch.Tensor, name: str, b: int, d: int, n: int, l: int) -> None:
    """Raise unless M is (d, n) constant, (b, n, l) shared or (b, g, n, l) grouped (g | d)."""
    if M.is_complex():
        raise ValueError(f"{name} must be real (complex B/C are not supported), got {M.dtype}")
    if M.shape in ((d, n), (b, n, l)):
        return
    if M.dim() == 4 and M.shape[0] == b and M.shape[2:] == (n, l) and d % M.shape[1] == 0:
        return
    raise ValueError(
        f"{name} must have shape (d, n) = {(d, n)}, (b, n, l) = {(b, n, l)} or "
        f"(b, g, n, l) with g dividing d = {d}; got {tuple(M.shape)}"
    )


def _expand_bc(M: torch.Tensor, name: str, b: int, d: int, n: int, l: int) -> torch.Tensor:
    """(d, n) constant, (b, n, l) shared or (b, g, n, l) grouped (g | d) -> (d n) or (b d n l)."""
    _check_bc(M, name, b, d, n, l)
    if M.shape == (d, n):
        return M  # (d n)
    if M.shape == (b, n, l):
        return M.unsqueeze(1).expand(b, d, n, l)  # (b n l) -> (b d n l)
    return M.repeat_interleave(d // M.shape[1], dim=1)  # (b g n l) -> (b d n l)


def _prepare(u, delta, A, B, C, D, z, delta_bias, delta_softplus):
    """Validate; return (delta, dtype): Δ = softplus(delta + delta_bias) (b d l) in the dtype.

    The compute dtype is float32, or float64 when u, delta, A, B or C is float64.
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
    _check_bc(B, "B", b, d, n, l)
    _check_bc(C, "C", b, d, n, l)
    dtype = torch.float32
    for t in (u, delta, A, B, C):
        dtype = torch.promote_types(dtype, t.dtype)
    delta = delta.to(dtype)
    if delta_bias is not None:
        delta = delta + delta_bias.to(dtype)[:, None]  # (b d l)
    if delta_softplus:
        delta = F.softplus(delta)
    return delta, dtype


def _discretize(u, delta, A, B, C, D, z, delta_bias, delta_softplus):
    """Validate; return (dA, dBu, C, dtype) with dA, dBu (b l d n) in the compute dtype.

    Time is put on dim 1 (contiguous) because that is the axis ``linear_scan`` runs along.
    """
    delta, dtype = _prepare(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    b, d, l = u.shape
    n = A.shape[1]
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
    return _skip_and_gate(y, u, D, z, dtype)


def _skip_and_gate(y, u, D, z, dtype):
    """y + D u, gated by silu(z). Shapes: y, u, z (b d l); D (d) -> (b d l) in the dtype."""
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


# The loop runs over blocks of batch rows, and over time in chunks of CHUNK steps: a chunk's
# (steps, rows, d, n) tensors (about CHUNK * BLOCK_ELEMENTS elements each) stay in cache while
# everything but the recurrence itself is done for the whole chunk at once. The forward pass
# keeps only the state before each chunk; the backward pass recomputes one chunk at a time.
BLOCK_ELEMENTS = 2**16
CHUNK = 64


def _canonical_bc(B, C, b, d, n, l):
    """B, C as a pair the recurrent scan reads: both (d, n) constant, or both (b, g, n, l).

    (b, n, l) is the grouped form with g = 1; when the two forms differ, both go to a common
    grouping (a constant one becomes (b, d, n, l), g = d: the rare mixed case pays a copy).
    """
    if B.dim() == 2 and C.dim() == 2:
        return B, C  # (d n) each

    def grouped(M):
        if M.dim() == 2:
            return M[None, :, :, None].expand(b, d, n, l)  # (d n) -> (b d n l), g = d
        return M if M.dim() == 4 else M.unsqueeze(1)  # (b n l) -> (b 1 n l)

    B, C = grouped(B), grouped(C)
    g = math.lcm(B.shape[1], C.shape[1])  # divides d
    B = B.repeat_interleave(g // B.shape[1], dim=1)  # (b g n l)
    C = C.repeat_interleave(g // C.shape[1], dim=1)
    return B, C


def _time_major(M: torch.Tensor, g: int) -> torch.Tensor:
    """Steps first, contiguous: (b d l) -> (l b g r 1); (b g n l) -> (l b g 1 n); r = d / g."""
    if M.dim() == 3:
        b, d, l = M.shape
        return M.permute(2, 0, 1).reshape(l, b, g, d // g, 1)  # (b d l) -> (l b g r 1)
    return M.permute(3, 0, 1, 2).unsqueeze(3).contiguous()  # (b g n l) -> (l b g 1 n)


def _dot_n(h: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
    """Σ_n h M over the state axis: (..., r, n) x (..., 1 or r, n) -> (..., r, 1)."""
    if M.shape[-2] == 1:  # the same M for every r: a matrix product
        return torch.matmul(h, M.transpose(-1, -2))  # (... r n) x (... n 1) -> (... r 1)
    return (h * M).sum(-1, keepdim=True)


def _sum_r(coef: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """Σ_r coef h over the channels of a group: (..., r, 1) x (..., r, n) -> (..., 1, n)."""
    return torch.matmul(coef.transpose(-1, -2), h)  # (... 1 r) x (... r n) -> (... 1 n)


class _RecurrentScanFn(torch.autograd.Function):
    """y_t = C_t·h_t with h_t = exp(Δ_t A) h_{t-1} + Δ_t u_t B_t (h_{-1} = 0), and its adjoint.

    Inputs in the compute dtype: delta (Δ, after bias and softplus), u (b, d, l); A (d, n); B, C
    both (b, g, n, l) with g dividing d, or both (d, n). Returns y (b, d, l) without the skip
    and the gate, and h_last (b, d, n); gradients flow through both.

    Backward: ∂h_t = C_t ∂y_t + exp(Δ_{t+1} A) ∂h_{t+1} runs from t = l-1 (started at ∂h_last)
    down to 0; with q_t = ∂h_t ⊙ exp(Δ_t A) h_{t-1} and s_t = Σ_n ∂h_t B_t:
    ∂C_t = Σ_r ∂y_t h_t, ∂B_t = Σ_r Δ_t u_t ∂h_t, ∂u_t = Δ_t s_t, ∂Δ_t = u_t s_t + Σ_n q_t A,
    ∂A = Σ_{b,t} Δ_t q_t (r: the channels of a group; constant B, C also sum over b and t).
    """

    @staticmethod
    def _chunk(h, dt, du, Ag, Bc, a, H):
        """States of one chunk from h (rows g r n): a <- Ā_t, H <- h_t, both (c rows g r n).

        h must not share memory with H.
        """
        torch.mul(dt, Ag, out=a).exp_()  # Ā_t = exp(Δ_t A): (c rows g r 1) x (g r n)
        torch.mul(du, Bc, out=H)  # Δ_t u_t B_t: (c rows g r 1) x (c rows g 1 n)
        for k in range(H.shape[0]):  # h_t = Ā_t h_{t-1} + Δ_t u_t B_t
            H[k].addcmul_(a[k], h)
            h = H[k]

    @staticmethod
    def forward(ctx, delta, u, A, B, C):
        b, d, l = u.shape
        n = A.shape[1]
        constant = B.dim() == 2
        g = 1 if constant else B.shape[1]
        r = d // g
        dt, du = _time_major(delta, g), _time_major(delta * u, g)  # (l b g r 1)
        Ag = A.reshape(g, r, n)  # (g r n)
        if constant:
            Bs, Cs = B.reshape(1, 1, 1, d, n), C.reshape(1, 1, 1, d, n)  # (1 1 1 r n), g = 1
        else:
            Bs, Cs = _time_major(B, g), _time_major(C, g)  # (l b g 1 n)
        keep = any(ctx.needs_input_grad)
        y = u.new_empty(l, b, g, r, 1)
        h_last = u.new_zeros(b, g, r, n)  # the running state of each block: h_{-1} = 0
        h_start = u.new_empty(-(-l // CHUNK) if keep else 0, b, g, r, n)  # state before a chunk
        rows = max(1, BLOCK_ELEMENTS // (d * n))
        for i in range(0, b, rows):
            j = min(b, i + rows)
            a = u.new_empty(min(l, CHUNK), j - i, g, r, n)
            H = torch.empty_like(a)
            h = h_last[i:j]  # (rows g r n)
            for c, t0 in enumerate(range(0, l, CHUNK)):
                t1 = min(l, t0 + CHUNK)
                if keep:
                    h_start[c, i:j] = h
                Bc = Bs if constant else Bs[t0:t1, i:j]
                Cc = Cs if constant else Cs[t0:t1, i:j]
                k = t1 - t0
                _RecurrentScanFn._chunk(h, dt[t0:t1, i:j], du[t0:t1, i:j], Ag, Bc, a[:k], H[:k])
                y[t0:t1, i:j] = _dot_n(H[:k], Cc)  # y_t = C_t·h_t: (c rows g r 1)
                h.copy_(H[k - 1])
        if keep:
            ctx.save_for_backward(delta, u, A, B, C, h_start)
        y = y.reshape(l, b, d).permute(1, 2, 0).contiguous()  # (l b g r 1) -> (b d l)
        return y, h_last.reshape(b, d, n)  # (b d l), (b d n)

    @staticmethod
    def backward(ctx, grad_y, grad_last):
        delta, u, A, B, C, h_start = ctx.saved_tensors
        b, d, l = u.shape
        n = A.shape[1]
        constant = B.dim() == 2
        g = 1 if constant else B.shape[1]
        r = d // g
        dt, du = _time_major(delta, g), _time_major(delta * u, g)  # (l b g r 1)
        gy = _time_major(grad_y, g)  # (l b g r 1)
        Ag = A.reshape(g, r, n)  # (g r n)
        if constant:
            Bs, Cs = B.reshape(1, 1, 1, d, n), C.reshape(1, 1, 1, d, n)  # (1 1 1 r n)
            gB, gC = torch.zeros_like(Bs), torch.zeros_like(Cs)  # summed over b and t
        else:
            Bs, Cs = _time_major(B, g), _time_major(C, g)  # (l b g 1 n)
            gB, gC = torch.empty_like(Bs), torch.empty_like(Cs)
        s = u.new_empty(l, b, g, r, 1)  # s_t = Σ_n ∂h_t B_t
        gdA = u.new_empty(l, b, g, r, 1)  # Σ_n q_t A
        gA = u.new_zeros(g, r, n)
        rows = max(1, BLOCK_ELEMENTS // (d * n))
        for i in range(0, b, rows):
            j = min(b, i + rows)
            a = u.new_empty(min(l, CHUNK), j - i, g, r, n)  # Ā_t
            H = torch.empty_like(a)  # h_t
            Q = torch.empty_like(a)  # Ā_t h_{t-1}, then q_t
            G = torch.empty_like(a)  # ∂h_t
            carry = u.new_zeros(j - i, g, r, n)  # what ∂h_{t1 - 1} receives from later steps
            if grad_last is not None:
                carry += grad_last[i:j].reshape(j - i, g, r, n)
            for c in reversed(range(-(-l // CHUNK))):
                t0, t1 = c * CHUNK, min(l, (c + 1) * CHUNK)
                k, rs, ts = t1 - t0, slice(i, j), slice(t0, t1)
                a_, H_, Q_, G_ = a[:k], H[:k], Q[:k], G[:k]
                Bc = Bs if constant else Bs[ts, rs]
                Cc = Cs if constant else Cs[ts, rs]
                h0 = h_start[c, rs]
                _RecurrentScanFn._chunk(h0, dt[ts, rs], du[ts, rs], Ag, Bc, a_, H_)  # recompute
                torch.mul(a_[0], h0, out=Q_[0])  # Ā_t h_{t-1}
                torch.mul(a_[1:], H_[:-1], out=Q_[1:])
                torch.mul(gy[ts, rs], Cc, out=G_)  # C_t ∂y_t: (c rows g r 1) x (c rows g 1 n)
                G_[k - 1] += carry
                for t in reversed(range(k - 1)):  # ∂h_t += Ā_{t+1} ∂h_{t+1}
                    G_[t].addcmul_(a_[t + 1], G_[t + 1])
                torch.mul(a_[0], G_[0], out=carry)
                if constant:  # Σ over rows and steps: (c rows 1 r n) -> (1 1 1 r n)
                    gC += (gy[ts, rs] * H_).sum((0, 1), keepdim=True)
                    gB += (du[ts, rs] * G_).sum((0, 1), keepdim=True)
                else:  # Σ_r: (c rows g 1 r) x (c rows g r n) -> (c rows g 1 n)
                    gC[ts, rs] = _sum_r(gy[ts, rs], H_)
                    gB[ts, rs] = _sum_r(du[ts, rs], G_)
                s[ts, rs] = _dot_n(G_, Bc)  # (c rows g r 1)
                Q_.mul_(G_)  # q_t = ∂h_t ⊙ Ā_t h_{t-1}
                gA += (Q_ * dt[ts, rs]).sum((0, 1))  # (c rows g r n) -> (g r n)
                gdA[ts, rs] = _dot_n(Q_, Ag)  # (c rows g r 1)
        s = s.reshape(l, b, d).permute(1, 2, 0)  # (l b g r 1) -> (b d l)
        gdA = gdA.reshape(l, b, d).permute(1, 2, 0)
        if constant:
            gB, gC = gB.reshape(d, n), gC.reshape(d, n)
        else:  # (l b g 1 n) -> (b g n l)
            gB, gC = gB.squeeze(3).permute(1, 2, 3, 0), gC.squeeze(3).permute(1, 2, 3, 0)
        return u * s + gdA, delta * s, gA.reshape(d, n), gB, gC


def selective_scan_recurrent(
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
    """``selective_scan`` on the CPU fast path: the loop over time with a hand-written adjoint.

    Implements [Mamba Alg. 2] with the discretization of [TiM4Rec Eq. (13)]; same results as
    ``selective_scan_ref``. The work is the reference's (O(b l d n), linear in l), but no
    (b, l, d, n) tensor is built: the batch runs in blocks of rows and time in chunks of
    ``CHUNK`` steps, only h_t = Ā_t h_{t-1} + Δ_t u_t B_t goes step by step (one in-place op
    per step), the exponentials, inputs and readouts run on a whole chunk at once, and the
    backward pass is the reverse (adjoint) recurrence of ``_RecurrentScanFn`` rather than
    autograd's graph of l steps. The state before each chunk is saved and the chunk recomputed
    in the backward pass. No exponential of a positive number and no division: as stable as
    the loop. Unlike mamba-ssm, the gradient flows through last_state too.

    Shapes: as ``selective_scan``.
    """
    delta, dtype = _prepare(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    b, d, l = u.shape
    Bc, Cc = _canonical_bc(B, C, b, d, A.shape[1], l)
    y, h_last = _RecurrentScanFn.apply(
        delta, u.to(dtype), A.to(dtype), Bc.to(dtype), Cc.to(dtype)
    )  # (b d l), (b d n)
    y = _skip_and_gate(y, u, D, z, dtype).to(u.dtype)
    return (y, h_last) if return_last_state else y


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
    method=None,
):
    """S6 selective scan with the semantics of mamba-ssm's ``selective_scan_fn``.

    Implements [Mamba Alg. 2]: Δ = delta + delta_bias, then softplus(Δ) if ``delta_softplus``;
    h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t u_t [TiM4Rec Eq. (13)]; y_t = C_t h_t + D u_t;
    y <- y * silu(z). ``backend``: None (``ssm.backend()``), ``"torch"`` or ``"mamba_ssm"``
    (CUDA tensors only; as in mamba-ssm, no gradient flows through last_state). ``method`` picks
    the torch path: ``"recurrent"`` (``selective_scan_recurrent``), ``"parallel"``
    (``selective_scan_parallel``) or ``"ref"``; None: recurrent on a CPU, parallel elsewhere.

    Shapes:
        u, delta: (b, d, l)
        A: (d, n) real, negative for a decaying state
        B, C: (b, n, l) input-dependent, (b, g, n, l) grouped with g dividing d, or (d, n) constant
        D: (d,) optional skip; z: (b, d, l) optional gate; delta_bias: (d,) optional
        returns: y (b, d, l) in u's dtype; with return_last_state, (y, last_state (b, d, n))
    """
    if method is None:
        method = "recurrent" if u.device.type == "cpu" else "parallel"
    paths = {
        "recurrent": selective_scan_recurrent,
        "parallel": selective_scan_parallel,
        "ref": selective_scan_ref,
    }
    if method not in paths:
        raise ValueError(f"method={method!r}: expected one of {tuple(paths)} or None")
    if backends.resolve(backend, u, kernel="selective_scan_fn") == "mamba_ssm":
        kernel = backends.mamba_kernel("selective_scan_fn")
        return kernel(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
    return paths[method](u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
