"""The position-wise feed-forward network of the SSM recommenders, and their shared init.

``FeedForward`` is the RecBole/SASRec FFN with its own residual and LayerNorm, as Mamba4Rec,
TiM4Rec and SSD4Rec use it after their sequence mixer. The three differ only in the activation
(GELU in Mamba4Rec and SSD4Rec, Hardswish in TiM4Rec's code) and in where the second dropout
sits (before the residual in Mamba4Rec/TiM4Rec, after the LayerNorm in SSD4Rec).

``recbole_init`` is the weight initialization every one of these models applies to all its
modules after construction (RecBole's ``_init_weights``).
"""

from __future__ import annotations

from torch import nn

from ssmlab.layers.dropout import Dropout

ACTIVATIONS = {"gelu": nn.GELU, "hardswish": nn.Hardswish, "relu": nn.ReLU, "silu": nn.SiLU}


def make_activation(name: str) -> nn.Module:
    """The activation module called ``name`` (one of ``ACTIVATIONS``)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]()


class FeedForward(nn.Module):
    """Linear(d, inner) -> act -> Dropout -> Linear(inner, d), then residual and LayerNorm.

    ``dropout_after_norm=False`` (Mamba4Rec, TiM4Rec): LN(Dropout(h) + x).
    ``dropout_after_norm=True`` (SSD4Rec): Dropout(LN(h + x)).

    Shapes:
        x: (..., d)
        returns: (..., d)
    """

    def __init__(
        self,
        d_model: int,
        inner_size: int | None = None,
        dropout: float = 0.2,
        activation: str = "gelu",
        eps: float = 1e-12,
        dropout_after_norm: bool = False,
    ):
        super().__init__()
        inner_size = 4 * d_model if inner_size is None else inner_size
        if d_model <= 0 or inner_size <= 0:
            raise ValueError(f"d_model and inner_size must be > 0, got {d_model}, {inner_size}")
        self.fc1 = nn.Linear(d_model, inner_size)
        self.act = make_activation(activation)
        self.fc2 = nn.Linear(inner_size, d_model)
        self.dropout = Dropout(dropout)
        self.norm = nn.LayerNorm(d_model, eps=eps)
        self.dropout_after_norm = dropout_after_norm

    def forward(self, x):
        h = self.fc2(self.dropout(self.act(self.fc1(x))))  # (... d)
        if self.dropout_after_norm:
            return self.dropout(self.norm(h + x))
        return self.norm(self.dropout(h) + x)


def recbole_init(module: nn.Module, kaiming_conv: bool = False) -> None:
    """RecBole's ``_init_weights``, for ``model.apply(recbole_init)``.

    Linear and Embedding weights ~ N(0, 0.02), Linear biases 0, LayerNorm weight 1 and bias 0.
    With ``kaiming_conv`` (TiM4Rec's ``is_kai_ming_init``) Conv1d weights get Kaiming-normal
    (fan_out, relu) and zero biases; otherwise convolutions keep PyTorch's default.

    Note: as in the authors' code this also overwrites the special initializations of the
    blocks' Linear layers (e.g. Mamba's dt_proj bias, which becomes 0); parameters that are not
    Linear/Embedding weights (A_log, dt_bias, D, the S5 matrices) keep their SSM initialization.
    Unlike RecBole, the padding row of an Embedding with ``padding_idx`` is reset to 0.
    """
    if isinstance(module, (nn.Linear, nn.Embedding)):
        module.weight.data.normal_(mean=0.0, std=0.02)
        if isinstance(module, nn.Embedding) and module.padding_idx is not None:
            module.weight.data[module.padding_idx].zero_()
    elif isinstance(module, nn.LayerNorm) and module.elementwise_affine:
        module.weight.data.fill_(1.0)
        if module.bias is not None:
            module.bias.data.zero_()
    elif isinstance(module, nn.Conv1d) and kaiming_conv:
        nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        if module.bias is not None:
            module.bias.data.zero_()
    if isinstance(module, nn.Linear) and module.bias is not None:
        module.bias.data.zero_()
