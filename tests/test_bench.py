"""``ssmlab bench kernels --quick`` runs end to end, writing its JSON and markdown (no timings)."""

from __future__ import annotations

import json

from ssmlab import bench
from ssmlab.bench import kernels


def test_quick_kernels_writes_results(tmp_path, monkeypatch):
    monkeypatch.setenv("SSMLAB_BACKEND", "torch")
    code = bench.main("kernels", ["--quick", "--lengths", "64,128", "--out", str(tmp_path)])
    assert code == 0
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
