"""ssd's mamba-ssm backend (Triton kernel) against the chunked torch path, on CUDA only."""

from __future__ import annotations

import pytest
import torch

from ssmlab.ssm import ssd, ssd_chunked
from ssmlab.ssm.backends import mamba_kernel

TOL = {torch.float32: dict(atol=2e-3, rtol=2e-3), torch.bfloat16: dict(atol=6e-2, rtol=6e-2)}


def cuda_inputs(dtype, b=2, seqlen=100, h=4, p=16, g=2, n=16):
    gen = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, generator=gen).cuda().to(dtype)

    inputs = dict(
        x=rand(b, seqlen, h, p),
        dt=(torch.rand(b, seqlen, h, generator=gen) * 0.2 + 0.01).cuda().to(dtype),
        A=-(torch.rand(h, generator=gen) + 0.5).cuda(),
        B=rand(b, seqlen, g, n),
        C=rand(b, seqlen, g, n),
        D=torch.randn(h, generator=gen).cuda(),
        initial_states=rand(b, h, p, n),
    )
    # two rows: 3 packed sequences (ids not starting at 0, one id coming back), and one sequence
    seq_idx = torch.tensor([[3] * 30 + [5] * 45 + [3] * 25, [0] * 100]).cuda()
    return inputs, seq_idx


def run(fn, inputs, seq_idx):
    leaves = {k: v.detach().clone().requires_grad_() for k, v in inputs.items()}
    y, final = fn(**leaves, chunk_size=32, seq_idx=seq_idx, return_final_states=True)
    gen = torch.Generator().manual_seed(1)
    wy = torch.randn(y.shape, generator=gen).cuda()
    wf = torch.randn(final.shape, generator=gen).cuda()
    ((y.float() * wy).sum() + (final.float() * wf).sum()).backward()
    return y.float(), final.float(), {k: v.grad.float() for k, v in leaves.items()}


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_mamba_backend_matches_chunked_torch(dtype):
    if mamba_kernel("mamba_chunk_scan_combined") is None:
        pytest.skip("mamba-ssm's mamba_chunk_scan_combined does not import")
    inputs, seq_idx = cuda_inputs(dtype)
    y, final, grads = run(lambda **k: ssd(**k, backend="mamba_ssm"), inputs, seq_idx)
    ref_inputs = {k: v.float() for k, v in inputs.items()}
    y_ref, final_ref, grads_ref = run(ssd_chunked, ref_inputs, seq_idx)
    checks = {"y": (y, y_ref), "final": (final, final_ref)}
    checks |= {f"d{k}": (grads[k], grads_ref[k]) for k in grads}
    for what, (got, ref) in checks.items():
        scale = ref.abs().max().clamp_min(1.0)
        diff = (got - ref).abs().max()
        print(f"{dtype} mamba vs torch {what}: max abs diff {diff:.3e} (scale {scale:.3e})")
        torch.testing.assert_close(got / scale, ref / scale, **TOL[dtype])
