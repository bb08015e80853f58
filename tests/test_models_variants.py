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
import torch.nn.functional as F
from conftest import next_item_ce

from ssmlab.layers.attention import attention_mask, clipped_interval_matrix
from ssmlab.models import build_model

N_ITEMS, D, MAX_LEN = 30, 16, 12
T0 = 1_600_000_000


# ------------------------------------------------------------------------ TiSASRec baseline
def test_clipped_interval_matrix_as_the_authors_baseline():
    """min(|t_i - t_j|, k) in seconds, no r_min; pads (t = 0) are not special.

    TiSASRec.py:78-85.
    """
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


# ------------------------------------------------------------------------ BERT4Rec (RecBole)
def _recbole_mask_item_sequence(item_seq, ft, draws, mask_ratio, mask_token, mask_len):
    """RecBole 1.2 transform.py:124-192 (MaskItemSequence.__call__) transcribed, with our random
    draws in place of ``random.random()``: returns the masked rows, and per row the predicted
    (position, item) pairs (``masked_index > 0`` of bert4rec.py:207 applied)."""

    def padding_sequence(sequence, max_length):  # transform.py:73-77
        sequence = [0] * (max_length - len(sequence)) + sequence
        return sequence[-max_length:]

    masked_rows, predicted = [], []
    for row, instance in enumerate(item_seq.tolist()):
        masked_sequence = instance.copy()
        pos_item, index_ids = [], []
        if ft:  # _append_mask_last, transform.py:79-97
            lens = sum(1 for item in instance if item > 0)
            masked_sequence[lens - 1] = mask_token
            pos_item, index_ids = [instance[lens - 1]], [lens - 1]
        else:
            for index_id, item in enumerate(instance):
                if item == 0:
                    break
                if draws[row, index_id] < mask_ratio:
                    pos_item.append(item)
                    masked_sequence[index_id] = mask_token
                    index_ids.append(index_id)
        pos_items = padding_sequence(pos_item, mask_len)
        masked_index = padding_sequence(index_ids, mask_len)
        masked_rows.append(masked_sequence)
        predicted.append({(i, p) for i, p in zip(masked_index, pos_items) if i > 0})
    return torch.tensor(masked_rows), predicted


@pytest.mark.parametrize("ft_ratio", [0.0, 1.0])
def test_bert4rec_recbole_cloze_matches_recbole_transform(ft_ratio):
    mask_ratio = 0.9  # max_len 12: at most int(0.9 * 12) = 10 predicted positions per row
    model = build_model(
        "bert4rec", N_ITEMS, d_model=D, max_len=MAX_LEN, cloze="recbole",
        mask_ratio=mask_ratio, ft_ratio=ft_ratio,
    )  # fmt: skip
    assert model.config.max_predictions == 10
    g = torch.Generator().manual_seed(0)
    lens = torch.tensor([12, 12, 11, 6, 2, 1])
    real = torch.arange(MAX_LEN)[None, :] < lens[:, None]
    item_seq = torch.randint(1, N_ITEMS + 1, (6, MAX_LEN), generator=g) * real
    batch = {"item_seq": item_seq, "item_seq_len": lens, "target": torch.full((6,), 7)}
    torch.manual_seed(3)
    masked, labels = model.cloze_batch(batch)
    torch.manual_seed(3)  # replay our draws: the per-batch ft draw, then one per position
    ft = torch.rand(()).item() < ft_ratio
    draws = None if ft else torch.rand(6, MAX_LEN)
    expect_masked, expect_predicted = _recbole_mask_item_sequence(
        item_seq, ft, draws, mask_ratio, N_ITEMS + 1, mask_len=10
    )
    assert torch.equal(masked, expect_masked)
    predicted = [{(i, p) for i, p in enumerate(row) if p > 0} for row in labels.tolist()]
    assert predicted == expect_predicted
    n_masked, n_predicted = (masked == N_ITEMS + 1).sum(1), (labels > 0).sum(1)
    print("masks per row", n_masked.tolist(), "predicted", n_predicted.tolist())
    if ft:
        assert n_masked.tolist() == [1] * 6 and n_predicted.tolist() == [1, 1, 1, 1, 1, 0]
    else:
        assert (n_predicted <= 10).all() and (n_masked > 10).any()  # the cap was exercised
    assert (labels[:, 0] == 0).all()  # a mask at position 0 is never predicted
    assert masked.shape == item_seq.shape  # the target is not appended: history only


