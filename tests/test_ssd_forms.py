"""SSD ladder: recurrent == quadratic == chunked == ssd (torch), values, final states, gradients."""

from __future__ import annotations

import pytest
import torch
from conftest import assert_close

from ssmlab.ssm import ssd, ssd_chunked, ssd_quadratic, ssd_recurrent

FORMS = {
    "quadratic": ssd_quadratic,
    "chunked": ssd_chunked,
    "ssd_torch": lambda *a, **k: ssd(*a, **k, backend="torch"),
}
H, P, N = 4, 3, 5


def make_inputs(b, seqlen, g, dtype, d_kind=None, with_h0=False, seed=0):
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=gen, dtype=dtype)

    inputs = dict(
        x=rand(b, seqlen, H, P),
        dt=torch.rand(b, seqlen, H, generator=gen, dtype=dtype) * 0.5 + 0.01,
        A=-(torch.rand(H, generator=gen, dtype=dtype) + 0.2),
        B=rand(b, seqlen, g, N),
        C=rand(b, seqlen, g, N),
    )
    if d_kind == "h":
        inputs["D"] = rand(H)
    elif d_kind == "hp":
        inputs["D"] = rand(H, P)
    if with_h0:
        inputs["initial_states"] = rand(b, H, P, N)
    return inputs


def run_with_grads(fn, inputs, chunk_size, seq_idx=None, seed=1):
    """Call ``fn`` on detached clones; return (y, final, grads) for a fixed random loss."""
    leaves = {k: v.detach().clone().requires_grad_() for k, v in inputs.items()}
    x, dt, A, B, C = (leaves.pop(k) for k in ("x", "dt", "A", "B", "C"))
    y, final = fn(
        x, dt, A, B, C, chunk_size=chunk_size, seq_idx=seq_idx, return_final_states=True, **leaves
    )
    gen = torch.Generator().manual_seed(seed)
    wy = torch.randn(y.shape, generator=gen, dtype=y.dtype)
    wf = torch.randn(final.shape, generator=gen, dtype=y.dtype)
    loss = (y * wy).sum() + (final * wf).sum()
    names = ["x", "dt", "A", "B", "C", *leaves]
    grads = torch.autograd.grad(loss, [x, dt, A, B, C, *leaves.values()])
    return y.detach(), final.detach(), dict(zip(names, grads))


def check_forms(inputs, chunk_size, dtype, seq_idx=None):
    ref_y, ref_final, ref_grads = run_with_grads(ssd_recurrent, inputs, chunk_size, seq_idx)
    assert torch.isfinite(ref_y).all()
    for name, fn in FORMS.items():
        y, final, grads = run_with_grads(fn, inputs, chunk_size, seq_idx)
        assert y.shape == ref_y.shape and y.dtype == inputs["x"].dtype
        assert_close(y, ref_y, what=f"{name} y", dtype=dtype)
        assert_close(final, ref_final, what=f"{name} final states", dtype=dtype)
        for key, grad in grads.items():
            assert_close(grad, ref_grads[key], what=f"{name} d{key}", dtype=dtype)


@pytest.mark.parametrize("chunk_size", [16, 32])
@pytest.mark.parametrize("seqlen", [1, 5, 32, 50, 64, 100])
def test_forms_agree_float64_lengths(seqlen, chunk_size):
    inputs = make_inputs(2, seqlen, 2, torch.float64, d_kind="h", with_h0=True)
    check_forms(inputs, chunk_size, torch.float64)


@pytest.mark.parametrize("with_h0", [False, True])
@pytest.mark.parametrize("d_kind", [None, "h", "hp"])
@pytest.mark.parametrize("g", [1, 2])
def test_forms_agree_groups_and_skip(g, d_kind, with_h0):
    inputs = make_inputs(2, 37, g, torch.float64, d_kind=d_kind, with_h0=with_h0)
    check_forms(inputs, 16, torch.float64)


@pytest.mark.parametrize("seqlen", [5, 64, 100])
def test_forms_agree_float32(seqlen):
    inputs = make_inputs(2, seqlen, 2, torch.float32, d_kind="hp", with_h0=True)
    check_forms(inputs, 32, torch.float32)


