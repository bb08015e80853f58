"""The SSD mask L (1-SS, block-diagonal when packed), the explicit Eq. (7)-(8) form, extreme dt."""

from __future__ import annotations

import pytest
import torch

from ssmlab.ssm import ssd, ssd_chunked, ssd_mask, ssd_quadratic, ssd_recurrent


def random_dt_A(b, seqlen, h, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    dt = torch.rand(b, seqlen, h, generator=gen, dtype=dtype) * 0.3 + 0.01
    A = -(torch.rand(h, generator=gen, dtype=dtype) + 0.2)
    return dt, A


def explicit_mask(dt, A):
    """L[i, j] = prod_{k=j+1..i} exp(dt_k A) for j <= i, written as loops (one sequence)."""
    b, seqlen, h = dt.shape
    L = torch.zeros(b, h, seqlen, seqlen, dtype=dt.dtype)
    for i in range(seqlen):
        for j in range(i + 1):
            prod = torch.ones(b, h, dtype=dt.dtype)
            for k in range(j + 1, i + 1):
                prod = prod * torch.exp(dt[:, k] * A)
            L[:, :, i, j] = prod
    return L


def test_mask_equals_explicit_product_and_is_lower_triangular():
    dt, A = random_dt_A(2, 12, 3)
    L = ssd_mask(dt, A)
    ref = explicit_mask(dt, A)
    diff = (L - ref).abs().max().item()
    print(f"ssd_mask vs explicit product: max abs diff {diff:.3e}")
    torch.testing.assert_close(L, ref, atol=1e-12, rtol=1e-12)
    assert L.shape == (2, 3, 12, 12)
    assert (L.triu(diagonal=1) == 0).all()
    assert (L.diagonal(dim1=-2, dim2=-1) == 1).all()


def test_mask_is_block_diagonal_across_sequences():
    dt, A = random_dt_A(1, 15, 2)
    seq_idx = torch.tensor([[4] * 5 + [9] * 6 + [4] * 4])  # a value may come back: still new
    L = ssd_mask(dt, A, seq_idx=seq_idx)
    bounds = [(0, 5), (5, 11), (11, 15)]
    expected = torch.zeros_like(L)
    for s, e in bounds:
        expected[..., s:e, s:e] = explicit_mask(dt[:, s:e], A)
    diff = (L - expected).abs().max().item()
    print(f"packed ssd_mask vs per-sequence blocks: max abs diff {diff:.3e}")
    torch.testing.assert_close(L, expected, atol=1e-12, rtol=1e-12)
    assert (L[..., 5:, :5] == 0).all() and (L[..., 11:, 5:11] == 0).all()


@pytest.mark.parametrize("packed", [False, True])
def test_mask_is_one_semiseparable(packed):
    """Every block taken on or below the diagonal (rows >= i0, columns <= i0) has rank <= 1."""
    seqlen = 16
    dt, A = random_dt_A(1, seqlen, 2)
    seq_idx = torch.tensor([[0] * 6 + [1] * 10]) if packed else None
    L = ssd_mask(dt, A, seq_idx=seq_idx)[0]  # (h l l)
    gen = torch.Generator().manual_seed(3)
    blocks = [
        (i0, seqlen, 0, i0 + 1) for i0 in range(seqlen)
    ]  # the largest block for each split point
    for _ in range(30):
        i0 = int(torch.randint(0, seqlen, (1,), generator=gen))
        i1 = int(torch.randint(i0 + 1, seqlen + 1, (1,), generator=gen))
        j1 = int(torch.randint(1, i0 + 2, (1,), generator=gen))
        j0 = int(torch.randint(0, j1, (1,), generator=gen))
        blocks.append((i0, i1, j0, j1))
    worst = 0.0
    for i0, i1, j0, j1 in blocks:
        sv = torch.linalg.svdvals(L[:, i0:i1, j0:j1])  # (h k)
        if sv.shape[-1] > 1:
            ratio = (sv[:, 1] / sv[:, 0].clamp_min(1e-300)).max().item()
            worst = max(worst, ratio)
            ranks = torch.linalg.matrix_rank(L[:, i0:i1, j0:j1], rtol=1e-10)
            assert (ranks <= 1).all(), (i0, i1, j0, j1, ranks)
    print(f"largest sigma_2 / sigma_1 over {len(blocks)} lower blocks: {worst:.3e}")
    assert worst < 1e-10
    # the full lower triangle is not rank 1 (sanity: the check can fail)
    assert torch.linalg.matrix_rank(L[0], rtol=1e-10) > 1


@pytest.mark.parametrize("g", [1, 2])
def test_quadratic_equals_explicit_masked_attention(g):
    """y = (L o C B^T)(dt x) + D x, written out [TiM4Rec Eq. (7)-(8), (20)]."""
    b, seqlen, h, p, n = 2, 11, 4, 3, 5
    dt, A = random_dt_A(b, seqlen, h)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(b, seqlen, h, p, generator=gen, dtype=torch.float64)
    B = torch.randn(b, seqlen, g, n, generator=gen, dtype=torch.float64)
    C = torch.randn(b, seqlen, g, n, generator=gen, dtype=torch.float64)
    D = torch.randn(h, generator=gen, dtype=torch.float64)
    group = torch.arange(h) // (h // g)  # head i reads group i // (h // g)
    L = explicit_mask(dt, A)  # (b h l s)
    CBt = torch.einsum("blhn,bshn->bhls", C[:, :, group], B[:, :, group])
    M = L * CBt
    y_ref = torch.einsum("bhls,bshp->blhp", M, x * dt[..., None]) + D[:, None] * x
    y = ssd_quadratic(x, dt, A, B, C, D=D)
    diff = (y - y_ref).abs().max().item()
    print(f"ssd_quadratic vs explicit M X: max abs diff {diff:.3e}")
    torch.testing.assert_close(y, y_ref, atol=1e-12, rtol=1e-12)


def extreme_inputs(seqlen, dt_value=None, seed=0):
    gen = torch.Generator().manual_seed(seed)
    h, p, n = 2, 3, 4
    if dt_value is None:  # spans 1e-12 .. 1e3 at random
        dt = torch.exp(torch.empty(1, seqlen, h).uniform_(-27.6, 6.9, generator=gen))
    else:
        dt = torch.full((1, seqlen, h), dt_value)
    return dict(
        x=torch.randn(1, seqlen, h, p, generator=gen),
        dt=dt,
        A=-torch.ones(h),
        B=torch.randn(1, seqlen, 1, n, generator=gen),
        C=torch.randn(1, seqlen, 1, n, generator=gen),
    )


@pytest.mark.parametrize("seqlen", [64, 256])
@pytest.mark.parametrize("dt_value", [1e3, 1e-12, None])
def test_extreme_dt_finite_values_and_gradients(dt_value, seqlen):
    forms = {"chunked": ssd_chunked, "quadratic": ssd_quadratic, "ssd": ssd}
    if seqlen == 64:
        forms["recurrent"] = ssd_recurrent
    results = {}
    for name, fn in forms.items():
        leaves = {
            k: v.clone().requires_grad_() for k, v in extreme_inputs(seqlen, dt_value).items()
        }
        y, final = fn(**leaves, chunk_size=32, return_final_states=True)
        y.square().mean().backward()
        bad = [k for k, v in leaves.items() if not torch.isfinite(v.grad).all()]
        print(f"{name}: |y|max {y.abs().max().item():.3e}, non-finite grads: {bad}")
        assert torch.isfinite(y).all() and torch.isfinite(final).all()
        assert not bad
        results[name] = y.detach()
    ref = results["chunked"]
    for name, y in results.items():
        rel = ((y - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()
        print(f"{name} vs chunked: max rel diff {rel:.3e}")
        assert rel < 1e-4


def test_mask_gradients_finite_for_large_dt():
    dt = torch.full((1, 256, 2), 50.0, requires_grad=True)
    A = torch.tensor([-1.0, -3.0], requires_grad=True)
    L = ssd_mask(dt, A, seq_idx=torch.tensor([[0] * 100 + [1] * 156]))
    L.sum().backward()
    print(f"mask sum {L.sum().item():.3e}; grad dt finite {torch.isfinite(dt.grad).all().item()}")
    assert (
        torch.isfinite(L).all() and torch.isfinite(dt.grad).all() and torch.isfinite(A.grad).all()
    )
    assert L.sum().item() == pytest.approx(2 * 256)  # only the unit diagonal survives
    # sanity: the naive exp(cumsum_i - cumsum_j) mask does give NaN gradients on these inputs
    dt_naive = dt.detach().clone().requires_grad_()
    cs = torch.cumsum(dt_naive * A.detach(), dim=1).transpose(1, 2)  # (b h l)
    lower = torch.ones(256, 256, dtype=torch.bool).tril()
    torch.where(lower, torch.exp(cs[..., :, None] - cs[..., None, :]), 0.0).sum().backward()
    assert torch.isnan(dt_naive.grad).any()


@pytest.mark.parametrize(
    "dt, A, match",
    [(torch.ones(2, 3), torch.ones(3), "dt must"), (torch.ones(1, 2, 3), -torch.ones(2), "A must")],
)
def test_mask_bad_input(dt, A, match):
    with pytest.raises(ValueError, match=match):
        ssd_mask(dt, A)
