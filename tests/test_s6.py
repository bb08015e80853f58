"""Selective scan (S6): the parallel and recurrent paths equal the loop (values, last state,
grads) for every option of mamba-ssm's selective_scan_fn; the recurrent path across its block and
chunk grids, for extreme steps and against finite differences; the loop matches a hand
computation; dispatch; GPU check against mamba-ssm itself."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import TOL, assert_close

from ssmlab.ssm import s6
from ssmlab.ssm.s6 import (
    selective_scan,
    selective_scan_parallel,
    selective_scan_recurrent,
    selective_scan_ref,
)

b, d, n = 2, 4, 3


def _inputs(l, dtype, bc="shared", device="cpu", bc_c=None, batch=b):
    """Random inputs; B of form ``bc``, C of form ``bc_c`` (default: the same as B)."""
    shapes = {"shared": (batch, n, l), "grouped": (batch, 2, n, l), "constant": (d, n)}
    kw = {"dtype": dtype, "device": device}
    return {
        "u": torch.randn(batch, d, l, **kw),
        "delta": 0.5 * torch.randn(batch, d, l, **kw),
        "A": -torch.rand(d, n, **kw) - 0.1,
        "B": torch.randn(shapes[bc], **kw),
        "C": torch.randn(shapes[bc_c or bc], **kw),
        "D": torch.randn(d, **kw),
        "z": torch.randn(batch, d, l, **kw),
        "delta_bias": torch.rand(d, **kw),
    }


def _run(fn, inputs, use, delta_softplus, through_last=True):
    """y, last state and the gradients of a random projection of y (and of the last state)."""
    leaves = {k: v.detach().clone().requires_grad_() for k, v in inputs.items()}
    args = {k: (leaves[k] if (k in use or k in "u delta A B C") else None) for k in leaves}
    y, last = fn(**args, delta_softplus=delta_softplus, return_last_state=True)
    torch.manual_seed(1)
    loss = (y * torch.randn(y.shape, dtype=y.dtype, device=y.device)).sum()
    if through_last:  # mamba-ssm's kernel has no gradient through last_state
        loss = loss + (last * torch.randn(last.shape, dtype=last.dtype, device=y.device)).sum()
    loss.backward()
    return y, last, {k: leaves[k].grad for k in leaves if args[k] is not None}


def _check_matches_ref(fn, inputs, use, delta_softplus, tol, through_last=True):
    y_ref, last_ref, g_ref = _run(selective_scan_ref, inputs, use, delta_softplus, through_last)
    y, last, g = _run(fn, inputs, use, delta_softplus, through_last)
    assert y.dtype == y_ref.dtype and y.shape == y_ref.shape and last.shape == last_ref.shape
    assert_close(y, y_ref, what="y", **tol)
    assert_close(last, last_ref, what="last_state", **tol)
    assert set(g) == set(g_ref)
    for name in g_ref:
        assert_close(g[name], g_ref[name], what=f"grad {name}", **tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    ("l", "bc"),
    [
        (1, "shared"),
        (7, "shared"),
        (64, "shared"),
        (100, "shared"),
        (1, "grouped"),
        (100, "grouped"),
        (1, "constant"),
        (100, "constant"),
    ],
)
@pytest.mark.parametrize("use", [(), ("D",), ("D", "z", "delta_bias")])
@pytest.mark.parametrize("delta_softplus", [False, True])
@pytest.mark.parametrize("fast", [selective_scan_parallel, selective_scan_recurrent])
def test_fast_paths_match_ref(dtype, l, bc, use, delta_softplus, fast):
    inputs = _inputs(l, dtype, bc)
    y, last, _ = _run(fast, inputs, use, delta_softplus)
    assert y.dtype == dtype and y.shape == (b, d, l) and last.shape == (b, d, n)
    # float32 without softplus has steps Δ < 0 (Ā > 1, growing states) whose rounding in the
    # last state's gradient exceeds the tolerance: that gradient is checked in float64 here
    # and in float32 with Δ > 0 below
    through_last = dtype == torch.float64
    _check_matches_ref(fast, inputs, use, delta_softplus, TOL[dtype], through_last)


@pytest.fixture
def small_grid(monkeypatch):
    """Blocks of 2 rows (b = 2k + 1 leaves a last block of one row) and chunks of 4 steps."""
    monkeypatch.setattr(s6, "BLOCK_ELEMENTS", 2 * d * n)
    monkeypatch.setattr(s6, "CHUNK", 4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("l", [1, 2, 3, 4, 5, 8, 9, 13])
@pytest.mark.parametrize(
    ("bc", "bc_c"),
    [("shared", None), ("grouped", None), ("constant", None), ("shared", "constant")],
)
def test_recurrent_on_and_off_its_grids(small_grid, dtype, l, bc, bc_c):
    """Lengths 1, 2, odd, on and off the chunk grid; 3 rows in blocks of 2; mixed B/C forms."""
    inputs = _inputs(l, dtype, bc, bc_c=bc_c, batch=3)
    use = ("D", "z", "delta_bias")
    _check_matches_ref(selective_scan_recurrent, inputs, use, True, TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("scale", ["tiny", "huge", "mixed"])
def test_recurrent_extreme_steps(small_grid, dtype, scale):
    """Δ from 1e-9 (state barely moves) to 1e3 (exp(ΔA) underflows to 0: the state resets).

    The recurrent path never exponentiates a positive number nor divides, so nothing overflows.
    """
    l = 11
    inputs = _inputs(l, dtype, "shared", batch=3)
    inputs["A"] = -torch.linspace(0.5, 32.0, d * n, dtype=dtype).reshape(d, n)  # S4D-real range
    log_dt = {
        "tiny": torch.full((3, d, l), -9.0, dtype=dtype),
        "huge": torch.full((3, d, l), 3.0, dtype=dtype),
        "mixed": torch.randint(-9, 4, (3, d, l)).to(dtype),
    }[scale]
    inputs["delta"] = 10.0**log_dt * (1 + 0.1 * torch.rand(3, d, l, dtype=dtype))
    use = ("D", "z")
    y, last, grads = _run(selective_scan_recurrent, inputs, use, False)
    assert torch.isfinite(y).all() and torch.isfinite(last).all()
    assert all(torch.isfinite(g).all() for g in grads.values())
    tol = {torch.float32: {"atol": 1e-3, "rtol": 1e-4}, torch.float64: TOL[torch.float64]}[dtype]
    _check_matches_ref(selective_scan_recurrent, inputs, use, False, tol)


def test_recurrent_gradcheck(small_grid):
    """The hand-written backward against finite differences (through y and the last state)."""
    x = _inputs(6, torch.float64, "grouped", batch=3)
    names = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")
    leaves = tuple(x[k].requires_grad_() for k in names)

    def fn(*args):
        return selective_scan_recurrent(
            *args[:5], **dict(zip(names[5:], args[5:])), delta_softplus=True, return_last_state=True
        )

    assert torch.autograd.gradcheck(fn, leaves)


def test_recurrent_empty_sequence():
    x = _inputs(0, torch.float32)
    y, last = selective_scan_recurrent(**x, return_last_state=True)
    assert y.shape == (b, d, 0) and torch.equal(last, torch.zeros(b, d, n))


def test_ref_matches_hand_computation():
    """Two steps written out: h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t u_t, y_t = C_t·h_t + D u_t."""
    x = _inputs(2, torch.float64)
    u, delta, A, B, C, D, z, bias = (
        x[k] for k in ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")
    )
    dt = F.softplus(delta + bias[:, None])  # (b d l)
    h = torch.zeros(b, d, n, dtype=torch.float64)
    ys = []
    for t in range(2):
        h = (
            torch.exp(dt[:, :, t, None] * A) * h
            + dt[:, :, t, None] * B[:, None, :, t] * u[:, :, t, None]
        )
        y = (h * C[:, None, :, t]).sum(-1) + D * u[:, :, t]
        ys.append(y * F.silu(z[:, :, t]))
    y_hand = torch.stack(ys, dim=-1)
    y, last = selective_scan_ref(
        u, delta, A, B, C, D, z, bias, delta_softplus=True, return_last_state=True
    )
    assert_close(y, y_hand, what="y", dtype=torch.float64)
    assert_close(last, h, what="last_state", dtype=torch.float64)
    y_plain = selective_scan_ref(u, delta, A, B, C)  # no bias, no softplus, no D, no gate
    h1 = delta[:, :, 0, None] * B[:, None, :, 0] * u[:, :, 0, None]
    assert_close(y_plain[:, :, 0], (h1 * C[:, None, :, 0]).sum(-1), what="y_0", dtype=torch.float64)


def test_dispatch_and_reduced_precision():
    x = _inputs(16, torch.float32)
    exact = {"atol": 0, "rtol": 0}
    expected = selective_scan_recurrent(**x)  # the CPU default
    assert_close(selective_scan(**x), expected, what="default", **exact)
    assert_close(selective_scan(**x, backend="torch"), expected, what="torch", **exact)
    for method, fn in (("parallel", selective_scan_parallel), ("ref", selective_scan_ref)):
        assert_close(selective_scan(**x, method=method), fn(**x), what=method, **exact)
    with pytest.raises(ValueError, match="method"):
        selective_scan(**x, method="pscan")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            selective_scan(**x, backend="mamba_ssm")
    with pytest.raises(ValueError, match="backend"):
        selective_scan(**x, backend="triton")
    half = {k: v.to(torch.bfloat16) for k, v in x.items()}
    y = selective_scan(**half, backend="torch")  # computes in float32, casts back
    assert y.dtype == torch.bfloat16
    assert_close(y.float(), selective_scan_ref(**half).float(), what="bf16", atol=1e-2, rtol=1e-2)


def test_bad_shapes_raise():
    x = _inputs(5, torch.float32)
    with pytest.raises(ValueError, match="delta must have shape"):
        selective_scan_ref(**{**x, "delta": x["delta"][:, :, :4]})
    with pytest.raises(ValueError, match="A must be real"):
        selective_scan(**{**x, "A": x["A"][:2]})
    with pytest.raises(ValueError, match="B must have shape"):
        selective_scan(**{**x, "B": torch.randn(b, 3, n, 5)})  # 3 groups do not divide d = 4
    with pytest.raises(ValueError, match="C must have shape"):
        selective_scan(**{**x, "C": torch.randn(b, n + 1, 5)})
    with pytest.raises(ValueError, match="z must have shape"):
        selective_scan(**{**x, "z": x["z"][0]})
    with pytest.raises(ValueError, match="u must have shape"):
        selective_scan(**{**x, "u": x["u"][0], "delta": x["delta"][0]})


@pytest.mark.gpu
@pytest.mark.parametrize("bc", ["shared", "grouped", "constant"])
def test_matches_mamba_ssm_kernel(bc):
    interface = pytest.importorskip("mamba_ssm.ops.selective_scan_interface")
    inputs = _inputs(100, torch.float32, bc, device="cuda")
    use = ("D", "z", "delta_bias")
    y_ours, last_ours, g_ours = _run(selective_scan_parallel, inputs, use, True, False)
    y_kernel, last_kernel, g_kernel = _run(interface.selective_scan_fn, inputs, use, True, False)
    tol = {"atol": 5e-3, "rtol": 5e-3}
    assert_close(y_ours, y_kernel, what="y", **tol)
    assert_close(last_ours, last_kernel, what="last_state", **tol)
    for name in g_kernel:
        assert_close(g_ours[name], g_kernel[name], what=f"grad {name}", atol=2e-2, rtol=2e-2)
    assert_close(
        selective_scan(**inputs, backend="mamba_ssm"), y_kernel.detach(), what="dispatch", **tol
    )
