"""Variants that reproduce TiM4Rec's Table 3 baselines as the authors ran them.

TiSASRec ``variant="baseline"`` (TiM4Rec ``baseline/TiSASRec``), BERT4Rec ``cloze="recbole"``
(RecBole 1.2 ``MaskItemSequence``), Caser ``layout="recbole"`` (RecBole 1.2 ``caser.py``).
Shapes, causality, padding and learning are covered with the other baselines in
``test_models_baselines.py``; here: each variant against a transcription of the official code.
"""

from __future__ import annotations

import math

import pytest
import torch

from ssmlab.layers.attention import attention_mask, clipped_interval_matrix
from ssmlab.models import build_model

N_ITEMS, D, MAX_LEN = 30, 16, 12
T0 = 1_600_000_000


# ------------------------------------------------------------------------ TiSASRec baseline
def test_clipped_interval_matrix_as_the_authors_baseline():
    """min(|t_i - t_j|, k) in seconds, no r_min; pads (t = 0) are not special (TiSASRec.py:78-85)."""
    time_seq = torch.tensor([[100, 100, 250, 400, 0]])
    r = clipped_interval_matrix(time_seq, time_span=256)
    expect = torch.tensor(
        [
            [0, 0, 150, 256, 100],
            [0, 0, 150, 256, 100],
            [150, 150, 0, 150, 250],
            [256, 256, 150, 0, 256],
            [100, 100, 250, 256, 0],
        ]
    )
    assert r.dtype == torch.long and torch.equal(r[0], expect)
    # float32 timestamps, as the authors' .float(): at 1.6e9 s the spacing is 128 s
    assert clipped_interval_matrix(torch.tensor([[T0, T0 + 50]]), 256)[0, 0, 1] == 0
    # day resolution (Amazon): every interval is 0 (same day) or k
    days = T0 + 86400 * torch.tensor([[0, 0, 1, 30]])
    assert set(clipped_interval_matrix(days, 256).unique().tolist()) == {0, 256}
    with pytest.raises(ValueError, match="time_span"):
        clipped_interval_matrix(days, 0)


def _official_interval_attention(att, x, mask, time_key, time_value):
    """TiM4Rec baseline/TiSASRec/TiTransformer.py:53-90, transcribed (eval mode, no dropout)."""
    b, seqlen, d = x.shape
    h, dh = att.n_heads, d // att.n_heads
    q = att.query(x).view(b, seqlen, h, dh).permute(0, 2, 1, 3)
    k = att.key(x).view(b, seqlen, h, dh).permute(0, 2, 3, 1)
    v = att.value(x).view(b, seqlen, h, dh).permute(0, 2, 1, 3)
    time_k = time_key.view(b, seqlen, seqlen, h, dh).permute(0, 3, 1, 2, 4)
    time_v = time_value.view(b, seqlen, seqlen, h, dh).permute(0, 3, 1, 2, 4)
    scores = torch.matmul(q, k)
    scores = scores + torch.matmul(time_k, q.unsqueeze(-1)).squeeze(-1)
    scores = scores / math.sqrt(dh) + torch.where(mask, 0.0, -10000.0)  # RecBole's additive mask
    probs = scores.softmax(dim=-1)
    context = torch.matmul(probs, v) + torch.matmul(probs.unsqueeze(3), time_v).squeeze(3)
    context = context.permute(0, 2, 1, 3).reshape(b, seqlen, d)
    return att.norm(att.dense(context) + x)


def test_tisasrec_baseline_attention_matches_the_authors_code():
    torch.manual_seed(0)
    model = build_model(
        "tisasrec", N_ITEMS, d_model=D, max_len=MAX_LEN, n_heads=4, inner_size=32,
        time_span=256, hidden_act="gelu", layer_norm_eps=1e-12, variant="baseline",
    ).double().eval()  # fmt: skip
    item_seq = torch.tensor([[3, 5, 7, 9, 11, 0], [2, 4, 0, 0, 0, 0]])
    time_seq = torch.tensor(
        [[T0, T0, T0 + 86400, T0 + 100, T0 + 5000, 0], [T0, T0 + 9, 0, 0, 0, 0]]
    )
    time_seq = torch.cummax(time_seq, dim=1).values * (item_seq > 0)
    interval = clipped_interval_matrix(time_seq, 256)
    mask = attention_mask(item_seq, causal=True)
    x = torch.randn(2, 6, D, dtype=torch.float64)
    att = model.blocks[0].attention
    ours = att(x, mask, interval, model.interval_k.weight, model.interval_v.weight)
    official = _official_interval_attention(
        att, x, mask, model.interval_k(interval), model.interval_v(interval)
    )
    real = item_seq > 0
    torch.testing.assert_close(ours[real], official[real])
    ref = att(x, mask, interval, model.interval_k.weight, model.interval_v.weight, reference=True)
    torch.testing.assert_close(ours, ref)
    batch = {"item_seq": item_seq, "item_seq_len": real.sum(1), "time_seq": time_seq}
    torch.testing.assert_close(model.encode(batch), model.encode(batch, reference=True))


def test_tisasrec_baseline_is_sasrec_with_interval_terms():
    """With zero interval tables the baseline is RecBole's SASRec (same weights, same output)."""
    torch.manual_seed(1)
    fields = {"d_model": D, "max_len": MAX_LEN, "n_heads": 2, "inner_size": 32}
    fields.update(hidden_act="gelu", layer_norm_eps=1e-12)  # SASRec's defaults
    tisasrec = build_model("tisasrec", N_ITEMS, variant="baseline", **fields).double().eval()
    sasrec = build_model("sasrec", N_ITEMS, **fields).double().eval()
    shared = {k: v for k, v in tisasrec.state_dict().items() if not k.startswith("interval_")}
    sasrec.load_state_dict(shared)  # strict: the same parameter names, so the same layers
    with torch.no_grad():
        tisasrec.interval_k.weight.zero_()
        tisasrec.interval_v.weight.zero_()
    item_seq = torch.tensor([[3, 5, 7, 0], [2, 4, 6, 8]])
    batch = {
        "item_seq": item_seq,
        "item_seq_len": (item_seq > 0).sum(1),
        "time_seq": (T0 + 3600 * torch.arange(4)) * (item_seq > 0),
    }
    real = item_seq > 0
    torch.testing.assert_close(tisasrec.encode(batch)[real], sasrec.encode(batch)[real])
    assert tisasrec.config.variant == "baseline"
    with pytest.raises(ValueError, match="variant"):
        build_model("tisasrec", N_ITEMS, variant="paper")
