"""Self-attention blocks of the Transformer baselines: SASRec / BERT4Rec and TiSASRec.

Paper keys: [SASRec], [TiSASRec], [BERT4Rec] (references.md).
Reference code: RecBole 1.2 ``recbole/model/layers.py`` (MultiHeadAttention, FeedForward,
TransformerLayer; https://github.com/RUCAIBox/RecBole) for :class:`TransformerBlock`; the TiSASRec
authors' code (https://github.com/JiachengLi1995/TiSASRec) and its PyTorch port
(https://github.com/pmixer/TiSASRec.pytorch) for :class:`TimeIntervalAttention` and
:class:`TiSASRecBlock`; the TiM4Rec authors' TiSASRec baseline (https://github.com/AlwaysFHao/TiM4Rec
``baseline/TiSASRec/{TiSASRec.py,TiTransformer.py}``) for :func:`clipped_interval_matrix` and
:class:`IntervalTransformerBlock`.

Masks are explicit boolean arguments (``True`` = may attend) built by the pure functions
:func:`causal_mask`, :func:`attention_mask` and :func:`tisasrec_interval_matrix`, so notebook 04
can draw exactly what the models use. Sequences are right-padded with item id 0.

What this version changes:
- masks are booleans filled with the dtype's minimum (RecBole adds -10000): same softmax up to
  rounding; the fast path is ``F.scaled_dot_product_attention``, tested equal to the reference
  (which trains with dropout on the weights on the CPU: ``ssmlab.layers.dropout``).
- TiSASRec: interval embeddings are looked up as ``Q @ E_Kᵀ`` gathered by interval, and attention
  weights are binned by interval before ``@ E_V`` (exact, no (b, l, l, d) tensor);
  :func:`time_interval_attention_ref` materializes that tensor as in the authors' code.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ssmlab.layers.dropout import Dropout, dropout, uniform_mask
from ssmlab.layers.ffn import make_activation
from ssmlab.layers.positions import at_positions


def causal_mask(seqlen: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Lower-triangular mask of causal self-attention: query i may attend to key j iff j <= i.

    Shapes:
        returns: (l, l) bool, True where attention is allowed
    """
    if seqlen < 0:
        raise ValueError(f"seqlen must be >= 0, got {seqlen}")
    return torch.ones(seqlen, seqlen, dtype=torch.bool, device=device).tril()


def attention_mask(item_seq: torch.Tensor, causal: bool = True) -> torch.Tensor:
    """Keys that are real items (id > 0), and, if ``causal``, not in the future of the query.

    SASRec/TiSASRec use ``causal=True``; BERT4Rec uses ``causal=False`` (padding keys only).

    Shapes:
        item_seq: (b, l) long, right-padded with 0
        returns: (b, 1, l, l) bool, True where query i may attend to key j (broadcasts over heads)
    """
    if item_seq.dim() != 2:
        raise ValueError(f"item_seq must have shape (b, l), got {tuple(item_seq.shape)}")
    mask = (item_seq > 0)[:, None, None, :]  # (b 1 1 l) keys
    if causal:
        mask = mask & causal_mask(item_seq.size(1), item_seq.device)  # (b 1 l l)
    return mask.expand(-1, -1, item_seq.size(1), -1)


def scaled_dot_attention_ref(q, k, v, mask, dropout_p: float = 0.0, training: bool = False):
    """Reference softmax(q kᵀ / sqrt(p), masked) v; also returns the attention weights.

    Shapes:
        q, k, v: (b, h, l, p)
        mask: bool, broadcastable to (b, h, l, l), True = may attend
        returns: out (b, h, l, p), weights (b, h, l, l)
    """
    scores = torch.einsum("bhip,bhjp->bhij", q, k) / math.sqrt(q.size(-1))  # (b h l l)
    scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = scores.softmax(dim=-1)
    out = torch.einsum("bhij,bhjp->bhip", dropout(weights, dropout_p, training), v)  # (b h l p)
    return out, weights


