"""Real-browser end-to-end test: in each of notebooks 01–05, a slider redraws its figure.

JupyterLab (tmp dir, token) + headless Debian Chromium (Playwright): for every notebook, open a
clean copy, Run > Run All Cells, wait for the kernel and the widgets, move one slider one step
with the keyboard, and check that the plotly figure's data in the page changed. Screenshots go
to tests/e2e/artifacts/ (git-ignored).
"""

from __future__ import annotations

import json
import os
import re
import time
import warnings
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
# notebook -> the label of the slider to move (the first slider whose label matches)
SLIDERS = {
    "01_ssm_discretization": r"Δ\s*t",
    "02_s5_vs_s6": r"Δ\s*t scale",
    "03_ssd_duality": r"Δ scale",
    "04_time_aware_masks": r"gap t5",
    "05_training": r"query gap",
}
_ONE = os.environ.get("SSMLAB_E2E_NOTEBOOK")  # one other notebook: its first slider is moved
CASES = [(Path(_ONE), r".")] if _ONE else [
    (REPO / "notebooks" / f"{stem}.ipynb", label) for stem, label in SLIDERS.items()
]  # fmt: skip
KERNEL_TIMEOUT_S = 60.0  # kernel start and connection, rerun of one cell
# A notebook's budget on a 2-core CPU is 2 minutes (SPEC); the browser adds its own load and
# the shared machine more, so Run All gets twice that before the test gives up.
RUN_ALL_TIMEOUT_S = 240.0
WIDGET_TIMEOUT_S = 30.0  # widgets and plotly figures rendered after the run
CHANGE_TIMEOUT_S = 20.0  # plot redrawn after the slider moved

# JS: state of the notebook run (prompts, kernel indicator, error outputs).
RUN_STATE_JS = """() => {
  // cells shown with their input: a hidden check cell shows a placeholder whose prompt is
  // empty (its errors would still show in its output area)
  const prompts = [...document.querySelectorAll(
      '.jp-CodeCell .jp-InputPrompt:not(.jp-Placeholder-prompt)')]
    .filter(p => p.offsetParent !== null).map(p => p.textContent.trim());
  const ind = document.querySelector('.jp-Notebook-ExecutionIndicator');
  const errors = [...document.querySelectorAll(
      '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"], '
      + '.jp-RenderedText[data-mime-type="application/vnd.jupyter.error"]')]
    .map(e => e.textContent.slice(-1500));
  const dialog = document.querySelector('.jp-Dialog');
  return {prompts, status: ind ? ind.getAttribute('data-status') : null, errors,
          dialog: dialog ? dialog.innerText : null};
}"""
# JS: every plotly graph div's trace data, serialized (typed arrays as plain lists).
# `here`: the figure sits in the cell of the chosen slider.
PLOT_DATA_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].map(el => ({
  data: JSON.stringify(el.data || null, (k, v) => ArrayBuffer.isView(v) ? Array.from(v) : v),
  here: el.closest('[data-e2e-slider-cell]') !== null}))"""


def _clean_copy(src: Path, dst: Path) -> None:
    """Copy a notebook without outputs, with the venv's `python3` kernel."""
    nb = json.loads(src.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    nb["metadata"].pop("widgets", None)  # saved widget state of an old kernel
    nb["metadata"]["kernelspec"] = {
        "name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"
    }  # fmt: skip
    dst.write_text(json.dumps(nb, indent=1))


def _poll(page, predicate, timeout_s: float, what: str, interval_s: float = 0.25, fail=True):
    """Call predicate() until it returns a truthy value; on timeout fail with `what` (or, with
    ``fail=False``, return None)."""
    deadline, last = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        page.wait_for_timeout(interval_s * 1000)
    if fail:
        pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
    return None


def _wait_kernel_ready(page, lab_server) -> None:
    """Wait until the page shows an idle kernel and the server holds exactly one kernel,
    connected and idle, the same one on two reads 1 s apart. A "Select Kernel" dialog
    (JupyterLab shows it at times even when the session exists) is accepted with the
    default `python3`, as a user would.
    """
    seen: list[str] = []

    def ready():
        state = page.evaluate(RUN_STATE_JS)
        if state["dialog"] and "Select Kernel" in state["dialog"]:
            page.locator(".jp-Dialog .jp-mod-accept").click()
            return None
        kernels = lab_server.api("kernels")
        ok = (
            state["status"] == "idle" and len(kernels) == 1
            and kernels[0]["connections"] >= 1 and kernels[0]["execution_state"] == "idle"
        )  # fmt: skip
        seen.append(kernels[0]["id"] if ok else "")
        if len(seen) >= 5 and seen[-5] and len(set(seen[-5:])) == 1:
            return True
        return None

    _poll(
        page, ready, KERNEL_TIMEOUT_S,
        f"one idle kernel connected to the page (server log tail:\n{lab_server.log_tail()})",
    )  # fmt: skip


def _click_run_all(page) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()


def _run_all_cells(page, retries: int = 1) -> dict:
    """Run > Run All Cells, then wait until every code cell has an execution count.

    If the kernel sits idle for 3 s with cells left unexecuted (a dropped run), the menu
    command is issued again, at most `retries` times.
    """
    _click_run_all(page)
    started, stalled_since, left = time.monotonic(), None, [retries]

    def done():
        state = page.evaluate(RUN_STATE_JS)
        if state["dialog"]:
            pytest.fail(f"unexpected JupyterLab dialog: {state['dialog']!r}")
        if state["errors"]:
            pytest.fail(
                "a notebook cell raised in the browser:\n" + "\n---\n".join(state["errors"])
            )
        prompts, idle = state["prompts"], state["status"] == "idle"
        if idle and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts):
            return state if time.monotonic() - started > 1.0 else None
        nonlocal stalled_since
        stalled = idle and not any(p == "[*]:" for p in prompts)
        stalled_since = (stalled_since or time.monotonic()) if stalled else None
        if stalled_since and time.monotonic() - stalled_since > 3.0:
            if not left[0]:
                pytest.fail(f"Run All Cells stopped early; prompts: {prompts}")
            left[0], stalled_since = left[0] - 1, None
            _click_run_all(page)
        return None

    return _poll(page, done, RUN_ALL_TIMEOUT_S, "Run All Cells to finish (kernel idle)")


