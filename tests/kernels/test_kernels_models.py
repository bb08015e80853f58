"""TiM4Rec, SSD4Rec* and SSD4Rec through mamba-ssm's SSD kernel vs the torch path.

One training step each (float32, small configs, two layers, chunk 8 on rows of 10): with
``SSMLAB_BACKEND=mamba_ssm`` every SSD call of the model goes through the Triton kernel (run by
the interpreter, see ``conftest.py``), with ``SSMLAB_BACKEND=torch`` through ``ssd_chunked``.
The loss and the gradient of every parameter must agree to float32 round-off. SSD4Rec packs
the batch into one row (``seq_idx``) and runs each block forward and on every sequence reversed.
"""

from __future__ import annotations

import pytest
import torch

from ssmlab.models import build_model

N_ITEMS, WIDTH, LENGTHS = 30, 10, [10, 6, 3]  # off the chunk grid of 8
SMALL = {"d_model": 16, "max_len": WIDTH, "dropout": 0.0, "d_state": 8, "head_dim": 8}
CASES = {
    # name: (registry name, config fields, number of SSD calls in one training step)
    "tim4rec": ("tim4rec", {"chunk_size": 8, "time_dropout": 0.0}, 2),
    "ssd4rec_star": ("ssd4rec_star", {"chunk_size": 8}, 2),
    "ssd4rec": ("ssd4rec", {"chunk_size": 8, "mask_ratio": 0.2}, 4),
}
RTOL = 1e-4  # relative to the largest entry of each gradient; float32 through two layers


def make_batch():
    """A right-padded batch: histories of LENGTHS, each followed by its target."""
    gen = torch.Generator().manual_seed(0)
    items = torch.randint(1, N_ITEMS + 1, (len(LENGTHS), WIDTH + 1), generator=gen)
    times = 1_600_000_000 + torch.randint(0, 5000, items.shape, generator=gen).cumsum(1)
    batch = {"item_seq": torch.zeros(len(LENGTHS), WIDTH, dtype=torch.long)}
    batch["time_seq"] = torch.zeros_like(batch["item_seq"])
    for row, n in enumerate(LENGTHS):
        batch["item_seq"][row, :n], batch["time_seq"][row, :n] = items[row, :n], times[row, :n]
    rows, lens = torch.arange(len(LENGTHS)), torch.tensor(LENGTHS)
    batch |= {"item_seq_len": lens, "target": items[rows, lens], "target_time": times[rows, lens]}
    return batch


def training_step(model, batch):
    """Loss and the gradient of every parameter (the same random masks on both paths)."""
    model.zero_grad()
    torch.manual_seed(1)  # SSD4Rec masks items at random in training
    loss = model.calculate_loss(batch)
    loss.backward()
    grads = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), {name: grad.clone() for name, grad in grads.items()}


@pytest.mark.parametrize("case", list(CASES))
def test_model_step_kernel_vs_torch(case, monkeypatch, kernel_calls):
    name, fields, n_calls = CASES[case]
    torch.manual_seed(0)
    model = build_model(name, N_ITEMS, **SMALL, **fields).train()
    batch = make_batch()
    monkeypatch.setenv("SSMLAB_BACKEND", "torch")
    loss_ref, grads_ref = training_step(model, batch)
    assert kernel_calls == []
    monkeypatch.setenv("SSMLAB_BACKEND", "mamba_ssm")
    loss, grads = training_step(model, batch)
    assert kernel_calls == ["mamba_chunk_scan_combined"] * n_calls
    print(f"{case}: loss {loss.item():.6f} (torch {loss_ref.item():.6f})")
    torch.testing.assert_close(loss, loss_ref, rtol=1e-6, atol=0)
    assert grads.keys() == grads_ref.keys()  # the same parameters get gradients
    worst = ("", 0.0)
    for param, ref in grads_ref.items():
        assert torch.isfinite(grads[param]).all(), f"{case} {param}: non-finite gradient"
        error = ((grads[param] - ref).abs().max() / ref.abs().max().clamp_min(1e-6)).item()
        worst = max(worst, (param, error), key=lambda pair: pair[1])
        assert error < RTOL, f"{case} {param}: relative gradient error {error:.1e}"
    print(f"{case}: {len(grads)} parameter gradients, worst {worst[0]} {worst[1]:.1e}")