def query_rows(x: torch.Tensor, mask: torch.Tensor, at: torch.Tensor | None):
    """The queries and their mask rows: all of them, or with ``at`` the one at position ``at[i]``
    of each row (a last layer read there alone); keys stay every position.

    Shapes: x (b, l, d), mask bool (b, 1, l, l) or (l, l), at (b,) or None
        -> x (b, l, d) or (b, 1, d), and mask (b, 1, l, l) or (l, l), or (b, 1, 1, l) at ``at``
    """
    if at is None:
        return x, mask
    rows = mask.expand(x.shape[0], 1, *mask.shape[-2:]).transpose(1, 2)  # (b l 1 l)
    return at_positions(x, at)[:, None], at_positions(rows, at)[:, None]


class MultiHeadAttention(nn.Module):
    """Multi-head self-attention with post-residual LayerNorm (RecBole's MultiHeadAttention).

    y = LayerNorm(x + Dropout(W_O · Attention(W_Q x, W_K x, W_V x)))
    """

    def __init__(
        self, d_model: int, n_heads: int, dropout: float, attn_dropout: float, eps: float = 1e-12
    ):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.n_heads = n_heads
        self.attn_dropout = attn_dropout
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.dense = nn.Linear(d_model, d_model)
        self.out_dropout = Dropout(dropout)
        self.norm = nn.LayerNorm(d_model, eps=eps)

    def heads(self, xq: torch.Tensor, x: torch.Tensor):
        """Queries from ``xq``, keys and values from ``x``, split into heads.

        Shapes: xq (b, lq, d), x (b, l, d) -> q (b, h, lq, p), k and v (b, h, l, p)
        """
        split = "b l (h p) -> b h l p"
        q = rearrange(self.query(xq), split, h=self.n_heads)
        return q, *(rearrange(f(x), split, h=self.n_heads) for f in (self.key, self.value))

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        return_weights: bool = False,
        at: torch.Tensor | None = None,
    ):
        """Shapes: x (b, l, d), mask bool (b, 1, l, l) or (l, l) -> (b, l, d)
        [, weights (b, h, l, l)]. With ``at`` (b,): one query per row, at position ``at[i]``
        (every position stays a key) -> (b, 1, d) [, weights (b, h, 1, l)]."""
        xq, mask = query_rows(x, mask, at)  # (b lq d), lq = l or 1
        q, k, v = self.heads(xq, x)
        p_drop = self.attn_dropout if self.training else 0.0
        # dropout on the weights costs less through the reference on the CPU (the uniform mask)
        # than inside SDPA (bernoulli_ in its math fallback): benchmarks/dropout.py
        if return_weights or (p_drop > 0 and uniform_mask(q)):
            ctx, weights = scaled_dot_attention_ref(q, k, v, mask, p_drop, self.training)
        else:  # fast path, same map (tested against the reference); an additive mask keeps a
            # fully masked row uniform, as the reference, where a boolean one would give NaN
            bias = torch.zeros(mask.shape, dtype=q.dtype, device=q.device)
            bias = bias.masked_fill(~mask, torch.finfo(q.dtype).min)
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p_drop)
        ctx = rearrange(ctx, "b h l p -> b l (h p)")
        y = self.norm(xq + self.out_dropout(self.dense(ctx)))
        return (y, weights) if return_weights else y