def _slider(page, label: str):
    """The first slider whose label matches the regex ``label``, and its label text.

    Its notebook cell is tagged `data-e2e-slider-cell` so the plots of that cell can be told
    apart from the notebook's other figures (a static snapshot in the same cell never changes).
    """
    sliders = page.locator(".widget-slider")
    _poll(page, lambda: sliders.count() > 0, WIDGET_TIMEOUT_S, "an ipywidgets slider")
    labels = [sliders.nth(i).locator(".widget-label").inner_text() for i in range(sliders.count())]
    pattern = re.compile(label, re.IGNORECASE)
    index = next((i for i, text in enumerate(labels) if pattern.search(text)), None)
    assert index is not None, f"no slider labelled {label!r}; sliders: {labels}"
    page.evaluate(
        "() => document.querySelectorAll('[data-e2e-slider-cell]')"
        ".forEach(el => el.removeAttribute('data-e2e-slider-cell'))"
    )
    slider = sliders.nth(index)
    slider.evaluate("el => el.closest('.jp-Cell').setAttribute('data-e2e-slider-cell', '1')")
    return slider, labels[index]


def _stable_plot_data(page) -> list[dict]:
    """Plot data once the slider's cell shows a figure and two reads 0.5 s apart agree."""

    def read_twice():
        first = page.evaluate(PLOT_DATA_JS)
        page.wait_for_timeout(500)
        second = page.evaluate(PLOT_DATA_JS)
        rendered = any(p["here"] for p in second) and all(p["data"] != "null" for p in second)
        return second if rendered and first == second else None

    plots = _poll(page, read_twice, WIDGET_TIMEOUT_S, "a rendered, stable plotly figure")
    return plots, [i for i, p in enumerate(plots) if p["here"] and not json.loads(p["data"])]


def _rerun_slider_cell(page) -> None:
    """Select the slider's cell (command mode) and run it again with Ctrl+Enter."""
    prompt = page.locator("[data-e2e-slider-cell] .jp-InputPrompt").first
    count = prompt.inner_text()
    prompt.click()
    page.keyboard.press("Control+Enter")

    def rerun():
        state = page.evaluate(RUN_STATE_JS)
        return state["status"] == "idle" and re.fullmatch(r"\[\d+\]:", prompt.inner_text())

    _poll(page, lambda: prompt.inner_text() != count and rerun(), KERNEL_TIMEOUT_S, "the rerun")


def _report_and_rerun(page, app, screenshot: Path, label: str, message: str):
    """The FigureWidget race (see README): save the slider's output area, warn with
    ``message``, run the slider's cell once more. Returns the slider, its label text, and
    :func:`_stable_plot_data` after the rerun (data, empty figures)."""
    app.screenshot(path=str(screenshot))
    warnings.warn(f"{message}; the cell was run again once", stacklevel=2)
    _rerun_slider_cell(page)
    slider, text = _slider(page, label)
    return slider, text, *_stable_plot_data(page)


