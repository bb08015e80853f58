"""discretize (zoh, bilinear, euler, mamba) against closed forms and the exact ODE solution;
time_gap_to_dt's normalizations and errors."""

from __future__ import annotations

import pytest
import torch
from conftest import assert_close

from ssmlab.ssm.discretize import METHODS, discretize, phi1, time_gap_to_dt

EXTREME_DT = [0.0, 1e-12, 1e9]


def _A(kind, dtype):
    real = -torch.tensor([0.3, 1.0, 2.5, 7.0], dtype=dtype)
    if kind == "real":
        return real
    return torch.complex(real, torch.tensor([0.0, 2.0, -5.0, 30.0], dtype=dtype))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", ["real", "complex"])
def test_closed_forms(dtype, kind):
    A = _A(kind, dtype)  # (n)
    B = torch.randn(4, 3, dtype=dtype)  # (n h)
    dt = torch.tensor([[0.01], [0.5], [2.0]], dtype=dtype)  # (3 1): steps broadcast against A
    z = dt * A  # (3 n), far from 0: the textbook formulas are accurate here
    expected = {
        "zoh": (torch.exp(z), ((torch.exp(z) - 1) / A)[..., None] * B),
        "bilinear": ((1 + z / 2) / (1 - z / 2), (dt / (1 - z / 2))[..., None] * B),
        "euler": (1 + z, (dt * torch.ones_like(z))[..., None] * B),
        "mamba": (torch.exp(z), (dt * torch.ones_like(z))[..., None] * B),
    }
    for method in METHODS:
        A_bar, B_bar = discretize(A[:, None], B, dt[..., None], method)  # (3 n 1), (3 n h)
        assert_close(A_bar[..., 0], expected[method][0], what=f"{method} A_bar", dtype=dtype)
        assert_close(
            B_bar, expected[method][1].to(B_bar.dtype), what=f"{method} B_bar", dtype=dtype
        )


@pytest.mark.parametrize("kind", ["real", "complex"])
def test_zoh_is_exact_for_constant_input(kind):
    """h' = A h + B u, constant u: h(t) = exp(At) h0 + (exp(At) - 1)/A B u [TiM4Rec Eq. (1)-(2)]."""
    A = _A(kind, torch.float64)
    B = torch.tensor([1.0, -0.5, 2.0, 0.3], dtype=torch.float64)
    h0 = torch.tensor([1.0, 2.0, -1.0, 0.5], dtype=torch.float64).to(A.dtype)
    u = 0.7
    dts = torch.tensor([0.0, 1e-3, 0.05, 0.3, 1.0, 2.5], dtype=torch.float64)  # irregular steps
    h, t = h0, 0.0
    for dt in dts:
        A_bar, B_bar = discretize(A, B, dt, "zoh")
        h, t = A_bar * h + B_bar * u, t + dt
        exact = torch.exp(A * t) * h0 + (torch.exp(A * t) - 1) / A * B * u
        assert_close(h, exact, what=f"t={float(t):.3f}", dtype=torch.float64)


@pytest.mark.parametrize("kind", ["real", "complex"])
def test_mamba_approaches_zoh_linearly_in_dt(kind):
    """Mamba's B_bar = dt B [TiM4Rec Eq. (13)] vs ZOH's: relative error ~ |dt A| / 2 -> 0."""
    A = _A(kind, torch.float64)
    B = torch.ones(4, dtype=torch.float64)
    errors = []
    for dt in (1e-2, 1e-3, 1e-4):
        A_m, B_m = discretize(A, B, dt, "mamba")
        A_z, B_z = discretize(A, B, dt, "zoh")
        assert_close(A_m, A_z, what="A_bar mamba vs zoh", dtype=torch.float64)  # same exp(dt A)
        rel = ((B_m - B_z).abs() / B_z.abs()).max().item()
        print(f"dt={dt:g}: relative B_bar error {rel:.3e}, bound {dt * A.abs().max().item():.3e}")
        assert rel <= dt * A.abs().max().item()  # O(dt): |dt A| / 2 to leading order
        errors.append(rel)
    assert errors[1] < errors[0] / 5 and errors[2] < errors[1] / 5


def test_zoh_small_step_limit_and_zero_eigenvalue():
    A = torch.tensor([-1.0, 0.0, -3.0], dtype=torch.float64)
    B = torch.tensor([2.0, 1.0, -1.0], dtype=torch.float64)
    A_bar, B_bar = discretize(A, B, 0.5, "zoh")
    assert_close(
        B_bar[1],
        torch.tensor(0.5 * 1.0, dtype=torch.float64),
        what="A = 0: B_bar = dt B",
        dtype=torch.float64,
    )
    A_bar, B_bar = discretize(A, B, 1e-12, "zoh")
    assert_close(B_bar, 1e-12 * B, what="dt -> 0: B_bar -> dt B", atol=0, rtol=1e-11)
    assert_close(A_bar, torch.ones_like(A), what="dt -> 0: A_bar -> 1", dtype=torch.float64)