class PointwiseFeedForward(nn.Module):
    """Position-wise FFN with post-residual LayerNorm, as RecBole's Transformer FeedForward.

    y = LayerNorm(x + Dropout(W_2 act(W_1 x))). Unlike :class:`ssmlab.layers.ffn.FeedForward`
    there is no dropout between act and W_2.
    """

    def __init__(
        self, d_model: int, inner_size: int, dropout: float, act: str = "gelu", eps: float = 1e-12
    ):
        super().__init__()
        self.dense_1 = nn.Linear(d_model, inner_size)
        self.act = make_activation(act)
        self.dense_2 = nn.Linear(inner_size, d_model)
        self.dropout = Dropout(dropout)
        self.norm = nn.LayerNorm(d_model, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Shapes: x (b, l, d) -> (b, l, d)."""
        hidden = self.act(self.dense_1(x))  # (b l inner)
        return self.norm(x + self.dropout(self.dense_2(hidden)))


class TransformerBlock(nn.Module):
    """One SASRec/BERT4Rec layer as in RecBole's TransformerLayer: attention, then FFN.

    Note: the SASRec authors' code uses pre-LayerNorm and a 1x1-conv ReLU FFN of width d; RecBole
    (whose settings the TiM4Rec baselines use) uses post-LayerNorm and a GELU FFN of width
    ``inner_size``. We follow RecBole.
    """

    attention_class: type[nn.Module] = MultiHeadAttention

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        inner_size: int,
        dropout: float,
        attn_dropout: float,
        act: str = "gelu",
        eps: float = 1e-12,
    ):
        super().__init__()
        self.attention = self.attention_class(d_model, n_heads, dropout, attn_dropout, eps)
        self.ffn = PointwiseFeedForward(d_model, inner_size, dropout, act, eps)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        return_weights: bool = False,
        at: torch.Tensor | None = None,
    ):
        """Shapes: x (b, l, d), mask bool (b, 1, l, l) -> (b, l, d)[, weights (b, h, l, l)];
        with ``at`` (b,) the output at position ``at[i]`` of each row alone: (b, d)
        [, weights (b, h, 1, l)] (one query, the FFN at one position)."""
        if return_weights:
            x, weights = self.attention(x, mask, return_weights=True, at=at)
        else:
            x = self.attention(x, mask, at=at)
        y = self.ffn(x if at is None else x[:, 0])  # (b l d) or (b d)
        return (y, weights) if return_weights else y


def transformer_layers(block: type[nn.Module], config) -> nn.ModuleList:
    """``config.n_layers`` layers ``block(d_model, n_heads, inner_size, dropout, attn_dropout,
    hidden_act, layer_norm_eps)``, read from the fields every attention model's config has."""
    c = config
    args = (c.d_model, c.n_heads, c.inner_size, c.dropout, c.attn_dropout, c.hidden_act)
    return nn.ModuleList(block(*args, c.layer_norm_eps) for _ in range(c.n_layers))


# --------------------------------------------------------------------------------- TiSASRec
def tisasrec_interval_matrix(
    time_seq: torch.Tensor, item_seq_len: torch.Tensor, time_span: int, causal: bool = True
) -> torch.Tensor:
    """Personalized clipped time intervals of [TiSASRec]: r_ij = min(floor(|t_i - t_j| / r_min), k).

    |t_i - t_j| is the raw time difference d̂_ij of [TiM4Rec Eq. (11)]; r_min is the user's smallest
    nonzero interval between consecutive items of the (time-sorted) history, 1 if there is none;
    k = ``time_span``. ``causal=False``: one r_min per row from the whole history, as in the paper.
    ``causal=True``: row i divides by the smallest nonzero interval among items 0..i, so nothing at
    positions > i changes row i; the last real row (the one read at prediction) is the same in both.
    Pairs that involve padding get 0.

    Shapes:
        time_seq: (b, l) int or float timestamps, right-padded
        item_seq_len: (b,) long, number of real items
        returns: (b, l, l) long in [0, time_span]
    """
    if time_seq.dim() != 2:
        raise ValueError(f"time_seq must have shape (b, l), got {tuple(time_seq.shape)}")
    b, seqlen = time_seq.shape
    if item_seq_len.shape != (b,):
        raise ValueError(f"item_seq_len must have shape ({b},), got {tuple(item_seq_len.shape)}")
    if time_span < 1:
        raise ValueError(f"time_span must be >= 1, got {time_span}")
    real = torch.arange(seqlen, device=time_seq.device)[None, :] < item_seq_len[:, None]  # (b l)
    t = time_seq.double() if time_seq.is_floating_point() else time_seq.long()
    big = math.inf if t.is_floating_point() else torch.iinfo(torch.int64).max
    gap = (t[:, 1:] - t[:, :-1]).abs()  # (b l-1), gap ending at position i = 1..l-1
    gap = torch.where((gap > 0) & real[:, 1:], gap, big)
    gap = torch.cat([t.new_full((b, 1), big), gap], dim=1)  # (b l)
    if causal:  # row i: smallest gap among items 0..i
        r_min = gap.cummin(dim=1).values
    else:
        r_min = gap.amin(dim=1, keepdim=True).expand(b, seqlen)
    r_min = torch.where(r_min == big, torch.ones_like(r_min), r_min)  # (b l), one scale per row i
    diff = (t[:, :, None] - t[:, None, :]).abs()  # (b l l)
    r = torch.div(diff, r_min[:, :, None], rounding_mode="floor").clamp(max=time_span).long()
    return r * (real[:, :, None] & real[:, None, :])


def time_interval_attention_ref(
    q,
    k,
    v,
    pos_k,
    pos_v,
    interval,
    emb_k,
    emb_v,
    mask,
    dropout_p: float = 0.0,
    training: bool = False,
):
    """Time-interval-aware attention of [TiSASRec], materializing R^K, R^V as the authors' code.

    e_ij = q_i · (k_j + P^K_j + R^K_ij) / sqrt(p), a_i = softmax_j(e_i) over allowed j,
    z_i = sum_j a_ij (v_j + P^V_j + R^V_ij), with R^K_ij = E_K[r_ij] and R^V_ij = E_V[r_ij].

    Shapes:
        q: (b, h, lq, p) and k, v: (b, h, l, p) projected and split into heads (lq = l, or
            fewer queries: 1 in a last layer read at one position)
        pos_k, pos_v: (b or 1, h, l, p) absolute position embeddings of keys / values, or None
            (no position term: the TiM4Rec baseline adds positions to the input instead)
        interval: (b, lq, l) long, r_ij
        emb_k, emb_v: (r, h, p) interval embedding tables, r = time_span + 1
        mask: bool broadcastable to (b, h, lq, l), True = may attend
        returns: out (b, h, lq, p), weights (b, h, lq, l)
    """
    k, v = _add_positions(k, v, pos_k, pos_v)
    r_k = rearrange(emb_k[interval], "b i j h p -> b h i j p")  # (b h l l p)
    r_v = rearrange(emb_v[interval], "b i j h p -> b h i j p")
    scores = (
        torch.einsum("bhip,bhjp->bhij", q, k) + torch.einsum("bhip,bhijp->bhij", q, r_k)
    ) / math.sqrt(q.size(-1))
    weights = scores.masked_fill(~mask, torch.finfo(scores.dtype).min).softmax(dim=-1)
    dropped = dropout(weights, dropout_p, training)
    out = torch.einsum("bhij,bhjp->bhip", dropped, v) + torch.einsum(
        "bhij,bhijp->bhip", dropped, r_v
    )  # (b h l p)
    return out, weights


def _add_positions(k, v, pos_k, pos_v):
    """k + P^K, v + P^V, or k, v unchanged when the positions are None (TiM4Rec baseline)."""
    if (pos_k is None) != (pos_v is None):
        raise ValueError("pos_k and pos_v must both be tensors or both be None")
    return (k, v) if pos_k is None else (k + pos_k, v + pos_v)


def time_interval_attention(
    q,
    k,
    v,
    pos_k,
    pos_v,
    interval,
    emb_k,
    emb_v,
    mask,
    dropout_p: float = 0.0,
    training: bool = False,
):
    """Same map as :func:`time_interval_attention_ref` without the (b, h, l, l, p) tensors.

    q_i · E_K[r_ij] = (q_i E_Kᵀ)[r_ij] (a gather), and sum_j a_ij E_V[r_ij] =
    sum_r (sum_{j: r_ij = r} a_ij) E_V[r] (a scatter-add into r bins): memory O(b h l (l + r)).

    Shapes: as :func:`time_interval_attention_ref`.
    """
    b, h, n_queries, _ = q.shape
    k, v = _add_positions(k, v, pos_k, pos_v)
    index = interval[:, None].expand(b, h, n_queries, k.shape[2])  # (b h lq l)
    q_emb = torch.einsum("bhip,rhp->bhir", q, emb_k)  # (b h lq r)
    scores = (torch.einsum("bhip,bhjp->bhij", q, k) + q_emb.gather(-1, index)) / math.sqrt(
        q.size(-1)
    )
    weights = scores.masked_fill(~mask, torch.finfo(scores.dtype).min).softmax(dim=-1)
    dropped = dropout(weights, dropout_p, training)
    bins = dropped.new_zeros(b, h, n_queries, emb_v.size(0))  # (b h lq r)
    bins = bins.scatter_add_(-1, index, dropped)  # bins[..., r] = sum of a_ij with r_ij = r
    out = torch.einsum("bhij,bhjp->bhip", dropped, v) + torch.einsum(
        "bhir,rhp->bhip", bins, emb_v
    )  # (b h lq p)
    return out, weights


class TimeIntervalAttention(nn.Module):
    """Multi-head time-interval-aware self-attention of [TiSASRec] (queries from LN(x), keys = x).

    No output projection, as in the authors' code. The position and interval embeddings are
    shared by all layers, so the model owns them and passes them in.
    """

    def __init__(self, d_model: int, n_heads: int, attn_dropout: float):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.n_heads = n_heads
        self.attn_dropout = attn_dropout
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)

    def forward(
        self,
        queries,
        keys,
        mask,
        pos_k,
        pos_v,
        interval,
        emb_k,
        emb_v,
        return_weights: bool = False,
        reference: bool = False,
    ):
        """Shapes: queries (b, lq, d), keys (b, l, d); mask bool (b, 1, lq, l); pos_k, pos_v
        (b or 1, l, d); interval (b, lq, l) long; emb_k, emb_v (r, d) -> (b, lq, d)
        [, weights (b, h, lq, l)]; lq = l, or 1 for a last layer read at one position."""
        heads = "b l (h p) -> b h l p"
        q = rearrange(self.query(queries), heads, h=self.n_heads)
        k = rearrange(self.key(keys), heads, h=self.n_heads)
        v = rearrange(self.value(keys), heads, h=self.n_heads)
        pos_k, pos_v = (rearrange(p, heads, h=self.n_heads) for p in (pos_k, pos_v))
        emb_k, emb_v = (rearrange(e, "r (h p) -> r h p", h=self.n_heads) for e in (emb_k, emb_v))
        attend = time_interval_attention_ref if reference else time_interval_attention
        p_drop = self.attn_dropout if self.training else 0.0
        out, weights = attend(
            q, k, v, pos_k, pos_v, interval, emb_k, emb_v, mask, p_drop, self.training
        )
        out = rearrange(out, "b h l p -> b l (h p)")
        return (out, weights) if return_weights else out


