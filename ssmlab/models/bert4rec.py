"""BERT4Rec: a bidirectional Transformer trained with the cloze (masked item) task.

Paper: [BERT4Rec] Sun et al., "BERT4Rec: Sequential Recommendation with Bidirectional Encoder
Representations from Transformer", CIKM 2019. Authors' code: https://github.com/FeiSun/BERT4Rec.
This version follows RecBole 1.2 (``recbole/model/sequential_recommender/bert4rec.py`` and the
``mask_itemseq`` transform in ``recbole/data/transform.py``, https://github.com/RUCAIBox/RecBole).

Changes: the cloze batch is built inside :meth:`BERT4Rec.calculate_loss` from the plain "last"
batch, see the class Note; id ``n_items + 1`` is the mask token. ``cloze="recbole"`` and
``drop_first_at_predict=True`` reproduce RecBole 1.2's training sample and prediction input.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ssmlab.layers.attention import TransformerBlock, attention_mask, transformer_layers
from ssmlab.layers.dropout import Dropout
from ssmlab.layers.ffn import recbole_init
from ssmlab.models.base import ModelConfig, SequentialRecommender, last_index, register
from ssmlab.models.sasrec import check_item_seq, check_transformer_fields

CLOZES = ("target", "recbole")


@dataclass
class BERT4RecConfig(ModelConfig):
    """BERT4Rec settings (RecBole names in comments); ``dropout`` = RecBole hidden_dropout_prob."""

    n_heads: int = 2  # h: attention heads
    inner_size: int = 256  # width of the point-wise FFN
    attn_dropout: float = 0.2  # dropout on attention weights (attn_dropout_prob)
    hidden_act: str = "gelu"  # FFN activation: "gelu" or "relu"
    layer_norm_eps: float = 1e-12  # LayerNorm epsilon
    mask_ratio: float = 0.2  # rho: probability that an item is replaced by [MASK]
    ft_ratio: float = 0.5  # probability of masking only the last item (RecBole ft_ratio)
    cloze: str = "target"  # training sample: "target" (history + target) or "recbole"
    drop_first_at_predict: bool = False  # RecBole 1.2: every row loses its oldest item at predict

    def __post_init__(self):
        super().__post_init__()
        check_transformer_fields(self)
        for name in ("mask_ratio", "ft_ratio"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"BERT4RecConfig: {name} must be in [0, 1], got {value}")
        if self.cloze not in CLOZES:
            raise ValueError(f"BERT4RecConfig: cloze must be one of {CLOZES}, got {self.cloze!r}")
        if self.cloze == "recbole" and self.max_predictions < 1:
            raise ValueError(
                f"BERT4RecConfig: cloze='recbole' predicts int(mask_ratio * max_len) = "
                f"{self.max_predictions} positions per row; it must be >= 1"
            )

    @property
    def max_predictions(self) -> int:
        """RecBole's ``mask_item_length`` = int(mask_ratio * max_len) (transform.py:58)."""
        return int(self.mask_ratio * self.max_len)


