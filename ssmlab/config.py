"""Experiment configuration: one dataclass per section, YAML presets, dotted overrides.

An experiment is ``ExperimentConfig(model_name, model, data, train)``: the model's own config
(its registry class's ``config_class``), a :class:`DataConfig` and a :class:`TrainConfig`.

Layers, later wins (:func:`load_config`):

1. the dataclass defaults;
2. built-in quick defaults for the generated ``toy`` dataset (:data:`QUICK_DEFAULTS`, and
   :data:`QUICK_TRAIN` chosen by the objective, which defaults to "all" there when the model
   supports it), so that ``ssmlab train`` finishes in a minute or two on a laptop CPU;
3. the packaged preset ``ssmlab/configs/<model>-<data>.yaml``, loaded automatically when it
   exists (the papers' settings live there);
4. the user's ``--config f.yaml``;
5. dotted overrides ``--set train.epochs=5 --set model.d_model=32``.

YAML files hold top-level ``model:``, ``data:`` and ``train:`` mappings. Every layer is checked
against the dataclass fields: an unknown key lists the valid ones, a value of the wrong type names
the key, the expected type and the value received. Override values are parsed as ints, floats,
bools (``true``/``false``), ``None`` (``none``/``null``), tuples (``1,2`` or ``(1, 2)``) or strings.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from ssmlab.data import load_dataset
from ssmlab.data.preprocess import TIE_ORDERS
from ssmlab.models import get_model_class
from ssmlab.models.base import ModelConfig

SECTIONS = ("model", "data", "train")
PRESET_DIR = Path(__file__).resolve().parent / "configs"

# Quick CPU settings for datasets meant for demos: applied before any preset or user file.
QUICK_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "toy": {"model": {"d_model": 32, "max_len": 20, "dropout": 0.1}},
}
# Objective chosen when train.objective is None, before "last": "all" is ~30x cheaper per epoch.
QUICK_OBJECTIVE: dict[str, str] = {"toy": "all"}
# Quick train settings per batcher of the resolved objective ("all", else "last"): an epoch of
# "all" rows is one pass per sequence, an epoch of "last" rows one pass per prefix (~32x more
# rows on toy). Measured on a 2-core CPU: tim4rec ("last" only) 3 epochs in ~90 s, test HR@10
# ~0.73 (time-blind ceiling 0.5); tisasrec ("all") ~30 s, HR@10 ~1.0.
QUICK_TRAIN: dict[str, dict[str, dict[str, Any]]] = {
    "toy": {
        "all": {"epochs": 30, "batch_size": 64, "patience": 5, "lr": 3e-3},
        "last": {"epochs": 3, "batch_size": 256, "patience": 2, "lr": 6e-3},
    },
}


class ConfigError(ValueError):
    """A configuration key or value is invalid; the message says which and what is allowed."""


@dataclass
class DataConfig:
    """Which dataset and how sequences are cut."""

    name: str = "toy"  # registry name: toy, ml-1m, amazon-beauty, kuairand, ml-100k, csv:PATH
    data_dir: str | None = None  # raw-data folder (else SSMLAB_DATA_DIR, see ssmlab.data)
    max_len: int | None = None  # longest history fed to the model; None: the model's max_len
    tie_order: str = "file"  # order of same-timestamp interactions: file, item, random
    tie_seed: int = 0  # seed of tie_order "random"
    csv_columns: tuple[str | int, ...] | None = None  # csv:PATH: (user, item, time) column
    # names, or 0-based positions with csv_header=false; None: user_id, item_id, timestamp
    csv_sep: str = ","  # csv:PATH: field separator
    csv_header: bool = True  # csv:PATH: the first line names the columns
    csv_time_unit: str = "s"  # csv:PATH: times in seconds ("s") or milliseconds ("ms")

    def __post_init__(self):
        if not self.name:
            raise ConfigError("data.name must be a non-empty dataset name")
        if self.name.startswith("csv:"):  # absolute: the run no longer depends on the cwd
            self.name = "csv:" + os.path.abspath(os.path.expanduser(self.name[4:]))
        if self.max_len is not None and self.max_len <= 0:
            raise ConfigError(f"data.max_len must be > 0 or None, got {self.max_len}")
        if self.tie_order not in TIE_ORDERS:
            raise ConfigError(f"data.tie_order must be one of {TIE_ORDERS}, got {self.tie_order!r}")
        if self.csv_columns is not None and len(self.csv_columns) != 3:
            raise ConfigError(f"data.csv_columns needs (user, item, time), got {self.csv_columns}")
        if self.csv_time_unit not in ("s", "ms"):
            raise ConfigError(f"data.csv_time_unit must be 's' or 'ms', got {self.csv_time_unit!r}")

    def load(self):
        """The ``ssmlab.data.Dataset`` this section describes."""
        csv = {}
        if self.name.startswith("csv:"):
            csv = {"sep": self.csv_sep, "header": self.csv_header, "time_unit": self.csv_time_unit}
            if self.csv_columns is not None:
                csv["columns"] = self.csv_columns
        return load_dataset(
            self.name,
            data_dir=self.data_dir,
            tie_order=self.tie_order,
            tie_seed=self.tie_seed,
            **csv,
        )


@dataclass
class TrainConfig:
    """Optimisation, early stopping, evaluation and logging."""

    lr: float = 1e-3  # Adam learning rate
    weight_decay: float = 0.0  # > 0 switches Adam to AdamW (decoupled decay)
    batch_size: int = 256  # training rows per step (per process under torchrun)
    eval_batch_size: int = 256  # users per evaluation batch
    epochs: int = 100  # upper bound on training epochs
    patience: int | None = 10  # evaluations without a better valid metric; None: never stop
    early_stop: str = "strict"  # "strict": better = larger; "recbole": RecBole 1.2's rule
    # (metric rounded to 4 decimals, ties count as better, stop after patience + 1 bad evaluations)
    objective: str | None = None  # "last" (prefix augmentation), "all" (every position), or a
    # model-specific one; None: "all" on toy, else "last", when the model supports it; else
    # the model's first objective
    metric: str = "ndcg@10"  # validation metric for early stopping and the best checkpoint
    ks: tuple[int, ...] = (10, 20, 50)  # cut-offs of hr@K, ndcg@K, mrr@K
    seed: int = 2020  # seeds python, numpy, torch and the data-order generator
    device: str | None = None  # cpu, cuda, cuda:1; None: cuda when available, else cpu
    grad_clip: float | None = None  # max global gradient norm; None: no clipping
    amp: bool = False  # bfloat16 autocast on CUDA (ignored on CPU)
    steps_per_epoch: int | None = None  # cap on training steps per epoch (smoke runs); None: all
    eval_every: int = 1  # validate every this many epochs (and after the last one)
    log_every: int = 20  # steps between progress-bar loss updates
    progress: bool = True  # tqdm bars (also off when stderr is not a terminal)
    find_unused_parameters: bool = False  # DDP option for models with branches unused by a loss
    divergence_factor: float | None = 10.0  # stop when a step's loss exceeds this many times
    # chance level, max(ln n_items, 1) (see Trainer._check_loss); None: stop on NaN/inf only
    bucket: bool = True  # batch rows of equal length together (almost no padding)

    def __post_init__(self):
        positive = {
            "lr": self.lr,
            "batch_size": self.batch_size,
            "eval_batch_size": self.eval_batch_size,
            "eval_every": self.eval_every,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ConfigError(f"train.{name} must be > 0, got {value}")
        nonneg = {
            "weight_decay": self.weight_decay,
            "epochs": self.epochs,
            "log_every": self.log_every,
        }
        for name, value in nonneg.items():
            if not value >= 0:
                raise ConfigError(f"train.{name} must be >= 0, got {value}")
        for name in ("patience", "steps_per_epoch", "grad_clip", "divergence_factor"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigError(f"train.{name} must be > 0 or None, got {value}")
        if self.early_stop not in ("strict", "recbole"):
            raise ConfigError(
                f"train.early_stop must be 'strict' or 'recbole', got {self.early_stop!r}"
            )
        if not self.ks or any(k <= 0 for k in self.ks):
            raise ConfigError(f"train.ks must be positive cut-offs, got {self.ks}")
        self.ks = tuple(sorted(set(self.ks)))
        kind, _, k = self.metric.partition("@")
        if kind not in ("hr", "ndcg", "mrr") or not k.isdigit() or int(k) not in self.ks:
            raise ConfigError(
                f"train.metric must be hr@K, ndcg@K or mrr@K with K in train.ks "
                f"{self.ks}, got {self.metric!r}"
            )


@dataclass
class ExperimentConfig:
    """A whole run: ``model_name`` plus the model, data and train sections."""

    model_name: str
    model: ModelConfig
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self):
        cls = get_model_class(self.model_name)  # KeyError listing the known models
        if not isinstance(self.model, cls.config_class):
            raise ConfigError(
                f"model config for {self.model_name!r} must be a "
                f"{cls.config_class.__name__}, got {type(self.model).__name__}"
            )
        if self.data.max_len is not None and self.data.max_len > self.model.max_len:
            raise ConfigError(
                f"data.max_len ({self.data.max_len}) exceeds model.max_len ({self.model.max_len})"
            )
        objectives = model_objectives(self.model_name, self.model)
        if self.train.objective is None:
            first = (QUICK_OBJECTIVE.get(self.data.name), "last")
            preferred = [o for o in first if o in objectives]
            self.train.objective = preferred[0] if preferred else objectives[0]
        if self.train.objective not in objectives:
            raise ConfigError(
                f"train.objective {self.train.objective!r} is not supported by "
                f"{self.model_name}; choose one of {objectives}"
            )

    @property
    def max_len(self) -> int:
        """The history length actually used: ``data.max_len`` or else ``model.max_len``."""
        return self.data.max_len or self.model.max_len

    def to_dict(self) -> dict[str, Any]:
        """Plain dicts/lists/scalars only (YAML- and ``weights_only``-safe)."""
        return {
            "model_name": self.model_name,
            **{s: _plain(dataclasses.asdict(getattr(self, s))) for s in SECTIONS},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExperimentConfig:
        """Inverse of :meth:`to_dict`; keys and types are checked as for YAML files."""
        if "model_name" not in d:
            raise ConfigError("config dict has no 'model_name'")
        unknown = set(d) - {"model_name", *SECTIONS}
        if unknown:
            raise ConfigError(f"unknown config sections {sorted(unknown)}; valid: {list(SECTIONS)}")
        return build_config(d["model_name"], [{s: d.get(s) or {} for s in SECTIONS}])

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def model_objectives(model_name: str, model_config: ModelConfig) -> tuple[str, ...]:
    """Objectives ``model_name`` supports with this config.

    Some models decide per instance (TiM4Rec: "all" only with ``time_mlp="causal"``), so a
    throw-away instance is built on the meta device (no memory, global RNG untouched); if that
    fails, the class attribute ``objectives`` is used.
    """
    cls = get_model_class(model_name)
    try:
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            return tuple(cls(model_config, 1).objectives)
    except Exception:  # noqa: BLE001 -- a model that cannot be built on meta: trust the class
        return tuple(cls.objectives)


def section_classes(model_name: str) -> dict[str, type]:
    """The dataclass behind each section for ``model_name``."""
    return {
        "model": get_model_class(model_name).config_class,
        "data": DataConfig,
        "train": TrainConfig,
    }


def preset_path(model_name: str, data_name: str) -> Path:
    """Where the packaged preset for this model and dataset would be."""
    model_key = model_name.lower().replace("-", "_")
    return PRESET_DIR / f"{model_key}-{data_name.lower()}.yaml"


def load_config(
    model_name: str,
    data_name: str = "toy",
    config_file: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    preset: bool = True,
) -> ExperimentConfig:
    """Defaults <- quick toy defaults <- packaged preset <- ``config_file`` <- ``overrides``.

    ``overrides`` are ``"section.key=value"`` strings. ``preset=False`` skips the packaged file.
    """
    get_model_class(model_name)  # fail early on an unknown model
    quick = [QUICK_DEFAULTS[data_name]] if data_name in QUICK_DEFAULTS else []
    later: list[dict] = []
    packaged = preset_path(model_name, data_name)
    if preset and packaged.is_file():
        later.append(read_yaml(packaged))
    if config_file is not None:
        later.append(read_yaml(config_file))
    later.append(parse_overrides(overrides))
    config = build_config(model_name, [{"data": {"name": data_name}}, *quick, *later])
    if data_name in QUICK_TRAIN:  # settings that depend on the resolved objective
        table = QUICK_TRAIN[data_name]
        by_objective = table.get(config.train.objective, table["last"])
        quick.append({"train": by_objective})
        config = build_config(model_name, [{"data": {"name": data_name}}, *quick, *later])
    return config


def build_config(model_name: str, layers: list[dict]) -> ExperimentConfig:
    """Merge ``{section: {key: value}}`` layers (later wins), check them, build the dataclasses."""
    classes = section_classes(model_name)
    merged: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for layer in layers:
        for section, values in layer.items():
            if section not in classes:
                raise ConfigError(f"unknown config section {section!r}; valid: {list(SECTIONS)}")
            if values is None:
                continue
            if not isinstance(values, dict):
                raise ConfigError(f"config section {section!r} must be a mapping, got {values!r}")
            hints = _field_types(classes[section])
            for key, value in values.items():
                if key not in hints:
                    raise ConfigError(
                        f"unknown key '{section}.{key}'; valid {section} keys: "
                        f"{', '.join(sorted(hints))}"
                    )
                raw = value.raw if isinstance(value, _Raw) else None
                value = value.value if isinstance(value, _Raw) else value
                merged[section][key] = coerce(value, hints[key], f"{section}.{key}", raw)
    try:
        sections = {s: classes[s](**merged[s]) for s in SECTIONS}
    except ConfigError:
        raise
    except (ValueError, TypeError) as err:
        raise ConfigError(str(err)) from err
    return ExperimentConfig(model_name.lower().replace("-", "_"), **sections)


def read_yaml(path: str | Path) -> dict:
    """A YAML config file as ``{section: {key: value}}``; checks that it is a mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"cannot parse YAML config {path}: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping with {list(SECTIONS)}")
    data.pop("model_name", None)  # written by to_yaml; the model comes from --model
    return data


