"""Smoke tests of the benchmarks (``ssmlab bench kernels --quick``, reproduce.py on toy, the
efficiency benchmark --quick, the epoch benchmark on toy, s6, data, widgets, the RecBole
comparison).

They check the files and the JSON schema, never the timings: each smoke run's JSON has the keys
of the result file committed in benchmarks/results/ (:func:`assert_keys_as_committed`), so a
benchmark still writes what its committed figures were made from.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

from ssmlab import cli
from ssmlab.bench import kernels, machine_info
from ssmlab.bench import train as efficiency

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
METRICS = [f"{kind}@{k}" for kind in ("hr", "ndcg", "mrr") for k in (10, 20, 50)]


def _load(script: str):
    spec = importlib.util.spec_from_file_location(script, ROOT / "benchmarks" / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load_reproduce():
    return _load("reproduce")


def key_paths(value, maps=(), opaque=(), prefix: str = "") -> set[str]:
    """Every key path of a JSON value: ``"a.b"``, list items as ``"a[].b"``; the keys of a dict
    at a path in ``maps`` (names of datasets, models, lengths, seeds) read ``"*"``; what is
    inside a path in ``opaque`` is left out."""
    out = set()
    if prefix in opaque:
        return out
    if isinstance(value, dict):
        for k, v in value.items():
            path = f"{prefix}.{'*' if prefix in maps else k}".lstrip(".")
            out |= {path} | key_paths(v, maps, opaque, path)
    elif isinstance(value, list):
        for v in value:
            out |= key_paths(v, maps, opaque, prefix + "[]")
    return out


def assert_keys_as_committed(
    new: dict, committed: dict | str, maps=(), optional=(), opaque=()
) -> None:
    """``new`` (a smoke run's JSON) has the key paths of the committed result file, none more and
    none fewer but ``optional`` ones (a skipped cell's reason, ...). ``machine`` may gain the keys
    of the shared :func:`ssmlab.bench.machine_info` (data-cpu and widgets-cpu were written by
    copies of it; widgets' ``cpu_count`` is its ``cores``)."""
    if isinstance(committed, str):
        committed = json.loads((RESULTS / committed).read_text())
    old, got = key_paths(committed, maps, opaque), key_paths(new, maps, opaque)
    shared = {f"machine.{k}" for k in machine_info("cpu")}
    assert got - old <= shared, f"keys the committed file lacks: {sorted(got - old - shared)}"
    missing = old - got - set(optional) - {"machine.cpu_count"}
    assert not missing, f"committed keys the smoke run lacks: {sorted(missing)}"


def test_paper_table3_transcription():
    reproduce = _load_reproduce()
    beauty = reproduce.PAPER_TABLE3["amazon-beauty"]
    assert set(beauty) == set(reproduce.TABLE3_MODELS) - {"ssd4rec"}
    # spot checks against the paper's Beauty rows (bold = TiM4Rec, underlined = SASRec R@10)
    assert beauty["tim4rec"]["ndcg@10"] == 0.0446
    assert beauty["sasrec"]["hr@10"] == 0.0851
    assert beauty["bert4rec"]["mrr@50"] == 0.0145
    for data in ("ml-1m", "amazon-beauty", "kuairand"):
        for model, row in reproduce.PAPER_TABLE3[data].items():
            assert set(row) == set(METRICS), (data, model)
            for kind in ("hr", "ndcg", "mrr"):  # each metric grows with K
                assert row[f"{kind}@10"] <= row[f"{kind}@20"] <= row[f"{kind}@50"], (data, model)


def test_reproduce_toy_schema(tmp_path, capsys):
    reproduce = _load_reproduce()
    args = [
        "--data",
        "toy",
        "--models",
        "gru4rec,sasrec",
        "--epochs",
        "1",
        "--threads",
        "1",
        "--set",
        "model.d_model=16",
        "--set",
        "train.steps_per_epoch=2",
        "--eval-users",
        "200",
        "--out",
        str(tmp_path),
        "--runs",
        str(tmp_path / "runs"),
        "--quiet",
    ]
    reproduce.main(args)
    # finished rows are skipped when the command is run again
    reproduce.main([*args[:3], "gru4rec", *args[4:]])
    assert "gru4rec | seed 0: done, skipped" in capsys.readouterr().out
    data = json.loads((tmp_path / "reproduction.json").read_text())
    assert {"toy", "machine", "notes", "settings"} <= set(data)
    assert set(data["toy"]) == {"gru4rec", "sasrec"}
    for name, record in data["toy"].items():
        for key in METRICS:
            assert 0.0 <= record[key] <= 1.0 and math.isfinite(record[key])
        assert record["epochs"] == 1.0 and record["steps"] == 2
        assert record["converged"] is False and record["capped"] == "epochs"
        assert record["seed"] == 0 and record["eval_users"] == 200
        assert record["train_seconds"] >= 0 and record["tie_order"] == "item"
        assert record["test_tie_group"]["users"] == 200  # toy: no ties, every user scored
        log = (tmp_path / record["runs"]["0"]["log"]).read_text().splitlines()
        assert len(log) == 1 and json.loads(log[0])["train_seconds"] >= 0, name
    md = (tmp_path / "reproduction.md").read_text()
    assert "## toy" in md and "Capped, not converged" in md and "| gru4rec |" in md
    # the rows have the fields of the committed rows of this format (those with "runs")
    committed = json.loads((RESULTS / "reproduction.json").read_text())
    sections = [k for k in committed if k not in ("machine", "notes", "settings")]
    rows = [r for k in sections for r in committed[k].values() if "runs" in r]
    assert rows
    assert_keys_as_committed(
        {"rows": list(data["toy"].values())},
        {"rows": rows},
        maps=("rows[].runs",),
        optional=("rows[].spread", *(f"rows[].spread.{m}" for m in METRICS)),  # several seeds
    )


def test_reproduce_resumes_and_summarizes_seeds(tmp_path):
    """A time-capped run resumes from its checkpoint; several seeds give a median row."""
    reproduce = _load_reproduce()
    base = ["--data", "toy", "--models", "gru4rec", "--threads", "1", "--quiet"]
    base += ["--set", "model.d_model=8", "--set", "train.steps_per_epoch=2", "--eval-users", "50"]
    base += ["--out", str(tmp_path), "--runs", str(tmp_path / "runs"), "--tie-order", "file"]
    key = "toy/tie=file"
    reproduce.main([*base, "--epochs", "3", "--time-budget-min", "0.00001"])
    first = json.loads((tmp_path / "reproduction.json").read_text())[key]["gru4rec"]
    assert first["capped"] == "time" and first["steps"] == 1
    reproduce.main([*base, "--epochs", "1"])  # the time-capped run is not finished: trained
    first = json.loads((tmp_path / "reproduction.json").read_text())[key]["gru4rec"]
    assert first["capped"] == "epochs" and first["steps"] == 2
    reproduce.main([*base, "--epochs", "3", "--seeds", "0,1"])  # seed 0 resumes at epoch 1
    rows = json.loads((tmp_path / "reproduction.json").read_text())[key]
    row = rows["gru4rec"]
    assert row["runs"]["0"]["resumed_from_epoch"] == 1
    assert row["runs"]["0"]["steps"] == 6 and row["runs"]["1"]["steps"] == 6
    assert row["seed"] == [0, 1] and set(row["spread"]) >= set(METRICS)
    lo, hi = row["spread"]["ndcg@10"]
    assert lo <= row["ndcg@10"] <= hi
    assert set(row["test_tie_group"]) == {*METRICS, "users"}


def test_subsample_users_keeps_whole_sequences():
    reproduce = _load_reproduce()
    from ssmlab.data import load_dataset

    split = load_dataset("toy").split()
    sub = reproduce.subsample_users(split, 50, seed=3)
    assert len(sub) == 50
    assert sub.lengths.sum() == len(sub.items)
    whole = {tuple(split.items[s:e]) for s, e in zip(split.offsets[:-1], split.offsets[1:])}
    assert all(tuple(sub.items[s:e]) in whole for s, e in zip(sub.offsets[:-1], sub.offsets[1:]))
    assert reproduce.subsample_users(split, None, 0) is split


def test_efficiency_quick(tmp_path):
    code = efficiency.main(
        [
            "--quick",
            "--models",
            "sasrec,tim4rec",
            "--lengths",
            "8",
            "--threads",
            "1",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    data = json.loads((tmp_path / "efficiency-cpu.json").read_text())
    assert {"machine", "settings", "rows", "ratios", "paper"} <= set(data)
    assert [row["model"] for row in data["rows"]] == ["sasrec", "tim4rec"]
    for row in data["rows"]:
        (cell,) = row["cells"]
        assert cell["status"] == "ok" and cell["L"] == 8
        for key in ("train_step_s", "train_epoch_s", "infer_s", "peak_mem_bytes"):
            assert key in cell and cell[key] is not None
        assert cell["steps_per_epoch"] == math.ceil(efficiency.BEAUTY_PREFIX_ROWS / 4)
    names = {r["name"] for r in data["ratios"]}
    assert "SASRec / TiM4Rec" in names and "TiSASRec / SASRec" in names
    sasrec_tim = next(r for r in data["ratios"] if r["name"] == "SASRec / TiM4Rec")
    assert sasrec_tim["values"]["8"] > 0 and sasrec_tim["paper_ml1m"] == pytest.approx(
        2.48, abs=0.01
    )
    md = (tmp_path / "efficiency-cpu.md").read_text()
    assert "## Ratios" in md and "| tim4rec |" in md
    html = (tmp_path / "efficiency-cpu.html").read_text()
    assert "cdn.plot.ly" in html and len(html) < 200_000
    # a skipped cell has a reason; peak_mem_reset_ok went with the benchmark's own memory probe
    # (b7bd854), after the committed file was written
    optional = ("rows[].cells[].reason", "rows[].cells[].peak_mem_reset_ok")
    committed = "efficiency-cpu.json"
    assert_keys_as_committed(data, committed, maps=("ratios[].values",), optional=optional)


def test_synthetic_batch_full_length():
    batch = efficiency.synthetic_batch(3, 7, n_items=20)
    assert batch["item_seq"].shape == (3, 7) and (batch["item_seq_len"] == 7).all()
    assert (batch["item_seq"] >= 1).all() and (batch["item_seq"] <= 20).all()
    assert (batch["time_seq"].diff(dim=1) > 0).all()
    assert (batch["target_time"] > batch["time_seq"][:, -1]).all()
    with pytest.raises(ValueError, match="seqlen"):
        efficiency.synthetic_batch(3, 0, n_items=20)


def test_peer_compare_writes_report(tmp_path):
    """The ssmlab side of the RecBole comparison, against a stand-in RecBole result file."""
    spec = importlib.util.spec_from_file_location("peer", ROOT / "benchmarks" / "peer_recbole.py")
    peer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peer)
    settings = {
        "MAX_ITEM_LIST_LENGTH": 20,
        "hidden_dropout_prob": 0.2,
        "attn_dropout_prob": 0.2,
        "n_heads": 2,
        "train_batch_size": 256,
        "learning_rate": 0.001,
        "seed": 0,
    }
    fake = {
        "train_seconds_per_epoch": [100.0, 100.0],
        "train_cpu_seconds_per_epoch": [80.0, 90.0],
        "torch_threads": 1,
        "test": {"ndcg@10": 0.1},
        "valid_per_epoch": [{"ndcg@10": 0.05}, {"ndcg@10": 0.02}],
        "settings": settings,
    }
    (tmp_path / "recbole-toy.json").write_text(json.dumps(fake))
    report = peer.compare(
        "toy",
        tmp_path,
        tmp_path / "res",
        ["all"],
        max_epochs=2,
        extra=("model.d_model=16", "train.steps_per_epoch=3"),
    )
    assert (
        report["recbole"]["best_epoch"] == 1 and report["recbole"]["train_seconds_to_best"] == 100
    )
    assert report["recbole"]["train_cpu_seconds_to_best"] == 80
    (ours,) = report["ssmlab"].values()
    assert 1 <= len(ours["train_seconds_per_epoch"]) <= 2
    assert len(ours["valid_ndcg@10_per_epoch"]) == len(ours["train_seconds_per_epoch"])
    if ours["reached"] is not None:  # stopped at the first epoch at or above the target
        assert ours["valid_ndcg@10_per_epoch"][ours["reached"]["epoch"] - 1] >= 0.05
        assert ours["reached"]["epoch"] == len(ours["train_seconds_per_epoch"])
    md = (tmp_path / "res" / "peer-recbole-toy.md").read_text()
    assert "| RecBole SASRec (prefix rows) | 100.0 | 2 |" in md and "| 80.0 | 1x |" in md
    assert len(ours["train_cpu_seconds_per_epoch"]) == len(ours["train_seconds_per_epoch"])
    assert "`all`: all positions; model.d_model=16" in md
    again = peer.compare(
        "toy",
        tmp_path,
        tmp_path / "res",
        ["all"],
        max_epochs=1,
        extra=("model.d_model=8", "train.steps_per_epoch=1"),
    )
    assert len(again["ssmlab"]) == 2  # runs against the same RecBole result accumulate
    # the stand-in RecBole file has a few settings and metrics; RecBole's own has them all
    opaque = ("recbole.settings", "recbole.test")
    committed = json.loads((RESULTS / "peer-recbole-amazon-beauty.json").read_text())
    assert_keys_as_committed(
        again,
        committed,
        maps=("ssmlab",),
        optional=(
            "ssmlab.*.reached.epoch",
            "ssmlab.*.reached.train_seconds",
            "ssmlab.*.reached.train_cpu_seconds",
        ),
        opaque=opaque,
    )


def test_train_epoch_benchmark_schema(tmp_path):
    from ssmlab.bench import main as bench_main

    argv = ["--data", "toy", "--models", "sasrec,caser,tim4rec", "--steps", "2", "--warmup", "0"]
    argv += ["--set", "model.d_model=16"]
    assert bench_main("train", [*argv, "--threads", "1", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "train-epoch-cpu.json").read_text())
    floor = report["floor"]
    assert floor["naive_s"] > 0 and floor["fused_s"] > 0 and floor["targets"] > 0
    rows = {(r["model"], r["variant"], r["protocol"]): r for r in report["rows"]}
    assert rows[("caser", None, "all")]["status"].startswith("n/a")
    assert rows[("tim4rec", None, "all")]["status"].startswith("n/a")  # positional time MLP
    causal = ("tim4rec", "causal time path")
    assert rows[(*causal, "all")]["status"] == rows[(*causal, "last")]["status"] == "ok"
    for model, protocol in [("sasrec", "all"), ("sasrec", "last"), ("caser", "last")]:
        key = (model, None, protocol)
        row = rows[key]
        assert row["status"] == "ok" and row["timed_steps"] == 2 and row["epoch_s"] > 0
        assert row["tokens_real"] <= row["tokens_processed"] <= 1.25 * row["tokens_real"]
        assert row["floor_ratio"] == row["epoch_s"] / floor["naive_s"]
        assert row["eval_s"] > 0
    text = (tmp_path / "train-epoch-cpu.md").read_text()
    assert "| sasrec | all | all |" in text and "| tim4rec (causal time path) | all | all |" in text
    assert_keys_as_committed(report, "train-epoch-cpu.json")


def test_s6_quick_keys(tmp_path):
    s6 = _load("s6")
    argv = ["--quick", "--batch", "2", "--step-lengths", "4", "--out", str(tmp_path)]
    assert s6.main(argv) == 0
    report = json.loads((tmp_path / "s6-cpu.json").read_text())
    maps = ("ratios.scan_speedup", "ratios.mamba4rec_over_sasrec")
    assert_keys_as_committed(report, "s6-cpu.json", maps=maps, optional=("scan[].skipped",))


def test_widgets_keys(tmp_path):
    pytest.importorskip("ipywidgets")
    widgets = _load("widgets")
    widgets.main(["--updates", "2", "--out", str(tmp_path)])
    report = json.loads((tmp_path / "widgets-cpu.json").read_text())
    assert [r["updates"] for r in report["results"]] == [2] * len(report["results"])
    assert_keys_as_committed(report, "widgets-cpu.json")


def test_data_keys(tmp_path, shared_datasets):
    if not (shared_datasets / "amazon-beauty").is_dir():
        pytest.skip(f"Amazon-Beauty not found in {shared_datasets}")
    data = _load("data")
    argv = ["--repeats", "1", "--data-dir", str(shared_datasets), "--out", str(tmp_path)]
    assert data.main(argv) == 0
    report = json.loads((tmp_path / "data-cpu.json").read_text())
    for entry in report["datasets"].values():
        for p in entry["padding"].values():
            assert p["padding_packed"] == 0 and p["padding_batch_longest"] >= 0
    maps = ("datasets", "datasets.*.padding")
    assert_keys_as_committed(report, "data-cpu.json", maps=maps)


def test_quick_kernels_writes_results(tmp_path, monkeypatch):
    monkeypatch.setenv("SSMLAB_BACKEND", "torch")
    argv = ["bench", "kernels", "--quick", "--lengths", "64,128", "--out", str(tmp_path)]
    assert cli.main(argv) == 0  # the command line, as a user runs it
    report = json.loads((tmp_path / "kernels-cpu.json").read_text())
    assert {"machine", "settings", "results", "summary"} <= set(report)
    assert {"platform", "cpu", "cores", "torch", "device", "date"} <= set(report["machine"])
    assert report["settings"]["lengths"] == [64, 128]
    methods = [r["method"] for r in report["results"]]
    assert sorted(set(methods)) == sorted(kernels.KERNELS)
    for name in kernels.KERNELS:  # one row per method and length, measured (nothing skipped)
        rows = [r for r in report["results"] if r["method"] == name]
        assert [r["seqlen"] for r in rows] == [64, 128]
        for r in rows:
            assert not r["skipped"], r
            assert r["fwd_s"] > 0 and r["fwdbwd_s"] > 0
    assert {"exponents", "targets"} <= set(report["summary"])
    md = (tmp_path / "kernels-cpu.md").read_text()
    assert "ssd_chunked" in md and "## Targets" in md
    assert_keys_as_committed(report, "kernels-cpu.json", maps=("summary.exponents",))


def test_precision_quick(tmp_path):
    precision = _load("precision")
    argv = ["--quick", "--models", "sasrec", "--variants", "fp32,bf16", "--out", str(tmp_path)]
    assert precision.main(argv) == 0
    report = json.loads((tmp_path / "precision-cpu.json").read_text())
    (row,) = report["rows"]
    assert row["model"] == "sasrec" and row["steps"] == 3 and row["fp32_s"] > 0
    assert row["bf16_speedup"] == row["fp32_s"] / row["bf16_s"]
    assert abs(row["bf16_last_loss"] - row["fp32_last_loss"]) < 0.05  # same start, same batches
    assert "| sasrec |" in (tmp_path / "precision-cpu.md").read_text()
    with pytest.raises(SystemExit):
        precision.main(["--quick", "--variants", "bf16"])  # fp32 is the reference: first


def test_caser_conv_quick(tmp_path):
    caser_conv = _load("caser_conv")
    assert caser_conv.main(["--quick", "--repeats", "1", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "caser-conv-cpu.json").read_text())
    assert [r["w"] for r in report["kernels"]] == [1, 3, 6]
    assert all(r["speedup"] == r["reference_s"] / r["padded_tail_s"] for r in report["kernels"])
    train = report["train"]
    assert train["steps"] == 2 and train["model_s"] > 0
    assert train["model_last_loss"] == pytest.approx(train["reference_last_loss"], rel=1e-5)
    assert "| 6 |" in (tmp_path / "caser-conv-cpu.md").read_text()
    assert_keys_as_committed(report, "caser-conv-cpu.json")


def test_causal_conv_quick(tmp_path):
    causal_conv = _load("causal_conv")
    assert causal_conv.main(["--quick", "--repeats", "1", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "causal-conv-cpu.json").read_text())
    assert [r["length"] for r in report["kernels"]] == [1, 3, 6]
    assert all(r["speedup"] == r["conv1d_s"] / r["shifted_s"] for r in report["kernels"])
    assert [t["model"] for t in report["train"]] == list(causal_conv.MODELS)
    for t in report["train"]:  # the same steps either way: the same loss
        assert t["steps"] == 2 and t["shifted_s"] > 0
        assert t["shifted_last_loss"] == pytest.approx(t["conv1d_last_loss"], rel=1e-5)
    assert causal_conv.conv_module.CPU_SHIFTED is True  # switched back after each measurement
    assert "| 6 |" in (tmp_path / "causal-conv-cpu.md").read_text()
    assert_keys_as_committed(report, "causal-conv-cpu.json")


def test_ssd_chunk_quick(tmp_path):
    ssd_chunk = _load("ssd_chunk")
    assert ssd_chunk.main(["--quick", "--repeats", "1", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "ssd-chunk-cpu.json").read_text())
    assert [r["length"] for r in report["kernels"]] == [8, 40]
    for r in report["kernels"]:
        assert r["one_chunk_speedup"] == r["chunk_32_s"] / r["one_chunk_s"]
    train = report["train"]
    assert train["steps"] == 2 and train["one_chunk_s"] > 0
    assert train["one_chunk_last_loss"] == pytest.approx(train["chunked_last_loss"], rel=1e-5)
    assert ssd_chunk.ssd_module.TORCH_ONE_CHUNK == report["settings"]["torch_one_chunk"] == 64
    assert "| 40 |" in (tmp_path / "ssd-chunk-cpu.md").read_text()
    assert_keys_as_committed(report, "ssd-chunk-cpu.json")


def test_dropout_quick(tmp_path):
    dropout = _load("dropout")
    assert dropout.main(["--quick", "--repeats", "1", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "dropout-cpu.json").read_text())
    assert [r["shape"] for r in report["kernels"]] == [[16, 5, 8]]
    assert all(r["speedup"] == r["bernoulli_s"] / r["uniform_s"] for r in report["kernels"])
    assert [t["model"] for t in report["train"]] == list(dropout.MODELS)
    for t in report["train"]:  # other masks of the same law: close, finite losses
        assert t["steps"] == 2 and t["uniform_s"] > 0
        assert t["uniform_last_loss"] == pytest.approx(t["bernoulli_last_loss"], rel=0.05)
    assert dropout.dropout_module.CPU_UNIFORM is True  # switched back after each measurement
    assert "| 16 x 5 x 8 |" in (tmp_path / "dropout-cpu.md").read_text()
    assert_keys_as_committed(report, "dropout-cpu.json")


def test_ranking_quick(tmp_path):
    ranking = _load("ranking")
    assert ranking.main(["--quick", "--repeats", "1", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "ranking-cpu.json").read_text())
    assert [(r["rows"], r["items"]) for r in report["update"]] == [(40, 30)]
    assert [r["model"] for r in report["passes"]] == ["sasrec", "gru4rec"]
    for r in report["passes"]:  # the two paths rank alike; 256 rows are under the CPU cap
        assert r["same_metrics"] is True and r["before_s"] > 0 and r["users"] == 2000
        assert len(set(r["ndcg@10"].values())) == 1 and r["cpu_rows"] == 256
    assert ranking.metrics.FAST_PATH is True  # switched back after each measurement
    assert "| sasrec | 32 | 2,000 | 256 | 256 |" in (tmp_path / "ranking-cpu.md").read_text()
    assert_keys_as_committed(report, "ranking-cpu.json")


def test_last_position_quick(tmp_path):
    last_position = _load("last_position")
    assert last_position.main(["--quick", "--repeats", "1", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "last-position-cpu.json").read_text())
    assert [t["model"] for t in report["train"]] == ["sasrec", "tim4rec"]
    for t in report["train"]:  # both settings trained the same batches from the same weights
        assert t["objective"] == "last" and t["every_position_s"] > 0 and t["last_only_s"] > 0
        assert abs(t["every_position_last_loss"] - t["last_only_last_loss"]) < 0.01
    for r in report["passes"]:  # the two passes score alike up to float rounding
        assert r["users"] == 2000 and r["ndcg_abs_diff"] < 1e-6
    assert last_position.base.LAST_ONLY is True  # switched back after each measurement
    assert set(last_position.models()) <= set(last_position.model_names())
    assert "| sasrec | 2,000 | 256 |" in (tmp_path / "last-position-cpu.md").read_text()
    assert_keys_as_committed(report, "last-position-cpu.json")


def test_protocol_check_pairs_a_models_all_and_prefix_rows():
    reproduce = _load_reproduce()
    seeds = {"spread": {"ndcg@10": [0.040, 0.043]}}
    results = {
        "beauty": {
            "sasrec": {"model": "sasrec", "objective": "all", "ndcg@10": 0.0420, **seeds},
            "sasrec · prefix rows": {"model": "sasrec", "objective": "last", "ndcg@10": 0.0400},
            "sasrec · wide": {
                "model": "sasrec",
                "objective": "last",
                "ndcg@10": 0.0410,
                "overrides": ["model.d_model=128", "train.objective=last"],
            },
            "sasrec · lr 0.01": {  # a sensitivity row: not the prefix rows' twin
                "model": "sasrec",
                "objective": "all",
                "ndcg@10": 0.0150,
                "overrides": ["train.lr=0.01"],
            },
            "gru4rec": {"model": "gru4rec", "objective": "all", "ndcg@10": 0.03},  # no pair
        },
        "settings": {},
    }
    lines = reproduce.protocol_check(results)
    row, wide = [line for line in lines if line.startswith("| beauty")]
    assert "| sasrec | sasrec · prefix rows | 0.0420 | 0.0400 | +5.0% |" in row
    assert row.endswith("| sasrec: 0.0400–0.0430 | none |")
    assert wide.startswith("| beauty | sasrec | sasrec · wide |")
    assert wide.endswith("| model.d_model=preset / 128 |")
    assert reproduce.protocol_check({"beauty": {"gru4rec": results["beauty"]["gru4rec"]}}) == []


def test_gap_notes_list_converged_rows_off_by_more_than_3_percent(tmp_path, monkeypatch):
    reproduce = _load_reproduce()
    notes = tmp_path / "notes.yaml"
    notes.write_text("beauty:\n  sasrec: >-\n    seed 0 only,\n    more to come.\n")
    monkeypatch.setattr(reproduce, "GAP_NOTES", notes)
    paper = {"sasrec": {"ndcg@10": 0.0425}, "gru4rec": {"ndcg@10": 0.0297}}
    rows = {
        "sasrec": {"ndcg@10": 0.0400, "converged": True},  # -5.9%: explained
        "gru4rec": {"ndcg@10": 0.0320, "converged": True},  # +7.7%: not explained yet
        "lrurec": {"ndcg@10": 0.0430, "converged": True},  # not in this paper table
    }
    lines = reproduce.gap_notes("beauty", rows, paper)
    assert lines[1] == "### Gaps over 3% in N@10 (converged rows)"
    assert lines[3] == "- **sasrec**: N@10 0.0400 vs 0.0425 (-5.9%). seed 0 only, more to come."
    assert lines[4].startswith("- **gru4rec**") and lines[4].endswith("not explained yet.")
    notes.write_text(notes.read_text() + "  '*': another setting.\n")  # the section's note
    lines = reproduce.gap_notes("beauty", rows, paper)
    assert lines[3].endswith("seed 0 only, more to come.")  # a row's own note comes first
    assert lines[4].endswith("(+7.7%). another setting.")
    rows["sasrec"]["converged"] = False  # capped rows are not judged
    rows["gru4rec"]["ndcg@10"] = 0.0300  # +1.0%: within 3%
    assert reproduce.gap_notes("beauty", rows, paper) == []
