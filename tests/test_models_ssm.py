"""The five SSM recommenders, what is particular to each: TiM4Rec's time path (causal form,
the authors' padding gaps), SSD4Rec's packing and masking, SS4Rec's query time, config checks.

Models at their tiny test size; what every model must do is tests/test_model_contract.py."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_model

from ssmlab.layers.positions import at_positions
from ssmlab.layers.ssd import SequenceLinear
from ssmlab.models.ss4rec import query_gaps
from ssmlab.models.ssd4rec import pack
from ssmlab.models.ssd4rec_star import SSD4RecStarConfig
from ssmlab.models.tim4rec import official_time_gaps
from ssmlab.ssm import time_deltas

N_ITEMS = 30
T0 = 1_600_000_000


def make_model(name: str, double: bool = True, **fields):
    model = tiny_model(name, N_ITEMS, **fields)
    return model.double() if double else model


def boost_time_path(model):
    """Larger time-MLP weights: at RecBole's N(0, 0.02) init the time path barely matters."""
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, SequenceLinear):
                mod.weight.normal_(std=0.5)
    return model


def full_sequences(b=3, l=10, seed=0):
    """Items and timestamps of length l + 1 per row (the last one is the target)."""
    g = torch.Generator().manual_seed(seed)
    items = torch.randint(1, N_ITEMS + 1, (b, l + 1), generator=g)
    times = T0 + torch.randint(0, 5000, (b, l + 1), generator=g).cumsum(1)
    return items, times


def make_batch(items, times, lens, width):
    """Right-padded batch of width ``width``: histories items[:, :len], targets after them."""
    b = items.shape[0]
    batch = {
        k: torch.zeros(b, width, dtype=torch.long)
        for k in ("item_seq", "time_seq", "targets", "target_times")
    }
    for i, n in enumerate(lens):
        batch["item_seq"][i, :n] = items[i, :n]
        batch["time_seq"][i, :n] = times[i, :n]
        batch["targets"][i, :n] = items[i, 1 : n + 1]
        batch["target_times"][i, :n] = times[i, 1 : n + 1]
    lens = torch.tensor(lens)
    rows = torch.arange(b)
    batch.update(item_seq_len=lens, target=items[rows, lens], target_time=times[rows, lens])
    return batch


def _prefix_and_suffix_change(model, batch, batch2, t):
    h, h2 = model.encode(batch), model.encode(batch2)
    diff = (h - h2).abs()
    return diff[:, : t + 1].max().item(), diff[:, t + 1 :].max().item()


@pytest.mark.parametrize(
    "name, fields",
    [
        ("tim4rec", {"time_mlp": "causal"}),
        ("tim4rec", {"time_mlp": "causal", "p2p_residual": True}),
        ("ss4rec", {}),
    ],
)
def test_causal_time_paths_ignore_future_times(name, fields):
    """With the time path made strong (it starts near 0), later timestamps leave the outputs
    <= t unchanged and move the later ones (the contract test checks it at the initial scale)."""
    model = boost_time_path(make_model(name, **fields)).eval()
    assert model.causal and "all" in model.objectives
    items, times = full_sequences(b=2, l=10)
    t = 4
    batch = make_batch(items, times, [10, 10], 10)
    # SS4Rec's output t reads t_{t+1} by design (its query time): change timestamps from t + 2
    first = t + 2 if name == "ss4rec" else t + 1
    times2 = times.clone()
    times2[:, first:] += 10_000 * torch.arange(1, times.shape[1] - first + 1)  # stays sorted
    changed = make_batch(items, times2, [10, 10], 10)
    before, after = _prefix_and_suffix_change(model, batch, changed, t)
    print(name, fields, "times changed from", first, ": max diff <= t", before, "after t", after)
    assert before < 1e-12 and after > 1e-10


