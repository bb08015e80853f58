"""Trainer: objectives, run folder, exact resume, NaN stop, early stopping, evaluation."""

from __future__ import annotations

import json
import math
import sys
from collections import Counter

import pytest
import torch
from conftest import TinyConfig, TinyGRU

from ssmlab.config import build_config
from ssmlab.data import load_dataset
from ssmlab.metrics import full_ranking_metrics
from ssmlab.models import model_names
from ssmlab.train import NonFiniteLossError, Trainer, eval_batch_rows, evaluate, load_checkpoint
from ssmlab.train.checkpoint import atomic_save
from ssmlab.train.evaluation import batch_layout


@pytest.fixture(autouse=True)
def tiny_registered(register_model):
    register_model("tinygru")


@pytest.fixture(scope="module")
def dataset():
    return load_dataset(
        "toy", n_users=48, n_items=20, seq_len=(5, 12), n_buckets=2, group_size=5, seed=1
    )


def make_config(**train):
    train = {
        "epochs": 3,
        "batch_size": 32,
        "eval_batch_size": 16,
        "lr": 1e-2,
        "seed": 7,
        "objective": "last",
        "progress": False,
        **train,
    }
    return build_config("tinygru", [{"train": train}])


def make_trainer(dataset, output=None, **train):
    return Trainer(
        make_config(**train), dataset=dataset, output=output, device="cpu", verbose=False
    )


def pairs_last(split, max_len):
    out = Counter()
    for b in split.train_batches("last", batch_size=7, max_len=max_len, seed=0):
        for seq, n, target in zip(b["item_seq"], b["item_seq_len"], b["target"]):
            out[(tuple(seq[:n].tolist()), int(target))] += 1
    return out


def pairs_all(split, max_len):
    out = Counter()
    for b in split.train_batches("all", batch_size=7, max_len=max_len, seed=0):
        for seq, n, targets in zip(b["item_seq"], b["item_seq_len"], b["targets"]):
            for t in range(int(n)):
                out[(tuple(seq[: t + 1].tolist()), int(targets[t]))] += 1
    return out


def test_objectives_optimise_the_same_pairs(dataset):
    split = dataset.split()
    last, every = pairs_last(split, None), pairs_all(split, None)
    assert sum(last.values()) == split.stats()["train_rows_last"] > 0
    assert last == every  # same multiset of (history -> next item)
    assert batch_layout(TinyGRU, "last") == "last" and batch_layout(TinyGRU, "all") == "all"
    assert batch_layout(TinyGRU, "cloze") == "last"

    # and a causal model gets the same summed CE from both batchers (no dropout, float64)
    model = TinyGRU(TinyConfig(dropout=0.0, max_len=64), dataset.n_items).double().eval()
    totals = {}
    for objective, count_key in (("last", "target"), ("all", "targets")):
        total = 0.0
        for b in split.train_batches(objective, batch_size=16, max_len=None, seed=0):
            n = int((b[count_key] > 0).sum())
            with torch.no_grad():
                total += float(model.calculate_loss(b, objective)) * n
        totals[objective] = total
    assert math.isclose(totals["last"], totals["all"], rel_tol=1e-9)


def test_fit_writes_run_folder(dataset, tmp_path):
    trainer = make_trainer(dataset, tmp_path / "run")
    result = trainer.fit()
    run = tmp_path / "run"
    assert {p.name for p in run.iterdir()} == {
        "config.yaml",
        "last.pt",
        "best.pt",
        "log.jsonl",
        "metrics.json",
    }
    lines = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [1, 2, 3]
    assert {"epoch", "train_loss", "valid", "seconds"} <= set(lines[0])
    assert lines[-1]["train_loss"] < lines[0]["train_loss"]
    assert json.loads((run / "metrics.json").read_text()) == result
    assert set(result) == {"model", "data", "valid", "test"}
    assert {"hr@10", "ndcg@10", "mrr@10", "ndcg@50"} <= set(result["test"])
    last = torch.load(run / "last.pt", weights_only=True)
    assert last["epoch"] == 3 and last["step"] == trainer.step > 0
    assert set(last["rng"][0]) >= {"python", "numpy", "torch", "data"}
    best = load_checkpoint(run / "best.pt")
    assert best["epoch"] == best["best"]["epoch"] == trainer.best["epoch"]
    assert result["valid"]["ndcg@10"] == best["best"]["value"]
    for name, value in trainer.model.state_dict().items():  # tested with the best weights
        assert torch.equal(value, best["model"][name])