def append_item(
    item_seq: torch.Tensor, item_seq_len: torch.Tensor, item: torch.Tensor, max_len: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Write ``item`` right after each row's last real item; drop the oldest item of rows that
    would then exceed ``max_len`` (the sequence keeps its newest max_len items).

    Shapes:
        item_seq: (b, l) long, right-padded; item_seq_len: (b,); item: (b,) or scalar
        returns: seq (b, min(l + 1, max_len)) long, new lengths (b,)
    """
    b, seqlen = item_seq.shape
    seq = F.pad(item_seq, (0, 1))  # (b l+1)
    item = torch.as_tensor(item, dtype=seq.dtype, device=seq.device).expand(b)
    seq = seq.scatter(1, item_seq_len.view(b, 1), item.view(b, 1))
    new_len = item_seq_len + 1
    if seqlen + 1 > max_len:
        shift = (new_len - max_len).clamp(min=0)  # (b,) 0 or more
        index = torch.arange(max_len, device=seq.device)[None, :] + shift[:, None]  # (b max_len)
        seq = seq.gather(1, index)
        new_len = new_len - shift
    return seq, new_len


@register("bert4rec")
class BERT4Rec(SequentialRecommender):
    """Bidirectional Transformer encoder (RecBole's BERT4Rec) with a cloze objective.

    Encoder: E_item + P, LayerNorm, dropout, ``n_layers`` bidirectional
    :class:`~ssmlab.layers.attention.TransformerBlock` (padding keys masked), then RecBole 1.2's
    output head GELU(W h) -> LayerNorm; scores = h · E_item + b_item (RecBole's output bias).
    Prediction appends [MASK] after the history and reads its position.

    Note:
        Training ("cloze") works from the plain "last" batch. ``cloze="target"`` (default): the
        sequence is history + target (so the row's newest interaction is trained on). With
        probability ``ft_ratio`` a row masks only its last item -- exactly the next-item task
        (drawn per row); otherwise each real item is masked with probability ``mask_ratio``, and a
        row that drew no mask masks its last item; no cap on the number of masks. If history +
        target exceeds ``max_len``, the oldest item is dropped.
        ``cloze="recbole"``: RecBole 1.2's ``MaskItemSequence`` (``transform.py:124-192``): the
        history alone is masked (the target is not used); one draw per batch with probability
        ``ft_ratio`` masks every row's last history item, else each history item is masked with
        probability ``mask_ratio``; only the newest int(mask_ratio * max_len) masked positions
        are predicted (older masks stay in the input) and a mask at position 0 is never predicted
        (``masked_index > 0``, ``bert4rec.py:207``); a row with nothing to predict adds nothing.
        CE over all items at the predicted positions.
        Prediction appends [MASK] after the history; the positional table has ``max_len`` rows
        as in RecBole 1.2, so a full row drops its oldest item. RecBole 1.2 drops the oldest item
        of *every* row (``reconstruct_test_data``, ``bert4rec.py:109-120``):
        ``drop_first_at_predict=True``.
    """

    config_class = BERT4RecConfig
    causal = False
    objectives = ("cloze",)

    def __init__(self, config: BERT4RecConfig, n_items: int):
        super().__init__(config, n_items)
        d = config.d_model
        self.mask_token = n_items + 1  # RecBole: n_items (its count includes the padding id)
        self.item_embedding = nn.Embedding(n_items + 2, d, padding_idx=0)  # + [MASK] row
        self.position_embedding = nn.Embedding(config.max_len, d)
        self.emb_norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.emb_dropout = Dropout(config.dropout)
        self.blocks = transformer_layers(TransformerBlock, config)
        self.output_dense = nn.Linear(d, d)
        self.output_act = nn.GELU()
        self.output_norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.output_bias = nn.Parameter(torch.zeros(n_items + 1))
        self.apply(recbole_init)  # N(0, 0.02) weights (RecBole initializer_range), zero biases

    def encode(
        self, batch: dict[str, torch.Tensor], at: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Bidirectional hidden states of ``item_seq`` as given (ids may include the mask token);
        with ``at`` the last block runs one query per row, at ``at[i]``.

        Shapes: item_seq (b, l), at (b,) -> (b, l, d), or (b, d) with ``at``.
        """
        item_seq = batch["item_seq"]
        check_item_seq(item_seq, self.config.max_len, type(self).__name__)
        positions = torch.arange(item_seq.size(1), device=item_seq.device)
        x = self.item_embedding(item_seq) + self.position_embedding(positions)  # (b l d)
        x = self.emb_dropout(self.emb_norm(x))
        mask = attention_mask(item_seq, causal=False)  # (b 1 l l)
        for i, block in enumerate(self.blocks):
            x = block(x, mask, at=at if i == len(self.blocks) - 1 else None)
        return self.output_norm(self.output_act(self.output_dense(x)))

    def forward(self, item_seq, item_seq_len, time_seq=None, **extra) -> torch.Tensor:
        """Hidden state at a [MASK] appended after the history. Shapes: (b, l), (b,) -> (b, d)."""
        if self.config.drop_first_at_predict:  # RecBole's reconstruct_test_data
            seq = F.pad(item_seq, (0, 1)).scatter(1, item_seq_len[:, None], self.mask_token)
            seq, seq_len = seq[:, 1:], item_seq_len  # (b l): oldest item of every row dropped
        else:
            seq, seq_len = append_item(item_seq, item_seq_len, self.mask_token, self.config.max_len)
        return self.encode_at({"item_seq": seq}, last_index(seq_len))

    def output_layer(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Item embeddings without the [MASK] row (n_items + 1, d) and the output bias."""
        return self.item_embedding.weight[: self.n_items + 1], self.output_bias

    def cloze_batch(self, batch: dict[str, torch.Tensor]):
        """Masked sequence and labels from a "last" batch (see the class Note).

        Shapes: item_seq (b, l), item_seq_len (b,), target (b,) ->
            masked (b, l'), labels (b, l') with 0 where not predicted; l' = min(l + 1, max_len)
            (``cloze="target"``) or l (``"recbole"``)
        """
        if self.config.cloze == "recbole":
            return self.recbole_cloze_batch(batch["item_seq"], batch["item_seq_len"])
        seq, seq_len = append_item(
            batch["item_seq"], batch["item_seq_len"], batch["target"], self.config.max_len
        )
        b, seqlen = seq.shape
        positions = torch.arange(seqlen, device=seq.device)[None, :]
        real = positions < seq_len[:, None]  # (b l)
        last = positions == (seq_len - 1)[:, None]
        masked = (torch.rand(b, seqlen, device=seq.device) < self.config.mask_ratio) & real
        fine_tune = torch.rand(b, 1, device=seq.device) < self.config.ft_ratio
        masked = torch.where(fine_tune | ~masked.any(dim=1, keepdim=True), last, masked)
        labels = seq * masked
        return torch.where(masked, torch.full_like(seq, self.mask_token), seq), labels

    def recbole_cloze_batch(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor):
        """RecBole 1.2's ``MaskItemSequence`` on the history (``transform.py:124-192``).

        Shapes: item_seq (b, l), item_seq_len (b,) -> masked (b, l), labels (b, l), 0 where not
            predicted.
        """
        b, seqlen = item_seq.shape
        positions = torch.arange(seqlen, device=item_seq.device)[None, :]  # (1 l)
        if torch.rand((), device=item_seq.device) < self.config.ft_ratio:  # one draw per batch
            masked = positions == (item_seq_len - 1)[:, None]  # _append_mask_last (b l)
            predicted = masked
        else:
            real = positions < item_seq_len[:, None]
            masked = (torch.rand(b, seqlen, device=item_seq.device) < self.config.mask_ratio) & real
            newer = masked.flip(1).cumsum(1).flip(1)  # masks at positions >= j (b l)
            predicted = masked & (newer <= self.config.max_predictions)  # the newest ones
        predicted = predicted & (positions > 0)  # masked_index > 0
        masked_seq = torch.where(masked, torch.full_like(item_seq, self.mask_token), item_seq)
        return masked_seq, item_seq * predicted

    def calculate_loss(
        self, batch: dict[str, torch.Tensor], objective: str = "cloze"
    ) -> torch.Tensor:
        """Cloze CE over all items at the predicted positions (see :meth:`cloze_batch`).

        A batch with nothing to predict (possible with ``cloze="recbole"``) gives a zero loss,
        where RecBole's 0 / 0 gives NaN.
        """
        if objective not in self.objectives:
            raise ValueError(f"BERT4Rec supports objectives {self.objectives}, got {objective!r}")
        masked_seq, labels = self.cloze_batch(batch)
        hidden = self.encode({"item_seq": masked_seq})  # (b l d)
        picked = labels > 0
        ce = F.cross_entropy(self.scores(hidden[picked]), labels[picked], reduction="sum")
        return ce / picked.sum().clamp(min=1)