def test_positional_tim4rec_leaks_future_time_into_earlier_outputs():
    model = boost_time_path(make_model("tim4rec")).eval()
    assert not model.causal and model.objectives == ("last",)
    items, times = full_sequences(b=2, l=10)
    times2 = times.clone()
    times2[:, 7:] += 10_000 * torch.arange(1, 5)
    h = model.encode(make_batch(items, times, [10, 10], 10))
    h2 = model.encode(make_batch(items, times2, [10, 10], 10))
    leak = (h[:, :6] - h2[:, :6]).abs().max().item()
    print("positional TiM4Rec: change at positions < 6 from gaps at >= 7:", leak)
    assert leak > 1e-10  # float64: round-off is ~1e-16; the causal form gives exactly 0 here
    with pytest.raises(ValueError, match="objectives"):
        model.calculate_loss(make_batch(items, times, [10, 10], 10), objective="all")


def _audit_row():
    """An 8-item Beauty-like row: gaps in days [0, 0, 30, 1, 0, 200, 5, 0], t_last = 1.35e9."""
    days = torch.tensor([0, 0, 30, 1, 0, 200, 5, 0])
    after = torch.cat([days[1:].flip(0).cumsum(0).flip(0), torch.zeros(1, dtype=torch.long)])
    return torch.arange(1, 9)[None], (1_350_000_000 - 86400 * after)[None]  # (1 8) each


def test_tim4rec_official_gaps_differ_only_from_the_first_pad():
    """The authors' gaps (tim4rec.py:100-105 on RecBole's zero-padded list) equal ours at real
    positions; the first pad holds 0 - t_last, later pads 0, as ours."""
    items, times = _audit_row()
    official = official_time_gaps(items, times, width=50)  # (1 50)
    clamped = F.pad(time_deltas(times), (0, 42))  # (1 50)
    assert official.dtype == torch.float32 and official.shape == (1, 50)
    torch.testing.assert_close(official[:, :8], clamped[:, :8].float(), rtol=0, atol=0)
    assert official[0, 8] == -1_350_000_000 and clamped[0, 8] == 0
    assert torch.all(official[:, 9:] == 0) and torch.all(clamped[:, 9:] == 0)
    full = official_time_gaps(items, times, width=8)  # a full row: no pad, no spike
    torch.testing.assert_close(full, time_deltas(times).float(), rtol=0, atol=0)
    with pytest.raises(ValueError, match="width"):
        official_time_gaps(items, times, width=7)


def test_tim4rec_official_gap_spike_moves_every_real_position_through_the_layernorm():
    """LayerNorm over max_len = 50 positions (eval: no dropout): the spike at the first pad makes
    the real positions nearly constant (~0.141); ours keeps the gaps' contrast. The values are
    those of the official-code audit (numpy check of the authors' formula)."""
    items, times = _audit_row()
    feats = {}
    for padding in ("official", "clamped"):
        model = make_model("tim4rec", max_len=50, time_gap_padding=padding).eval()
        feats[padding] = model.time_features(items, times)[0, 0]  # (50), head 0
    official, clamped = feats["official"], feats["clamped"]
    expect_official = [0.141, 0.141, 0.154, 0.141, 0.141, 0.232, 0.143, 0.141]
    expect_clamped = [-0.167, -0.167, 0.896, -0.132, -0.167, 6.92, 0.01, -0.167]
    print("official", official[:9].tolist(), "clamped", clamped[:9].tolist())
    torch.testing.assert_close(
        official[:8], torch.tensor(expect_official).double(), atol=6e-4, rtol=0
    )
    torch.testing.assert_close(
        clamped[:8], torch.tensor(expect_clamped).double(), atol=6e-3, rtol=0
    )
    assert abs(official[8].item() + 7.0) < 0.01  # the spike, the sequence-end marker
    assert (official[:8] - clamped[:8]).abs().min() > 0.1  # every real position moves


def test_tim4rec_official_gaps_agree_with_clamped_where_no_pad_is_seen():
    """Full rows (no padding) and the causal form (prefix statistics) never see the first pad:
    there the two options give the same outputs at real positions."""
    items, times = full_sequences(b=2, l=12)
    for case_fields, lens in (({}, [12, 12]), ({"time_mlp": "causal"}, [12, 7])):
        models = [
            boost_time_path(make_model("tim4rec", time_gap_padding=p, **case_fields)).eval()
            for p in ("clamped", "official")
        ]
        models[1].load_state_dict(models[0].state_dict())
        batch = make_batch(items, times, lens, width=12)
        real = torch.arange(12) < torch.tensor(lens)[:, None]
        h_clamped, h_official = (m.encode(batch)[real] for m in models)
        torch.testing.assert_close(h_official, h_clamped)
    rows = make_batch(items, times, [12, 7], width=12)  # positional, padded row: they differ
    models = [
        boost_time_path(make_model("tim4rec", time_gap_padding=p)).eval()
        for p in ("clamped", "official")
    ]
    models[1].load_state_dict(models[0].state_dict())
    diff = (models[0].encode(rows)[1, :7] - models[1].encode(rows)[1, :7]).abs().max().item()
    print("positional, padded row: max diff at real positions", diff)
    assert diff > 1e-10  # float64 round-off is ~1e-16


