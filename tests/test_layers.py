"""Blocks of ssmlab.layers: norms, causal conv, FFN, Mamba, SSD, time-aware SSD, Bi-SSD, S5."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ssmlab.layers import dropout as dropout_module
from ssmlab.layers.bissd import BiSSDBlock, reversed_prefix_outputs
from ssmlab.layers.conv import CausalConv1d, ShiftedConv
from ssmlab.layers.dropout import Dropout, dropout
from ssmlab.layers.ffn import FeedForward, recbole_init
from ssmlab.layers.mamba import MambaBlock
from ssmlab.layers.norm import GatedRMSNorm, PrefixLayerNorm, RMSNorm
from ssmlab.layers.s5 import S5Block
from ssmlab.layers.ssd import SequenceLinear, SSDBlock, TimeAwareSSDBlock

SSD_KW = {"d_state": 8, "head_dim": 8, "chunk_size": 4, "backend": "torch"}


def _assert_prefix_unchanged(f, x, x2, t):
    """Outputs at positions <= t agree for inputs that differ only after t; later ones differ."""
    y, y2 = f(x), f(x2)
    diff = (y - y2).abs()
    print(
        "max diff <= t:", diff[:, : t + 1].max().item(), "after t:", diff[:, t + 1 :].max().item()
    )
    assert torch.allclose(y[:, : t + 1], y2[:, : t + 1], atol=1e-12, rtol=0)
    assert diff[:, t + 1 :].max() > 1e-6


# -- norms ---------------------------------------------------------------------------------------
def test_rmsnorm_and_gated_rmsnorm_match_formula():
    y, z = torch.randn(2, 5, 8, dtype=torch.float64), torch.randn(2, 5, 8, dtype=torch.float64)
    norm = GatedRMSNorm(8, eps=1e-6).double()
    norm.weight.data = torch.rand(8, dtype=torch.float64)
    g = y * F.silu(z)
    expected = g / torch.sqrt(g.pow(2).mean(-1, keepdim=True) + 1e-6) * norm.weight
    torch.testing.assert_close(norm(y, z), expected)
    before = GatedRMSNorm(8, eps=1e-6, norm_before_gate=True, group_size=4).double()
    yg = y.unflatten(-1, (2, 4))
    ref = (yg / torch.sqrt(yg.pow(2).mean(-1, keepdim=True) + 1e-6)).flatten(-2) * F.silu(z)
    torch.testing.assert_close(before(y, z), ref)
    plain = RMSNorm(8, eps=1e-6).double()
    torch.testing.assert_close(plain(y), y / torch.sqrt(y.pow(2).mean(-1, keepdim=True) + 1e-6))
    with pytest.raises(ValueError, match="group_size"):
        GatedRMSNorm(8, group_size=3)


def test_prefix_layernorm_uses_prefix_statistics_only():
    x = torch.rand(3, 7, dtype=torch.float64) * 1e7  # raw-second scale
    norm = PrefixLayerNorm(10, eps=1e-5).double()
    y = norm(x)
    for t in range(1, 7):
        ref = F.layer_norm(x[:, : t + 1], (t + 1,), eps=1e-5)[:, -1]
        torch.testing.assert_close(y[:, t], ref)
    assert torch.all(y[:, 0] == 0)  # variance 0 at position 0 -> the bias
    x2 = x.clone()
    x2[:, 4:] += 1e6
    _assert_prefix_unchanged(norm, x, x2, 3)
    with pytest.raises(ValueError, match="max_len"):
        norm(torch.zeros(1, 11))


# -- dropout ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.1, 0.4, 0.9])
def test_dropout_cpu_mask_has_the_law_and_gradient_of_f_dropout(p):
    n = 200_000
    x = (torch.rand(n, dtype=torch.float64) + 0.5).requires_grad_()  # no zeros: kept = y != 0
    dy = torch.randn(n, dtype=torch.float64)
    tolerance = 5 * (p * (1 - p) / n) ** 0.5  # 5 binomial standard deviations
    for fn in (lambda t: dropout(t, p), lambda t: F.dropout(t, p, True)):  # fast, reference
        y = fn(x)
        kept = y != 0
        assert abs(kept.double().mean().item() - (1 - p)) < tolerance
        torch.testing.assert_close(y[kept], x[kept] / (1 - p))  # kept values scaled by 1/(1-p)
        (grad,) = torch.autograd.grad(y, x, dy)
        torch.testing.assert_close(grad, dy * kept / (1 - p))  # the same mask, no grad through it
    assert not torch.equal(dropout(x, p) != 0, dropout(x, p) != 0)  # fresh draws per call


def test_dropout_module_is_nn_dropout_and_falls_back_to_it():
    x = torch.randn(64, 8)
    layer = Dropout(0.3)
    assert isinstance(layer, nn.Dropout) and layer.state_dict() == {}
    assert layer.eval()(x) is x and dropout(x, 0.0) is x and dropout(x, 0.5, False) is x
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))
    with pytest.raises(ValueError, match="probability"):
        dropout(x, 1.5)
    layer.train()
    dropout_module.CPU_UNIFORM = False  # the reference path: F.dropout, draw for draw
    try:
        torch.manual_seed(0)
        ref = layer(x)
    finally:
        dropout_module.CPU_UNIFORM = True
    torch.manual_seed(0)
    torch.testing.assert_close(ref, F.dropout(x, 0.3, True))
    before = x.clone()
    torch.manual_seed(0)
    fast = layer(x)
    torch.manual_seed(0)
    torch.testing.assert_close(fast, x * (torch.rand_like(x) >= 0.3) / 0.7)
    assert torch.equal(x, before)  # not in place


# -- causal conv ---------------------------------------------------------------------------------
def test_causal_conv_matches_conv1d_and_respects_seq_idx():
    conv = CausalConv1d(6, kernel_size=4).double()
    x = torch.randn(2, 9, 6, dtype=torch.float64)
    ref = F.conv1d(F.pad(x.transpose(1, 2), (3, 0)), conv.weight, conv.bias, groups=6)
    ref = ref.transpose(1, 2)
    torch.testing.assert_close(conv(x), ref)
    # packed row of sequences of length 4 and 5 == each sequence alone
    seq_idx = torch.tensor([[0] * 4 + [1] * 5])
    packed = conv(x[:1], seq_idx)
    torch.testing.assert_close(packed[:, :4], conv(x[:1, :4]))
    torch.testing.assert_close(packed[:, 4:], conv(x[:1, 4:]))
    torch.testing.assert_close(conv(x, torch.zeros(2, 9, dtype=torch.long)), conv(x))
    x2 = x.clone()
    x2[:, 6:] = 0
    _assert_prefix_unchanged(conv, x, x2, 5)


@pytest.mark.parametrize("l", [1, 3, 4, 9])  # shorter than, equal to and longer than K = 4
@pytest.mark.parametrize("bias", [True, False])
def test_causal_conv_cpu_fast_path_matches_conv1d_gradients(l, bias):
    conv = CausalConv1d(6, kernel_size=4, bias=bias).double()
    base = torch.randn(2, 6, l + 2, dtype=torch.float64).transpose(1, 2)[:, 1:-1]  # strided
    x = base.detach().requires_grad_()
    dy = torch.randn(2, l, 6, dtype=torch.float64).transpose(0, 1).contiguous().transpose(0, 1)
    fast = conv(x)  # ShiftedConv on the CPU
    grads = torch.autograd.grad(fast, [x, *conv.parameters()], dy)
    ref = F.conv1d(F.pad(x.transpose(1, 2), (3, 0)), conv.weight, conv.bias, groups=6)
    ref = ref.transpose(1, 2)
    ref_grads = torch.autograd.grad(ref, [x, *conv.parameters()], dy)
    torch.testing.assert_close(fast, ref)
    for got, want in zip(grads, ref_grads, strict=True):  # x, weight (, bias)
        torch.testing.assert_close(got, want)
    assert torch.autograd.gradcheck(ShiftedConv.apply, (x, conv.weight, conv.bias))


# -- FFN and init --------------------------------------------------------------------------------
def test_feedforward_formula_and_recbole_init():
    ffn = FeedForward(8, 32, dropout=0.5, activation="hardswish").double().eval()
    x = torch.randn(2, 3, 8, dtype=torch.float64)
    h = ffn.fc2(F.hardswish(ffn.fc1(x)))
    expected = F.layer_norm(h + x, (8,), ffn.norm.weight, ffn.norm.bias, 1e-12)
    torch.testing.assert_close(ffn(x), expected)
    ffn.train()
    assert not torch.equal(ffn(x), ffn(x))  # dropout active in training
    with pytest.raises(ValueError, match="activation"):
        FeedForward(8, activation="tanh")
    m = nn.ModuleDict(
        {
            "emb": nn.Embedding(50, 64, padding_idx=0),
            "lin": nn.Linear(64, 512),
            "conv": nn.Conv1d(4, 4, 3, groups=4),
        }
    )
    m.apply(lambda mod: recbole_init(mod, kaiming_conv=True))
    assert abs(m["lin"].weight.std().item() - 0.02) < 0.002
    assert torch.all(m["lin"].bias == 0) and torch.all(m["conv"].bias == 0)
    assert torch.all(m["emb"].weight[0] == 0)


# -- Mamba (S6) ----------------------------------------------------------------------------------
def test_mamba_block_shape_and_causality():
    block = MambaBlock(8, d_state=4, d_conv=3, expand=2, backend="torch").double()
    x = torch.randn(2, 7, 8, dtype=torch.float64)
    assert block(x).shape == (2, 7, 8)
    x2 = x.clone()
    x2[:, 4:] = torch.randn(2, 3, 8, dtype=torch.float64)
    _assert_prefix_unchanged(block, x, x2, 3)
    assert block.dt_rank == 1 and block.A_log.shape == (16, 4)


# -- SSD -----------------------------------------------------------------------------------------
def test_ssd_block_causal_chunk_invariant_and_packed_equals_separate():
    block = SSDBlock(16, **SSD_KW).double()
    x = torch.randn(2, 10, 16, dtype=torch.float64)
    y = block(x)
    block.chunk_size = 64
    torch.testing.assert_close(block(x), y)  # the chunk size changes speed, not values
    x2 = x.clone()
    x2[:, 6:] += 1.0
    _assert_prefix_unchanged(block, x, x2, 5)
    seq_idx = torch.tensor([[0] * 3 + [1] * 7])
    packed = block(x[:1], seq_idx)
    torch.testing.assert_close(packed[:, :3], block(x[:1, :3]))
    torch.testing.assert_close(packed[:, 3:], block(x[:1, 3:]))
    with pytest.raises(ValueError, match="head_dim"):
        SSDBlock(16, head_dim=5)


def test_time_aware_block_with_unit_time_and_no_time_path_is_ssd_block():
    plain = SSDBlock(16, bias=True, **SSD_KW).double()
    timed = TimeAwareSSDBlock(16, max_len=10, time_path=False, bias=True, **SSD_KW).double()
    missing, unexpected = timed.load_state_dict(plain.state_dict(), strict=False)
    assert not missing and not unexpected
    x = torch.randn(2, 10, 16, dtype=torch.float64)
    ones = torch.ones(2, timed.n_heads, 10, dtype=torch.float64)
    out, feat = timed(x, ones)
    torch.testing.assert_close(out, plain(x))
    assert feat is ones
    # with the time path on, time changes the output
    on = TimeAwareSSDBlock(16, max_len=10, **SSD_KW).double()
    feat = torch.randn(2, on.n_heads, 10, dtype=torch.float64)
    assert not torch.allclose(on(x, feat)[0], on(x, feat * 3)[0])


@pytest.mark.parametrize("kind", ["positional", "causal"])
def test_time_aware_block_causality_by_form(kind):
    torch.manual_seed(1)
    block = (
        TimeAwareSSDBlock(16, max_len=10, time_mlp=kind, p2p_residual=kind == "causal", **SSD_KW)
        .double()
        .eval()
    )
    for mod in block.modules():  # larger weights so the time path visibly matters
        if isinstance(mod, SequenceLinear):
            nn.init.normal_(mod.weight, std=0.5)
    x = torch.randn(1, 10, 16, dtype=torch.float64)
    feat = torch.randn(1, block.n_heads, 10, dtype=torch.float64)
    feat2 = feat.clone()
    feat2[..., 7:] += 2.0  # future time only
    (y, f), (y2, f2) = block(x, feat), block(x, feat2)
    early = (y[:, :7] - y2[:, :7]).abs().max().item()
    print(kind, "max change at positions < 7:", early)
    if kind == "causal":
        assert early < 1e-12 and (f[..., :7] - f2[..., :7]).abs().max() < 1e-12
    else:
        assert early > 1e-6  # the authors' Linear(L, L) reads future gaps


def test_sequence_linear_masks():
    lin = SequenceLinear(6, causal=True).double()
    x = torch.randn(2, 4, dtype=torch.float64)
    torch.testing.assert_close(lin(x), x @ lin.weight[:4, :4].tril().T + lin.bias[:4])
    gate = SequenceLinear(6, 1, causal=True).double()
    torch.testing.assert_close(gate(x)[:, 2], x[:, :3] @ gate.weight[0, :3] + gate.bias)
    with pytest.raises(ValueError, match="max_len"):
        SequenceLinear(6)(x)


# -- Bi-SSD --------------------------------------------------------------------------------------
@pytest.mark.parametrize("flip_back", [False, True])
def test_bissd_block_packed_equals_separate_and_is_bidirectional(flip_back):
    block = BiSSDBlock(16, beta=0.5, dropout=0.1, flip_back=flip_back, **SSD_KW).double().eval()
    x = torch.randn(1, 9, 16, dtype=torch.float64)
    seq_idx = torch.tensor([[0] * 4 + [1] * 5])
    packed = block(x, seq_idx)
    torch.testing.assert_close(packed[:, :4], block(x[:, :4]))
    torch.testing.assert_close(packed[:, 4:], block(x[:, 4:]))
    x2 = x.clone()
    x2[:, 3] += 1.0  # last item of the first sequence
    y2 = block(x2, seq_idx)
    assert (packed[:, :3] - y2[:, :3]).abs().max() > 1e-6  # earlier positions see it
    torch.testing.assert_close(packed[:, 4:], y2[:, 4:])  # the other sequence does not


@pytest.mark.parametrize("flip_back", [False, True])
def test_bissd_block_padded_rows_equal_separate_sequences(flip_back):
    block = BiSSDBlock(16, beta=0.5, dropout=0.1, flip_back=flip_back, **SSD_KW).double().eval()
    x = torch.randn(2, 9, 16, dtype=torch.float64)
    lengths = torch.tensor([4, 9])
    y = block(x, lengths=lengths)
    torch.testing.assert_close(y[:1, :4], block(x[:1, :4]))  # the padding after it: no effect
    torch.testing.assert_close(y[1:], block(x[1:]))
    with pytest.raises(ValueError, match="not both"):
        block(x, torch.zeros(2, 9, dtype=torch.long), lengths)
    with pytest.raises(ValueError, match="lengths"):
        block(x, lengths=torch.tensor([0, 9]))


@pytest.mark.parametrize("d_conv", [1, 2, 4])
@pytest.mark.parametrize("l", [1, 2, 3, 4, 9])
def test_bissd_prefix_forward_equals_the_block_on_each_prefix(d_conv, l):
    """prefix_forward's output t (and reversed_prefix_outputs') is the block run on x[:, :t+1]
    alone, read at t: outputs and gradients, every prefix length against the conv width."""
    torch.manual_seed(l)
    kw = {**SSD_KW, "d_conv": d_conv}
    block = BiSSDBlock(16, beta=0.5, dropout=0.1, **kw).double().eval()
    block.ssd.D.data.uniform_(0.5, 1.5)  # a skip term away from its init
    x = torch.randn(3, l, 16, dtype=torch.float64, requires_grad=True)
    ref = torch.stack([block(x[:, : t + 1])[:, t] for t in range(l)], 1)
    ref_bwd = torch.stack([block.ssd(x[:, : t + 1].flip(1))[:, t] for t in range(l)], 1)
    got = block.prefix_forward(x)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(reversed_prefix_outputs(block.ssd, x), ref_bwd, rtol=0, atol=1e-12)
    weight = torch.randn_like(ref)
    names = ["x", *(name for name, _ in block.named_parameters())]
    params = [x, *block.parameters()]
    for name, g_got, g_ref in zip(
        names,
        torch.autograd.grad((got * weight).sum(), params),
        torch.autograd.grad((ref * weight).sum(), params),
        strict=True,
    ):
        # A = -exp(A_log.float()) in float32 in both paths: its gradient agrees to float32
        rtol = 1e-6 if name == "ssd.A_log" else 0
        torch.testing.assert_close(g_got, g_ref, rtol=rtol, atol=1e-12, msg=name)
    with pytest.raises(ValueError, match="flip_back"):
        BiSSDBlock(16, flip_back=True, **SSD_KW).prefix_forward(x.float())


@pytest.mark.parametrize("flip_back", [False, True])
def test_bissd_at_reads_one_position_with_the_same_values_and_gradients(flip_back):
    """``at`` runs the norms, out_projs and FFN at one position per row: the same outputs and
    gradients as the block at every position read there (padded rows, and the prefix form)."""
    torch.manual_seed(0)
    block = BiSSDBlock(16, beta=0.5, dropout=0.1, flip_back=flip_back, **SSD_KW).double().eval()
    x = torch.randn(3, 7, 16, dtype=torch.float64, requires_grad=True)
    lengths, at = torch.tensor([7, 2, 5]), torch.tensor([6, 1, 4])
    rows = torch.arange(3)
    forms = [(lambda a: block(x, lengths=lengths, at=a))]
    if not flip_back:
        forms.append(lambda a: block.prefix_forward(x, a))
    params = [x, *block.parameters()]
    for form in forms:
        got, ref = form(at), form(None)[rows, at]
        torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)
        weight = torch.randn_like(ref)
        grads = zip(
            torch.autograd.grad((got * weight).sum(), params, allow_unused=True),
            torch.autograd.grad((ref * weight).sum(), params, allow_unused=True),
            strict=True,
        )
        for g_got, g_ref in grads:
            if g_ref is None:
                assert g_got is None
            else:
                torch.testing.assert_close(g_got, g_ref, rtol=1e-6, atol=1e-12)


# -- S5 ------------------------------------------------------------------------------------------
def test_s5_block_time_aware_causal_and_finite():
    block = S5Block(8, d_state=6).double()
    x = torch.randn(2, 7, 8, dtype=torch.float64)
    gap = torch.randint(0, 10_000, (2, 7))
    y = block(x, gap)
    assert y.shape == (2, 7, 8) and y.dtype == torch.float64
    assert not torch.allclose(block(x, gap * 50), y)  # the step follows the real interval
    x2, gap2 = x.clone(), gap.clone()
    x2[:, 5:] += 1.0
    gap2[:, 5:] += 3600
    y2 = block(x2, gap2)
    torch.testing.assert_close(y2[:, :5], y[:, :5])  # causal in inputs and gaps
    assert (y2[:, 5:] - y[:, 5:]).abs().max() > 1e-6
    huge = block(x, torch.full((2, 7), 10**9))  # decades between events
    zero = block(x, torch.zeros(2, 7, dtype=torch.long))
    assert torch.isfinite(huge).all() and torch.isfinite(zero).all()
    (huge.sum() + zero.sum()).backward()
    assert all(torch.isfinite(p.grad).all() for p in block.parameters())
    steps = block.log_step.exp()
    assert steps.min() >= 1e-3 - 1e-12 and steps.max() <= 1e-1 + 1e-12
    log_block = S5Block(8, d_state=6, time_norm="log1p").double()
    assert torch.isfinite(log_block(x, torch.full((2, 7), 10**9))).all()


def test_record_steps_reads_the_step_fed_to_ssd_and_follows_the_gaps():
    from ssmlab.layers.ssd import record_steps
    from ssmlab.models import build_model

    torch.manual_seed(0)
    seq = torch.randint(1, 30, (3, 8))
    t = torch.cumsum(torch.rand(3, 8) * 1000, 1)
    tim = build_model("tim4rec", n_items=30, d_model=16, max_len=8, n_layers=2, time_mlp="causal")
    tim.train()
    steps = record_steps(tim, {"item_seq": seq, "time_seq": t})
    assert len(steps) == 2 and steps[0].shape == (3, 8, tim.n_heads) and tim.training
    assert (steps[0] > 0).all()
    other = record_steps(tim, {"item_seq": seq, "time_seq": t * torch.linspace(1, 50, 8)})
    assert not torch.allclose(steps[0], other[0])  # TiM4Rec's Δ̂ reads the gaps (Eq. 18)
    star = build_model("ssd4rec_star", n_items=30, d_model=16, max_len=8, n_layers=1)
    block = next(m for m in star.modules() if isinstance(m, SSDBlock))
    (step,) = record_steps(star, {"item_seq": seq, "time_seq": t})
    x = star.emb_norm(star.item_embedding(seq))  # the first block's input in eval mode
    *_, dt = block.project(x)
    torch.testing.assert_close(step, F.softplus(dt + block.dt_bias))  # SSD's own step
    with pytest.raises(ValueError, match="no SSD block"):
        record_steps(build_model("sasrec", n_items=30, d_model=16, max_len=8), {"item_seq": seq})