def test_bert4rec_recbole_predict_drops_every_rows_oldest_item():
    """reconstruct_test_data (bert4rec.py:109-120): [MASK] after the history, first column off."""
    model = build_model("bert4rec", N_ITEMS, d_model=D, max_len=4, drop_first_at_predict=True)
    model = model.double().eval()
    item_seq = torch.tensor([[1, 2, 3, 4], [5, 6, 0, 0], [7, 0, 0, 0]])
    lens = torch.tensor([4, 2, 1])
    m = N_ITEMS + 1
    expect = torch.tensor([[2, 3, 4, m], [6, m, 0, 0], [m, 0, 0, 0]])  # RecBole's input
    hidden = model.encode({"item_seq": expect})[torch.arange(3), lens - 1]  # at the [MASK]
    torch.testing.assert_close(model(item_seq, lens), hidden)
    narrow = model(item_seq[1:, :2], lens[1:])  # less padding, same rows: same outputs
    torch.testing.assert_close(narrow, hidden[1:])
    ours = build_model("bert4rec", N_ITEMS, d_model=D, max_len=4).double().eval()
    ours.load_state_dict(model.state_dict())
    torch.testing.assert_close(ours(item_seq, lens)[0], hidden[0])  # full rows: the same
    assert not torch.allclose(ours(item_seq, lens)[1:], hidden[1:])  # ours keeps short rows


def test_bert4rec_recbole_empty_batch_gives_zero_loss():
    model = build_model("bert4rec", N_ITEMS, d_model=D, max_len=MAX_LEN, cloze="recbole")
    batch = {  # rows of one item: a mask at position 0 is never predicted
        "item_seq": torch.tensor([[3], [4]]),
        "item_seq_len": torch.tensor([1, 1]),
        "target": torch.tensor([5, 6]),
    }
    loss = model.calculate_loss(batch, "cloze")
    assert loss.item() == 0.0 and loss.requires_grad
    with pytest.raises(ValueError, match="cloze"):
        build_model("bert4rec", N_ITEMS, cloze="bert")
    with pytest.raises(ValueError, match="max_len"):
        build_model("bert4rec", N_ITEMS, max_len=4, mask_ratio=0.2, cloze="recbole")


