"""Caser: horizontal and vertical convolutions over the embeddings of the last L items.

Paper: [Caser] Tang & Wang, "Personalized Top-N Sequential Recommendation via Convolutional
Sequence Embedding", WSDM 2018. Authors' code: https://github.com/graytowne/caser_pytorch.
This version follows RecBole 1.2 (``recbole/model/sequential_recommender/caser.py``,
https://github.com/RUCAIBox/RecBole): L = max_len by default, T = 1, CE over all items, L2 term.

Changes: the user embedding is optional (see the class Note); by default the window holds the
*last* L items right-aligned (as the authors' code), ``layout="recbole"`` convolves RecBole's
right-padded max_len sequence instead; horizontal Conv2d (h x d) filters are written as the
equivalent Conv1d over the sequence with d input channels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ssmlab.models.base import ModelConfig, SequentialRecommender, register

LAYOUTS = ("right_aligned", "recbole")


@dataclass
class CaserConfig(ModelConfig):
    """Caser settings; ``dropout`` is applied to the concatenated conv features."""

    n_h: int = 8  # n_h: horizontal filters per height h = 1..L (RecBole nh)
    n_v: int = 4  # n_v: vertical filters (RecBole nv)
    window: int = 0  # L: number of recent items convolved; 0 = max_len (RecBole)
    reg_weight: float = 1e-4  # weight of RecBole's L2 term (sum of weight norms)
    n_users: int = 0  # size of the user table (ids 1..n_users, from batch["user_id"]); 0 = none
    layout: str = "right_aligned"  # window: "right_aligned" (last L items) or "recbole" (padded)

    def __post_init__(self):
        super().__post_init__()
        if self.n_h < 0 or self.n_v < 0 or self.n_h + self.n_v == 0:
            raise ValueError(
                f"CaserConfig: n_h, n_v must be >= 0 and not both 0, got {self.n_h}, {self.n_v}"
            )
        if self.window < 0 or self.n_users < 0 or self.reg_weight < 0:
            raise ValueError("CaserConfig: window, n_users, reg_weight must be >= 0")
        if self.layout not in LAYOUTS:
            raise ValueError(f"CaserConfig: layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.layout == "recbole" and self.window not in (0, self.max_len):
            raise ValueError(
                f"CaserConfig: layout='recbole' convolves all max_len = {self.max_len} "
                f"positions; window must be 0 or {self.max_len}, got {self.window}"
            )

    @property
    def seq_window(self) -> int:
        return self.window or self.max_len


def last_items(item_seq: torch.Tensor, item_seq_len: torch.Tensor, window: int) -> torch.Tensor:
    """The last ``window`` real items of each right-padded row, right-aligned, 0 in front.

    Shapes: item_seq (b, l), item_seq_len (b,) -> (b, window) long, newest item at [:, -1].
    """
    index = item_seq_len[:, None] - window + torch.arange(window, device=item_seq.device)  # (b L)
    return item_seq.gather(1, index.clamp(min=0)) * (index >= 0)


@register("caser")
class Caser(SequentialRecommender):
    """Caser: vertical conv (n_v filters of size L x 1) and horizontal convs (n_h filters of each
    height 1..L, width d, ReLU, max-pooled over time) on the L x d embedding matrix of the last L
    items; concat, dropout, z = ReLU(W_1 .); output ReLU(W_2 [z; P_u]).

    The whole window gives one representation, so :meth:`forward` is implemented directly and
    :meth:`encode` returns it as a single step, (b, 1, d); only the "last" objective applies.

    Note:
        The original and RecBole concatenate a user embedding P_u. Our batches carry no user id
        by default, so it is optional: with ``n_users > 0`` the batch must hold ``user_id``
        (b,) long and P_u is used as in RecBole; with ``n_users = 0`` (default) W_2 maps z alone.
        ``layout="right_aligned"`` (default): windows are right-aligned on the newest item (the
        authors' code) and the padding row is 0. ``layout="recbole"``: RecBole's right-padded
        max_len sequence (``caser.py:114-117``), so vertical filters see absolute positions from
        the first item and the padding row keeps its random init (fixed: ``padding_idx``).
        L2 term as RecBole (``caser.py:147-155, 175-184``): ``reg_weight`` x (sum of the L2
        norms -- not squared -- of the item/user tables, vertical filters, W_1, W_2 and every
        horizontal filter bank).
    """

    config_class = CaserConfig
    causal = False
    objectives = ("last",)

    def __init__(self, config: CaserConfig, n_items: int):
        super().__init__(config, n_items)
        d, window = config.d_model, config.seq_window
        self.conv_v = nn.Conv2d(1, config.n_v, kernel_size=(window, 1)) if config.n_v else None
        self.conv_h = (
            nn.ModuleList(nn.Conv1d(d, config.n_h, kernel_size=h) for h in range(1, window + 1))
            if config.n_h
            else None
        )
        fc1_in = config.n_v * d + config.n_h * window
        self.fc1 = nn.Linear(fc1_in, d)
        self.user_embedding = (
            nn.Embedding(config.n_users + 1, d, padding_idx=0) if config.n_users else None
        )
        self.fc2 = nn.Linear(2 * d if config.n_users else d, d)
        self.dropout = nn.Dropout(config.dropout)
        for module in self.modules():  # RecBole's init
            if isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, 0.0, 1.0 / d)
            elif isinstance(module, nn.Linear):
                nn.init.xavier_normal_(module.weight)
                nn.init.zeros_(module.bias)
        if config.layout == "right_aligned":
            with torch.no_grad():
                self.item_embedding.weight[0].zero_()  # padding fills short windows: keep it 0

    def forward(self, item_seq, item_seq_len, time_seq=None, **extra) -> torch.Tensor:
        """Sequence representation. Shapes: (b, l), (b,) [, user_id (b,)] -> (b, d)."""
        if item_seq.dim() != 2:
            raise ValueError(f"Caser: item_seq must have shape (b, l), got {tuple(item_seq.shape)}")
        if self.config.layout == "recbole":  # RecBole's right-padded max_len sequence
            pad = self.config.max_len - item_seq.shape[1]
            if pad < 0:
                raise ValueError(
                    f"Caser: item_seq has length {item_seq.shape[1]} > max_len "
                    f"{self.config.max_len}; truncate the history to the last max_len items"
                )
            window = F.pad(item_seq, (0, pad))  # (b L)
        else:
            window = last_items(item_seq, item_seq_len, self.config.seq_window)  # (b L)
        emb = self.item_embedding(window)  # (b L d)
        features = []
        if self.conv_v is not None:
            features.append(self.conv_v(emb.unsqueeze(1)).flatten(1))  # (b 1 L d) -> (b n_v*d)
        if self.conv_h is not None:
            channels = emb.transpose(1, 2)  # (b d L)
            for conv in self.conv_h:
                features.append(F.relu(conv(channels)).amax(dim=2))  # (b n_h)
        z = F.relu(self.fc1(self.dropout(torch.cat(features, dim=1))))  # (b d)
        if self.user_embedding is not None:
            user_id = extra.get("user_id")
            if user_id is None or user_id.shape != item_seq_len.shape:
                raise ValueError(
                    f"Caser with n_users={self.config.n_users} needs user_id of shape "
                    f"{tuple(item_seq_len.shape)} in the batch"
                )
            z = torch.cat([z, self.user_embedding(user_id)], dim=1)  # (b 2d)
        return F.relu(self.fc2(z))

    def encode(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The representation as one step. Shapes: batch -> (b, 1, d)."""
        extra = {k: v for k, v in batch.items() if k not in ("item_seq", "item_seq_len")}
        return self.forward(batch["item_seq"], batch["item_seq_len"], **extra).unsqueeze(1)

    def reg_loss(self) -> torch.Tensor:
        """RecBole's L2 term: sum of the L2 norms of the tables, dense and conv weights."""
        weights = [self.item_embedding.weight, self.fc1.weight, self.fc2.weight]
        if self.conv_v is not None:
            weights.append(self.conv_v.weight)
        if self.conv_h is not None:  # reg_loss_conv_h (caser.py:147-155)
            weights.extend(conv.weight for conv in self.conv_h)
        if self.user_embedding is not None:
            weights.append(self.user_embedding.weight)
        return sum(w.norm(2) for w in weights)

    def calculate_loss(
        self, batch: dict[str, torch.Tensor], objective: str = "last"
    ) -> torch.Tensor:
        """CE over all items at the last position + ``reg_weight`` x :meth:`reg_loss`."""
        loss = super().calculate_loss(batch, objective)
        return loss + self.config.reg_weight * self.reg_loss() if self.config.reg_weight else loss