def _move_one_step(page, slider, label: str) -> tuple[str, str]:
    """Focus the slider handle and press ArrowRight (ArrowLeft at the maximum)."""
    readout = slider.locator(".widget-readout")
    value_before = readout.inner_text()
    slider.locator(".noUi-handle").first.click()  # focuses the handle; a drag would overshoot
    page.keyboard.press("ArrowRight")
    page.wait_for_timeout(200)
    if readout.inner_text() == value_before:  # already at the maximum: step down instead
        page.keyboard.press("ArrowLeft")
    _poll(page, lambda: readout.inner_text() != value_before, 5, f"slider {label!r} to move")
    return value_before, readout.inner_text()


@pytest.mark.parametrize(
    ("notebook", "label"), CASES, ids=[path.stem for path, _ in CASES]
)  # fmt: skip
def test_slider_redraws_plot(lab_server, page, artifacts_dir, notebook, label):
    """Run the notebook in Chromium; one keyboard step of a slider changes its plot's data."""
    assert notebook.is_file(), f"notebook to test not found: {notebook}"
    lab_server.stop_all_sessions()  # the previous notebook's kernel
    clock, timings, stem = time.monotonic(), {}, notebook.stem

    def lap(phase: str) -> None:  # seconds spent per phase, saved as timings.json
        nonlocal clock
        timings[phase], clock = round(time.monotonic() - clock, 2), time.monotonic()

    _clean_copy(notebook, lab_server.root_dir / notebook.name)
    lab_server.start_kernel_session(notebook.name)
    page.goto(lab_server.lab_url(notebook.name), timeout=60_000)
    page.locator(".jp-NotebookPanel .jp-Notebook").first.wait_for(timeout=60_000)
    _wait_kernel_ready(page, lab_server)
    lap("open_notebook_and_kernel")
    state = _run_all_cells(page)
    lap("run_all_cells")
    assert state["prompts"], "the notebook has no code cells"

    slider, text = _slider(page, label)
    app = page.locator("[data-e2e-slider-cell] .jp-Cell-outputArea").first
    before, empty = _stable_plot_data(page)
    if empty:  # the FigureWidget race (see README): report it, rerun the cell once
        slider, text, before, empty = _report_and_rerun(
            page, app, artifacts_dir / f"{stem}-empty-figure.png", label,
            f"plotly FigureWidget(s) {empty} of the slider's cell rendered without data after "
            "Run All Cells (state-sync race)",
        )  # fmt: skip
    assert not empty, (
        f"plotly figure(s) {empty} in the slider's cell rendered with no traces: the "
        "FigureWidget's data never reached the page"
    )
    lap("widgets_rendered")
    app.screenshot(path=str(artifacts_dir / f"{stem}-before.png"))
    value_before, value_after = _move_one_step(page, slider, text)

    def changed():
        after = page.evaluate(PLOT_DATA_JS)
        diff = [i for i, (a, b) in enumerate(zip(before, after)) if a["data"] != b["data"]]
        return (after, diff) if diff else None

    def what():
        return f"a plot to change after slider {text!r} moved {value_before} -> {value_after}"

    found = _poll(page, changed, CHANGE_TIMEOUT_S, what(), fail=False)
    if not found:  # the same race, its stale form (see README): report it, rerun the cell once
        slider, text, before, _ = _report_and_rerun(
            page, app, artifacts_dir / f"{stem}-stale-figure.png", label,
            f"no plot changed within {CHANGE_TIMEOUT_S:.0f} s after the slider moved (a "
            "FigureWidget view out of sync with its model)",
        )  # fmt: skip
        value_before, value_after = _move_one_step(page, slider, text)
        found = _poll(page, changed, CHANGE_TIMEOUT_S, f"{what()}, after a rerun")
    after, diff = found
    lap("slider_moved_plot_changed")
    page.wait_for_timeout(300)  # let plotly finish drawing before the screenshot
    app.screenshot(path=str(artifacts_dir / f"{stem}-after.png"))
    (artifacts_dir / f"{stem}-timings.json").write_text(json.dumps(timings, indent=1))

    assert value_after != value_before
    assert len(after) == len(before), "the number of plotly figures changed"
    assert all(after[i]["here"] for i in diff), (
        f"figures outside the slider's cell changed: {[i for i in diff if not after[i]['here']]}"
    )
    assert all(json.loads(after[i]["data"]) for i in diff), "a changed figure lost its traces"
