"""Failures are clear errors, never wrong numbers (issue 15): non-finite scores and weights,
diverging losses, guarded checkpoints, resume overrides, dataset fingerprints."""

from __future__ import annotations

import math

import pytest
import torch

from ssmlab.cli import main
from ssmlab.config import build_config
from ssmlab.data import load_dataset
from ssmlab.metrics import (
    NonFiniteScoresError,
    RankingAccumulator,
    full_ranking_metrics,
    target_ranks,
)
from ssmlab.train import Trainer, load_checkpoint
from ssmlab.train.checkpoint import nonfinite_tensors
from ssmlab.train.trainer import DivergenceError


# -- 1. ranking and evaluation with non-finite scores ---------------------------------------------
def test_nan_scores_rank_last_never_first():
    b, n = 3, 100
    target = torch.tensor([1, 50, 100])
    nan_rows = torch.full((b, n + 1), float("nan"))
    assert torch.equal(target_ranks(nan_rows, target), torch.full((b,), n))
    assert all(v == 0.0 for v in full_ranking_metrics(nan_rows, target).values())

    scores = torch.randn(b, n + 1, generator=torch.Generator().manual_seed(0))
    before = target_ranks(scores, target)
    scores[:, 7] = float("nan")  # another item's NaN never beats a finite target
    scores[:, 8] = float("-inf")
    assert torch.all(target_ranks(scores, target) <= before)
    scores[0, 1] = float("nan")  # a NaN target ranks below every item, NaN ones included
    scores[1, 50] = float("inf")  # +inf is not a perfect score: it is not finite
    assert target_ranks(scores, target)[:2].tolist() == [n, n]


def test_one_nan_item_embedding_cannot_raise_the_metrics():
    gen = torch.Generator().manual_seed(3)
    b, n, d = 64, 50, 8
    user, items = torch.randn(b, d, generator=gen), torch.randn(n + 1, d, generator=gen)
    target = torch.randint(1, n + 1, (b,), generator=gen)
    clean = full_ranking_metrics(user @ items.T, target)
    items[target[0]] = float("nan")  # one target's embedding is NaN
    broken = full_ranking_metrics(user @ items.T, target)
    assert broken["ndcg@10"] <= clean["ndcg@10"]


def test_accumulator_refuses_non_finite_scores_by_default():
    scores = torch.zeros(2, 6)
    scores[:, 0] = float("-inf")  # padding column: models set it to -inf, ignored
    RankingAccumulator(ks=(5,)).update(scores, torch.tensor([1, 2]))
    scores[1, 4] = float("nan")
    with pytest.raises(NonFiniteScoresError, match=r"1 of 10 item scores .* row 1, item 4"):
        RankingAccumulator(ks=(5,)).update(scores, torch.tensor([1, 2]))
    lenient = RankingAccumulator(ks=(5,), require_finite=False)
    assert lenient.update(scores, torch.tensor([1, 4])).tolist() == [5, 5]
    assert math.isfinite(lenient.compute()["ndcg@5"])


# -- shared helpers: the tiny GRU model of conftest and a small CSV dataset ----------------------
@pytest.fixture(autouse=True)
def tiny_registered(register_model):
    register_model("tinyrel")


@pytest.fixture(scope="module")
def dataset():
    return load_dataset(
        "toy", n_users=48, n_items=20, seq_len=(5, 12), n_buckets=2, group_size=5, seed=1
    )


def make_trainer(dataset, output=None, **train):
    train = {"epochs": 3, "batch_size": 32, "eval_batch_size": 16, "lr": 1e-2, "seed": 7,
             "objective": "last", "progress": False, **train}  # fmt: skip
    config = build_config("tinyrel", [{"model": {"dropout": 0.0}, "train": train}])
    return Trainer(config, dataset=dataset, output=output, device="cpu", verbose=False)


def write_csv(path, n_users=12, n_items=8, shift=0):
    """Every user sees every item once (a dense 5-core table); ``shift`` reorders histories."""
    rows = ["user_id,item_id,timestamp"]
    for u in range(1, n_users + 1):
        for k in range(n_items):
            item = (k + u * shift) % n_items + 1
            rows.append(f"u{u},i{item},{1000 * u + k}")
    path.write_text("\n".join(rows) + "\n")
    return path


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


QUICK = ["--model", "tinyrel", "--device", "cpu", "--set", "train.epochs=1",
         "--set", "train.steps_per_epoch=2", "--set", "train.progress=false"]  # fmt: skip


# -- 1 and 2. the trainer: non-finite weights, divergence, guarded checkpoints --------------------
def test_nan_weights_after_the_last_step_never_reach_a_checkpoint(dataset, tmp_path):
    trainer = make_trainer(dataset, tmp_path)
    steps = len(trainer.train_batches)
    step = trainer.optimizer.step

    def poisoned_step(*args, **kwargs):  # the last step of epoch 2 writes a NaN weight
        out = step(*args, **kwargs)
        if trainer.step == 2 * steps - 1:
            with torch.no_grad():
                trainer.model.item_embedding.weight[3, 0] = float("nan")
        return out

    trainer.optimizer.step = poisoned_step
    with pytest.raises(DivergenceError, match="not finite after epoch 2") as err:
        trainer.fit()
    assert "item_embedding.weight" in str(err.value) and "(epoch 1)" in str(err.value)
    for name in ("last.pt", "best.pt"):
        saved = load_checkpoint(tmp_path / name)
        assert saved["epoch"] == 1 and not nonfinite_tensors(saved["model"])
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 1


