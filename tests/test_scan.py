"""linear_scan: the parallel (odd-even) path equals the sequential loop, values and grads."""

from __future__ import annotations

import pytest
import torch
from conftest import assert_close

from ssmlab.ssm.scan import linear_scan, linear_scan_parallel, linear_scan_ref


def _inputs(l, dtype, a_shape_last=3):
    a = 0.95 * torch.randn(2, l, a_shape_last, 1 if a_shape_last == 1 else 2, dtype=dtype)
    if l > 2:
        a[:, ::3] = 0  # zeros in a: exact resets, no division anywhere
    b = torch.randn(2, l, 3, 2, dtype=dtype)
    h0 = torch.randn(2, 3, 2, dtype=dtype)
    return a, b, h0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.complex64, torch.complex128])
@pytest.mark.parametrize("l", [1, 7, 64, 100])
@pytest.mark.parametrize("with_h0", [False, True])
def test_parallel_matches_ref_values_and_grads(dtype, l, with_h0):
    a, b, h0 = _inputs(l, dtype)
    h0 = h0 if with_h0 else None
    leaves_ref = [t.detach().clone().requires_grad_() for t in (a, b) + ((h0,) if with_h0 else ())]
    leaves_par = [t.detach().clone().requires_grad_() for t in leaves_ref]
    out_ref = linear_scan_ref(*leaves_ref)
    out_par = linear_scan_parallel(*leaves_par)
    assert_close(out_par, out_ref, what="h", dtype=dtype)
    grad_out = torch.randn_like(out_ref)
    out_ref.backward(grad_out)
    out_par.backward(grad_out)
    for name, x_ref, x_par in zip(("a", "b", "h0"), leaves_ref, leaves_par):
        assert_close(x_par.grad, x_ref.grad, what=f"grad {name}", dtype=dtype)


@pytest.mark.parametrize("l", [2, 3, 5, 8, 9, 33])
def test_odd_and_even_lengths_and_methods(l):
    a, b, h0 = _inputs(l, torch.float64)
    expected = linear_scan_ref(a, b, h0)
    assert_close(linear_scan_parallel(a, b, h0), expected, what="parallel", dtype=torch.float64)
    assert_close(linear_scan(a, b, h0), expected, what="linear_scan", dtype=torch.float64)
    assert_close(
        linear_scan(a, b, h0, method="sequential"), expected, what="sequential", dtype=torch.float64
    )


def test_gradcheck_and_double_backward():
    """The custom backward (a reverse scan) against finite differences, complex, with h0."""
    small = (
        torch.randn(1, 5, 2, dtype=torch.complex128, requires_grad=True),
        torch.randn(1, 5, 2, dtype=torch.complex128, requires_grad=True),
        torch.randn(1, 2, dtype=torch.complex128, requires_grad=True),
    )
    assert torch.autograd.gradcheck(linear_scan_parallel, small)
    assert torch.autograd.gradgradcheck(linear_scan_parallel, small)


def test_broadcast_a_and_mixed_dtypes():
    a = 0.9 * torch.rand(2, 40, 1, 1, dtype=torch.float64)  # one decay shared by all channels
    b = torch.randn(2, 40, 3, 2, dtype=torch.complex128)
    out = linear_scan(a, b)
    assert out.shape == b.shape and out.dtype == torch.complex128
    assert_close(out, linear_scan_ref(a.expand(b.shape), b), dtype=torch.complex128)


def test_recurrence_definition():
    a = torch.tensor([[0.5, 0.0, 2.0]])
    b = torch.tensor([[1.0, 3.0, 1.0]])
    out = linear_scan(a, b, h0=torch.tensor([4.0]))
    expected = torch.tensor([[0.5 * 4 + 1, 0.0 * 3 + 3, 2.0 * 3 + 1]])
    assert_close(out, expected, dtype=torch.float32)


def test_empty_sequence():
    b = torch.randn(2, 0, 3)
    assert linear_scan(b, b).shape == (2, 0, 3)
    assert linear_scan_ref(b, b).shape == (2, 0, 3)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="must broadcast to b"):
        linear_scan(torch.randn(2, 5, 4), torch.randn(2, 5, 3))
    with pytest.raises(ValueError, match="h0"):
        linear_scan(torch.randn(2, 5, 3), torch.randn(2, 5, 3), h0=torch.randn(2, 4))
    with pytest.raises(ValueError, match=r"\(b, l, \.\.\.\)"):
        linear_scan_ref(torch.randn(5), torch.randn(5))
    with pytest.raises(ValueError, match="method"):
        linear_scan(torch.randn(1, 5), torch.randn(1, 5), method="blocked")
