"""Selective scan (S6): the parallel path equals the loop (values, last state, grads) for every
option of mamba-ssm's selective_scan_fn; the loop matches a hand computation; dispatch; GPU check
against mamba-ssm itself."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ssmlab.ssm.s6 import selective_scan, selective_scan_parallel, selective_scan_ref

TOL = {torch.float32: {"atol": 1e-4, "rtol": 1e-4}, torch.float64: {"atol": 1e-10, "rtol": 1e-9}}
b, d, n = 2, 4, 3


def check_close(actual, expected, tol, what=""):
    print(f"{what} max abs diff {(actual - expected).abs().max().item():.3e}")
    torch.testing.assert_close(actual, expected, **tol)


def _inputs(l, dtype, bc="shared", device="cpu"):
    shape_bc = {"shared": (b, n, l), "grouped": (b, 2, n, l), "constant": (d, n)}[bc]
    kw = {"dtype": dtype, "device": device}
    return {
        "u": torch.randn(b, d, l, **kw),
        "delta": 0.5 * torch.randn(b, d, l, **kw),
        "A": -torch.rand(d, n, **kw) - 0.1,
        "B": torch.randn(shape_bc, **kw),
        "C": torch.randn(shape_bc, **kw),
        "D": torch.randn(d, **kw),
        "z": torch.randn(b, d, l, **kw),
        "delta_bias": torch.rand(d, **kw),
    }


def _run(fn, inputs, use, delta_softplus):
    leaves = {k: v.detach().clone().requires_grad_() for k, v in inputs.items()}
    args = {k: (leaves[k] if (k in use or k in "u delta A B C") else None) for k in leaves}
    y, last = fn(**args, delta_softplus=delta_softplus, return_last_state=True)
    torch.manual_seed(1)
    (y * torch.randn_like(y)).sum().backward()  # as mamba-ssm: no gradient through last_state
    return y, last, {k: leaves[k].grad for k in leaves if args[k] is not None}


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
def test_parallel_matches_ref(dtype, l, bc, use, delta_softplus):
    inputs = _inputs(l, dtype, bc)
    y_ref, last_ref, g_ref = _run(selective_scan_ref, inputs, use, delta_softplus)
    y_par, last_par, g_par = _run(selective_scan_parallel, inputs, use, delta_softplus)
    assert y_par.dtype == dtype and y_par.shape == (b, d, l) and last_par.shape == (b, d, n)
    check_close(y_par, y_ref, TOL[dtype], "y")
    check_close(last_par, last_ref, TOL[dtype], "last_state")
    assert set(g_par) == set(g_ref)
    for name in g_ref:
        check_close(g_par[name], g_ref[name], TOL[dtype], f"grad {name}")


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
    check_close(y, y_hand, TOL[torch.float64], "y")
    check_close(last, h, TOL[torch.float64], "last_state")
    y_plain = selective_scan_ref(u, delta, A, B, C)  # no bias, no softplus, no D, no gate
    h1 = delta[:, :, 0, None] * B[:, None, :, 0] * u[:, :, 0, None]
    check_close(y_plain[:, :, 0], (h1 * C[:, None, :, 0]).sum(-1), TOL[torch.float64], "y_0")


def test_dispatch_and_reduced_precision():
    x = _inputs(16, torch.float32)
    expected = selective_scan_parallel(**x)
    check_close(selective_scan(**x, backend="torch"), expected, {"atol": 0, "rtol": 0}, "torch")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            selective_scan(**x, backend="mamba_ssm")
    with pytest.raises(ValueError, match="backend"):
        selective_scan(**x, backend="triton")
    half = {k: v.to(torch.bfloat16) for k, v in x.items()}
    y = selective_scan(**half, backend="torch")  # computes in float32, casts back
    assert y.dtype == torch.bfloat16
    check_close(y.float(), selective_scan_ref(**half).float(), {"atol": 0, "rtol": 0}, "bf16")


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
    y_ours, last_ours, g_ours = _run(selective_scan_parallel, inputs, use, True)
    y_kernel, last_kernel, g_kernel = _run(interface.selective_scan_fn, inputs, use, True)
    tol = {"atol": 5e-3, "rtol": 5e-3}
    check_close(y_ours, y_kernel, tol, "y")
    check_close(last_ours, last_kernel, tol, "last_state")
    for name in g_kernel:
        check_close(g_ours[name], g_kernel[name], {"atol": 2e-2, "rtol": 2e-2}, f"grad {name}")
    check_close(selective_scan(**inputs, backend="mamba_ssm"), y_kernel.detach(), tol, "dispatch")