def _successor_rows(b: int, seed: int, seqlen: int = 10):
    """Right-padded rows of lengths 10, 6, 3, 1, ... where next item = current + 1 (cyclic)."""
    g = torch.Generator().manual_seed(seed)
    lens = torch.tensor([seqlen, 6, 3, 1] * (b // 4 + 1))[:b]
    start = torch.randint(0, N_ITEMS, (b, 1), generator=g)
    items = (start + torch.arange(seqlen + 1)) % N_ITEMS + 1  # (b l+1)
    real = torch.arange(seqlen)[None, :] < lens[:, None]
    target = items.gather(1, lens[:, None]).squeeze(1)
    return {"item_seq": items[:, :seqlen] * real, "item_seq_len": lens, "target": target}


def test_bert4rec_recbole_cloze_learns_the_next_item_of_unseen_rows():
    """Trained on masked history items only, the model still learns "next = current + 1" and
    predicts the (never trained on) next item of held-out rows better (seeds 0-7 gave ratios
    0.39-0.74 after these 150 steps; at 60 steps on 128 rows they spread over 0.86-1.05)."""
    torch.manual_seed(0)
    model = build_model(
        "bert4rec", N_ITEMS, d_model=D, max_len=MAX_LEN, dropout=0.1, n_heads=2, inner_size=32,
        cloze="recbole", drop_first_at_predict=True,
    )  # fmt: skip
    train, held_out = _successor_rows(512, seed=0), _successor_rows(128, seed=1)

    before = next_item_ce(model, held_out)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        loss = model.calculate_loss(train, "cloze")
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = next_item_ce(model, held_out)
    print("held-out next-item CE", before, "->", after)
    assert after < 0.85 * before


# ------------------------------------------------------------------------ Caser (RecBole)
def _recbole_caser_forward(model, user, item_seq):
    """RecBole 1.2 caser.py:114-145 transcribed (eval mode), with the model's weights; the
    horizontal Conv1d (n_h, d, h) weights are RecBole's Conv2d (n_h, 1, h, d) ones."""
    item_seq_emb = model.item_embedding(item_seq).unsqueeze(1)  # (b 1 L d)
    user_emb = model.user_embedding(user)
    out_v = model.conv_v(item_seq_emb).view(item_seq.shape[0], -1)
    out_hs = []
    for conv in model.conv_h:
        weight = conv.weight.permute(0, 2, 1).unsqueeze(1)  # (n_h 1 h d)
        conv_out = torch.relu(F.conv2d(item_seq_emb, weight, conv.bias).squeeze(3))
        out_hs.append(F.max_pool1d(conv_out, conv_out.size(2)).squeeze(2))
    out = torch.cat([out_v, torch.cat(out_hs, 1)], 1)
    z = torch.relu(model.fc1(out))
    return torch.relu(model.fc2(torch.cat([z, user_emb], 1)))


def test_caser_recbole_layout_and_l2_match_recbole():
    torch.manual_seed(0)
    model = build_model(
        "caser", N_ITEMS, d_model=D, max_len=8, n_h=2, n_v=3, n_users=5, layout="recbole"
    ).double().eval()  # fmt: skip
    assert model.item_embedding.weight[0].abs().sum() > 0  # RecBole's random padding row
    item_seq = torch.tensor([[3, 5, 7, 9, 0, 0], [2, 0, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6]])
    user = torch.tensor([1, 4, 5])
    batch = {"item_seq": item_seq, "item_seq_len": (item_seq > 0).sum(1), "user_id": user}
    official = _recbole_caser_forward(model, user, F.pad(item_seq, (0, 2)))  # RecBole's width 8
    torch.testing.assert_close(model.encode(batch)[:, 0], official)
    # L2 term: caser.py:175-184 (tables, conv_v, fc1, fc2) + reg_loss_conv_h (:147-155)
    norms = [model.user_embedding.weight, model.item_embedding.weight, model.conv_v.weight]
    norms += [model.fc1.weight, model.fc2.weight] + [conv.weight for conv in model.conv_h]
    torch.testing.assert_close(model.reg_loss(), sum(w.norm(2) for w in norms))
    # the horizontal filters' share is not zero (the docstring used to claim RecBole's was)
    assert sum(conv.weight.norm(2) for conv in model.conv_h) > 0.1 * model.reg_loss()
    right_aligned = build_model("caser", N_ITEMS, d_model=D, max_len=8, n_h=2, n_v=3, n_users=5)
    right_aligned = right_aligned.double().eval()
    right_aligned.load_state_dict(model.state_dict())
    assert not torch.allclose(right_aligned.encode(batch), model.encode(batch))
    with pytest.raises(ValueError, match="window"):
        build_model("caser", N_ITEMS, max_len=8, window=4, layout="recbole")
    with pytest.raises(ValueError, match="max_len"):
        model.encode({**batch, "item_seq": torch.ones(3, 9, dtype=torch.long)})


@pytest.mark.parametrize("layout", ["recbole", "right_aligned"])
def test_caser_padded_tail_matches_the_reference(layout, monkeypatch):
    """The model's horizontal features, padded tail against the reference forced (cost 0):
    same representation, same gradients, for batches of every width and a zero-length row."""
    from ssmlab.models import caser

    torch.manual_seed(0)
    model = build_model(
        "caser", N_ITEMS, d_model=D, max_len=9, n_h=2, n_v=2, n_users=5, layout=layout
    ).double()  # fmt: skip
    model.eval()
    for width in (1, 3, 6, 9):
        lens = torch.tensor([width, max(width - 2, 1), 1, 0])
        item_seq = torch.randint(1, N_ITEMS + 1, (4, width)) * (torch.arange(width) < lens[:, None])
        batch = {"item_seq": item_seq, "item_seq_len": lens, "user_id": torch.tensor([1, 2, 3, 4])}
        results = []
        for cost in (0.0, 1e9):  # the reference, then the padded tail for any width
            monkeypatch.setattr(caser, "PADDED_TAIL_COST", cost)
            model.zero_grad()
            out = model.encode(batch)
            (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
            grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
            results.append((out, grads))
        (ref, ref_grads), (fast, fast_grads) = results
        torch.testing.assert_close(fast, ref)
        assert ref_grads.keys() == fast_grads.keys()
        for name in ref_grads:
            torch.testing.assert_close(fast_grads[name], ref_grads[name], msg=name)
    if layout == "recbole":  # padding_idx: the padding row never learns, on either path
        assert model.item_embedding.weight.grad[0].abs().sum() == 0


def test_caser_user_embedding_takes_the_users_from_the_dataset(tmp_path):
    from ssmlab.config import load_config
    from ssmlab.data import load_dataset
    from ssmlab.train import Trainer
    from ssmlab.train.runs import evaluate_checkpoint

    config = build_model("caser", N_ITEMS, user_embedding=True, n_users=7).config
    assert config.n_users == 7 and config.for_data(11).n_users == 11
    with pytest.raises(ValueError, match="dataset_users="):
        build_model("caser", N_ITEMS, user_embedding=True)
    data = load_dataset("toy", n_users=30, n_items=20, seq_len=(5, 9), seed=3)
    overrides = ["model.user_embedding=true", "train.epochs=1", "train.progress=false"]
    config = load_config("caser", "toy", overrides=overrides)
    trainer = Trainer(config, dataset=data, output=tmp_path, device="cpu", verbose=False)
    result = trainer.fit()
    assert trainer.model.user_embedding.num_embeddings == data.n_users + 1
    assert trainer.model.user_embedding.weight.grad[1:].abs().sum() > 0  # trained
    again = evaluate_checkpoint(tmp_path / "best.pt", dataset=data)  # the saved config's table
    assert again["test"] == pytest.approx(result["test"])