class TiSASRecBlock(nn.Module):
    """One TiSASRec layer as in the authors' code: Q = LN(x); x = Q + Attn(Q, x); x = LN(x);
    x = x + FFN(x); padding rows zeroed. FFN = Linear, act, Dropout, Linear, Dropout (1x1 convs)."""

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        inner_size: int,
        dropout: float,
        attn_dropout: float,
        act: str = "relu",
        eps: float = 1e-8,
    ):
        super().__init__()
        self.attn_norm = nn.LayerNorm(d_model, eps=eps)
        self.attention = TimeIntervalAttention(d_model, n_heads, attn_dropout)
        self.ffn_norm = nn.LayerNorm(d_model, eps=eps)
        self.ffn = nn.Sequential(
            nn.Linear(d_model, inner_size),
            make_activation(act),
            Dropout(dropout),
            nn.Linear(inner_size, d_model),
            Dropout(dropout),
        )

    def forward(
        self, x, mask, real, pos_k, pos_v, interval, emb_k, emb_v, reference=False, at=None
    ) -> torch.Tensor:
        """Shapes: x (b, l, d); mask (b, 1, l, l) bool; real (b, l) bool; others as
        :class:`TimeIntervalAttention` -> (b, l, d), or (b, d) at ``at`` (b,) (one query per
        row, the FFN at one position)."""
        q, mask = query_rows(self.attn_norm(x), mask, at)  # (b lq d)
        if at is not None:  # the read positions' rows: (b 1 l) and (b 1)
            interval, real = at_positions(interval, at)[:, None], at_positions(real, at)[:, None]
        x = q + self.attention(
            q, x, mask, pos_k, pos_v, interval, emb_k, emb_v, reference=reference
        )
        x = self.ffn_norm(x)
        x = (x + self.ffn(x)) * real[..., None]  # (b lq d)
        return x if at is None else x[:, 0]


