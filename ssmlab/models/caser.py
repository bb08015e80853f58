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

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from ssmlab.layers.dropout import Dropout
from ssmlab.models.base import ModelConfig, SequentialRecommender, register

LAYOUTS = ("right_aligned", "recbole")
# horizontal_padded_tail costs ~ w^2 L multiply-adds per filter and d, the reference
# sum_h h (L - h + 1) = L (L + 1) (L + 2) / 6; the padded tail is taken up to this share of it.
# benchmarks/caser_conv.py (L = 50, one thread): 1.4x faster at w = 40 (share 3.6), 0.99x at 50
PADDED_TAIL_COST = 4.0


@dataclass
class CaserConfig(ModelConfig):
    """Caser settings; ``dropout`` is applied to the concatenated conv features."""

    n_h: int = 8  # n_h: horizontal filters per height h = 1..L (RecBole nh)
    n_v: int = 4  # n_v: vertical filters (RecBole nv)
    window: int = 0  # L: number of recent items convolved; 0 = max_len (RecBole)
    reg_weight: float = 1e-4  # weight of RecBole's L2 term (sum of weight norms)
    user_embedding: bool = False  # concatenate P_u (RecBole); its table has n_users rows
    n_users: int = 0  # user-table size (ids 1..n_users, batch["user_id"]); 0 = no table, or
    # with user_embedding the dataset's user count, set by build_model(dataset_users=)
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

    def for_data(self, n_users: int) -> CaserConfig:
        return replace(self, n_users=n_users) if self.user_embedding else self

    @property
    def seq_window(self) -> int:
        return self.window or self.max_len


def last_items(item_seq: torch.Tensor, item_seq_len: torch.Tensor, window: int) -> torch.Tensor:
    """The last ``window`` real items of each right-padded row, right-aligned, 0 in front.

    Shapes: item_seq (b, l), item_seq_len (b,) -> (b, window) long, newest item at [:, -1].
    """
    index = item_seq_len[:, None] - window + torch.arange(window, device=item_seq.device)  # (b L)
    return item_seq.gather(1, index.clamp(min=0)) * (index >= 0)


def horizontal_reference(emb: torch.Tensor, convs: nn.ModuleList) -> torch.Tensor:
    """Caser's horizontal features: per height h = 1..L, n_h filters (d x h) slid over the L
    positions, ReLU, max over the L - h + 1 windows (Caser Eq. 3-4; RecBole ``caser.py:130-137``).

    Shapes: emb (b, L, d), convs[h - 1] Conv1d(d, n_h, h) -> (b, L * n_h), height-major.
    """
    channels = emb.transpose(1, 2)  # (b d L)
    return torch.cat([F.relu(conv(channels)).amax(dim=2) for conv in convs], dim=1)


def horizontal_padded_tail(
    x: torch.Tensor, pad: torch.Tensor, weights: list[torch.Tensor], biases: list[torch.Tensor]
) -> torch.Tensor:
    """:func:`horizontal_reference` of a window whose positions ``w .. L-1`` all hold the
    vector ``pad``, given only its first ``w`` positions: the cost grows with w^2 L, not L^3.

    Window t of height h (positions t .. t+h-1) splits into its positions below w, read from
    ``x`` by one convolution with each filter's first min(h, w) taps, and its padding taps
    k >= w - t, whose sum ``W_h[k] . pad`` is the same for every row (a suffix sum over k).
    The windows lying wholly in the padding (t >= w, there when h <= L - w) all give
    ReLU(b_h + sum_k W_h[k] . pad): one value per filter, joined into the max.

    Shapes: x (b, w, d), pad (d,), weights[h - 1] (n_h, d, h) and biases[h - 1] (n_h,) for
    h = 1..L (w <= L) -> (b, L * n_h), equal to :func:`horizontal_reference` of
    ``cat([x, pad repeated L - w])`` with those filters.
    """
    b, w, _ = x.shape
    L, n_h = len(weights), weights[0].shape[0]
    heights = torch.arange(1, L + 1, device=x.device)
    taps = torch.stack([F.pad(wt[..., :w], (0, w - min(h, w))) for h, wt in enumerate(weights, 1)])
    real = F.conv1d(F.pad(x.transpose(1, 2), (0, w - 1)), taps.flatten(0, 1))  # (b L*n_h w)
    per_tap = torch.stack([F.pad(pad @ wt, (0, L - wt.shape[2])) for wt in weights])  # (L n_h L)
    suffix = F.pad(per_tap.flip(2).cumsum(2).flip(2), (0, 1))  # [h f m] = sum_{k >= m} W_h[k].pad
    bias = torch.stack(biases)[..., None]  # (L n_h 1)
    first_pad = w - torch.arange(w, device=x.device)  # (w) the first padding tap of window t
    out = F.relu(real.view(b, L, n_h, w) + suffix[..., first_pad] + bias)  # (b L n_h w)
    fits = torch.arange(w, device=x.device) <= (L - heights)[:, None]  # (L w) t <= L - h
    features = (out * fits[:, None, :]).amax(dim=3)  # (b L n_h); t = 0 always fits, out >= 0
    padding_only = F.relu(suffix[..., 0] + bias[..., 0])  # (L n_h) windows t >= w
    has_padding_only = ((L - heights) >= w)[:, None]  # (L 1)
    features = torch.where(has_padding_only, torch.maximum(features, padding_only), features)
    return features.flatten(1)  # (b L*n_h)


