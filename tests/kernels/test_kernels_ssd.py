"""mamba-ssm's Triton SSD kernel (``mamba_chunk_scan_combined``) against our SSD forms.

Run on CPU tensors under Triton's interpreter (harness: ``conftest.py``). Every case runs one
forward and one backward pass through the kernel and through ``ssd_chunked`` (float32), and
compares y, the final state and the gradients of x, dt, A, B, C, D and initial_states, each
relative to the largest entry of the reference (``close``). The kernel agrees with our forms to
float32 round-off on every case below: lengths on and off the chunk grid and shorter than a
chunk, a chunk size that is not a power of two, packed rows (``seq_idx``, including changes on a
chunk boundary and one-item sequences), initial states, D of shape (h,) and (h, p), and decays
large enough that masked segment sums overflow exp in float32.

Where the kernel and our semantics differ, a test below documents it and ``ssd`` handles it:
- float64 inputs: the kernel computes in float32 and returns a float32 final state; ``ssd``
  takes the torch path for float64 (``test_float64_takes_the_torch_path``).
- the kernel's final state may come back in float32; ``ssd`` casts it to x's dtype
  (``test_float16_returns_x_dtype``).
- mamba-ssm's own torch reference ``ssd_chunk_scan_combined_ref`` has NaN gradients once a
  masked segment sum overflows (exp(+large) * 0); ours and the kernel stay finite
  (``test_large_decay_finite_where_mamba_reference_is_nan``).
- ``z``, ``dt_bias`` and ``dt_softplus`` are kernel options our ``ssd`` does not take (our
  blocks apply softplus and the gate themselves): ``test_fused_gate_and_softplus`` checks that
  the kernel's fused options equal our composition, so fusing them would be safe.
Not checked here: bf16 (the interpreter does not emulate it faithfully; a GPU test does).
float16 is, forward only, to float16 round-off.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ssmlab.ssm import backends, ssd, ssd_bidirectional, ssd_chunked, ssd_recurrent

RTOL = 2e-5  # float32 round-off, relative to the largest reference entry
B_, H, P, G, N = 2, 4, 4, 2, 4  # batch, heads, head dim, groups (2 heads each), state size


def make_inputs(seqlen, seed=0, d_shape=(H,), dt_max=0.2, a_max=1.5, initial=True):
    """Random SSD inputs (b, l, h, p) etc.

    dt in [0.01, 0.01 + dt_max], A in -[0.5, 0.5 + a_max].
    """
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=gen)

    inputs = {
        "x": rand(B_, seqlen, H, P),
        "dt": torch.rand(B_, seqlen, H, generator=gen) * dt_max + 0.01,
        "A": -(torch.rand(H, generator=gen) * a_max + 0.5),
        "B": rand(B_, seqlen, G, N),
        "C": rand(B_, seqlen, G, N),
        "D": None if d_shape is None else rand(*d_shape),
    }
    if initial:
        inputs["initial_states"] = rand(B_, H, P, N)
    return inputs


def packed(seqlen, cuts):
    """seq_idx (2, l): row 0 changes at ``cuts`` (ids not starting at 0), row 1 is one sequence."""
    seq_idx = torch.full((2, seqlen), 4)
    for k, cut in enumerate(cuts):
        seq_idx[0, cut:] = 7 + k
    return seq_idx


def forward_backward(fn, inputs, **kwargs):
    """y, final state and the gradients of every tensor input for a fixed random cotangent."""
    leaves = {k: v.clone().requires_grad_() for k, v in inputs.items() if v is not None}
    fixed = {k: v for k, v in inputs.items() if v is None}
    y, final = fn(**leaves, **fixed, **kwargs, return_final_states=True)
    gen = torch.Generator().manual_seed(1)
    loss = (y * torch.randn(y.shape, generator=gen)).sum()
    (loss + (final * torch.randn(final.shape, generator=gen)).sum()).backward()
    return {"y": y.detach(), "final": final.detach()} | {f"d{k}": v.grad for k, v in leaves.items()}


def kernel_ssd(**kwargs):
    return ssd(**kwargs, backend="mamba_ssm")


def close(got: dict, ref: dict, rtol=RTOL, what=""):
    """Every entry of ``got`` within rtol * max|ref| of ``ref``; prints the relative errors."""
    assert got.keys() == ref.keys()
    errors = {}
    for name, expected in ref.items():
        assert torch.isfinite(got[name]).all(), f"{what} {name}: non-finite values"
        scale = expected.abs().max().clamp_min(1e-12)
        errors[name] = ((got[name] - expected).abs().max() / scale).item()
    print(what, " ".join(f"{k} {v:.1e}" for k, v in errors.items()))
    bad = {k: v for k, v in errors.items() if v > rtol}
    assert not bad, f"{what}: relative error above {rtol:.0e}: {bad}"


CASES = {
    # name: (length, chunk_size, seq_idx cuts or None, D shape, initial states)
    "on_grid_plain": (64, 32, None, None, False),
    "on_grid_packed_all": (64, 32, [32, 33, 50], (H,), True),  # a cut on the chunk edge, 1 item
    "off_grid_packed_Dhp": (45, 16, [5, 20], (H, P), True),
    "shorter_than_chunk": (5, 32, [2], (H,), True),
    "one_position": (1, 16, None, (H,), True),
    "chunk_not_power_of_two": (30, 12, [12, 13], (H,), True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_kernel_matches_chunked(case):
    seqlen, chunk, cuts, d_shape, initial = CASES[case]
    inputs = make_inputs(seqlen, d_shape=d_shape, initial=initial)
    kwargs = {"chunk_size": chunk, "seq_idx": None if cuts is None else packed(seqlen, cuts)}
    got = forward_backward(kernel_ssd, inputs, **kwargs)
    close(got, forward_backward(ssd_chunked, inputs, **kwargs), what=f"{case} kernel vs chunked")


def test_kernel_matches_recurrent():
    """The ground-truth rung: the step-by-step recurrence, packed, off the chunk grid."""
    inputs = make_inputs(40)
    kwargs = {"chunk_size": 16, "seq_idx": packed(40, [16, 29])}
    got = forward_backward(kernel_ssd, inputs, **kwargs)
    close(got, forward_backward(ssd_recurrent, inputs, **kwargs), what="kernel vs recurrent")


def test_fused_gate_and_softplus():
    """The kernel's z, dt_bias, dt_softplus equal (ssd(x, softplus(dt + bias)) + D x) * silu(z)."""
    kernel = backends.mamba_kernel("mamba_chunk_scan_combined")
    inputs = make_inputs(40, initial=False)
    gen = torch.Generator().manual_seed(2)
    inputs["dt"] = torch.randn(B_, 40, H, generator=gen)  # raw, before softplus
    inputs["z"] = torch.randn(B_, 40, H, P, generator=gen)
    inputs["dt_bias"] = torch.randn(H, generator=gen)

    def fused(x, dt, A, B, C, D, z, dt_bias, **kw):
        return kernel(x, dt, A, B, C, D=D, z=z, dt_bias=dt_bias, dt_softplus=True, **kw)

    def composed(x, dt, A, B, C, D, z, dt_bias, **kw):
        y, final = ssd_chunked(x, F.softplus(dt + dt_bias), A, B, C, D=D, **kw)
        return y * F.silu(z), final

    got = forward_backward(fused, inputs, chunk_size=16)
    close(got, forward_backward(composed, inputs, chunk_size=16), what="fused z/softplus")


