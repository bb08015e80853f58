"""The interface every recommender implements (RecBole's SequentialRecommender, in plain tensors).

A model maps tensors to tensors: it never sees a Dataset or the trainer. Item id 0 is padding;
sequences are right-padded, so the last real position of row i is ``item_seq_len[i] - 1``.

Batches are dicts of tensors (built by ``ssmlab.data``):

=============== ============ =====================================================================
key             shape/dtype  meaning
=============== ============ =====================================================================
item_seq        (b, l) long  item ids, right-padded with 0
item_seq_len    (b,) long    number of real items per row (>= 1)
time_seq        (b, l) long  Unix seconds of each item (0 at padding)
user_id         (b,) long    the row's user, ids 1..n_users (read by Caser's user embedding)
target          (b,) long    next item after the history (objective "last", evaluation)
target_time     (b,) long    timestamp of ``target`` (SS4Rec's continuous-time query)
targets         (b, l) long  next item at every position, 0 where none (objective "all")
target_times    (b, l) long  timestamp of ``targets`` (0 where none)
seq_idx         (1, t) int32 packed batches only: sequence number of each token (SSD4Rec)
cu_seqlens      (n+1,) int32 packed batches only: cumulative lengths, cu_seqlens[0] = 0
=============== ============ =====================================================================

Scores cover every id ``0..n_items``; column 0 (padding) is set to ``-inf`` so it is never ranked.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ssmlab.layers.linear_ce import linear_cross_entropy
from ssmlab.layers.positions import at_positions

OBJECTIVES = ("last", "all")
LAST_ONLY = True  # encode_at runs encode(batch, at): each model's last layer at the read positions
# alone; False: every position, then the pick (the reference; benchmarks/last_position.py)
REGISTRY: dict[str, type[SequentialRecommender]] = {}  # filled by @register in each model file


def canonical_name(name: str) -> str:
    """The registry key of a model name: lower case, ``-`` read as ``_``."""
    return name.lower().replace("-", "_")


def register(name: str):
    """Class decorator: ``@register("sasrec")`` makes the model buildable by that name."""

    def add(cls: type[SequentialRecommender]) -> type[SequentialRecommender]:
        REGISTRY[canonical_name(name)] = cls
        return cls

    return add


@dataclass
class ModelConfig:
    """Fields shared by every model; each model subclasses it with its own fields."""

    d_model: int = 64  # d: embedding / hidden size
    n_layers: int = 2
    dropout: float = 0.2
    max_len: int = 50  # longest history fed to the model (RecBole MAX_ITEM_LIST_LENGTH)

    def __post_init__(self):
        if self.d_model <= 0 or self.n_layers <= 0 or self.max_len <= 0:
            raise ValueError(f"{type(self).__name__}: d_model, n_layers, max_len must be > 0")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(
                f"{type(self).__name__}: dropout must be in [0, 1), got {self.dropout}"
            )

    def for_data(self, n_users: int) -> ModelConfig:
        """This config with the sizes a model takes from its dataset filled in (``n_users``: the
        number of users, ids 1..n_users); default: nothing to fill, ``self``."""
        return self


class SequentialRecommender(nn.Module):
    """Base class: an item embedding table, an encoder, dot-product scores, CE over all items.

    Subclasses implement :meth:`encode`; everything else is shared.
    ``causal`` says whether output position t depends only on inputs <= t (then the
    all-positions objective is valid); ``uses_time`` whether the model reads ``time_seq``.
    """

    config_class: type[ModelConfig] = ModelConfig
    causal: bool = True
    objectives: tuple[str, ...] = OBJECTIVES
    uses_time: bool = False

    @classmethod
    def objectives_for(cls, config: ModelConfig) -> tuple[str, ...]:
        """The objectives a model built from ``config`` trains with, known without building it
        (``ssmlab.config`` picks ``train.objective`` from them); default: ``objectives``."""
        return tuple(cls.objectives)

    def __init__(self, config: ModelConfig, n_items: int):
        super().__init__()
        if n_items < 1:
            raise ValueError(f"n_items must be >= 1, got {n_items}")
        self.config = config
        self.n_items = n_items
        self.item_embedding = nn.Embedding(n_items + 1, config.d_model, padding_idx=0)

    # -- to implement -------------------------------------------------------------------------
    def encode(self, batch: dict[str, torch.Tensor], at: torch.Tensor | None = None):
        """Hidden states at every position; with ``at``, at position ``at[i]`` of row i alone,
        equal to ``at_positions(encode(batch), at)`` (a model may run its last layer's
        position-wise parts there alone). Shapes: batch tensors as above, at (b,) -> (b, l, d),
        or (b, d) with ``at``."""
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------------
    def encode_at(self, batch: dict[str, torch.Tensor], at: torch.Tensor) -> torch.Tensor:
        """``encode(batch, at)``, or with :data:`LAST_ONLY` off the reference: every position
        encoded, then ``at`` read. Shapes: batch, at (b,) -> (b, d)."""
        return self.encode(batch, at=at) if LAST_ONLY else at_positions(self.encode(batch), at)

    def forward(self, item_seq, item_seq_len, time_seq=None, **extra) -> torch.Tensor:
        """Hidden state at the last real position. Shapes: (b, l), (b,), (b, l) -> (b, d)."""
        batch = {"item_seq": item_seq, "item_seq_len": item_seq_len, **extra}
        if time_seq is not None:
            batch["time_seq"] = time_seq
        return self.encode_at(batch, last_index(item_seq_len))

    def output_layer(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """What hidden states are scored against: item vectors (n_items + 1, d) and an optional
        bias (n_items + 1,); row 0 is padding. Default: the (tied) item embedding, no bias."""
        return self.item_embedding.weight, None

    def scores(self, hidden: torch.Tensor) -> torch.Tensor:
        """Dot product with every item vector (+ bias). Shapes: (..., d) -> (..., n_items + 1),
        column 0 (padding) = -inf."""
        weight, bias = self.output_layer()
        logits = F.linear(hidden, weight, bias)
        logits[..., 0] = float("-inf")
        return logits

    def cross_entropy(self, hidden: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean CE of ``scores(hidden)`` against ``target`` over items 1..n_items (padding is
        never a class), without materializing the scores (``ssmlab.layers.linear_ce``).
        Shapes: (t, d), (t,) ids in 1..n_items -> scalar."""
        weight, bias = self.output_layer()
        bias = None if bias is None else bias[1:]
        return linear_cross_entropy(hidden, weight[1:], target - 1, bias)

    def calculate_loss(
        self, batch: dict[str, torch.Tensor], objective: str = "last"
    ) -> torch.Tensor:
        """Cross-entropy over all items.

        ``"last"``: one target per row (RecBole protocol with prefix augmentation).
        ``"all"``: every position predicts the next item (``targets``; 0 = ignored).
        """
        if objective not in self.objectives:
            raise ValueError(
                f"{type(self).__name__} supports objectives {self.objectives}, got {objective!r}"
            )
        if objective == "last":
            hidden = self.forward(
                batch["item_seq"], batch["item_seq_len"], batch.get("time_seq"), **_extras(batch)
            )
            return self.cross_entropy(hidden, batch["target"])
        hidden = self.encode(batch)  # (b l d)
        targets = batch["targets"]  # (b l), 0 at padding
        keep = targets != 0  # score only the positions with a target: padding costs nothing
        return self.cross_entropy(hidden[keep], targets[keep])  # (t d) vs (t)

    @torch.no_grad()
    def full_sort_predict(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Scores of every item for the next step. Shapes: batch -> (b, n_items + 1)."""
        hidden = self.forward(
            batch["item_seq"], batch["item_seq_len"], batch.get("time_seq"), **_extras(batch)
        )
        return self.scores(hidden)


def _extras(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    skip = {"item_seq", "item_seq_len", "time_seq", "target", "targets"}
    return {k: v for k, v in batch.items() if k not in skip}


def last_index(item_seq_len: torch.Tensor) -> torch.Tensor:
    """Each row's last real position, ``item_seq_len - 1`` (0 for an empty row).

    Shapes: (b,) -> (b,)
    """
    return (item_seq_len - 1).clamp(min=0)