@register("caser")
class Caser(SequentialRecommender):
    """Caser: vertical conv (n_v filters of size L x 1) and horizontal convs (n_h filters of each
    height 1..L, width d, ReLU, max-pooled over time) on the L x d embedding matrix of the last L
    items; concat, dropout, z = ReLU(W_1 .); output ReLU(W_2 [z; P_u]).

    The whole window gives one representation, so :meth:`forward` is implemented directly and
    :meth:`encode` returns it as a single step, (b, 1, d); only the "last" objective applies.

    Note:
        The original and RecBole concatenate a user embedding P_u; here it is optional
        (``user_embedding``, on in the presets): then the batch must hold ``user_id`` (b,) long
        (``ssmlab.data`` batches do) and P_u is used as in RecBole; off, W_2 maps z alone.
        Horizontal convolutions: :func:`horizontal_padded_tail` for the batches it makes
        cheaper (all but the widest), else :func:`horizontal_reference`; they agree.
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
        if config.user_embedding and not config.n_users:
            raise ValueError(
                "Caser with user_embedding needs the number of users: build it with "
                "build_model(..., dataset_users=dataset.n_users) (the Trainer does) or set n_users"
            )
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
        self.dropout = Dropout(config.dropout)
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
            features.append(self._horizontal(window, item_seq_len, emb))  # (b n_h*L)
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

    def _horizontal(self, window, item_seq_len, emb) -> torch.Tensor:
        """Horizontal features; short batches take :func:`horizontal_padded_tail`, which skips
        the windows' common padding (RecBole layout: after the longest row; right-aligned:
        before it, read in reverse). Shapes: (b, L), (b,), (b, L, d) -> (b, L * n_h)."""
        L = window.shape[1]
        w = min(int(item_seq_len.max()), L) if item_seq_len.numel() else L
        if w == 0 or w * w * L > PADDED_TAIL_COST * L * (L + 1) * (L + 2) / 6:
            return horizontal_reference(emb, self.conv_h)
        pad = self.item_embedding(window.new_zeros(1))[0]  # (d) keeps padding_idx's no-grad
        weights, biases = [c.weight for c in self.conv_h], [c.bias for c in self.conv_h]
        if self.config.layout == "recbole":
            return horizontal_padded_tail(emb[:, :w], pad, weights, biases)
        flipped = [weight.flip(2) for weight in weights]  # windows read newest first
        return horizontal_padded_tail(emb[:, L - w :].flip(1), pad, flipped, biases)

    def encode(
        self, batch: dict[str, torch.Tensor], at: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The representation as one step, read whatever ``at`` names (Caser has no positions).
        Shapes: batch -> (b, 1, d), or (b, d) with ``at``."""
        extra = {k: v for k, v in batch.items() if k not in ("item_seq", "item_seq_len")}
        hidden = self.forward(batch["item_seq"], batch["item_seq_len"], **extra)  # (b d)
        return hidden if at is not None else hidden.unsqueeze(1)

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