# ------------------------------------------------------------- TiSASRec as TiM4Rec's baseline
def clipped_interval_matrix(time_seq: torch.Tensor, time_span: int) -> torch.Tensor:
    """Intervals of the TiM4Rec authors' TiSASRec baseline: r_ij = min(|t_i - t_j|, k) in seconds.

    As ``compute_time_matrix`` in TiM4Rec ``baseline/TiSASRec/TiSASRec.py:78-85``: no personal
    scale r_min (unlike [TiSASRec]), timestamps taken as float32 (``time_stamp.float()``, also how
    RecBole holds them) and the difference truncated to an integer. Padding is not special: a pad
    has t = 0, so pairs of a real item and a pad get k (the model masks padding keys anyway). On
    day-resolution data (Amazon) every r_ij is 0 (same day) or k.

    Shapes:
        time_seq: (b, l) int or float timestamps, right-padded with 0
        returns: (b, l, l) long in [0, time_span]
    """
    if time_seq.dim() != 2:
        raise ValueError(f"time_seq must have shape (b, l), got {tuple(time_seq.shape)}")
    if time_span < 1:
        raise ValueError(f"time_span must be >= 1, got {time_span}")
    t = time_seq.float()  # (b l), as the authors' code
    diff = (t[:, :, None] - t[:, None, :]).abs()  # (b l l)
    return diff.clamp(max=time_span).long()  # truncation == their .int() for values >= 0