def test_ssd4rec_packed_equals_padded():
    model = make_model("ssd4rec").eval()
    items, times = full_sequences(b=3, l=9)
    padded = make_batch(items, times, [9, 4, 6], width=9)
    seq, seq_idx, real = pack(padded["item_seq"], padded["item_seq_len"])
    packed = {
        "item_seq": seq,
        "seq_idx": seq_idx,
        "target": padded["target"],
        "cu_seqlens": torch.tensor([0, 9, 13, 19], dtype=torch.int32),
    }
    h_packed = model.encode(packed)
    assert h_packed.shape == (1, 19, 16)
    torch.testing.assert_close(h_packed[0], model.encode(padded)[real])
    torch.testing.assert_close(model.full_sort_predict(packed), model.full_sort_predict(padded))
    torch.testing.assert_close(model.calculate_loss(packed), model.calculate_loss(padded))
    no_cu = {k: v for k, v in packed.items() if k != "cu_seqlens"}
    torch.testing.assert_close(model.full_sort_predict(no_cu), model.full_sort_predict(packed))
    assert not model.causal and model.objectives == ("last",)
    with pytest.raises(ValueError, match="objectives"):
        model.calculate_loss(padded, objective="all")


def test_ssd4rec_padded_rows_give_the_packed_gradients():
    """The padded path (rows reversed within their lengths) and the packed row train alike."""
    model = make_model("ssd4rec", flip_back=True).eval()  # no dropout, no item masks
    items, times = full_sequences(b=3, l=9)
    padded = make_batch(items, times, [9, 2, 6], width=9)
    seq, seq_idx, _ = pack(padded["item_seq"], padded["item_seq_len"])
    packed = {"item_seq": seq, "seq_idx": seq_idx, "target": padded["target"]}
    grads = []
    for batch in (packed, padded):
        model.zero_grad()
        model.calculate_loss(batch).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, msg=name)
    with pytest.raises(ValueError, match="item_seq_len"):
        model.encode({**padded, "item_seq_len": torch.tensor([9, 0, 6])})


