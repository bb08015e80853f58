"""The five SSM recommenders: shapes, causality, padding, packing, time queries, learning."""

from __future__ import annotations

import pytest
import torch

from ssmlab.layers.ssd import SequenceLinear
from ssmlab.models import build_model
from ssmlab.models.ss4rec import query_gaps
from ssmlab.models.ssd4rec import pack
from ssmlab.models.ssd4rec_star import SSD4RecStarConfig

N_ITEMS = 30
T0 = 1_600_000_000
SMALL = {"d_model": 16, "max_len": 12, "dropout": 0.1}
SSD_SMALL = {"d_state": 8, "head_dim": 8, "chunk_size": 4, "backend": "torch"}
CASES = {
    "mamba4rec": ("mamba4rec", {"n_layers": 2, "d_state": 4, "backend": "torch"}),
    "tim4rec": ("tim4rec", dict(SSD_SMALL)),
    "tim4rec_causal": ("tim4rec", dict(SSD_SMALL, time_mlp="causal")),
    "tim4rec_causal_p2p": ("tim4rec", dict(SSD_SMALL, time_mlp="causal", p2p_residual=True)),
    "ssd4rec_star": ("ssd4rec_star", dict(SSD_SMALL)),
    "ssd4rec": ("ssd4rec", dict(SSD_SMALL, mask_ratio=0.2)),
    "ss4rec": ("ss4rec", {"s5_state": 8, "d_state": 4, "backend": "torch"}),
}
CAUSAL = ["mamba4rec", "tim4rec_causal", "tim4rec_causal_p2p", "ssd4rec_star", "ss4rec"]


def make_model(case: str, double: bool = True, **override):
    name, fields = CASES[case]
    model = build_model(name, N_ITEMS, **{**SMALL, **fields, **override})
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


@pytest.mark.parametrize("case", list(CASES))
def test_shapes_scores_and_eval_determinism(case):
    model = make_model(case).eval()
    items, times = full_sequences()
    batch = make_batch(items, times, [10, 6, 1], width=10)
    assert model.encode(batch).shape == (3, 10, 16)
    assert model(batch["item_seq"], batch["item_seq_len"], batch["time_seq"]).shape == (3, 16)
    scores = model.full_sort_predict(batch)
    assert scores.shape == (3, N_ITEMS + 1)
    assert torch.all(scores[:, 0] == float("-inf")) and torch.isfinite(scores[:, 1:]).all()
    torch.testing.assert_close(model.full_sort_predict(batch), scores, rtol=0, atol=0)
    model.train()
    assert not torch.equal(model.encode(batch), model.encode(batch))  # dropout / masking
    assert torch.isfinite(model.calculate_loss(batch))


def _prefix_and_suffix_change(model, batch, batch2, t):
    h, h2 = model.encode(batch), model.encode(batch2)
    diff = (h - h2).abs()
    return diff[:, : t + 1].max().item(), diff[:, t + 1 :].max().item()


@pytest.mark.parametrize("case", CAUSAL)
def test_causal_models_ignore_the_future(case):
    """Changing items after t, or timestamps after t + 1, leaves outputs <= t unchanged."""
    model = boost_time_path(make_model(case)).eval()
    assert model.causal and "all" in model.objectives
    items, times = full_sequences(b=2, l=10)
    t = 4
    batch = make_batch(items, times, [10, 10], 10)
    items2 = items.clone()
    items2[:, t + 1 :] = torch.randint(1, N_ITEMS + 1, items2[:, t + 1 :].shape)
    changed = make_batch(items2, times, [10, 10], 10)
    before, after = _prefix_and_suffix_change(model, batch, changed, t)
    print(case, "items changed after t: max diff <= t", before, "after t", after)
    assert before < 1e-12 and after > 1e-6
    # SS4Rec's output t reads t_{t+1} by design (its query time): change timestamps from t + 2
    first = t + 2 if case == "ss4rec" else t + 1
    times2 = times.clone()
    times2[:, first:] += 10_000 * torch.arange(1, times.shape[1] - first + 1)  # stays sorted
    changed = make_batch(items, times2, [10, 10], 10)
    before, after = _prefix_and_suffix_change(model, batch, changed, t)
    print(case, "times changed from", first, ": max diff <= t", before, "after t", after)
    assert before < 1e-12
    if case.startswith(("tim4rec", "ss4rec")):  # time-aware: later outputs do move
        assert after > 1e-10


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


@pytest.mark.parametrize("case", list(CASES))
def test_padding_invariance(case):
    model = make_model(case).eval()
    items, times = full_sequences(b=3, l=8)
    lens = [8, 5, 2]
    narrow = model.encode(make_batch(items, times, lens, width=8))
    wide = model.encode(make_batch(items, times, lens, width=12))
    real = torch.arange(8) < torch.tensor(lens)[:, None]
    diff = (narrow - wide[:, :8]).abs()[real].max().item()
    print(case, "max diff at real positions:", diff)
    assert diff < 1e-10
    p1 = model.full_sort_predict(make_batch(items, times, lens, width=8))
    p2 = model.full_sort_predict(make_batch(items, times, lens, width=12))
    torch.testing.assert_close(p1, p2)


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


def _next_item_task(b=16, l=6, seed=0):
    """Next item = current + 1 (cyclic): a tiny task every model can fit."""
    g = torch.Generator().manual_seed(seed)
    start = torch.randint(1, N_ITEMS + 1, (b, 1), generator=g)
    items = (start - 1 + torch.arange(l + 1)) % N_ITEMS + 1
    times = T0 + torch.randint(1, 3600, (b, l + 1), generator=g).cumsum(1)
    lens = torch.randint(2, l + 1, (b,), generator=g).tolist()
    return make_batch(items, times, lens, width=l)


@pytest.mark.parametrize(
    "case,objective", [(c, o) for c in CASES for o in ("last", "all") if o == "last" or c in CAUSAL]
)
def test_loss_falls_within_20_adam_steps(case, objective):
    torch.manual_seed(0)
    model = make_model(case, double=False, dropout=0.0)
    batch = _next_item_task()
    optim = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        loss = model.calculate_loss(batch, objective=objective)
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(loss.item())
    print(case, objective, "loss", losses[0], "->", losses[-1])
    assert losses[-1] < 0.7 * losses[0]
