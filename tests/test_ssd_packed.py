"""Packed variable-length SSD (seq_idx), the Bi-SSD core, reverse_within and time_deltas."""

from __future__ import annotations

import pytest
import torch

from ssmlab.ssm import (
    ssd,
    ssd_bidirectional,
    ssd_chunked,
    ssd_quadratic,
    ssd_recurrent,
    time_deltas,
)
from ssmlab.ssm.ssd import reverse_within

LENGTHS = (7, 13, 20)  # packed into one row of 40; chunk 16 puts boundaries inside chunks
FORMS = {
    "recurrent": ssd_recurrent,
    "quadratic": ssd_quadratic,
    "chunked": ssd_chunked,
    "ssd_torch": lambda *a, **k: ssd(*a, **k, backend="torch"),
}


def packed_inputs(seed=0, h=4, p=3, g=2, n=5):
    gen = torch.Generator().manual_seed(seed)
    seqlen = sum(LENGTHS)

    def rand(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    inputs = dict(
        x=rand(1, seqlen, h, p),
        dt=torch.rand(1, seqlen, h, generator=gen, dtype=torch.float64) * 0.5 + 0.01,
        A=-(torch.rand(h, generator=gen, dtype=torch.float64) + 0.2),
        B=rand(1, seqlen, g, n),
        C=rand(1, seqlen, g, n),
        D=rand(h),
    )
    seq_idx = torch.cat([torch.full((k,), s) for s, k in enumerate(LENGTHS)])[None]  # (1 l)
    return inputs, seq_idx, rand(1, h, p, n)


def bounds():
    ends = torch.tensor(LENGTHS).cumsum(0).tolist()
    return list(zip([0, *ends[:-1]], ends))


def sliced(inputs, s, e):
    return {k: (v if k in ("A", "D") else v[:, s:e]) for k, v in inputs.items()}


@pytest.mark.parametrize("form", list(FORMS))
def test_packed_equals_separate_values_and_gradients(form):
    fn = FORMS[form]
    inputs, seq_idx, h0 = packed_inputs()
    w = torch.randn(inputs["x"].shape, dtype=torch.float64)
    leaves = {k: v.clone().requires_grad_() for k, v in inputs.items()}
    h0_leaf = h0.clone().requires_grad_()
    y, final = fn(
        **leaves, chunk_size=16, seq_idx=seq_idx, initial_states=h0_leaf, return_final_states=True
    )
    (y * w).sum().backward()
    sep_leaves = {k: v.clone().requires_grad_() for k, v in inputs.items()}
    sep_h0 = h0.clone().requires_grad_()
    ys = []
    for i, (s, e) in enumerate(bounds()):  # initial states reach the first sequence only
        y_s, final_s = fn(
            **sliced(sep_leaves, s, e),
            chunk_size=16,
            return_final_states=True,
            initial_states=sep_h0 if i == 0 else None,
        )
        ys.append(y_s)
    y_sep = torch.cat(ys, dim=1)
    (y_sep * w).sum().backward()
    checks = {"y": (y, y_sep), "final (last sequence)": (final, final_s)}
    checks |= {f"d{k}": (leaves[k].grad, sep_leaves[k].grad) for k in inputs}
    checks["dinitial_states"] = (h0_leaf.grad, sep_h0.grad)
    for what, (got, ref) in checks.items():
        print(f"{form} packed vs separate {what}: max abs diff {(got - ref).abs().max():.3e}")
        torch.testing.assert_close(got, ref, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("form", list(FORMS))
def test_no_state_crosses_a_sequence_boundary(form):
    inputs, seq_idx, _ = packed_inputs()
    y = FORMS[form](**inputs, chunk_size=16, seq_idx=seq_idx)
    changed = {k: v.clone() for k, v in inputs.items()}
    s, e = bounds()[0]
    changed["x"][:, s:e] = 1e6
    changed["dt"][:, s:e] = 1e-9  # barely decaying: a leak would carry the 1e6 inputs along
    changed["B"][:, s:e] *= -3
    y2 = FORMS[form](**changed, chunk_size=16, seq_idx=seq_idx)
    diff = (y2[:, e:] - y[:, e:]).abs().max().item()
    print(f"{form}: later sequences changed by {diff:.3e}")
    assert diff == 0.0
    assert (y2[:, s:e] - y[:, s:e]).abs().max() > 1.0  # the change did reach its own sequence


def test_bidirectional_matches_explicit_reversal_per_sequence():
    inputs, seq_idx, _ = packed_inputs(seed=1)
    inputs.pop("D")
    y_fwd, y_bwd = ssd_bidirectional(**inputs, seq_idx=seq_idx, chunk_size=16)
    ref_fwd = ssd_recurrent(**inputs, seq_idx=seq_idx)
    ref_bwd = []
    for s, e in bounds():
        part = sliced(inputs, s, e)
        flipped = {k: (v if k == "A" else v.flip(1)) for k, v in part.items()}
        ref_bwd.append(ssd_recurrent(**flipped).flip(1))
    ref_bwd = torch.cat(ref_bwd, dim=1)
    for what, got, ref in (("y_fwd", y_fwd, ref_fwd), ("y_bwd", y_bwd, ref_bwd)):
        print(f"bidirectional {what}: max abs diff {(got - ref).abs().max():.3e}")
        torch.testing.assert_close(got, ref, atol=1e-10, rtol=1e-10)


def test_bidirectional_isolation_and_whole_row():
    inputs, seq_idx, _ = packed_inputs(seed=2)
    _, y_bwd = ssd_bidirectional(**inputs, seq_idx=seq_idx, chunk_size=16)
    changed = {k: v.clone() for k, v in inputs.items()}
    s, e = bounds()[-1]
    changed["x"][:, s:e] = 1e6  # the last sequence must not reach earlier ones backwards
    _, y_bwd2 = ssd_bidirectional(**changed, seq_idx=seq_idx, chunk_size=16)
    diff = (y_bwd2[:, :s] - y_bwd[:, :s]).abs().max().item()
    print(f"backward pass: earlier sequences changed by {diff:.3e}")
    assert diff == 0.0
    # without seq_idx the whole row is one sequence, reversed as a whole
    _, y_row = ssd_bidirectional(**inputs, chunk_size=16)
    flipped = {k: (v if k in ("A", "D") else v.flip(1)) for k, v in inputs.items()}
    ref = ssd_chunked(**flipped, chunk_size=16).flip(1)
    print(f"whole-row y_bwd: max abs diff {(y_row - ref).abs().max():.3e}")
    torch.testing.assert_close(y_row, ref, atol=1e-10, rtol=1e-10)


def test_reverse_within_values_and_involution():
    t = torch.arange(6)[None]
    seq_idx = torch.tensor([[0, 0, 0, 1, 1, 2]])
    assert reverse_within(t, seq_idx).tolist() == [[2, 1, 0, 4, 3, 5]]
    assert reverse_within(t).tolist() == [[5, 4, 3, 2, 1, 0]]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 25, 2, 4, generator=gen)
    seq = torch.randint(0, 3, (3, 25), generator=gen).sort(dim=1).values
    seq[1] = torch.randint(0, 2, (25,), generator=gen)  # values that come back: new sequences
    once = reverse_within(x, seq)
    assert not torch.equal(once, x)
    assert torch.equal(reverse_within(once, seq), x)
    assert torch.equal(reverse_within(seq, seq), seq)  # each value stays in its own sequence
    with pytest.raises(ValueError, match="seq_idx"):
        reverse_within(x, seq[:, :3])


def test_time_deltas_values_resets_and_padding():
    t = torch.tensor([[10, 15, 15, 40, 41], [100, 200, 0, 0, 0]])
    assert time_deltas(t).tolist() == [[0, 5, 0, 25, 1], [0, 100, 0, 0, 0]]  # padding clamped
    seq_idx = torch.tensor([[0, 0, 1, 1, 1], [0, 0, 0, 0, 0]])
    assert time_deltas(t, seq_idx).tolist() == [[0, 5, 0, 25, 1], [0, 100, 0, 0, 0]]
    t2 = torch.tensor([[10.0, 15.5, 100.0, 130.0, 131.25]], dtype=torch.float64)
    d2 = time_deltas(t2, torch.tensor([[0, 0, 1, 1, 1]]))
    assert d2.dtype == torch.float64
    assert d2.tolist() == [[0.0, 5.5, 0.0, 30.0, 1.25]]  # no gap across the two users


def test_time_deltas_int64_exact_for_unix_seconds():
    base = 1_700_000_000  # Unix seconds (2023); float32 would round these to multiples of 128
    gaps = torch.tensor([0, 1, 3, 86_400, 7, 31_536_000 * 20])
    t = (base + gaps.cumsum(0))[None]
    d = time_deltas(t)
    assert d.dtype == torch.int64
    assert d[0, 1:].tolist() == gaps[1:].tolist() and d[0, 0].item() == 0
    wide = torch.tensor([[2**40, 2**40 + 1]])
    assert time_deltas(wide).tolist() == [[0, 1]]


@pytest.mark.parametrize(
    "ts, seq_idx, match",
    [
        (torch.arange(5), None, "timestamps must"),
        (torch.ones(1, 5, dtype=torch.bool), None, "dtype"),
        (torch.ones(1, 5), torch.zeros(1, 4, dtype=torch.long), "seq_idx must"),
    ],
)
def test_time_deltas_bad_input(ts, seq_idx, match):
    with pytest.raises(ValueError, match=match):
        time_deltas(ts, seq_idx)
