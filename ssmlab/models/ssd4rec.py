"""SSD4Rec: masked bidirectional SSD on packed variable-length sequences [SSD4Rec] [Mamba2].

Authors' code: https://github.com/ZhangYifeng1995/SSD4Rec (``ssd4rec.py``, ``custom_utils.py``).
The batch concatenates every history into one row (no padding, no truncation), with
``seq_idx`` as the segment register; during training each item is replaced by the mask token
with probability ``mask_ratio``; Bi-SSD layers; the hidden state at the last item of each
sequence scores every item (CE, last-position objective with prefix augmentation).
This version: the same model in plain torch; it also runs padded batches (each row's sequence
reversed within ``item_seq_len``, the padding after it), so it trains and is evaluated on the
same batches as the other models.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ssmlab.layers.bissd import BiSSDBlock
from ssmlab.layers.dropout import Dropout
from ssmlab.layers.ffn import recbole_init
from ssmlab.models.base import ModelConfig, SequentialRecommender, last_index, register


@dataclass
class SSD4RecConfig(ModelConfig):
    """SSD4Rec hyperparameters (defaults: the authors' ML-1M config)."""

    d_model: int = 256  # d: hidden size (the authors use 256)
    d_state: int = 64  # N: SSD state size
    d_conv: int = 4  # K: causal conv width
    expand: int = 2  # E: d_inner = E * d
    head_dim: int = 16  # P: channels per head; heads H = E * d / P
    chunk_size: int = 256  # SSD block size (speed only; Mamba2's default)
    beta: float = 0.1  # beta: weight of the backward pass
    mask_ratio: float = 0.1  # rho: probability of masking an input item in training
    norm_embedding: bool = True  # Dropout + LayerNorm on the embeddings (False for Amazon)
    flip_back: bool = False  # re-reverse the backward output (False = authors' code)
    backend: str | None = None  # SSD path: "torch", "mamba_ssm", None = auto

    def __post_init__(self):
        super().__post_init__()
        if min(self.d_state, self.d_conv, self.expand, self.head_dim, self.chunk_size) <= 0:
            raise ValueError(
                "SSD4RecConfig: d_state, d_conv, expand, head_dim, chunk_size must be > 0"
            )
        if (self.expand * self.d_model) % self.head_dim:
            raise ValueError(
                f"SSD4RecConfig: expand * d_model = {self.expand * self.d_model} must "
                f"be divisible by head_dim = {self.head_dim}"
            )
        if not 0.0 <= self.mask_ratio < 1.0:
            raise ValueError(f"SSD4RecConfig: mask_ratio must be in [0, 1), got {self.mask_ratio}")
        if self.beta < 0:
            raise ValueError(f"SSD4RecConfig: beta must be >= 0, got {self.beta}")


def pack(item_seq: torch.Tensor, item_seq_len: torch.Tensor):
    """Right-padded rows -> one packed row, its ``seq_idx``, and the index of each real position.

    Shapes:
        item_seq: (b, l); item_seq_len: (b,)
        returns: items (1, t), seq_idx (1, t) int32, real (b, l) bool mask, t = sum(item_seq_len)
    """
    real = real_positions(item_seq, item_seq_len)  # (b l)
    b, l = item_seq.shape
    rows = torch.arange(b, device=item_seq.device)[:, None].expand(b, l)
    return item_seq[real][None], rows[real][None].to(torch.int32), real


def real_positions(item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
    """The real (not padding) positions of right-padded rows. Shapes: (b, l), (b,) -> (b, l) bool"""
    b, l = item_seq.shape
    if item_seq_len.shape != (b,):
        raise ValueError(f"item_seq_len must have shape ({b},), got {tuple(item_seq_len.shape)}")
    if (item_seq_len < 1).any() or (item_seq_len > l).any():
        raise ValueError(f"item_seq_len must be in [1, {l}], got {item_seq_len.tolist()}")
    return torch.arange(l, device=item_seq.device) < item_seq_len[:, None]


def last_positions(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Index of the last token of each sequence of a packed row. Shapes: -> (n,)"""
    if "cu_seqlens" in batch:
        return batch["cu_seqlens"][1:].long() - 1
    seq_idx = batch["seq_idx"][0]
    ends = torch.ones_like(seq_idx, dtype=torch.bool)
    ends[:-1] = seq_idx[1:] != seq_idx[:-1]
    return ends.nonzero().squeeze(-1)


@register("ssd4rec")
class SSD4Rec(SequentialRecommender):
    """Embedding (row 0 = mask token) -> [Dropout -> LN] -> n_layers x BiSSDBlock.

    Packed batches (``seq_idx`` present): ``encode`` returns (1, t, d); ``calculate_loss`` and
    ``full_sort_predict`` read the last token of each sequence (``cu_seqlens``). Padded batches
    run as they are ((b, l, d), zeros at padding): each row's sequence is reversed within its
    ``item_seq_len`` for the backward pass, so they give the packed row's values without its
    masked blocks (a Beauty epoch of prefix rows at batch 256: 1494 CPU s packed, 451 padded,
    ``ssmlab bench train --data amazon-beauty``, 2-core Intel Xeon, one thread).

    Bidirectional: the authors train with RecBole's prefix augmentation and CE on the last
    position (objective "last"). With one layer (Amazon-Beauty's preset) and ``flip_back=False``
    a padded row's output t is instead the model's output on the history up to t
    (``BiSSDBlock.prefix_forward``): the row's every prefix in one pass, so the model is causal
    and also trains on all positions (objective "all"), the same (history -> next item) pairs
    and outputs as the prefix rows at a fraction of their cost (a Beauty epoch at 256 rows:
    78.0 s against 373.8 s, ``benchmarks/results/train-epoch-cpu-ssd4rec.md``, AMD EPYC, one
    thread); the last output, which scores, is unchanged. With more layers a layer's input
    already reads the whole row, so only "last" remains.

    Note: the item mask replaces an input id by 0, which the authors' embedding (no
    ``padding_idx``) learns as a mask token; here too row 0 is trainable, and column 0 is still
    never ranked. Masking is Bernoulli per token, every position included, in training only.
    As in the authors' code the backward output is not flipped back (``flip_back=False``).
    """

    config_class = SSD4RecConfig

    @classmethod
    def objectives_for(cls, config: SSD4RecConfig) -> tuple[str, ...]:
        """All positions when one layer's outputs can be read per prefix (see the class doc)."""
        return ("last", "all") if config.n_layers == 1 and not config.flip_back else ("last",)

    def __init__(self, config: SSD4RecConfig, n_items: int):
        super().__init__(config, n_items)
        self.objectives = self.objectives_for(config)
        self.causal = "all" in self.objectives  # padded rows: output t reads the prefix up to t
        d = config.d_model
        self.item_embedding = nn.Embedding(n_items + 1, d)  # row 0: mask token, trainable
        self.emb_dropout = Dropout(config.dropout)
        self.emb_norm = nn.LayerNorm(d, eps=1e-12)
        self.layers = nn.ModuleList(
            [
                BiSSDBlock(
                    d,
                    beta=config.beta,
                    dropout=config.dropout,
                    flip_back=config.flip_back,
                    d_state=config.d_state,
                    d_conv=config.d_conv,
                    expand=config.expand,
                    head_dim=config.head_dim,
                    chunk_size=config.chunk_size,
                    backend=config.backend,
                )
                for _ in range(config.n_layers)
            ]
        )
        self.apply(recbole_init)

    def mask_items(self, items: torch.Tensor) -> torch.Tensor:
        """Replace each item by the mask token 0 with probability ``mask_ratio`` (training only)."""
        if not self.training or self.config.mask_ratio == 0:
            return items
        keep = torch.rand(items.shape, device=items.device) >= self.config.mask_ratio
        return items * keep

    def encode(
        self, batch: dict[str, torch.Tensor], at: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Hidden states; padded rows of a one-layer model: output t from the prefix up to t.

        ``at`` (padded rows): the last layer's position-wise part (its SSD passes' gated norms
        and out_projs, LayerNorm, FFN) runs at position ``at[i]`` of each row alone; scoring
        reads each row's last real position.

        Shapes: packed item_seq, seq_idx (1, t) -> (1, t, d); padded (b, l) -> (b, l, d), or
        (b, d) with ``at`` (b,).
        """
        packed = "seq_idx" in batch
        if packed and at is not None:
            raise ValueError("at is for padded rows (packed rows: last_positions)")
        if packed:
            items, seq_idx = batch["item_seq"], batch["seq_idx"]
            if items.dim() != 2 or items.shape[0] != 1 or seq_idx.shape != items.shape:
                raise ValueError(
                    f"packed batches need item_seq and seq_idx of shape (1, t), got "
                    f"{tuple(items.shape)} and {tuple(seq_idx.shape)}"
                )
            lengths = None
        else:  # padded rows as they are: BiSSDBlock keeps the padding after every sequence
            items, seq_idx, lengths = batch["item_seq"], None, batch["item_seq_len"]
            real = real_positions(items, lengths)  # (b l); checks item_seq_len first
        x = self.item_embedding(self.mask_items(items))  # (1 t d) or (b l d)
        if self.config.norm_embedding:
            x = self.emb_norm(self.emb_dropout(x))
        for i, layer in enumerate(self.layers):
            here = at if i == len(self.layers) - 1 else None  # (b) or None
            if self.causal and not packed:
                x = layer.prefix_forward(x, here)
            else:
                x = layer(x, seq_idx, lengths, here)
        if packed or at is not None:
            return x  # (1 t d) or (b d)
        return x * real[..., None]  # zeros at padding

    def _last_hidden(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if "seq_idx" in batch:
            return self.encode(batch)[0, last_positions(batch)]  # (n d)
        return self.encode_at(batch, last_index(batch["item_seq_len"]))  # (b d)

    def calculate_loss(
        self, batch: dict[str, torch.Tensor], objective: str = "last"
    ) -> torch.Tensor:
        """CE of the next item after each sequence (``target``), packed or padded batches; "all":
        after every prefix of each padded row (``targets``)."""
        if objective not in self.objectives:
            raise ValueError(f"SSD4Rec supports objectives {self.objectives}, got {objective!r}")
        if objective == "all":
            return super().calculate_loss(batch, objective)
        return self.cross_entropy(self._last_hidden(batch), batch["target"])

    @torch.no_grad()
    def full_sort_predict(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Scores of every item after each sequence. Shapes: batch -> (n, n_items + 1)."""
        return self.scores(self._last_hidden(batch))