def test_phi1_series_and_direct_branches_agree():
    """Values and float64 autograd derivatives are continuous across the series radius |z| = 0.1."""
    z = torch.tensor([0.0, 1e-8, 0.0999, 0.1001, -0.0999, -0.1001, 1.0, -40.0], dtype=torch.float64)
    z.requires_grad_()
    (grad,) = torch.autograd.grad(phi1(z).sum(), z)
    zd = z.detach()
    big = zd.abs() > 0.5
    expected_val = torch.where(big, torch.expm1(zd) / zd, 1 + zd / 2 + zd**2 / 6 + zd**3 / 24)
    expected_grad = torch.where(
        big, (zd * torch.exp(zd) - torch.expm1(zd)) / zd**2, 0.5 + zd / 3 + zd**2 / 8 + zd**3 / 30
    )
    assert_close(phi1(zd), expected_val, what="phi1", atol=1e-6, rtol=0)  # series truncated at z^3
    assert_close(grad, expected_grad, what="phi1'", atol=1e-5, rtol=0)
    zc = torch.complex(zd, torch.full_like(zd, 0.05)).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: phi1(x), (zc,))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", ["real", "complex"])
@pytest.mark.parametrize("method", METHODS)
def test_extreme_steps_are_finite(dtype, kind, method):
    A = _A(kind, dtype).requires_grad_()
    B = torch.randn(4, dtype=dtype, requires_grad=True)
    dt = torch.tensor(EXTREME_DT, dtype=dtype)[:, None].requires_grad_()  # (3 1)
    A_bar, B_bar = discretize(A, B, dt, method)  # (3 n)
    for name, t in (("A_bar", A_bar), ("B_bar", B_bar)):
        assert torch.isfinite(torch.view_as_real(t) if t.is_complex() else t).all(), name
    loss = sum((torch.view_as_real(t) if t.is_complex() else t).sum() for t in (A_bar, B_bar))
    grads = torch.autograd.grad(loss, (A, B, dt))
    for name, g in zip(("A", "B", "dt"), grads):
        g = torch.view_as_real(g) if g.is_complex() else g
        print(f"{method} {kind} grad {name}: max |g| {g.abs().max().item():.3e}")
        assert torch.isfinite(g).all(), name
    if method in ("zoh", "mamba"):
        assert A_bar[2].abs().max() < 1e-30  # a decades-long gap forgets the state
        assert (A_bar[0] == 1).all()  # no time passed: the state is kept


def test_bad_arguments():
    A, B = -torch.ones(3), torch.ones(3)
    with pytest.raises(ValueError, match=r"zoh.*bilinear.*euler.*mamba"):
        discretize(A, B, 0.1, "rk4")
    with pytest.raises(ValueError, match="do not broadcast"):
        discretize(A, B, torch.ones(4), "zoh")
    with pytest.raises(ValueError, match="does not broadcast"):
        discretize(A, torch.ones(5), 0.1, "zoh")


def test_time_gap_to_dt_norms_on_unix_seconds():
    stamps = torch.tensor([[1_700_000_000, 1_700_000_060, 1_700_086_460, 2_646_000_000]])  # int64
    gap = stamps[:, 1:] - stamps[:, :-1]  # (1 3) int64: the difference first, then float
    raw = time_gap_to_dt(gap)
    assert raw.dtype == torch.get_default_dtype()
    assert_close(raw, torch.tensor([[60.0, 86400.0, 946_000_000 - 86460.0]]), atol=0, rtol=1e-7)
    assert_close(
        time_gap_to_dt(gap, "log1p", dtype=torch.float64),
        torch.log1p(gap.double()),
        what="log1p",
        dtype=torch.float64,
    )
    assert_close(
        time_gap_to_dt(gap, "scale", scale=60.0, dtype=torch.float64),
        gap.double() / 60,
        what="scale",
        dtype=torch.float64,
    )
    assert time_gap_to_dt(torch.tensor([1.5], dtype=torch.float64)).dtype == torch.float64
    assert time_gap_to_dt(torch.tensor([0, 0])).eq(0).all()  # duplicate timestamps: dt = 0


def test_time_gap_to_dt_errors():
    with pytest.raises(ValueError, match=">= 0"):
        time_gap_to_dt(torch.tensor([5, -1]))
    with pytest.raises(ValueError, match="NaN"):
        time_gap_to_dt(torch.tensor([float("nan")]))
    with pytest.raises(ValueError, match=r"raw.*log1p.*scale"):
        time_gap_to_dt(torch.tensor([1.0]), norm="minmax")
    with pytest.raises(ValueError, match="scale > 0"):
        time_gap_to_dt(torch.tensor([1.0]), norm="scale")
    with pytest.raises(ValueError, match="scale > 0"):
        time_gap_to_dt(torch.tensor([1.0]), norm="scale", scale=0.0)
    with pytest.raises(ValueError, match="only used with norm='scale'"):
        time_gap_to_dt(torch.tensor([1.0]), norm="log1p", scale=3.0)