def test_large_decay_finite_where_mamba_reference_is_nan():
    """SSDBlock's chunk 256 with dt * A down to -16 per step: masked sums reach -4000.

    exp(-segment sum) overflows float32 in the masked (upper) triangle. The kernel and ours
    mask before it can reach a gradient; mamba-ssm's torch reference ``ssd_chunk_scan_combined_ref``
    builds the mask as exp(cumsum differences) and its gradients are NaN (inf * 0).
    """
    from mamba_ssm.ops.triton.ssd_combined import ssd_chunk_scan_combined_ref

    inputs = make_inputs(256, d_shape=(H,), dt_max=1.0, a_max=15.0, initial=False)
    got = forward_backward(kernel_ssd, inputs, chunk_size=256)
    close(got, forward_backward(ssd_chunked, inputs, chunk_size=256), 1e-4, "large decay")

    leaves = {k: v.clone().requires_grad_() for k, v in inputs.items() if v is not None}
    ref = ssd_chunk_scan_combined_ref(**leaves, chunk_size=256)
    close({"y": ref.detach()}, {"y": got["y"]}, 1e-4, "mamba reference forward")
    ref.sum().backward()
    nan_grads = sorted(k for k, v in leaves.items() if torch.isnan(v.grad).any())
    print("mamba-ssm reference: NaN gradients of", nan_grads)
    assert nan_grads == ["A", "B", "C", "dt"]