@dataclass
class _Raw:
    value: Any
    raw: str


def parse_overrides(overrides) -> dict[str, dict[str, Any]]:
    """``["train.epochs=5", "model.d_model=32"]`` -> ``{"train": {"epochs": 5}, ...}``."""
    out: dict[str, dict[str, Any]] = {}
    for item in overrides:
        key, sep, text = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise ConfigError(
                f"override {item!r} must look like section.key=value with section "
                f"in {list(SECTIONS)}, e.g. train.epochs=5"
            )
        text = text.strip()
        out.setdefault(section, {})[name] = _Raw(parse_value(text), _unquote(text))
    return out


def parse_value(text: str) -> Any:
    """Parse an override value: None, bool, int, float, tuple or (otherwise) a string."""
    s = text.strip()
    low = s.lower()
    if low in ("none", "null", "~"):
        return None
    if low in ("true", "false"):
        return low == "true"
    if s[:1] in "([" and s[-1:] in ")]":
        inner = s[1:-1].strip()
        return tuple(parse_value(p) for p in inner.split(",") if p.strip()) if inner else ()
    if "," in s:
        return tuple(parse_value(p) for p in s.split(",") if p.strip())
    for kind in (int, float):
        try:
            return kind(s)
        except ValueError:
            pass
    return _unquote(s)


