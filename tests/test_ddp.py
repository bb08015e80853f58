"""torchrun / DDP on CPU: two gloo processes train in lockstep and end with identical weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

SCRIPT = textwrap.dedent("""
    import json, sys
    import torch
    from ssmlab.config import build_config
    from ssmlab.data import load_dataset
    from ssmlab.models import register
    from ssmlab.train import Trainer, evaluate
    from ssmlab.train.distributed import cleanup

    sys.path.insert(0, sys.argv[2])  # tests/: the TinyGRU of conftest.py
    from conftest import TinyGRU

    register("tinygru")(TinyGRU)
    out = sys.argv[1]
    data = load_dataset("toy", n_users=48, n_items=20, seq_len=(5, 12), n_buckets=2,
                        group_size=5, seed=1)
    train = {"epochs": 2, "batch_size": 16, "eval_batch_size": 7, "lr": 1e-2,
             "objective": "last", "progress": False}
    config = build_config("tinygru", [{"train": train}])
    trainer = Trainer(config, dataset=data, output=out + "/run", device="cpu", verbose=False)
    start = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    result = trainer.fit()
    rank = trainer.info.rank
    tc = config.train
    test_batches = trainer.split.eval_batches("test", tc.eval_batch_size, config.max_len)
    single = evaluate(trainer.model, test_batches, torch.device("cpu"), tc.ks)  # no sharding
    torch.save({"model": trainer.model.state_dict(), "start": start, "step": trainer.step,
                "world": trainer.info.world_size, "batches": len(trainer.train_batches),
                "result": result, "single": single}, f"{out}/rank{rank}.pt")
    cleanup()
""")


def test_two_gloo_ranks_end_identical(tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(script),
        str(tmp_path),
        str(Path(__file__).parent),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert all(r["world"] == 2 for r in ranks)
    assert ranks[0]["step"] == ranks[1]["step"] == 2 * ranks[0]["batches"] > 0
    for name, value in ranks[0]["model"].items():
        assert torch.equal(value, ranks[1]["model"][name]), name
        assert torch.equal(ranks[0]["start"][name], ranks[1]["start"][name]), name
    changed = [not torch.equal(v, ranks[0]["start"][k]) for k, v in ranks[0]["model"].items()]
    assert any(changed)  # it trained
    assert ranks[0]["result"] == ranks[1]["result"]  # reduced evaluation: same numbers
    for key, value in ranks[0]["single"].items():  # and equal to one process scoring all
        assert ranks[0]["result"]["test"][key] == pytest.approx(value, abs=1e-12)
    run = tmp_path / "run"
    assert json.loads((run / "metrics.json").read_text()) == ranks[0]["result"]
    assert len((run / "log.jsonl").read_text().splitlines()) == 2  # rank 0 only writes
    assert torch.load(run / "last.pt", weights_only=True)["epoch"] == 2
    assert len(torch.load(run / "last.pt", weights_only=True)["rng"]) == 2
