"""``ssmlab train`` / ``ssmlab eval``: one JSON line, run folder, resume, bad input, NaN exit."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from ssmlab.cli import main

QUICK = [
    "--set",
    "train.epochs=2",
    "--set",
    "train.steps_per_epoch=3",
    "--device",
    "cpu",
    "--set",
    "train.progress=false",
]


@pytest.fixture(autouse=True)
def tiny_registered(register_model):
    register_model("tinygru")


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_train_then_eval_print_one_json_line(tmp_path, capsys):
    folder = tmp_path / "run"
    code, out, err = run(capsys, "train", "--model", "tinygru", "--output", str(folder), *QUICK)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 1  # progress and epoch lines go to stderr
    result = json.loads(lines[0])
    assert list(result) == ["model", "data", "valid", "test"]
    assert result["model"] == "tinygru" and result["data"] == "toy"
    assert {"hr@10", "ndcg@10", "mrr@10", "hr@50"} <= set(result["test"]) <= set(result["valid"])
    assert json.loads((folder / "metrics.json").read_text()) == result
    assert len((folder / "log.jsonl").read_text().splitlines()) == 2
    assert "epoch 2" in err

    code, out, err = run(capsys, "eval", str(folder / "best.pt"), "--device", "cpu")
    assert code == 0, err
    assert json.loads(out) == result  # rebuilt from the checkpoint's config: same numbers
    code, out, _ = run(capsys, "eval", str(folder), "--device", "cpu")  # a run folder works too
    assert code == 0 and json.loads(out) == result


def test_existing_run_needs_resume(tmp_path, capsys):
    folder = str(tmp_path / "run")
    assert run(capsys, "train", "--model", "tinygru", "--output", folder, *QUICK)[0] == 0
    code, out, err = run(capsys, "train", "--model", "tinygru", "--output", folder, *QUICK)
    assert code == 2 and out == "" and "already holds a run" in err and "--resume" in err
    code, out, err = run(
        capsys, "train", "--resume", "--output", folder, *QUICK, "--set", "train.epochs=3"
    )
    assert code == 0, err
    log = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in log] == [1, 2, 3]  # continued, not restarted
    assert json.loads(out)["model"] == "tinygru"
    code, _, err = run(capsys, "train", "--resume", *QUICK)
    assert code == 2 and "--resume needs --output" in err


@pytest.mark.parametrize(
    "argv, words",
    [
        (["train", "--model", "nosuch"], ["unknown model 'nosuch'", "sasrec", "tim4rec"]),
        (
            ["train", "--model", "tinygru", "--data", "nosuch"],
            ["unknown dataset 'nosuch'", "ml-1m", "toy", "csv:PATH"],
        ),
        (
            ["train", "--model", "tinygru", "--set", "train.epoch=1"],
            ["unknown key 'train.epoch'", "epochs"],
        ),
        (
            ["train", "--model", "tinygru", "--set", "train.lr=fast"],
            ["train.lr", "'fast'", "Float"],
        ),
        (["train", "--model", "tinygru", "--config", "/nonexistent.yaml"], ["not found"]),
        (["eval", "/nonexistent/best.pt"], ["checkpoint not found"]),
    ],
)
def test_bad_input_exits_2_without_traceback(capsys, argv, words):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith(f"ssmlab {argv[0]}: error:") and "Traceback" not in err
    for word in words:
        assert word in err


def test_eval_of_a_foreign_file_exits_2(tmp_path, capsys):
    bad = tmp_path / "best.pt"
    bad.write_bytes(b"not a checkpoint")
    code, out, err = run(capsys, "eval", str(bad))
    assert code == 2 and out == "" and "cannot read checkpoint" in err
    torch.save({"weights": torch.ones(1)}, bad)
    code, out, err = run(capsys, "eval", str(bad))
    assert code == 2 and "not an ssmlab checkpoint" in err


def test_nan_loss_exits_1(tmp_path, capsys, monkeypatch):
    from ssmlab.train import evaluation

    def nan_forward(self, batch):
        return self.model.calculate_loss(batch, self.objective) * torch.nan

    monkeypatch.setattr(evaluation.LossModule, "forward", nan_forward)
    code, out, err = run(capsys, "train", "--model", "tinygru", "--output", str(tmp_path), *QUICK)
    assert code == 1 and out == ""
    assert "loss is nan at epoch 1, step 1" in err and "No checkpoint" in err


def test_interrupt_points_to_resume(tmp_path, capsys, monkeypatch):
    from ssmlab.train.trainer import Trainer

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "fit", interrupted)
    code, out, err = run(capsys, "train", "--model", "tinygru", "--output", str(tmp_path), *QUICK)
    assert code == 130 and out == "" and "interrupted" in err and "--resume" in err


def test_real_entry_point_exit_code():
    proc = subprocess.run(
        [sys.executable, "-m", "ssmlab.cli", "train", "--model", "nosuch"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert "unknown model 'nosuch'" in proc.stderr and "Traceback" not in proc.stderr