def coerce(value: Any, annotation: Any, key: str, raw: str | None = None) -> Any:
    """Check ``value`` against a field annotation; widen int->float and list->tuple."""
    options = _union_args(annotation)
    if value is None:
        if type(None) in options:
            return None
        raise ConfigError(f"{key} cannot be None (expects {_type_name(annotation)})")
    for option in options:
        if option is type(None):
            continue
        origin = typing.get_origin(option) or option
        if origin is str and raw is not None:  # override text kept verbatim for string fields
            return raw
        if origin is bool:
            if isinstance(value, bool):
                return value
        elif origin is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        elif origin is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
        elif origin is str:
            if isinstance(value, str):
                return value
        elif origin is tuple:
            items = value if isinstance(value, (list, tuple)) else (value,)
            args = typing.get_args(option)
            inner = args[0] if args else Any
            try:
                return tuple(coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(items))
            except ConfigError:
                continue
        elif option is Any or not isinstance(origin, type) or isinstance(value, origin):
            return value
    raise ConfigError(
        f"{key} expects {_type_name(annotation)}, got {value!r} ({type(value).__name__})"
    )


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls) if f.init}


def _union_args(annotation: Any) -> tuple:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _unquote(s: str) -> str:
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        return s[1:-1]
    return s


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


__all__ = [
    "QUICK_DEFAULTS",
    "QUICK_OBJECTIVE",
    "QUICK_TRAIN",
    "ConfigError",
    "DataConfig",
    "ExperimentConfig",
    "TrainConfig",
    "build_config",
    "coerce",
    "load_config",
    "model_objectives",
    "parse_overrides",
    "parse_value",
    "preset_path",
    "read_yaml",
]
