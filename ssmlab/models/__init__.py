"""Recommenders, one file each, built by name.

>>> from ssmlab.models import build_model
>>> model = build_model("tim4rec", n_items=100, d_model=32)  # doctest: +SKIP

Every model subclasses :class:`~ssmlab.models.base.SequentialRecommender` and names its config
dataclass in ``config_class``. Modules are imported only when their model is asked for.
"""

from __future__ import annotations

import importlib

from ssmlab.models.base import ModelConfig, SequentialRecommender

# registry name -> "module:Class"
REGISTRY: dict[str, str] = {
    "sasrec": "ssmlab.models.sasrec:SASRec",
    "tisasrec": "ssmlab.models.tisasrec:TiSASRec",
    "gru4rec": "ssmlab.models.gru4rec:GRU4Rec",
    "bert4rec": "ssmlab.models.bert4rec:BERT4Rec",
    "caser": "ssmlab.models.caser:Caser",
    "lrurec": "ssmlab.models.lrurec:LRURec",
    "mamba4rec": "ssmlab.models.mamba4rec:Mamba4Rec",
    "ssd4rec": "ssmlab.models.ssd4rec:SSD4Rec",
    "ssd4rec_star": "ssmlab.models.ssd4rec_star:SSD4RecStar",
    "tim4rec": "ssmlab.models.tim4rec:TiM4Rec",
    "ss4rec": "ssmlab.models.ss4rec:SS4Rec",
}


def model_names() -> list[str]:
    return sorted(REGISTRY)


def get_model_class(name: str) -> type[SequentialRecommender]:
    """The class registered as ``name``; unknown names list the known ones."""
    key = name.lower().replace("-", "_")
    if key not in REGISTRY:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(model_names())}")
    module, cls = REGISTRY[key].split(":")
    return getattr(importlib.import_module(module), cls)


def build_model(
    name: str, n_items: int, config: ModelConfig | None = None, **fields
) -> SequentialRecommender:
    """Instantiate ``name`` with its config (``config`` or ``config_class(**fields)``)."""
    cls = get_model_class(name)
    if config is None:
        config = cls.config_class(**fields)
    elif fields:
        raise ValueError("pass either a config object or config fields, not both")
    return cls(config, n_items)


__all__ = [
    "REGISTRY",
    "ModelConfig",
    "SequentialRecommender",
    "build_model",
    "get_model_class",
    "model_names",
]