@pytest.mark.parametrize("seqlen", [1, 7, 16, 17, 50])
def test_chunked_output_only_matches_recurrent(seqlen):
    """No state in or out (the models' call): a history that fits one chunk takes the diagonal
    block alone; its outputs and the gradients of every input equal the recurrence."""
    inputs = make_inputs(2, seqlen, 2, torch.float64, d_kind="h")
    gen = torch.Generator().manual_seed(3)
    w = torch.randn(2, seqlen, H, P, generator=gen, dtype=torch.float64)
    results = []
    for fn in (ssd_recurrent, ssd_chunked, FORMS["ssd_torch"]):
        leaves = {k: v.detach().clone().requires_grad_() for k, v in inputs.items()}
        y = fn(**leaves, chunk_size=16)
        grads = torch.autograd.grad((y * w).sum(), list(leaves.values()))
        results.append((y.detach(), grads))
    (ref_y, ref_grads), *others = results
    for y, grads in others:
        assert_close(y, ref_y, what="y", dtype=torch.float64)
        for key, grad, ref in zip(inputs, grads, ref_grads):
            assert_close(grad, ref, what=f"d{key}", dtype=torch.float64)


def test_forms_agree_with_seq_idx():
    """Packed rows (including a sequence starting exactly at a chunk boundary) in every form."""
    inputs = make_inputs(2, 70, 1, torch.float64, d_kind="h", with_h0=True)
    seq_idx = torch.tensor([[0] * 16 + [1] * 16 + [2] * 3 + [3] * 35, [7] * 40 + [3] * 30])
    check_forms(inputs, 16, torch.float64, seq_idx=seq_idx)


def test_dtype_cast_back_and_no_final_states():
    ref_inputs = make_inputs(1, 20, 1, torch.float32)
    inputs = {k: v.to(torch.bfloat16) for k, v in ref_inputs.items()}
    for fn in (ssd_recurrent, ssd_quadratic, ssd_chunked):
        y = fn(**inputs, chunk_size=8)
        assert isinstance(y, torch.Tensor) and y.dtype == torch.bfloat16
        assert y.shape == (1, 20, H, P)
    ref = ssd_recurrent(**ref_inputs)
    diff = (y.float() - ref).abs().max().item()
    print(f"bf16 chunked vs fp32 recurrent: max abs diff {diff:.3e}")
    assert diff < 0.1 * ref.abs().max().item()


def test_ssd_default_backend_on_cpu_is_chunked():
    inputs = make_inputs(2, 30, 2, torch.float64, d_kind="h")
    y = ssd(**inputs, chunk_size=8)
    ref = ssd_chunked(**inputs, chunk_size=8)
    assert_close(y, ref, what="ssd() vs ssd_chunked", dtype=torch.float64)
    with pytest.raises(RuntimeError, match="CUDA"):
        ssd(**inputs, backend="mamba_ssm")
    with pytest.raises(ValueError, match="backend"):
        ssd(**inputs, backend="triton")


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(x=torch.zeros(2, 8, 4)), "x must"),
        (dict(dt=torch.zeros(2, 8, 3)), "dt must"),
        (dict(A=torch.zeros(3)), "A must"),
        (dict(B=torch.zeros(2, 8, 3, 5), C=torch.zeros(2, 8, 3, 5)), "must divide"),
        (dict(C=torch.zeros(2, 8, 1, 4)), "C must"),
        (dict(D=torch.zeros(4, 2)), "D must"),
        (dict(seq_idx=torch.zeros(2, 7, dtype=torch.long)), "seq_idx must"),
        (dict(seq_idx=torch.zeros(2, 8)), "integer"),
        (dict(initial_states=torch.zeros(2, 4, 3, 4)), "initial_states must"),
        (dict(chunk_size=0), "chunk_size"),
        (dict(x=torch.zeros(2, 0, 4, 3)), "l >= 1"),
    ],
)
def test_bad_input_raises_clear_errors(change, match):
    inputs = make_inputs(2, 8, 1, torch.float32)
    inputs.update(change)
    for fn in (ssd_recurrent, ssd_quadratic, ssd_chunked, ssd):
        with pytest.raises(ValueError, match=match):
            fn(**inputs)
