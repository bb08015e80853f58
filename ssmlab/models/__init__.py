"""Recommenders, one file each, built by name.

>>> from ssmlab.models import build_model
>>> model = build_model("tim4rec", n_items=100, d_model=32)  # doctest: +SKIP

Every model subclasses :class:`~ssmlab.models.base.SequentialRecommender`, names its config
dataclass in ``config_class`` and registers itself with ``@register("name")``. Every module of
this package is imported here, so a new model file is found without a list to edit.
"""

from __future__ import annotations

import importlib
import pkgutil

from ssmlab.models.base import (
    REGISTRY,
    ModelConfig,
    SequentialRecommender,
    canonical_name,
    register,
)

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


def model_names() -> list[str]:
    return sorted(REGISTRY)


def get_model_class(name: str) -> type[SequentialRecommender]:
    """The class registered as ``name``; unknown names list the known ones."""
    key = canonical_name(name)
    if key not in REGISTRY:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(model_names())}")
    return REGISTRY[key]


def build_model(
    name: str,
    n_items: int,
    config: ModelConfig | None = None,
    *,
    dataset_users: int = 0,
    **fields,
) -> SequentialRecommender:
    """Instantiate ``name`` with its config (``config`` or ``config_class(**fields)``), with the
    sizes it takes from the data filled in (``ModelConfig.for_data``; ``dataset_users``: the
    dataset's user count, Caser's user table). ``model.config`` is the config it was built with."""
    cls = get_model_class(name)
    if config is None:
        config = cls.config_class(**fields)
    elif fields:
        raise ValueError("pass either a config object or config fields, not both")
    return cls(config.for_data(dataset_users) if dataset_users else config, n_items)


__all__ = [
    "REGISTRY",
    "ModelConfig",
    "SequentialRecommender",
    "build_model",
    "canonical_name",
    "get_model_class",
    "model_names",
    "register",
]
