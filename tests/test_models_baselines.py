"""Baseline recommenders, what is particular to each: BERT4Rec's cloze and bidirectionality,
LRURec's scan, TiSASRec's reference path and intervals, Caser's window, config checks, presets.

SASRec, TiSASRec, GRU4Rec, BERT4Rec, Caser, LRURec at their tiny test size (d = 16, l <= 12,
30 items); what every model must do is tests/test_model_contract.py.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import next_item_ce, tiny_model

from ssmlab.config import load_config

N_ITEMS, D, MAX_LEN = 30, 16, 12
BASELINES = ("sasrec", "tisasrec", "gru4rec", "bert4rec", "caser", "lrurec")  # TiM4Rec Table 3


def make(name: str, **fields):
    return tiny_model(name, N_ITEMS, **fields)


def make_batch(b: int = 4, seqlen: int = 10, seed: int = 0, successor: bool = False):
    """Right-padded rows of lengths l, 6, 3, 1, ...; times increase with some repeats."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([seqlen, 6, 3, 1] * (b // 4 + 1))[:b]
    if successor:  # next item = current + 1 (cyclic in 1..N_ITEMS)
        start = torch.randint(0, N_ITEMS, (b, 1), generator=g)
        items = (start + torch.arange(seqlen + 1)) % N_ITEMS + 1  # (b l+1)
    else:
        items = torch.randint(1, N_ITEMS + 1, (b, seqlen + 1), generator=g)
    gaps = torch.randint(0, 5, (b, seqlen), generator=g) * 3600
    times = 1_600_000_000 + gaps.cumsum(1)
    real = torch.arange(seqlen)[None, :] < lengths[:, None]
    return {
        "item_seq": items[:, :seqlen] * real,
        "item_seq_len": lengths,
        "time_seq": times * real,
        "target": items.gather(1, lengths[:, None]).squeeze(1),
        "targets": items[:, 1:] * real,
    }


def test_bert4rec_is_bidirectional():
    model = make("bert4rec").eval()
    batch = make_batch()
    out = model.encode(batch)
    changed = dict(batch, item_seq=batch["item_seq"].clone())
    changed["item_seq"][0, 5] = changed["item_seq"][0, 5] % N_ITEMS + 1
    assert not torch.allclose(model.encode(changed)[0, 4], out[0, 4])