def test_save_refuses_non_finite_weights(dataset, tmp_path):
    trainer = make_trainer(dataset, tmp_path)
    trainer.save(tmp_path / "last.pt")
    before = (tmp_path / "last.pt").read_bytes()
    with torch.no_grad():
        trainer.model.item_embedding.weight[1, 1] = float("inf")
    with pytest.raises(DivergenceError, match="nothing was saved"):
        trainer.save(tmp_path / "last.pt")
    assert (tmp_path / "last.pt").read_bytes() == before


def test_validation_refuses_non_finite_scores(dataset):
    trainer = make_trainer(dataset)
    with torch.no_grad():
        trainer.model.item_embedding.weight.mul_(1e38)  # finite weights, scores overflow
    with pytest.raises(NonFiniteScoresError, match="not finite"):
        trainer.evaluate("valid")


def test_a_diverging_loss_stops_training(dataset, tmp_path):
    trainer = make_trainer(dataset, tmp_path, lr=1e6)
    with pytest.raises(DivergenceError, match=r"diverged: loss .* > 10 x chance level") as err:
        trainer.fit()
    assert "epoch 1, step 2 of" in str(err.value)
    assert not (tmp_path / "last.pt").exists()
    # the rule compares with chance level: an untrained model sits at ln(n_items)
    fresh = make_trainer(dataset)
    batch = next(iter(fresh.train_batches))
    chance = math.log(dataset.n_items)
    assert fresh.model.calculate_loss(batch, "last").item() < 2 * chance


def test_diverging_run_exits_1_from_the_cli(tmp_path, capsys):
    code, out, err = cli(capsys, "train", *QUICK, "--set", "train.lr=1e6", "--output", tmp_path)
    assert code == 1 and out == ""
    assert err.startswith("ssmlab train: error: training diverged") and "Traceback" not in err


# -- 3. --resume applies what is safe to change, refuses the rest ----------------------------------
def test_resume_applies_a_new_lr_and_records_it(tmp_path, capsys):
    assert cli(capsys, "train", *QUICK, "--output", tmp_path)[0] == 0
    code, out, err = cli(
        capsys, "train", "--resume", "--output", tmp_path, "--set", "train.epochs=2",
        "--set", "train.lr=0.0005", "--device", "cpu",
    )  # fmt: skip
    assert code == 0 and len(out.splitlines()) == 1, err
    assert "resume: train.lr 0.003 -> 0.0005" in err
    last = load_checkpoint(tmp_path / "last.pt")
    assert last["epoch"] == 2 and last["config"]["train"]["lr"] == 0.0005
    assert {g["lr"] for g in last["optimizer"]["param_groups"]} == {0.0005}  # used, not ignored
    assert "lr: 0.0005" in (tmp_path / "config.yaml").read_text()


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--set", "model.d_model=16"], ["--resume cannot change model.d_model (32 -> 16)"]),
        (["--set", "train.batch_size=7"], ["train.batch_size", "train.lr"]),
        (["--model", "gru4rec"], ["--model gru4rec", "holds a tinyrel run"]),
        (["--data", "ml-100k"], ["--data ml-100k", "holds a run on toy"]),
    ],
)
def test_resume_refuses_what_it_cannot_apply(tmp_path, capsys, extra, words):
    assert cli(capsys, "train", *QUICK, "--output", tmp_path)[0] == 0
    before = (tmp_path / "last.pt").read_bytes()
    code, out, err = cli(capsys, "train", "--resume", "--output", tmp_path, *extra)
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.startswith("ssmlab train: error:")
    for word in words:
        assert word in err
    assert (tmp_path / "last.pt").read_bytes() == before


def test_resume_on_changed_data_is_a_clear_error(tmp_path, capsys):
    data = write_csv(tmp_path / "inter.csv")
    run = tmp_path / "run"
    args = [*QUICK, "--data", f"csv:{data}", "--output", run]
    assert cli(capsys, "train", *args)[0] == 0
    write_csv(data, n_users=13)  # one more user
    code, out, err = cli(capsys, "train", "--resume", "--output", run, "--set", "train.epochs=2")
    assert code == 2 and out == "" and "Traceback" not in err
    assert "trained on other data" in err and "users 12 -> 13" in err


# -- 4. checkpoints record the dataset; eval refuses another one --------------------------------
def test_eval_refuses_data_that_changed_behind_the_checkpoint(tmp_path, capsys, monkeypatch):
    data = write_csv(tmp_path / "inter.csv")
    monkeypatch.chdir(tmp_path)  # a relative path is stored as an absolute one
    run = tmp_path / "run"
    assert cli(capsys, "train", *QUICK, "--data", "csv:inter.csv", "--output", run)[0] == 0
    best = load_checkpoint(run / "best.pt")
    assert best["config"]["data"]["name"] == f"csv:{data}"
    assert best["data"]["files"][0][0] == str(data) and best["data"]["items"] == 8
    monkeypatch.chdir(tmp_path.parent)
    assert cli(capsys, "eval", run)[0] == 0  # same data, from another working directory
    write_csv(data, shift=3)  # same users and items, other histories
    code, out, err = cli(capsys, "eval", run)
    assert code == 2 and out == ""
    assert "trained on other data" in err and f"file {data} sha256" in err
    assert "fingerprint" in err and "items" not in err  # the counts did not change
