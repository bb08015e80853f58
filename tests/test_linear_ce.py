"""The blocked linear cross-entropy against ``F.cross_entropy(h @ W.T + b, y)``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ssmlab.layers.linear_ce import linear_cross_entropy, linear_cross_entropy_reference
from ssmlab.models import build_model


def _grads(fn, hidden, weight, target, bias=None, **kw):
    leaves = [t.detach().clone().requires_grad_() for t in (hidden, weight)]
    if bias is not None:
        leaves.append(bias.detach().clone().requires_grad_())
    loss = fn(*leaves[:2], target, *leaves[2:], **kw)
    (3.0 * loss).backward()  # a non-unit incoming gradient
    return loss.detach(), [leaf.grad for leaf in leaves]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("t,block", [(1, None), (37, 8), (64, 64), (100, 7), (300, None)])
def test_matches_reference_values_and_gradients(dtype, with_bias, t, block):
    g = torch.Generator().manual_seed(t)
    n, d = 53, 16
    hidden = torch.randn(t, d, generator=g, dtype=dtype)
    weight = torch.randn(n, d, generator=g, dtype=dtype)
    bias = torch.randn(n, generator=g, dtype=dtype) if with_bias else None
    target = torch.randint(0, n, (t,), generator=g)
    target[0] = n - 1  # the last class
    ref, ref_grads = _grads(linear_cross_entropy_reference, hidden, weight, target, bias)
    out, grads = _grads(linear_cross_entropy, hidden, weight, target, bias, block_rows=block)
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 0}
    assert out.dtype == dtype
    torch.testing.assert_close(out, ref, **tol)
    gtol = {"rtol": 1e-4, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-9, "atol": 1e-12}
    for got, want in zip(grads, ref_grads, strict=True):
        assert got.dtype == dtype
        torch.testing.assert_close(got, want, **gtol)


def test_large_logits_stay_finite():
    hidden = torch.full((4, 2), 100.0)
    weight = torch.tensor([[100.0, 0.0], [0.0, 100.0], [-100.0, 0.0]])
    target = torch.tensor([0, 1, 2, 0])
    ref, ref_grads = _grads(linear_cross_entropy_reference, hidden, weight, target)
    out, grads = _grads(linear_cross_entropy, hidden, weight, target, block_rows=3)
    torch.testing.assert_close(out, ref)
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want)
    assert torch.isfinite(out) and all(torch.isfinite(gr).all() for gr in grads)


def test_no_grad_path_and_bad_shapes():
    hidden, weight, target = torch.randn(5, 3), torch.randn(7, 3), torch.randint(0, 7, (5,))
    with torch.no_grad():
        torch.testing.assert_close(
            linear_cross_entropy(hidden, weight, target),
            linear_cross_entropy_reference(hidden, weight, target),
        )
    with pytest.raises(ValueError, match="hidden"):
        linear_cross_entropy(hidden, torch.randn(7, 4), target)
    with pytest.raises(ValueError, match="target"):
        linear_cross_entropy(hidden, weight, target[:3])
    with pytest.raises(ValueError, match="bias"):
        linear_cross_entropy(hidden, weight, target, torch.zeros(6))
    with pytest.raises(ValueError, match="at least one row"):
        linear_cross_entropy(hidden[:0], weight, target[:0])


@pytest.mark.parametrize("name", ["sasrec", "lrurec", "gru4rec"])
@pytest.mark.parametrize("objective", ["last", "all"])
def test_model_loss_equals_cross_entropy_of_scores(name, objective):
    """The models' CE (padding never a class) is the old ``F.cross_entropy(scores, y)``."""
    torch.manual_seed(0)
    model = build_model(name, 30, d_model=16, n_layers=1, max_len=6)
    model.eval()  # no dropout: both passes see the same network
    seq = torch.tensor([[3, 4, 5, 0, 0, 0], [7, 8, 9, 10, 11, 12]])
    lengths = torch.tensor([3, 6])
    batch = {"item_seq": seq, "item_seq_len": lengths, "time_seq": seq * 10}
    if objective == "last":
        batch["target"] = torch.tensor([1, 30])
    else:
        batch["targets"] = torch.cat([seq[:, 1:], torch.tensor([[0], [13]])], dim=1)
        batch["targets"][0, 2] = 6
    loss = model.calculate_loss(batch, objective)
    grads = torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)
    if objective == "last":
        hidden = model(seq, lengths, batch["time_seq"])
        ref = F.cross_entropy(model.scores(hidden), batch["target"])
    else:
        keep = batch["targets"] != 0
        ref = F.cross_entropy(model.scores(model.encode(batch)[keep]), batch["targets"][keep])
    ref_grads = torch.autograd.grad(ref, list(model.parameters()), allow_unused=True)
    torch.testing.assert_close(loss, ref)
    for got, want in zip(grads, ref_grads, strict=True):
        if want is None:
            assert got is None or not got.any()
        else:
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