def test_lrurec_parallel_scan_matches_step_by_step_recurrence():
    torch.manual_seed(5)
    model = make("lrurec").double().eval()
    batch = make_batch()
    layer = model.layers[0]
    x = torch.randn(4, 40, D, dtype=torch.float64)  # l > 32: the blocked scan, not only doubling
    mask = torch.arange(40)[None, :] < torch.tensor([40, 33, 7, 1])[:, None]
    fast, loop = layer(x, mask, scan="parallel"), layer(x, mask, scan="loop")
    print("max |scan - loop|", (fast - loop).abs().max().item())
    torch.testing.assert_close(fast, loop, atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(model.encode(batch), model.encode(batch, scan="loop"))
    lam = layer.eigenvalues().abs()
    assert ((lam >= 0.8 - 1e-6) & (lam <= 0.99 + 1e-6)).all()  # ring init
    with pytest.raises(ValueError, match="scan"):
        layer(x, mask, scan="fft")


@pytest.mark.parametrize("variant", ["original", "baseline"])
def test_tisasrec_reference_path_and_time_awareness(variant):
    model = make("tisasrec", variant=variant).double().eval()
    batch = make_batch()
    torch.testing.assert_close(model.encode(batch), model.encode(batch, reference=True))
    slower = dict(batch, time_seq=batch["time_seq"].clone())
    slower["time_seq"][0, 5:] += 30 * 86400  # one long gap: intervals change, items do not
    keys = ("item_seq", "item_seq_len", "time_seq")
    out = model(*(batch[k] for k in keys))
    if variant == "original":  # the baseline's min(|dt| s, 16) is 16 for any gap of an hour or more
        assert not torch.allclose(model(*(slower[k] for k in keys)), out)
    one_instant = dict(batch, time_seq=batch["time_seq"].clone())
    one_instant["time_seq"][0] = batch["time_seq"][0, 0] * (batch["item_seq"][0] > 0)
    assert not torch.allclose(model(*(one_instant[k] for k in keys)), out)  # all intervals 0
    with pytest.raises(ValueError, match="time_seq"):
        model.encode({"item_seq": batch["item_seq"], "item_seq_len": batch["item_seq_len"]})


def test_bert4rec_append_and_cloze_batch():
    from ssmlab.models.bert4rec import append_item

    item_seq = torch.tensor([[1, 2, 3], [4, 5, 0]])
    seq, length = append_item(item_seq, torch.tensor([3, 2]), torch.tensor([9, 8]), max_len=3)
    assert torch.equal(seq, torch.tensor([[2, 3, 9], [4, 5, 8]]))  # full row drops its oldest
    assert torch.equal(length, torch.tensor([3, 3]))
    seq, length = append_item(item_seq, torch.tensor([3, 2]), 7, max_len=5)
    assert torch.equal(seq, torch.tensor([[1, 2, 3, 7], [4, 5, 7, 0]]))

    model = make("bert4rec", ft_ratio=0.0, mask_ratio=0.5)
    batch = make_batch()
    masked, labels = model.cloze_batch(batch)
    full, _ = append_item(batch["item_seq"], batch["item_seq_len"], batch["target"], MAX_LEN)
    picked = labels > 0
    assert picked.any(dim=1).all()  # every row trains on something
    assert (masked[picked] == N_ITEMS + 1).all() and torch.equal(labels[picked], full[picked])
    assert torch.equal(masked[~picked], full[~picked])
    model.config.ft_ratio = 1.0  # fine-tune rows: only the target is masked
    _, labels = model.cloze_batch(batch)
    assert torch.equal(labels.sum(1), batch["target"]) and ((labels > 0).sum(1) == 1).all()
    with pytest.raises(ValueError, match="cloze"):
        model.calculate_loss(batch, "last")


def test_caser_window_and_optional_user():
    from ssmlab.models.caser import last_items

    window = last_items(torch.tensor([[1, 2, 3, 4], [5, 6, 0, 0]]), torch.tensor([4, 2]), 3)
    assert torch.equal(window, torch.tensor([[2, 3, 4], [0, 5, 6]]))
    model = make("caser", n_users=5).eval()
    batch = make_batch()
    with pytest.raises(ValueError, match="user_id"):
        model.full_sort_predict(batch)
    with_user = dict(batch, user_id=torch.tensor([1, 2, 3, 4]))
    assert model.full_sort_predict(with_user).shape == (4, N_ITEMS + 1)
    assert model.calculate_loss(with_user) > F.cross_entropy(
        model.full_sort_predict(with_user), batch["target"]
    )  # + L2 term


@pytest.mark.parametrize(
    "name, fields, match",
    [
        ("sasrec", {"n_heads": 3}, "divisible"),
        ("bert4rec", {"mask_ratio": 1.5}, "mask_ratio"),
        ("tisasrec", {"time_span": 0}, "time_span"),
        ("gru4rec", {"hidden_size": 0}, "hidden_size"),
        ("caser", {"n_h": 0, "n_v": 0}, "n_h"),
        ("lrurec", {"r_min": 0.99, "r_max": 0.9}, "r_min"),
    ],
)
def test_bad_configs_are_rejected(name, fields, match):
    with pytest.raises(ValueError, match=match):
        make(name, **fields)


@pytest.mark.parametrize(
    "name, fields",
    [("sasrec", {}), ("bert4rec", {}), ("tisasrec", {}), ("tisasrec", {"variant": "baseline"})],
)
def test_history_longer_than_positions_is_rejected(name, fields):
    batch = make_batch(seqlen=MAX_LEN + 2)
    with pytest.raises(ValueError, match="max_len"):
        make(name, **fields).encode(batch)


@pytest.mark.parametrize("data", ["amazon-beauty", "ml-1m"])
@pytest.mark.parametrize("name", BASELINES)
def test_baseline_presets_share_tim4recs_sizes(name, data):
    """TiM4Rec §4.1.4: d = 64 and two layers for every baseline (documented keys, history length
    and dropout: tests/test_model_contract.py)."""
    cfg = load_config(name, data)
    assert cfg.model.d_model == 64 and cfg.model.n_layers == 2


def test_bert4rec_target_cloze_lowers_next_item_ce():
    """Cloze on the target (the default, unlike RecBole's history-only cloze) trains the next-item
    scores: 20 Adam steps on "next item = current + 1" lower their cross-entropy."""
    torch.manual_seed(0)
    model = make("bert4rec")
    batch = make_batch(b=32, successor=True)

    before = next_item_ce(model, batch)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(20):
        loss = model.calculate_loss(batch, "cloze")
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = next_item_ce(model, batch)
    print("bert4rec next-item CE", before, "->", after)
    assert after < 0.8 * before
