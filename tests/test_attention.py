"""Attention layers of the Transformer baselines: masks, TiSASRec intervals, fast = reference."""

from __future__ import annotations

import pytest
import torch

from ssmlab.layers import dropout as dropout_module
from ssmlab.layers.attention import (
    IntervalTransformerBlock,
    MultiHeadAttention,
    TiSASRecBlock,
    TransformerBlock,
    attention_mask,
    causal_mask,
    clipped_interval_matrix,
    scaled_dot_attention_ref,
    time_interval_attention,
    time_interval_attention_ref,
    tisasrec_interval_matrix,
)


def test_causal_mask_is_lower_triangular():
    expected = torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=torch.bool)
    assert torch.equal(causal_mask(3), expected)
    assert causal_mask(0).shape == (0, 0)
    with pytest.raises(ValueError, match="seqlen"):
        causal_mask(-1)


def test_attention_mask_blocks_padding_and_future_keys():
    item_seq = torch.tensor([[3, 5, 0]])
    causal = attention_mask(item_seq, causal=True)
    assert causal.shape == (1, 1, 3, 3)
    expected = torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 0]], dtype=torch.bool)
    assert torch.equal(causal[0, 0], expected)
    both_ways = attention_mask(item_seq, causal=False)
    assert torch.equal(both_ways[0, 0], torch.tensor([[1, 1, 0]] * 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="item_seq"):
        attention_mask(torch.ones(2, 3, 4, dtype=torch.long))


def test_multihead_fast_path_matches_reference():
    torch.manual_seed(1)
    attn = MultiHeadAttention(d_model=16, n_heads=4, dropout=0.1, attn_dropout=0.1).double().eval()
    x = torch.randn(4, 7, 16, dtype=torch.float64)
    mask = attention_mask(
        torch.tensor([[1, 2, 3, 4, 5, 6, 7], [1, 2, 3, 0, 0, 0, 0], [9, 0, 0, 0, 0, 0, 0], [0] * 7])
    )  # last: no real key
    fast = attn(x, mask)
    ref, weights = attn(x, mask, return_weights=True)
    print("max |fast - ref|", (fast - ref).abs().max().item())
    torch.testing.assert_close(fast, ref, atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(weights.sum(-1), torch.ones(4, 4, 7, dtype=torch.float64))
    assert torch.isfinite(fast).all()
    assert (weights[:3].masked_select(~mask[:3].expand_as(weights[:3])) == 0).all()


def test_multihead_trains_with_the_uniform_dropout_mask_on_the_cpu():
    """Training on the CPU with attention dropout takes the reference with
    ``ssmlab.layers.dropout``'s mask; without it (``CPU_UNIFORM = False``) SDPA's own dropout."""
    attn = MultiHeadAttention(d_model=16, n_heads=4, dropout=0.0, attn_dropout=0.3).train()
    x, mask = torch.randn(4, 7, 16), attention_mask(torch.arange(1, 29).view(4, 7))
    torch.manual_seed(0)
    out = attn(x, mask)
    torch.manual_seed(0)
    ref, _ = attn(x, mask, return_weights=True)
    torch.testing.assert_close(out, ref)
    dropout_module.CPU_UNIFORM = False
    try:
        torch.manual_seed(0)
        sdpa = attn(x, mask)
    finally:
        dropout_module.CPU_UNIFORM = True
    assert not torch.allclose(sdpa, out)  # other masks: another path was taken
    assert torch.isfinite(sdpa).all()


@pytest.mark.parametrize("causal", [True, False])
def test_transformer_block_at_one_query_equals_every_query_read_there(causal):
    """``at``: one query per row (the last block of a model whose output is read at one
    position) gives that position's output and attention weights, with a (b, 1, l, l) mask or
    an (l, l) one."""
    torch.manual_seed(3)
    block = TransformerBlock(16, 2, 32, dropout=0.1, attn_dropout=0.1).double().eval()
    item_seq = torch.tensor([[1, 2, 3, 4, 5, 6], [7, 8, 9, 0, 0, 0], [5, 0, 0, 0, 0, 0]])
    x = torch.randn(3, 6, 16, dtype=torch.float64)
    at = torch.tensor([3, 2, 0])
    masks = [attention_mask(item_seq, causal)] + ([causal_mask(6)] if causal else [])
    for mask in masks:
        every, weights = block(x, mask, return_weights=True)  # (b l d), (b h l l)
        one, one_weights = block(x, mask, return_weights=True, at=at)  # (b d), (b h 1 l)
        rows = torch.arange(3)
        torch.testing.assert_close(one, every[rows, at], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(block(x, mask, at=at), one, rtol=1e-10, atol=1e-12)  # SDPA
        torch.testing.assert_close(one_weights[:, :, 0], weights[rows, :, at], rtol=0, atol=1e-12)


def test_reference_attention_weights_follow_the_mask():
    q = k = v = torch.randn(1, 1, 3, 2)
    _, weights = scaled_dot_attention_ref(q, k, v, causal_mask(3))
    assert torch.equal(weights[0, 0].triu(1), torch.zeros(3, 3))
    assert weights[0, 0, 0, 0] == 1.0


def test_transformer_block_is_causal_under_a_causal_mask():
    torch.manual_seed(2)
    block = TransformerBlock(16, 2, 32, dropout=0.1, attn_dropout=0.1).eval()
    item_seq = torch.tensor([[1, 2, 3, 4, 5, 6]])
    x = torch.randn(1, 6, 16)
    y = block(x, attention_mask(item_seq))
    x2 = x.clone()
    x2[:, 4] += 1.0
    y2 = block(x2, attention_mask(item_seq))
    torch.testing.assert_close(y2[:, :4], y[:, :4])
    assert not torch.allclose(y2[:, 4], y[:, 4])


def test_interval_matrix_hand_computed():
    # times 0, 4, 6, 7: gaps 4, 2, 1 -> r_min = 1 (whole history); k = 5 clips 6 and 7
    time_seq = torch.tensor([[0, 4, 6, 7, 0]])
    length = torch.tensor([4])
    paper = tisasrec_interval_matrix(time_seq, length, time_span=5, causal=False)
    expected = torch.tensor(
        [[0, 4, 5, 5, 0], [4, 0, 2, 3, 0], [5, 2, 0, 1, 0], [5, 3, 1, 0, 0], [0, 0, 0, 0, 0]]
    )
    assert torch.equal(paper[0], expected)
    # causal: row i divides by the smallest gap among items 0..i: r_min = 1 (none), 4, 2, 1
    causal = tisasrec_interval_matrix(time_seq, length, time_span=5, causal=True)
    expected_causal = torch.tensor(
        [[0, 4, 5, 5, 0], [1, 0, 0, 0, 0], [3, 1, 0, 0, 0], [5, 3, 1, 0, 0], [0, 0, 0, 0, 0]]
    )
    assert torch.equal(causal[0], expected_causal)
    assert torch.equal(causal[0, 3], paper[0, 3])  # the last real row agrees


def test_interval_matrix_repeated_times_and_float_input():
    # times 10, 10, 13, 19: gaps 0, 3, 6 -> r_min = 3 (zero gaps ignored)
    time_seq = torch.tensor([[10, 10, 13, 19]])
    r = tisasrec_interval_matrix(time_seq, torch.tensor([4]), time_span=256, causal=False)
    assert torch.equal(r[0], torch.tensor([[0, 0, 1, 3], [0, 0, 1, 3], [1, 1, 0, 2], [3, 3, 2, 0]]))
    r_float = tisasrec_interval_matrix(time_seq.double(), torch.tensor([4]), 256, causal=False)
    assert torch.equal(r_float, r)
    single = tisasrec_interval_matrix(torch.tensor([[5, 0]]), torch.tensor([1]), 8)
    assert torch.equal(single, torch.zeros(1, 2, 2, dtype=torch.long))


def test_interval_matrix_errors():
    with pytest.raises(ValueError, match="time_seq"):
        tisasrec_interval_matrix(torch.zeros(3), torch.tensor([1]), 4)
    with pytest.raises(ValueError, match="item_seq_len"):
        tisasrec_interval_matrix(torch.zeros(2, 3), torch.tensor([1]), 4)
    with pytest.raises(ValueError, match="time_span"):
        tisasrec_interval_matrix(torch.zeros(1, 3), torch.tensor([1]), 0)


def _interval_inputs(b=2, h=2, seqlen=6, p=4, r=9):
    g = torch.Generator().manual_seed(3)
    kw = {"dtype": torch.float64, "generator": g}
    q, k, v = (torch.randn(b, h, seqlen, p, **kw, requires_grad=True) for _ in range(3))
    pos_k, pos_v = torch.randn(1, h, seqlen, p, **kw), torch.randn(1, h, seqlen, p, **kw)
    emb_k = torch.randn(r, h, p, **kw, requires_grad=True)
    emb_v = torch.randn(r, h, p, **kw, requires_grad=True)
    interval = torch.randint(0, r, (b, seqlen, seqlen), generator=g)
    mask = attention_mask(torch.tensor([[1] * seqlen, [1] * (seqlen - 2) + [0, 0]]))
    return q, k, v, pos_k, pos_v, interval, emb_k, emb_v, mask


def test_time_interval_attention_fast_matches_materialized_reference():
    args = _interval_inputs()
    out, weights = time_interval_attention(*args)
    ref, ref_weights = time_interval_attention_ref(*args)
    print("max |fast - ref|", (out - ref).abs().max().item())
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(weights, ref_weights, atol=1e-12, rtol=1e-10)
    leaves = (args[0], args[6], args[7])  # q, emb_k, emb_v
    grads = torch.autograd.grad(out.square().sum(), leaves)
    ref_grads = torch.autograd.grad(ref.square().sum(), leaves)
    for g, rg in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, rg, atol=1e-10, rtol=1e-8)


def test_tisasrec_block_fast_matches_reference_and_zeroes_padding():
    torch.manual_seed(4)
    block = TiSASRecBlock(16, 2, 16, dropout=0.2, attn_dropout=0.2).double().eval()
    item_seq = torch.tensor([[4, 2, 7, 1, 0], [3, 3, 0, 0, 0]])
    real = item_seq > 0
    x = torch.randn(2, 5, 16, dtype=torch.float64) * real[..., None]
    pos = torch.randn(1, 5, 16, dtype=torch.float64)
    interval = tisasrec_interval_matrix(
        torch.tensor([[1, 3, 8, 9, 0], [5, 6, 0, 0, 0]]), real.sum(1), time_span=8
    )
    tables = torch.randn(9, 16, dtype=torch.float64), torch.randn(9, 16, dtype=torch.float64)
    args = (x, attention_mask(item_seq), real, pos, pos, interval, *tables)
    fast, ref = block(*args), block(*args, reference=True)
    torch.testing.assert_close(fast, ref, atol=1e-12, rtol=1e-10)
    assert (fast[~real] == 0).all()


def test_interval_blocks_at_one_query_equal_every_query_read_there():
    """``at`` in both TiSASRec layer forms (the paper's block and the TiM4Rec authors'
    baseline), fast and materialized: each row's output at ``at[i]`` alone."""
    torch.manual_seed(5)
    item_seq = torch.tensor([[4, 2, 7, 1, 0], [3, 3, 0, 0, 0], [6, 0, 0, 0, 0]])
    real, at = item_seq > 0, torch.tensor([2, 1, 0])
    times = torch.tensor([[1, 3, 8, 9, 0], [5, 6, 0, 0, 0], [2, 0, 0, 0, 0]])
    x = torch.randn(3, 5, 16, dtype=torch.float64) * real[..., None]
    pos = torch.randn(1, 5, 16, dtype=torch.float64)
    tables = torch.randn(9, 16, dtype=torch.float64), torch.randn(9, 16, dtype=torch.float64)
    mask, rows = attention_mask(item_seq), torch.arange(3)
    paper = TiSASRecBlock(16, 2, 16, dropout=0.2, attn_dropout=0.2).double().eval()
    interval = tisasrec_interval_matrix(times, real.sum(1), time_span=8)
    baseline = IntervalTransformerBlock(16, 2, 16, 0.2, 0.2).double().eval()
    clipped = clipped_interval_matrix(times, time_span=8)
    cases = [
        (paper, (x, mask, real, pos, pos, interval, *tables)),
        (baseline, (x, mask, clipped, *tables)),
    ]
    for block, args in cases:
        for reference in (False, True):
            every = block(*args, reference=reference)  # (b l d)
            one = block(*args, reference=reference, at=at)  # (b d)
            torch.testing.assert_close(one, every[rows, at], rtol=1e-10, atol=1e-12)
