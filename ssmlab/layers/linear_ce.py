"""Cross-entropy of ``h @ W.T`` over all items without materializing the logits.

Every model ends in the same scoring step: the hidden state of each target position is scored
against every item embedding and trained with softmax cross-entropy over the full catalogue
(RecBole's ``CE`` loss). The naive form, :func:`linear_cross_entropy_reference`, writes a
(t, n) logits matrix, then its log-softmax, then the same two again in the backward pass: on
Amazon-Beauty (n = 12,101 items, 131,413 targets an epoch) that is GBs of memory traffic per
epoch for 64-dimensional dot products, so the step is memory-bound.

:func:`linear_cross_entropy` computes the same loss and gradients a block of rows at a time
(the idea of Liger's fused linear cross-entropy and of "Cut Cross-Entropy", Wijmans et al.
2024, here for the CPU): for a block of R rows the (R, n) logits fit in cache; the block's
softmax gives the loss, ``softmax - onehot`` gives both gradients (two small matmuls), and the
logits never leave the cache. The gradients are computed in the forward pass for a loss that is
the mean over rows and scaled by the incoming gradient in the backward pass, so no matmul is
done twice.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Rows per block: R * n * 4 bytes of logits should stay in the cache (~130 rows at n = 12k).
BLOCK_BYTES = 6 * 2**20


def linear_cross_entropy_reference(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    target: torch.Tensor,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """``F.cross_entropy(hidden @ weight.T + bias, target)``, the readable reference.

    Shapes: hidden (t, d), weight (n, d), target (t,) long in [0, n), bias (n,) or None
    -> scalar (mean over t).
    """
    return F.cross_entropy(F.linear(hidden, weight, bias), target)


def linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    target: torch.Tensor,
    bias: torch.Tensor | None = None,
    block_rows: int | None = None,
) -> torch.Tensor:
    """Mean cross-entropy of ``hidden @ weight.T + bias`` against ``target``, in row blocks.

    Same value and gradients (for ``hidden``, ``weight`` and ``bias``) as
    :func:`linear_cross_entropy_reference` to rounding; computed in float32 (float64 for
    float64 inputs) under any autocast. ``block_rows`` defaults to the rows whose logits
    fill ``BLOCK_BYTES``.

    Shapes: hidden (t, d), weight (n, d), target (t,) long in [0, n), bias (n,) or None
    -> scalar.
    """
    if hidden.dim() != 2 or weight.dim() != 2 or hidden.shape[1] != weight.shape[1]:
        raise ValueError(
            f"need hidden (t, d) and weight (n, d), got {tuple(hidden.shape)} and "
            f"{tuple(weight.shape)}"
        )
    if target.shape != hidden.shape[:1]:
        raise ValueError(f"target must be ({hidden.shape[0]},), got {tuple(target.shape)}")
    if bias is not None and bias.shape != weight.shape[:1]:
        raise ValueError(f"bias must be ({weight.shape[0]},), got {tuple(bias.shape)}")
    if hidden.shape[0] == 0:
        raise ValueError("linear_cross_entropy needs at least one row")
    if block_rows is None:
        block_rows = max(8, BLOCK_BYTES // (4 * weight.shape[0]))
    return _LinearCrossEntropy.apply(hidden, weight, target, bias, block_rows)


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, target, bias, block_rows):
        dtypes = (hidden.dtype, weight.dtype, None if bias is None else bias.dtype)
        compute = torch.promote_types(hidden.dtype, torch.float32)  # float64 stays float64
        h, w = hidden.to(compute), weight.to(compute)
        b = None if bias is None else bias.to(compute)
        t, n = h.shape[0], w.shape[0]
        need_grad = any(ctx.needs_input_grad[i] for i in (0, 1, 3))
        grad_h = torch.empty_like(h) if need_grad else None
        grad_w = torch.zeros_like(w) if need_grad else None
        grad_b = torch.zeros_like(b) if need_grad and b is not None else None
        loss = h.new_zeros(())
        logits = h.new_empty(min(block_rows, t), n)
        for start in range(0, t, block_rows):
            hb, tb = h[start : start + block_rows], target[start : start + block_rows]
            r = hb.shape[0]
            z = torch.mm(hb, w.T, out=logits[:r])  # (r n)
            if b is not None:
                z.add_(b)
            rows = torch.arange(r, device=z.device)
            picked = z[rows, tb]  # (r) logit of the target
            peak = z.amax(dim=1, keepdim=True)  # (r 1)
            z.sub_(peak).exp_()  # softmax numerators, in place
            total = z.sum(dim=1, keepdim=True)  # (r 1)
            loss += (peak.squeeze(1) + total.squeeze(1).log() - picked).sum()
            if need_grad:
                z.div_(total)  # softmax
                z[rows, tb] -= 1.0  # softmax - onehot = d(sum of losses)/d(logits)
                torch.mm(z, w, out=grad_h[start : start + r])
                grad_w.addmm_(z.T, hb)
                if grad_b is not None:
                    grad_b += z.sum(dim=0)
        ctx.save_for_backward(grad_h, grad_w, grad_b)
        ctx.scale, ctx.dtypes = 1.0 / t, dtypes
        return (loss / t).to(dtypes[0])

    @staticmethod
    def backward(ctx, grad_loss):
        g = grad_loss * ctx.scale
        grads = [
            (saved * g).to(dtype) if saved is not None and ctx.needs_input_grad[i] else None
            for i, saved, dtype in zip((0, 1, 3), ctx.saved_tensors, ctx.dtypes, strict=True)
        ]
        return grads[0], grads[1], None, grads[2], None
