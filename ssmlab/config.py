"""Experiment configuration: one dataclass per section, merged from YAML by OmegaConf.

:func:`load_config` merges, later wins: the dataclass defaults; the dataset's entry in
``configs/datasets.yaml``; the preset ``configs/<model>-<data>.yaml`` or else the dataset's
declared fallback; the user's ``--config`` file; ``--set section.key=value`` overrides.
OmegaConf checks every key and type against the dataclasses, which then check the values.
"""

from __future__ import annotations

import json
import os
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from ssmlab.data import load_dataset
from ssmlab.data.preprocess import TIE_ORDERS
from ssmlab.models import ModelConfig, canonical_name, get_model_class

SECTIONS = ("model", "data", "train")
PRESET_DIR = Path(__file__).resolve().parent / "configs"
DATASETS: dict[str, dict] = yaml.safe_load((PRESET_DIR / "datasets.yaml").read_text())


class ConfigError(ValueError):
    """A configuration key or value is invalid; the message says which and what is allowed."""


def _check(ok: bool, key: str, must: str, got: Any) -> None:
    if not ok:
        raise ConfigError(f"{key} must {must}, got {got!r}")


@dataclass
class DataConfig:
    """Which dataset and how sequences are cut; the ``csv_*`` fields apply to ``csv:PATH``."""

    name: str = "toy"  # registry name: toy, ml-1m, amazon-beauty, kuairand, ml-100k, csv:PATH
    data_dir: str | None = None  # raw-data folder (else SSMLAB_DATA_DIR, see ssmlab.data)
    max_len: int | None = None  # longest history fed to the model; None: the model's max_len
    tie_order: str = "file"  # order of same-timestamp interactions: file, item, random
    tie_seed: int = 0  # seed of tie_order "random"
    csv_columns: tuple[str | int, ...] | None = None  # (user, item, time) column names, or
    # 0-based positions with csv_header=false; None: user_id, item_id, timestamp (or 0, 1, 2)
    csv_sep: str = ","  # field separator
    csv_header: bool = True  # the first line names the columns
    csv_time_unit: str = "s"  # times in seconds ("s") or milliseconds ("ms")

    def __post_init__(self):
        _check(bool(self.name), "data.name", "be a non-empty dataset name", self.name)
        if self.name.startswith("csv:"):  # absolute: the run no longer depends on the cwd
            self.name = "csv:" + os.path.abspath(os.path.expanduser(self.name[4:]))
        cols, unit, ties = self.csv_columns, self.csv_time_unit, self.tie_order
        _check(self.max_len is None or self.max_len > 0, "data.max_len", "be > 0", self.max_len)
        _check(ties in TIE_ORDERS, "data.tie_order", f"be one of {TIE_ORDERS}", ties)
        _check(cols is None or len(cols) == 3, "data.csv_columns", "be (user, item, time)", cols)
        _check(unit in ("s", "ms"), "data.csv_time_unit", "be 's' or 'ms'", unit)

    def load(self):
        """The ``ssmlab.data.Dataset`` this section describes."""
        csv = {k.removeprefix("csv_"): v for k, v in asdict(self).items() if k.startswith("csv_")}
        kwargs = {"data_dir": self.data_dir, "tie_order": self.tie_order, "tie_seed": self.tie_seed}
        return load_dataset(self.name, **kwargs, **(csv if self.name.startswith("csv:") else {}))


@dataclass
class TrainConfig:
    """Optimisation, early stopping, evaluation and logging."""

    lr: float = 1e-3  # Adam learning rate
    weight_decay: float = 0.0  # > 0 switches Adam to AdamW (decoupled decay)
    batch_size: int = 256  # training rows per step (per process under torchrun)
    eval_batch_size: int = 256  # users per evaluation batch (at most 512 on a CPU: faster)
    epochs: int = 100  # upper bound on training epochs
    patience: int | None = 10  # evaluations without a better valid metric; None: never stop
    early_stop: str = "strict"  # "strict" (better = larger) or "recbole" (Trainer._update_best)
    objective: str | None = None  # "last" (prefix augmentation), "all" (every position), or a
    # model-specific one; None: load_config chooses (see configs/datasets.yaml)
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
        for name in ("lr", "batch_size", "eval_batch_size", "eval_every"):
            _check(getattr(self, name) > 0, f"train.{name}", "be > 0", getattr(self, name))
        for name in ("weight_decay", "epochs", "log_every"):
            _check(getattr(self, name) >= 0, f"train.{name}", "be >= 0", getattr(self, name))
        for name in ("patience", "steps_per_epoch", "grad_clip", "divergence_factor"):
            value = getattr(self, name)
            _check(value is None or value > 0, f"train.{name}", "be > 0 or None", value)
        stop = self.early_stop
        _check(stop in ("strict", "recbole"), "train.early_stop", "be 'strict' or 'recbole'", stop)
        _check(bool(self.ks) and min(self.ks) > 0, "train.ks", "be positive cut-offs", self.ks)
        self.ks = tuple(sorted(set(self.ks)))
        kind, _, k = self.metric.partition("@")
        ok = kind in ("hr", "ndcg", "mrr") and k.isdigit() and int(k) in self.ks
        _check(ok, "train.metric", f"be hr@K, ndcg@K or mrr@K, K in {self.ks}", self.metric)