def test_ssd4rec_one_layer_all_positions_equal_the_prefix_rows():
    """One layer: objective "all" on padded rows gives the loss and gradients of "last" on
    every prefix of those rows (RecBole's prefix rows) run through the bidirectional block, and
    the same last-position scores."""
    model = make_model("ssd4rec", n_layers=1, mask_ratio=0.0).eval()  # no dropout, no masks
    assert model.causal and model.objectives == ("last", "all")
    items, times = full_sequences(b=4, l=8)
    lens = [8, 3, 1, 5]
    batch = make_batch(items, times, lens, width=8)
    prefixes = [(i, t) for i, n in enumerate(lens) for t in range(1, n + 1)]
    rows = torch.zeros(len(prefixes), 8, dtype=torch.long)
    for r, (i, t) in enumerate(prefixes):
        rows[r, :t] = items[i, :t]
    prefix_rows = {
        "item_seq": rows,
        "item_seq_len": torch.tensor([t for _, t in prefixes]),
        "target": torch.stack([items[i, t] for i, t in prefixes]),
    }
    reference = make_model("ssd4rec", n_layers=1, mask_ratio=0.0).eval()
    reference.load_state_dict(model.state_dict())
    reference.causal = False  # the bidirectional block on each prefix row, read at its end
    losses, grads = [], []
    for m, b, objective in ((model, batch, "all"), (reference, prefix_rows, "last")):
        loss = m.calculate_loss(b, objective)
        losses.append(loss.detach())
        grads.append(torch.autograd.grad(loss, list(m.parameters())))
    torch.testing.assert_close(losses[0], losses[1], rtol=0, atol=1e-12)
    for got, want in zip(*grads, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    last = {k: batch[k] for k in ("item_seq", "item_seq_len")}
    torch.testing.assert_close(model.full_sort_predict(last), reference.full_sort_predict(last))
    two = make_model("ssd4rec", n_layers=1, flip_back=True)
    assert not two.causal and two.objectives == ("last",)


@pytest.mark.parametrize("fields", [{}, {"n_layers": 1}, {"n_layers": 1, "flip_back": True}])
def test_ssd4rec_at_equals_the_last_of_every_position(fields):
    """Scoring runs the last layer's LayerNorm and FFN at the last position alone: the same
    hidden states as encoding every position and reading the last (every model, other
    positions and gradients: tests/test_model_contract.py); packed rows refuse ``at``."""
    model = make_model("ssd4rec", **fields).eval()
    items, times = full_sequences(b=3, l=9)
    batch = make_batch(items, times, [9, 2, 6], width=9)
    at = batch["item_seq_len"] - 1
    every = at_positions(model.encode(batch), at)
    torch.testing.assert_close(model.encode(batch, at=at), every, rtol=0, atol=1e-12)
    seq, seq_idx, _ = pack(batch["item_seq"], batch["item_seq_len"])
    with pytest.raises(ValueError, match="padded"):
        model.encode({"item_seq": seq, "seq_idx": seq_idx}, at=at)


def test_ssd4rec_masks_items_only_in_training():
    model = make_model("ssd4rec", mask_ratio=0.5)
    items = torch.randint(1, N_ITEMS + 1, (1, 4000))
    model.eval()
    assert torch.equal(model.mask_items(items), items)
    model.train()
    masked = model.mask_items(items)
    ratio = (masked == 0).float().mean().item()
    assert abs(ratio - 0.5) < 0.05 and torch.equal(masked[masked != 0], items[masked != 0])


def test_ss4rec_query_time():
    model = make_model("ss4rec").eval()
    items, times = full_sequences(b=2, l=6)
    batch = make_batch(items, times, [6, 3], width=6)
    args = batch["item_seq"], batch["item_seq_len"], batch["time_seq"]
    soon = model(*args, at_time=batch["target_time"])
    later = model(*args, at_time=batch["target_time"] + 30 * 86400)
    assert (soon - later).abs().max() > 1e-6  # the query time changes the prediction
    decades = model(*args, at_time=batch["target_time"] + 10**9)
    assert torch.isfinite(decades).all()
    # calculate_loss / full_sort_predict query at batch["target_time"]
    torch.testing.assert_close(model.full_sort_predict(batch), model.scores(soon))
    gaps = query_gaps(
        batch["item_seq"], batch["time_seq"], batch["item_seq_len"], at_time=batch["target_time"]
    )
    assert gaps[0, 5] == batch["target_time"][0] - batch["time_seq"][0, 5]
    assert gaps[1, 2] == batch["target_time"][1] - batch["time_seq"][1, 2] and gaps[1, 3] == 0
    torch.testing.assert_close(
        gaps, query_gaps(batch["item_seq"], batch["time_seq"], target_times=batch["target_times"])
    )


def test_config_validation_and_input_errors():
    with pytest.raises(ValueError, match="use_time"):
        SSD4RecStarConfig(use_time=True)
    with pytest.raises(ValueError, match="time_mlp"):
        make_model("tim4rec", time_mlp="dense")
    with pytest.raises(ValueError, match="time_gap_padding"):
        make_model("tim4rec", time_gap_padding="zero")
    with pytest.raises(ValueError, match="head_dim"):
        make_model("ssd4rec", head_dim=5)
    with pytest.raises(ValueError, match="time_scale"):
        make_model("ss4rec", time_norm="scale")
    model = make_model("tim4rec")
    items, times = full_sequences(b=1, l=13)
    with pytest.raises(ValueError, match="max_len"):
        model.encode(make_batch(items, times, [13], width=13))
    with pytest.raises(ValueError, match="time_seq"):
        model.encode({"item_seq": items[:, :5]})
