"""Experiment config: defaults, presets, dotted overrides, type checks, round trip."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from ssmlab.config import (
    QUICK_DEFAULTS,
    QUICK_TRAIN,
    ConfigError,
    DataConfig,
    ExperimentConfig,
    TrainConfig,
    build_config,
    load_config,
    parse_overrides,
    parse_value,
)
from ssmlab.models import REGISTRY, ModelConfig, SequentialRecommender


class TinyConfig(ModelConfig):
    pass


class Tiny(SequentialRecommender):
    config_class = TinyConfig


class LastOnly(SequentialRecommender):
    """Decides its objectives per instance, as TiM4Rec does."""

    config_class = TinyConfig

    def __init__(self, config, n_items):
        super().__init__(config, n_items)
        self.objectives = ("last",)


@pytest.fixture(autouse=True)
def tiny_registered(monkeypatch):
    """A model the config system can look up (models are written elsewhere)."""
    import sys
    import types

    module = types.ModuleType("tests_tiny_config_model")
    module.Tiny, module.LastOnly = Tiny, LastOnly
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(REGISTRY, "tiny", f"{module.__name__}:Tiny")
    monkeypatch.setitem(REGISTRY, "lastonly", f"{module.__name__}:LastOnly")


@pytest.mark.parametrize(
    "text, value",
    [
        ("5", 5),
        ("-3", -3),
        ("1e-3", 1e-3),
        ("0.5", 0.5),
        ("true", True),
        ("False", False),
        ("None", None),
        ("null", None),
        ("10,20", (10, 20)),
        ("(1, 2.5)", (1, 2.5)),
        ("[]", ()),
        ("last", "last"),
        ("'5'", "5"),
    ],
)
def test_parse_value(text, value):
    assert parse_value(text) == value
    assert type(parse_value(text)) is type(value)


def test_defaults_and_toy_quick_defaults():
    cfg = load_config("tiny", "toy", preset=False)
    assert cfg.model_name == "tiny" and cfg.data.name == "toy"
    for section, values in QUICK_DEFAULTS["toy"].items():
        for key, value in values.items():
            assert getattr(getattr(cfg, section), key) == value
    assert cfg.train.objective == "all"  # toy prefers the cheap all-positions objective
    for key, value in QUICK_TRAIN["toy"]["all"].items():
        assert getattr(cfg.train, key) == value
    last = load_config("tiny", "toy", overrides=["train.objective=last"])
    for key, value in QUICK_TRAIN["toy"]["last"].items():  # settings follow the objective
        assert getattr(last.train, key) == value
    mine = load_config("tiny", "toy", overrides=["train.objective=last", "train.epochs=2"])
    assert mine.train.epochs == 2
    assert mine.train.batch_size == QUICK_TRAIN["toy"]["last"]["batch_size"]
    other = load_config("tiny", "ml-100k", preset=False)
    assert other.train == TrainConfig(objective="last")
    assert other.model == TinyConfig()


def test_overrides_apply_and_coerce():
    cfg = load_config(
        "tiny",
        "toy",
        overrides=[
            "train.epochs=5",
            "model.d_model=16",
            "train.lr=1",
            "train.ks=5,10",
            "train.metric=ndcg@5",
            "train.patience=None",
            "data.name=123",
            "train.grad_clip=1.5",
        ],
    )
    assert cfg.train.epochs == 5 and cfg.model.d_model == 16
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)  # int widened to float
    assert cfg.train.ks == (5, 10) and cfg.train.patience is None
    assert cfg.data.name == "123"  # string field keeps the text
    assert cfg.train.grad_clip == 1.5


@pytest.mark.parametrize(
    "override, words",
    [
        ("train.epoch=5", ["unknown key 'train.epoch'", "epochs", "batch_size"]),
        ("model.nope=1", ["unknown key 'model.nope'", "d_model", "n_layers"]),
        ("optim.lr=1", ["unknown config section 'optim'"]),
        ("epochs=5", ["section.key=value"]),
        ("train.epochs=five", ["train.epochs expects int", "'five'"]),
        ("train.epochs=2.5", ["train.epochs expects int"]),
        ("train.amp=1", ["train.amp expects bool"]),
        ("train.batch_size=None", ["train.batch_size cannot be None"]),
        ("train.lr=-1", ["train.lr must be > 0"]),
        ("model.dropout=1.5", ["dropout must be in [0, 1)"]),
        ("train.objective=cloze", ["not supported by tiny", "'last'", "'all'"]),
        ("train.metric=ndcg@7", ["train.metric"]),
    ],
)
def test_bad_overrides_raise_clear_errors(override, words):
    with pytest.raises(ConfigError) as err:
        load_config("tiny", "toy", overrides=[override])
    for word in words:
        assert word in str(err.value)


def test_per_instance_objectives_are_respected():
    import torch

    state = torch.get_rng_state()
    cfg = load_config("lastonly", "toy")
    assert torch.equal(torch.get_rng_state(), state)  # the probe instance used no randomness
    assert cfg.train.objective == "last"
    assert cfg.train.batch_size == QUICK_TRAIN["toy"]["last"]["batch_size"]
    with pytest.raises(ConfigError, match="not supported by lastonly"):
        load_config("lastonly", "toy", overrides=["train.objective=all"])


def test_unknown_model_lists_known():
    with pytest.raises(KeyError, match=r"known models: .*sasrec"):
        load_config("nosuchmodel", "toy")


def test_yaml_file_layer_and_preset(tmp_path, monkeypatch):
    from ssmlab import config

    monkeypatch.setattr(config, "PRESET_DIR", tmp_path)
    (tmp_path / "tiny-toy.yaml").write_text(
        "model:\n  d_model: 24  # (int) width\ntrain:\n  epochs: 3\n  batch_size: 64\n"
    )
    user = tmp_path / "user.yaml"
    user.write_text("train:\n  epochs: 4\n  ks: [10, 20]\n")
    cfg = load_config("tiny", "toy", config_file=user, overrides=["train.batch_size=32"])
    assert cfg.model.d_model == 24  # preset
    assert cfg.train.epochs == 4 and cfg.train.ks == (10, 20)  # user file beats preset
    assert cfg.train.batch_size == 32  # --set beats both
    assert load_config("tiny", "toy", preset=False).model.d_model == 32  # quick default
    assert cfg.train.batch_size == 32
    assert cfg.train.patience == QUICK_TRAIN["toy"]["all"]["patience"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epochz: 3\n")
    with pytest.raises(ConfigError, match=r"unknown key 'train\.epochz'"):
        load_config("tiny", "toy", config_file=bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config("tiny", "toy", config_file=tmp_path / "missing.yaml")


def test_round_trip_dict_and_yaml():
    cfg = load_config(
        "tiny", "toy", overrides=["train.ks=(10, 20)", "train.grad_clip=2.0", "data.max_len=10"]
    )
    d = cfg.to_dict()
    assert d["train"]["ks"] == [10, 20]  # plain lists, safe for weights_only checkpoints
    assert ExperimentConfig.from_dict(d) == cfg
    assert ExperimentConfig.from_dict(yaml.safe_load(cfg.to_yaml())) == cfg
    assert cfg.max_len == 10


def test_section_dataclasses_validate():
    with pytest.raises(ConfigError, match=r"data\.max_len"):
        DataConfig(max_len=0)
    with pytest.raises(ConfigError, match=r"exceeds model\.max_len"):
        build_config("tiny", [{"data": {"max_len": 99}, "model": {"max_len": 10}}])
    assert dataclasses.is_dataclass(TrainConfig) and TrainConfig().lr == 1e-3
    assert parse_overrides(["train.epochs=3"])["train"]["epochs"].value == 3