@dataclass
class ExperimentConfig:
    """A whole run: ``model_name`` plus the model, data and train sections."""

    model_name: str
    model: ModelConfig
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self):
        cls = get_model_class(self.model_name)  # KeyError listing the known models
        kind, got = cls.config_class.__name__, type(self.model).__name__
        _check(isinstance(self.model, cls.config_class), "model", f"be a {kind}", got)
        if self.max_len > (cap := self.model.max_len):
            raise ConfigError(f"data.max_len ({self.max_len}) exceeds model.max_len ({cap})")
        if self.train.objective not in (objectives := cls.objectives_for(self.model)):
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
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExperimentConfig:
        """Inverse of :meth:`to_dict`; keys and types are checked as for YAML files."""
        _check("model_name" in d, "a config dict", "have a 'model_name'", list(d))
        return build_config(d["model_name"], [{k: v for k, v in d.items() if k != "model_name"}])

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def preset_path(model_name: str, data_name: str) -> Path:
    """Where the packaged preset for this model and dataset would be."""
    return PRESET_DIR / f"{canonical_name(model_name)}-{data_name.lower()}.yaml"


def preset_layers(model_name: str, data_name: str) -> list[tuple[str, dict]]:
    """(source, layer) pairs: the model's preset for the dataset, else the dataset's declared
    ``fallback`` (``datasets.yaml``): the model's preset for another dataset, then settings."""
    own = preset_path(model_name, data_name)
    if own.is_file():
        return [(own.name, read_yaml(own))]
    fallback = dict(DATASETS.get(data_name, {}).get("fallback", {}))
    if not fallback:
        return []
    base = preset_path(model_name, fallback.pop("preset"))
    given = ", ".join(f"{s}.{k}={v}" for s, kv in fallback.items() for k, v in kv.items())
    return [(f"{base.name} (fallback)", read_yaml(base))] + ([(given, fallback)] if given else [])


def load_config(
    model_name: str,
    data_name: str = "toy",
    config_file: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    preset: bool = True,
) -> ExperimentConfig:
    """Defaults <- ``datasets.yaml`` <- :func:`preset_layers` (unless ``preset=False``) <-
    ``config_file`` <- ``overrides`` (``"section.key=value"`` strings).

    An unset ``train.objective`` is the first of the dataset's ``objectives`` (then "last") the
    model supports (``objectives_for``), else the model's first; the train settings the dataset
    gives that objective join the dataset's layer.
    """
    cls = get_model_class(model_name)  # KeyError listing the known models
    entry = DATASETS.get(data_name, {})
    rows = entry.get("objectives", {})
    layers = [{"data": {"name": data_name}}, {s: entry[s] for s in SECTIONS if s in entry}]
    layers += [layer for _, layer in preset_layers(model_name, data_name)] if preset else []
    layers += [read_yaml(config_file)] if config_file is not None else []
    layers.append(parse_overrides(overrides))
    sections = _sections(cls, layers)
    if (objective := sections["train"].objective) is None:
        supported = cls.objectives_for(sections["model"])
        objective = next((o for o in (*rows, "last") if o in supported), supported[0])
    layers.insert(2, {"train": rows.get(objective, {})})
    return build_config(model_name, [*layers, {"train": {"objective": objective}}])


def build_config(model_name: str, layers: list[dict]) -> ExperimentConfig:
    """Merge ``{section: {key: value}}`` layers over the defaults (later wins) into the config."""
    sections = _sections(get_model_class(model_name), layers)
    return ExperimentConfig(canonical_name(model_name), **sections)


def _sections(cls, layers: list[dict]) -> dict[str, Any]:
    schema = OmegaConf.create({"model": cls.config_class, "data": DataConfig, "train": TrainConfig})
    OmegaConf.set_struct(schema, True)  # unknown sections and keys are errors
    try:
        layers = [{k: v for k, v in layer.items() if v is not None} for layer in layers]
        merged = OmegaConf.merge(schema, *layers)
        return {s: OmegaConf.to_object(merged[s]) for s in SECTIONS}
    except ConfigKeyError as err:  # name the valid ones
        section, _, key = err.full_key.partition(".")
        what, valid = ("key", schema[section]) if key else ("config section", SECTIONS)
        raise ConfigError(f"unknown {what} '{err.full_key}'; valid: {', '.join(valid)}") from None
    except OmegaConfBaseException as err:  # a value of the wrong type
        raise ConfigError(f"{err.full_key or 'config'}: {str(err).splitlines()[0]}") from None
    except (TypeError, ValueError) as err:  # the sections' own checks
        raise ConfigError(str(err)) from err


def read_yaml(path: str | Path) -> dict:
    """A YAML config file as ``{section: {key: value}}`` (``model_name``, from to_yaml, dropped)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"cannot parse YAML config {path}: {err}") from err
    _check(isinstance(data, dict), f"config file {path}", f"map {list(SECTIONS)}", data)
    return {k: v for k, v in data.items() if k != "model_name"}


def parse_overrides(overrides) -> dict[str, dict[str, Any]]:
    """``["train.epochs=5", "model.d_model=32"]`` -> ``{"train": {"epochs": 5}, ...}``."""
    out: dict[str, dict[str, Any]] = {}
    for item in overrides:
        key, sep, text = item.partition("=")
        section, dot, name = key.strip().partition(".")
        form = f"be section.key=value, section in {list(SECTIONS)}, e.g. train.epochs=5"
        _check(bool(sep and dot and name), "an override", form, item)
        out.setdefault(section, {})[name] = parse_value(text)
    return out


def parse_value(text: str) -> Any:
    """An override value: None (none/null), a bool (true/false), an int, a float, a tuple (``1,2``
    or ``(1, 2)``), else the text (quotes removed: ``'5'`` is a string)."""
    s = text.strip()
    if s.lower() in ("none", "null", "~", "true", "false"):
        return {"true": True, "false": False}.get(s.lower())
    if s[:1] + s[-1:] in ("()", "[]") or "," in s:
        return tuple(parse_value(p) for p in s.strip("()[]").split(",") if p.strip())
    for kind in (int, float):
        with suppress(ValueError):
            return kind(s)
    return s[1:-1] if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"" else s
