"""Slider-update redraw time of every ssmlab.viz.widgets app (no browser).

Each app is built once, then ``app.update(control=value)`` runs for ~20 slider values; the
median must stay under the 200 ms target, so a drag feels live. This measures the Python side
(recompute + rebuild the figures + patch the FigureWidgets); the browser's own redraw comes on top.

    python benchmarks/widgets.py [--updates 20] [--out benchmarks/results] [--tag cpu]

Writes ``widgets-<tag>.json`` and ``widgets-<tag>.md`` (with machine info) under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from ssmlab.bench.probe import machine_info, time_calls

TARGET_MS = 200.0


def apps(n: int):
    """(name, build, control, values): the apps of notebooks 01-05 at their notebook sizes."""
    from ssmlab.viz import masks, widgets, widgets_training

    t = [0.0, 0.01, 0.02, 0.02, 1.0, 1.05, 3.0, 33.0, 95.0, 95.1]
    rng = np.random.default_rng(0)
    L = masks.time_aware_mask(np.cumsum(rng.random(16)), A=-0.5)
    x = rng.normal(size=10)

    def cycle(vals):
        return [vals[i % len(vals)] for i in range(n)]

    return [
        (
            "discretization (01)",
            lambda: widgets.discretization_app(),
            "dt",
            list(np.logspace(-2, 0.6, n)),
        ),
        (
            "discretization (01)",
            lambda: widgets.discretization_app(),
            "eigenvalue",
            list(np.linspace(-10, -0.1, n)),
        ),
        (
            "s5_decay (02)",
            lambda: widgets.s5_decay_app(t, [-0.05, -0.5, -5.0]),
            "scale",
            list(np.logspace(-2, 2, n)),
        ),
        (
            "s6_delta (02)",
            lambda: widgets.s6_delta_app(x, w=1.5, bias=-0.5),
            "bias",
            list(np.linspace(-4, 4, n)),
        ),
        ("chunks (03)", lambda: widgets.chunk_app(L, 4), "chunk_size", cycle([2, 8, 4, 16])),
        (
            "gap_masks (04)",
            lambda: widgets.gap_mask_app([1.0, 0.5, 2.0, 0.0, 3.0, 1.0, 0.2]),
            "gap_5",
            list(np.linspace(0, 5, n)),
        ),
        (  # the model is asked once at build time; a slider move only redraws (scores stand in)
            "query_time (05)",
            lambda: widgets_training.query_time_app(
                lambda gaps: rng.normal(size=(len(gaps), 41)), highlight=range(31, 41)
            ),
            "gap",
            cycle(list(widgets_training.gap_grid())),
        ),
    ]


def run(n_updates: int) -> list[dict]:
    import plotly.graph_objects as go

    go.FigureWidget()  # import anywidget once, outside the first app's build time
    rows = []
    for name, build, control, values in apps(n_updates):
        start = time.perf_counter()
        app = build()
        build_ms = (time.perf_counter() - start) * 1e3
        app.update(**{control: values[-1]})  # warm-up (first-call costs)
        update = lambda v, app=app, c=control: app.update(**{c: v})  # noqa: E731
        seconds = time_calls(update, inputs=values, warmup=0)
        times = [1e3 * s for s in seconds]
        med = statistics.median(times)
        rows.append(
            {
                "app": name,
                "control": control,
                "updates": len(times),
                "build_ms": round(build_ms, 1),
                "median_ms": round(med, 1),
                "p90_ms": round(float(np.percentile(times, 90)), 1),
                "max_ms": round(max(times), 1),
                "under_target": med < TARGET_MS,
            }
        )
        print(
            f"{name:22s} {control:11s} median {med:7.1f} ms  (build {build_ms:.0f} ms)", flush=True
        )
    return rows


def write(rows: list[dict], info: dict, out: Path, tag: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "widgets: slider-update redraw time",
        "target_ms": TARGET_MS,
        "machine": info,
        "results": rows,
    }
    (out / f"widgets-{tag}.json").write_text(json.dumps(payload, indent=2) + "\n")
    lines = [
        f"# Widget slider-update time ({tag})",
        "",
        (
            f"Median of `app.update(control=value)` over {rows[0]['updates']} values after one "
            f"warm-up call; target < {TARGET_MS:.0f} ms. Python side only (no browser): "
            "`python benchmarks/widgets.py`."
        ),
        "",
        "| app | control | median ms | p90 ms | max ms | build ms | < target |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['app']} | `{r['control']}` | {r['median_ms']} | {r['p90_ms']} | {r['max_ms']} | "
        f"{r['build_ms']} | {'yes' if r['under_target'] else 'NO'} |"
        for r in rows
    ]
    lines += ["", "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), ""]
    (out / f"widgets-{tag}.md").write_text("\n".join(lines))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--tag", default="cpu")
    args = parser.parse_args(argv)
    rows = run(args.updates)
    write(rows, machine_info("cpu", packages=("plotly", "ipywidgets")), args.out, args.tag)
    return 0 if all(r["under_target"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
