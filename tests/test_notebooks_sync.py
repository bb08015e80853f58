"""Each notebooks/NN_topic.py (jupytext percent source) and its NN_topic.ipynb hold the same cells,
the .ipynb was executed top to bottom with its outputs stored, and it stays small.

Fix a failure with `jupytext --sync notebooks/NN_topic.py`, then re-execute:
`jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.store_widget_state=False
notebooks/NN_topic.ipynb`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")
nbformat = pytest.importorskip("nbformat")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PATTERN = "[0-9][0-9]_*"
MAX_BYTES = 1_500_000


def _stems(suffix: str) -> set[str]:
    return {p.stem for p in NOTEBOOKS.glob(PATTERN + suffix)}


STEMS = sorted(_stems(".py") | _stems(".ipynb"))


def _cells(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def test_notebooks_exist():
    assert STEMS, f"no {PATTERN}.py / .ipynb pairs in {NOTEBOOKS}"


def test_every_source_has_a_notebook_and_vice_versa():
    py, ipynb = _stems(".py"), _stems(".ipynb")
    assert not py - ipynb, f".py without .ipynb: {sorted(py - ipynb)}"
    assert not ipynb - py, f".ipynb without .py: {sorted(ipynb - py)}"


@pytest.mark.parametrize("stem", STEMS)
def test_pair_has_the_same_cells(stem):
    py, ipynb = NOTEBOOKS / f"{stem}.py", NOTEBOOKS / f"{stem}.ipynb"
    if not (py.exists() and ipynb.exists()):
        pytest.fail(f"{stem}: missing {py.name if not py.exists() else ipynb.name}")
    src = jupytext.read(py)
    nb = nbformat.read(ipynb, as_version=4)
    a, b = _cells(src), _cells(nb)
    assert len(a) == len(b), f"{stem}: {len(a)} cells in .py, {len(b)} in .ipynb"
    for i, (ca, cb) in enumerate(zip(a, b)):
        assert ca == cb, f"{stem}: cell {i} differs between .py and .ipynb:\n{ca}\n---\n{cb}"
    assert "py:percent" in str(src.metadata.get("jupytext", {}).get("formats", "")), (
        f"{stem}.py: expected a jupytext header pairing ipynb,py:percent"
    )


@pytest.mark.parametrize("stem", STEMS)
def test_notebook_was_executed_in_order_and_is_small(stem):
    path = NOTEBOOKS / f"{stem}.ipynb"
    if not path.exists():
        pytest.fail(f"{stem}.ipynb missing")
    nb = nbformat.read(path, as_version=4)
    counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
    assert counts and None not in counts, f"{stem}: not executed (execution counts {counts})"
    assert counts == list(range(1, len(counts) + 1)), f"{stem}: not run top to bottom ({counts})"
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors, f"{stem}: stored error output {errors[0].get('ename')}"
    assert "widgets" not in nb.metadata, f"{stem}: widget state stored (plotly.js bundle, MBs)"
    assert path.stat().st_size < MAX_BYTES, f"{stem}.ipynb is {path.stat().st_size} bytes"


@pytest.mark.parametrize("stem", STEMS)
def test_exercises_are_checked_and_notebooks_link_each_other(stem):
    """≥ 2 exercises, each with a folded solution, checked by a hidden cell that asserts; a link
    back to the index (the index links forward); every widget app shown with its snapshot."""
    nb = jupytext.read(NOTEBOOKS / f"{stem}.py")
    md = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    code = [c for c in nb.cells if c.cell_type == "code"]
    exercises = md.count("**Exercise ")
    assert exercises >= 2, f"{stem}: {exercises} exercises, expected at least 2"
    assert md.count("<details><summary>Solution</summary>") >= exercises, f"{stem}: unsolved"
    hidden = [c for c in code if c.metadata.get("jupyter", {}).get("source_hidden")]
    assert hidden and all("assert" in c.source for c in hidden), (
        f"{stem}: expected hidden check cells (metadata jupyter.source_hidden) that assert"
    )
    target = "01_ssm_discretization.ipynb" if stem.startswith("00") else "00_index.ipynb"
    assert f"]({target}" in md, f"{stem}: no markdown link to {target}"
    for c in code:  # a reader without a kernel sees the snapshot where the app would be
        if "_app(" in c.source:
            assert ".show()" in c.source, f"{stem}: widget app without .show():\n{c.source}"
