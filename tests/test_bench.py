"""ssmlab.bench's probes: the one timer, peak memory, machine info; and the package's place in
the layering (the benchmarks import the library, never the other way round)."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from ssmlab.bench import PeakMemory, machine_info, measure_lengths, median_seconds, time_calls
from ssmlab.bench.probe import torch_threads


def test_time_calls_warmup_and_inputs():
    calls = []
    times = time_calls(lambda: calls.append(1), 3, warmup=2)
    assert len(times) == 3 and len(calls) == 5 and all(t >= 0 for t in times)
    seen = []
    times = time_calls(seen.append, inputs=["a", "b", "c"], warmup=1)
    assert seen == ["a", "a", "b", "c"] and len(times) == 3  # warm-up on the first input
    with pytest.raises(ValueError, match="timed call"):
        time_calls(lambda: None, 0)


def test_time_calls_process_clock_counts_work_not_waiting():
    wall = time_calls(lambda: time.sleep(0.05), 1, warmup=0)
    cpu = time_calls(lambda: time.sleep(0.05), 1, warmup=0, clock="process")
    assert wall[0] >= 0.05 > 0.02 > cpu[0]  # sleeping waits: no CPU time
    with pytest.raises(ValueError, match="clock"):
        time_calls(lambda: None, 1, clock="cpu")


def test_threads_are_restored():
    before = torch.get_num_threads()
    n = 2 if before == 1 else 1
    seen = []
    time_calls(lambda: seen.append(torch.get_num_threads()), 2, threads=n)
    assert seen == [n] * 3 and torch.get_num_threads() == before  # warm-up + 2 timed calls
    with torch_threads(None):
        assert torch.get_num_threads() == before


def test_median_and_lengths():
    assert median_seconds(lambda: sum(range(100)), 3) > 0
    with pytest.raises(ValueError, match="repeat"):
        median_seconds(lambda: None, 0)
    seconds = measure_lengths(
        {"sum": lambda x: x.sum(), "cumsum": lambda x: x.cumsum(0)},
        lambda n: (torch.ones(n),),
        [8, 16],
        repeat=1,
    )
    assert set(seconds) == {"sum", "cumsum"} and all(
        s.shape == (2,) and np.all(s > 0) for s in seconds.values()
    )
    with pytest.raises(ValueError, match="fns"):
        measure_lengths({}, lambda n: (), [8])


def test_peak_memory_and_machine():
    with PeakMemory("cpu") as mem:
        x = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
        del x
    assert np.isnan(mem.mb) or mem.mb > 32
    info = machine_info("cpu", packages=("numpy", "no-such-package"))
    assert {"date", "platform", "cpu", "cores", "torch", "device", "ssm_backend"} <= set(info)
    assert info["numpy"] == np.__version__ and info["no-such-package"] is None


def test_the_library_never_imports_the_benchmarks():
    """Importing every library package (the CLI's modules aside) loads no ssmlab.bench module."""
    code = (
        "import sys, ssmlab.ssm, ssmlab.layers, ssmlab.models, ssmlab.data, ssmlab.train, "
        "ssmlab.metrics, ssmlab.config, ssmlab.viz; "
        "print(sorted(m for m in sys.modules if m.startswith('ssmlab.bench')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_read_reproduction_and_histories(tmp_path):
    import json

    from ssmlab.bench.report import read_histories, read_reproduction

    log = tmp_path / "logs" / "beauty" / "sasrec-seed0.jsonl"
    log.parent.mkdir(parents=True)
    records = [{"epoch": e, "train_loss": 9.0 - e, "valid": {"ndcg@10": 0.01 * e}} for e in (1, 2)]
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    rows = {
        "sasrec": {"ndcg@10": 0.04, "runs": {"0": {"log": "logs/beauty/sasrec-seed0.jsonl"}}},
        "caser": {"ndcg@10": 0.02, "runs": {"0": {}}},  # no log: left out of the histories
    }
    (tmp_path / "reproduction.json").write_text(json.dumps({"notes": "x", "beauty": rows}))
    got = read_reproduction(tmp_path, "beauty")
    assert got == rows
    assert read_histories(tmp_path, got) == {"sasrec": records}
    assert read_histories(tmp_path, got, seed=1) == {}
    with pytest.raises(KeyError, match=r"no section 'ml-1m'; have \['beauty'\]"):
        read_reproduction(tmp_path, "ml-1m")
    with pytest.raises(FileNotFoundError, match="source checkout"):
        read_reproduction(tmp_path / "nowhere", "beauty")
    from ssmlab.bench.report import RESULTS_DIR

    assert (RESULTS_DIR / "reproduction.json").is_file()  # this checkout's committed results


def test_paper_table3_reads_the_csv():
    from ssmlab.bench.report import paper_table3

    table = paper_table3()
    assert sorted(table) == ["amazon-beauty", "kuairand", "ml-1m"]
    beauty = paper_table3("amazon-beauty")
    assert len(beauty) == 9 and beauty["tim4rec"]["ndcg@10"] == 0.0446  # bold in the paper
    assert beauty["sasrec"]["hr@10"] == 0.0851 and beauty["ssd4rec_star"]["mrr@50"] == 0.0347
    assert table["ml-1m"]["caser"]["hr@10"] == 0.2156 and table["kuairand"]["tim4rec"]["mrr@50"]
    assert all(len(row) == 9 for models in table.values() for row in models.values())
    with pytest.raises(KeyError, match=r"no 'ml-100k'; it has \['amazon-beauty'"):
        paper_table3("ml-100k")