class IntervalMultiHeadAttention(MultiHeadAttention):
    """RecBole's multi-head attention with TiSASRec's interval keys and values added.

    y = LayerNorm(x + Dropout(W_O z)), z_i = sum_j a_ij (v_j + E_V[r_ij]),
    a_i = softmax_j(q_i · (k_j + E_K[r_ij]) / sqrt(p)) over allowed j: TiM4Rec
    ``baseline/TiSASRec/TiTransformer.py:53-90``. No position terms in the keys (positions are
    added to the input); the interval tables are shared by all layers (the model owns them).
    The projections, dropout and norm are :class:`MultiHeadAttention`'s.
    """

    def forward(self, x, mask, interval, emb_k, emb_v, reference: bool = False, at=None):
        """Shapes: x (b, l, d); mask bool (b, 1, l, l); interval (b, l, l) long;
        emb_k, emb_v (r, d) -> (b, l, d), or (b, 1, d) with one query per row at ``at`` (b,).
        ``reference=True``: the materialized form."""
        xq, mask = query_rows(x, mask, at)  # (b lq d)
        interval = interval if at is None else at_positions(interval, at)[:, None]  # (b lq l)
        q, k, v = self.heads(xq, x)
        emb_k, emb_v = (rearrange(e, "r (h p) -> r h p", h=self.n_heads) for e in (emb_k, emb_v))
        attend = time_interval_attention_ref if reference else time_interval_attention
        p_drop = self.attn_dropout if self.training else 0.0
        ctx, _ = attend(q, k, v, None, None, interval, emb_k, emb_v, mask, p_drop, self.training)
        ctx = rearrange(ctx, "b h l p -> b l (h p)")
        return self.norm(xq + self.out_dropout(self.dense(ctx)))


class IntervalTransformerBlock(TransformerBlock):
    """One layer of the TiM4Rec authors' TiSASRec baseline: RecBole's TransformerLayer with
    :class:`IntervalMultiHeadAttention` in place of its attention (TiTransformer.py:140-166)."""

    attention_class = IntervalMultiHeadAttention

    def forward(
        self, x, mask, interval, emb_k, emb_v, reference: bool = False, at=None
    ) -> torch.Tensor:
        """Shapes: as :class:`IntervalMultiHeadAttention` -> (b, l, d), or (b, d) at ``at``."""
        y = self.attention(x, mask, interval, emb_k, emb_v, reference=reference, at=at)
        return self.ffn(y if at is None else y[:, 0])