def test_resume_after_kill_is_exact(dataset, tmp_path):
    ref = make_trainer(dataset, tmp_path / "a")
    ref_losses = []
    ref.add_callback("on_step_end", lambda t, loss, epoch, step: ref_losses.append((epoch, loss)))
    ref_result = ref.fit()

    class Killed(Exception):
        pass

    calls = Counter()

    def kill(t, loss, epoch, step):  # a crash in the middle of epoch 3
        calls[epoch] += 1
        if epoch == 3 and calls[epoch] == 2:
            raise Killed

    killed = make_trainer(dataset, tmp_path / "b")
    killed.add_callback("on_step_end", kill)
    with pytest.raises(Killed):
        killed.fit()
    assert load_checkpoint(tmp_path / "b" / "last.pt")["epoch"] == 2

    resumed = make_trainer(dataset, tmp_path / "b")
    resumed.resume()
    losses = []
    resumed.add_callback("on_step_end", lambda t, loss, epoch, step: losses.append((epoch, loss)))
    result = resumed.fit()
    assert losses == [x for x in ref_losses if x[0] == 3]  # bit-identical next steps
    assert result == ref_result
    for name, value in ref.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name])


def test_nan_loss_stops_and_keeps_last_good_checkpoint(dataset, tmp_path, monkeypatch):
    trainer = make_trainer(dataset, tmp_path)
    snapshots = {}
    trainer.add_callback(
        "on_epoch_end",
        lambda t, record: snapshots.update(
            {record["epoch"]: {k: v.clone() for k, v in t.model.state_dict().items()}}
        ),
    )
    real_loss = trainer.model.calculate_loss
    steps_per_epoch = len(trainer.train_batches)

    def loss_with_nan(batch, objective):  # NaN from the 3rd step of epoch 2 on
        loss = real_loss(batch, objective)
        return loss * float("nan") if trainer.step >= steps_per_epoch + 2 else loss

    monkeypatch.setattr(trainer.model, "calculate_loss", loss_with_nan)
    with pytest.raises(NonFiniteLossError) as err:
        trainer.fit()
    message = str(err.value)
    assert "nan" in message and "epoch 2, step 3 of" in message and "last.pt" in message
    last = load_checkpoint(tmp_path / "last.pt")
    assert last["epoch"] == 1
    for name, value in last["model"].items():
        assert torch.isfinite(value).all()
        assert torch.equal(value, snapshots[1][name])
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 1


def test_early_stopping_and_best_weights_in_memory(dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    trainer = make_trainer(dataset, None, epochs=10, patience=2)
    scores = iter([0.3, 0.2, 0.1, 0.05, 0.0])
    real_evaluate = trainer.evaluate
    best_weights = {}

    def fake_evaluate(stage):
        if stage == "test":
            return real_evaluate(stage)
        value = next(scores)
        if value == 0.3:
            best_weights.update({k: v.clone() for k, v in trainer.model.state_dict().items()})
        return {**real_evaluate(stage), "ndcg@10": value}

    monkeypatch.setattr(trainer, "evaluate", fake_evaluate)
    result = trainer.fit()
    assert trainer.epoch == 3 and trainer.stopped  # 1 best + 2 without improvement
    assert trainer.best["epoch"] == 1 and result["valid"]["ndcg@10"] == 0.3
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(value, best_weights[name])
    assert list(tmp_path.iterdir()) == []  # no output folder: nothing written


def test_evaluate_matches_full_ranking_metrics(dataset):
    model = TinyGRU(TinyConfig(), dataset.n_items).eval()
    batches = list(dataset.split().eval_batches("test", batch_size=5, max_len=12))
    got = evaluate(model, batches, torch.device("cpu"), ks=(5, 10))
    with torch.no_grad():
        scores = torch.cat([model.full_sort_predict(b) for b in batches])
    want = full_ranking_metrics(scores, torch.cat([b["target"] for b in batches]), ks=(5, 10))
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-12)


