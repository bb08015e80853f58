"""Our ``GatedRMSNorm`` against mamba-ssm's Triton gated RMSNorm (``layernorm_gated.rmsnorm_fn``).

Our blocks compute the gated RMSNorm in torch on every device (``ssmlab.layers.norm``); the
only Triton kernel they call on CUDA is the SSD scan (``test_kernels_ssd.py``). This checks
that our norm is the map of mamba-ssm's ``RMSNormGated`` kernel (what Mamba2 fuses on a GPU):
y, and the gradients of y, z and the weight, with the gate after the norm (Mamba2's default,
ours in ``SSDBlock``) and before it, with and without groups, and without z.
"""

from __future__ import annotations

import pytest
import torch

from ssmlab.layers.norm import GatedRMSNorm

RTOL = 2e-5  # float32 round-off, relative to the largest reference entry
D = 32


@pytest.mark.parametrize(
    "norm_before_gate, group_size, gated",
    [(False, None, True), (True, None, True), (False, 8, True), (True, 16, False)],
)
def test_gated_rmsnorm_matches_triton_kernel(norm_before_gate, group_size, gated):
    from mamba_ssm.ops.triton.layernorm_gated import rmsnorm_fn

    gen = torch.Generator().manual_seed(0)
    norm = GatedRMSNorm(D, eps=1e-5, norm_before_gate=norm_before_gate, group_size=group_size)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(D, generator=gen))
    y = torch.randn(3, 7, D, generator=gen) * 3
    z = torch.randn(3, 7, D, generator=gen) if gated else None
    cotangent = torch.randn(3, 7, D, generator=gen)

    def run(fn):
        leaves = [t.detach().clone().requires_grad_() for t in (y, z, norm.weight) if t is not None]
        out = fn(*leaves)
        (out * cotangent).sum().backward()
        return [out.detach()] + [t.grad for t in leaves]

    def ours(y, *rest):
        z, weight = rest if gated else (None, rest[0])
        return torch.func.functional_call(norm, {"weight": weight}, (y, z))

    def kernel(y, *rest):
        z, weight = rest if gated else (None, rest[0])
        return rmsnorm_fn(
            y, weight, None, z=z, eps=1e-5, group_size=group_size, norm_before_gate=norm_before_gate
        )

    names = ["y", "dy", "dz", "dweight"] if gated else ["y", "dy", "dweight"]
    for name, got, ref in zip(names, run(kernel), run(ours), strict=True):
        error = ((got - ref).abs().max() / ref.abs().max()).item()
        print(f"gated RMSNorm {norm_before_gate=} {group_size=} {name}: {error:.1e}")
        assert error < RTOL, f"{name}: relative error {error:.1e}"