def test_float64_takes_the_torch_path():
    """The kernel computes in float32; ssd keeps float64 inputs on the exact torch path."""
    kernel = backends.mamba_kernel("mamba_chunk_scan_combined")
    inputs = {
        k: v.double()
        for k, v in make_inputs(40, d_shape=None, initial=False).items()
        if v is not None
    }
    y_kernel, final_kernel = kernel(**inputs, chunk_size=16, return_final_states=True)
    y_ref, final_ref = ssd_chunked(**inputs, chunk_size=16, return_final_states=True)
    error = ((y_kernel - y_ref).abs().max() / y_ref.abs().max()).item()
    print(f"kernel on float64 inputs: relative error {error:.1e}, final state {final_kernel.dtype}")
    assert 1e-10 < error < RTOL  # float32 round-off, not float64
    y, final = ssd(**inputs, chunk_size=16, return_final_states=True, backend="mamba_ssm")
    assert final.dtype == torch.float64
    y_torch, final_torch = ssd(**inputs, chunk_size=16, return_final_states=True, backend="torch")
    torch.testing.assert_close(y, y_torch, rtol=0, atol=0)  # the torch path itself
    torch.testing.assert_close(final, final_torch, rtol=0, atol=0)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-14)  # one chunk vs chunks of 16
    torch.testing.assert_close(final, final_ref, rtol=1e-12, atol=1e-14)


def test_float16_returns_x_dtype():
    """float16 through the kernel: y and the final state in x's dtype, near the float32 path."""
    inputs = make_inputs(20, d_shape=None)
    half = {k: v if k == "A" else v.half() for k, v in inputs.items() if v is not None}
    y, final = ssd(**half, chunk_size=8, return_final_states=True, backend="mamba_ssm")
    assert y.dtype == final.dtype == torch.float16
    ref = ssd_chunked(
        **{k: v.float() for k, v in half.items()}, chunk_size=8, return_final_states=True
    )
    close({"y": y.float(), "final": final.float()}, {"y": ref[0], "final": ref[1]}, 2e-3, "fp16")


def test_dispatch(monkeypatch, kernel_calls):
    """SSMLAB_BACKEND=mamba_ssm sends CPU tensors to the kernel only while interpreting."""
    inputs = make_inputs(20, initial=False)
    seq_idx = packed(20, [7])
    y_torch = ssd(**inputs, chunk_size=8, seq_idx=seq_idx)  # default on CPU: torch
    assert kernel_calls == [] and backends.backend() == "torch"
    monkeypatch.setenv("SSMLAB_BACKEND", "mamba_ssm")
    y_kernel = ssd(**inputs, chunk_size=8, seq_idx=seq_idx)
    assert kernel_calls == ["mamba_chunk_scan_combined"]
    close({"y": y_kernel}, {"y": y_torch}, what="SSMLAB_BACKEND=mamba_ssm")
    fwd, bwd = ssd_bidirectional(**inputs, seq_idx=seq_idx, chunk_size=8)
    assert len(kernel_calls) == 3
    ref = ssd_bidirectional(**inputs, seq_idx=seq_idx, chunk_size=8, backend="torch")
    close({"fwd": fwd, "bwd": bwd}, {"fwd": ref[0], "bwd": ref[1]}, what="bidirectional")
    monkeypatch.delenv("TRITON_INTERPRET")
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        ssd(**inputs, chunk_size=8)  # forced, but CPU tensors without the interpreter
    monkeypatch.delenv("SSMLAB_BACKEND")
    with pytest.raises(RuntimeError, match="CUDA tensors"):
        ssd(**inputs, chunk_size=8, backend="mamba_ssm")
    assert len(kernel_calls) == 3
