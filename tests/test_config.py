"""Experiment config: defaults, dataset layers, presets and fallbacks, dotted overrides, type
checks, round trip."""

from __future__ import annotations

import dataclasses

import pytest
import yaml
from conftest import TinyConfig, TinyGRU

from ssmlab.config import (
    DATASETS,
    ConfigError,
    DataConfig,
    ExperimentConfig,
    TrainConfig,
    build_config,
    load_config,
    parse_overrides,
    parse_value,
    preset_layers,
)

TOY = DATASETS["toy"]


class LastOnly(TinyGRU):
    """Decides its objectives from its config, as TiM4Rec does; the config never builds it."""

    @classmethod
    def objectives_for(cls, config):
        return ("last",) if config.d_model > 1 else ("all",)

    def __init__(self, config, n_items):
        raise AssertionError("the config system built a model")


@pytest.fixture(autouse=True)
def tiny_registered(register_model):
    register_model("tiny")
    register_model("lastonly", LastOnly)


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
        ("user,item,time", ("user", "item", "time")),
        ("", ""),
    ],
)
def test_parse_value(text, value):
    assert parse_value(text) == value
    assert type(parse_value(text)) is type(value)


def test_defaults_and_toy_dataset_layer():
    cfg = load_config("tiny", "toy", preset=False)
    assert cfg.model_name == "tiny" and cfg.data.name == "toy"
    for key, value in TOY["model"].items():
        assert getattr(cfg.model, key) == value
    assert cfg.train.objective == "all"  # toy prefers the cheap all-positions objective
    for key, value in TOY["objectives"]["all"].items():
        assert getattr(cfg.train, key) == value
    last = load_config("tiny", "toy", overrides=["train.objective=last"])
    for key, value in TOY["objectives"]["last"].items():  # settings follow the objective
        assert getattr(last.train, key) == value
    mine = load_config("tiny", "toy", overrides=["train.objective=last", "train.epochs=2"])
    assert mine.train.epochs == 2
    assert mine.train.batch_size == TOY["objectives"]["last"]["batch_size"]
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
        ("optim.lr=1", ["unknown config section 'optim'", "model, data, train"]),
        ("epochs=5", ["section.key=value", "'epochs=5'"]),
        ("train.epochs=five", ["train.epochs", "'five'", "Integer"]),
        ("train.epochs=2.5", ["train.epochs", "'2.5'", "Integer"]),
        ("train.amp=maybe", ["train.amp", "'maybe'", "bool"]),
        ("train.batch_size=None", ["train.batch_size", "'None'", "'int'"]),
        ("train.ks=5", ["train.ks", "int is not a", "tuple"]),
        ("train.lr=-1", ["train.lr must be > 0"]),
        ("model.dropout=1.5", ["dropout must be in [0, 1)"]),
        ("train.objective=cloze", ["not supported by tiny", "'last'", "'all'"]),
        ("train.metric=ndcg@7", ["train.metric"]),
    ],
)
def test_bad_overrides_raise_clear_errors(override, words):
    with pytest.raises(ConfigError) as err:
        load_config("tiny", "toy", overrides=[override])
    message = str(err.value)
    assert "\n" not in message  # the CLI prints it as one line
    for word in words:
        assert word in message


def test_objectives_come_from_the_class_without_building_a_model():
    cfg = load_config("lastonly", "toy")  # LastOnly.__init__ would raise
    assert cfg.train.objective == "last"
    assert cfg.train.batch_size == TOY["objectives"]["last"]["batch_size"]
    with pytest.raises(ConfigError, match="not supported by lastonly"):
        load_config("lastonly", "toy", overrides=["train.objective=all"])
    one = load_config("lastonly", "toy", overrides=["model.d_model=1"])  # the config decides
    assert one.train.objective == "all" and one.train.epochs == TOY["objectives"]["all"]["epochs"]


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
    assert load_config("tiny", "toy", preset=False).model.d_model == 32  # the toy layer
    assert cfg.train.patience == TOY["objectives"]["all"]["patience"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epochz: 3\n")
    with pytest.raises(ConfigError, match=r"unknown key 'train\.epochz'"):
        load_config("tiny", "toy", config_file=bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config("tiny", "toy", config_file=tmp_path / "missing.yaml")


def test_fallback_is_the_ml1m_preset_with_the_datasets_settings(tmp_path, monkeypatch):
    from ssmlab import config

    monkeypatch.setattr(config, "PRESET_DIR", tmp_path)
    (tmp_path / "tiny-ml-1m.yaml").write_text("model:\n  max_len: 200\ntrain:\n  epochs: 7\n")
    cfg = load_config("tiny", "amazon-beauty", overrides=["model.max_len=64"])
    assert (cfg.model.dropout, cfg.model.max_len, cfg.train.epochs) == (0.4, 64, 7)
    sources = [name for name, _ in preset_layers("tiny", "amazon-beauty")]
    assert sources == ["tiny-ml-1m.yaml (fallback)", "model.dropout=0.4, model.max_len=50"]
    assert load_config("tiny", "ml-100k").model.max_len == 200  # ML-1M's settings as they are
    assert preset_layers("tiny", "toy") == []  # no preset, no fallback: the defaults
    (tmp_path / "tiny-amazon-beauty.yaml").write_text("model:\n  max_len: 30\n")
    assert load_config("tiny", "amazon-beauty").model.dropout == TinyConfig.dropout  # own preset


def test_round_trip_dict_and_yaml():
    cfg = load_config(
        "tiny", "toy", overrides=["train.ks=(10, 20)", "train.grad_clip=2.0", "data.max_len=10"]
    )
    d = cfg.to_dict()
    assert d["train"]["ks"] == [10, 20]  # plain lists, safe for weights_only checkpoints
    assert ExperimentConfig.from_dict(d) == cfg
    assert ExperimentConfig.from_dict(yaml.safe_load(cfg.to_yaml())) == cfg
    assert cfg.max_len == 10
    with pytest.raises(ConfigError, match=r"unknown config section 'optimizer'"):
        ExperimentConfig.from_dict({**d, "optimizer": {}})


def test_section_dataclasses_validate():
    with pytest.raises(ConfigError, match=r"data\.max_len"):
        DataConfig(max_len=0)
    with pytest.raises(ConfigError, match=r"exceeds model\.max_len"):
        build_config("tiny", [{"data": {"max_len": 99}, "model": {"max_len": 10}}])
    with pytest.raises(ConfigError, match=r"train\.objective None is not supported"):
        build_config("tiny", [{}])  # build_config resolves nothing: load_config does
    assert dataclasses.is_dataclass(TrainConfig) and TrainConfig().lr == 1e-3
    assert parse_overrides(["train.epochs=3", "model.d_model=8"]) == {
        "train": {"epochs": 3},
        "model": {"d_model": 8},
    }