def test_cpu_evaluation_batches_are_capped_and_rank_alike(dataset, monkeypatch):
    from ssmlab.train import evaluation

    assert eval_batch_rows(4096, "cpu") == evaluation.CPU_EVAL_ROWS == 512
    assert eval_batch_rows(100, torch.device("cpu")) == 100
    assert eval_batch_rows(4096, "cuda") == 4096  # GPUs keep the preset's size
    monkeypatch.setattr(evaluation, "CPU_EVAL_ROWS", 7)  # the Trainer asks eval_batch_rows
    seen = []
    monkeypatch.setattr(
        evaluation.RankingAccumulator, "update", lambda self, s, t: seen.append(len(t))
    )
    make_trainer(dataset, eval_batch_size=16).evaluate("valid")
    assert max(seen) == 7 and sum(seen) == len(dataset.split())
    model = TinyGRU(TinyConfig(), dataset.n_items).eval()
    split = dataset.split()
    wide, narrow = (
        evaluate(model, split.eval_batches("valid", rows, 12, bucket=True), torch.device("cpu"))
        for rows in (48, 7)
    )
    assert wide.keys() == narrow.keys()
    for key in wide:
        assert narrow[key] == pytest.approx(wide[key], abs=1e-12)


def test_atomic_save_keeps_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    atomic_save({"x": torch.ones(2)}, path)

    def broken_save(obj, fh):
        fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"x": torch.zeros(2)}, path)
    assert torch.equal(torch.load(path, weights_only=True)["x"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left


def test_progress_off_when_not_a_tty(dataset, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert make_trainer(dataset, progress=True).progress is False
    assert Trainer(make_config(), dataset=dataset, device="cpu", progress=False).progress is False


def test_all_objective_trains(dataset):
    trainer = make_trainer(dataset, None, objective="all", epochs=2)
    result = trainer.fit()
    assert trainer.train_batches.objective == "all"
    assert all(0.0 <= v <= 1.0 for v in result["test"].values())


@pytest.mark.parametrize("name", model_names())
def test_every_registered_model_trains_with_its_toy_defaults(name, dataset):
    from ssmlab.config import load_config

    config = load_config(
        name,
        "toy",
        overrides=[
            "train.epochs=1",
            "train.steps_per_epoch=2",
            "train.progress=false",
            "train.batch_size=16",
        ],
    )
    trainer = Trainer(config, dataset=dataset, device="cpu", verbose=False)
    result = trainer.fit()
    assert trainer.step == 2
    assert math.isfinite(trainer.history[0]["train_loss"])
    assert set(result["test"]) == {f"{m}@{k}" for m in ("hr", "ndcg", "mrr") for k in (10, 20, 50)}


def test_training_on_the_cpu_flushes_denormals(dataset):
    """Denormal floats cost ~100x on x86 (Caser's dead filters reach them): a CPU Trainer
    turns on flush-to-zero, so an op on a denormal gives 0."""
    try:
        torch.set_flush_denormal(False)
        denormal = torch.tensor([1e-39])  # made with the mode off (on, it would be 0 already)
        assert (denormal * 1.0).item() != 0
        make_trainer(dataset)
        assert (denormal * 1.0).item() == 0
    finally:
        torch.set_flush_denormal(True)  # as every CPU Trainer leaves the process
