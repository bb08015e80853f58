"""Fixtures of the browser test: a throw-away JupyterLab server and headless Chromium.

Everything the server writes (config, settings, workspaces, runtime files, the notebook
copy) lives in a pytest tmp dir; the committed notebooks are never opened in place.
The server is `python -m jupyterlab` started directly (no `jupyter lab` launcher fork), so
its PID is the server and teardown can stop exactly that process.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("SSMLAB_E2E_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
SERVER_START_TIMEOUT_S = 60.0
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
# JupyterLab user settings: no news prompt, no autosave, every cell attached to the DOM
# (the default content-visibility windowing may leave off-screen plots unrendered).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}
PAGE_CONFIG = {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}


@dataclass
class LabServer:
    """A running JupyterLab server: where it serves, its token and its root folder."""

    url: str
    token: str
    root_dir: Path
    log_path: Path

    def lab_url(self, notebook: str) -> str:
        """URL that opens `notebook` (relative to root_dir) in a fresh workspace."""
        return f"{self.url}/lab/tree/{notebook}?token={self.token}&reset"

    def api(self, path: str, payload: dict | None = None):
        """GET (or POST `payload` as JSON to) the server's REST API; returns the JSON reply."""
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            f"{self.url}/api/{path}", data=data, method="GET" if data is None else "POST",
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def stop_all_sessions(self) -> None:
        """Delete every session (and so shut down its kernel): the next notebook starts alone."""
        for session in self.api("sessions"):
            request = urllib.request.Request(
                f"{self.url}/api/sessions/{session['id']}", method="DELETE",
                headers={"Authorization": f"token {self.token}"},
            )  # fmt: skip
            with urllib.request.urlopen(request, timeout=30):
                pass
        deadline = time.monotonic() + 30
        while self.api("kernels") and time.monotonic() < deadline:
            time.sleep(0.25)

    def start_kernel_session(self, notebook: str) -> str:
        """Start the notebook's `python3` kernel through the REST API; returns its id.

        Starting it before the page loads avoids JupyterLab's race where the page starts a
        kernel, replaces it and drops part of a Run All; the page joins this session (the
        kernel reports "idle" once the page's first request reached it).
        """
        session = self.api(
            "sessions",
            {"path": notebook, "name": notebook, "type": "notebook", "kernel": {"name": "python3"}},
        )
        return session["kernel"]["id"]

    def log_tail(self, n_chars: int = 3000) -> str:
        """Last characters of the server log, for failure messages."""
        return self.log_path.read_text(errors="replace")[-n_chars:]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1))


def _wait_ready(proc: subprocess.Popen, url: str, token: str, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    request = urllib.request.Request(
        f"{url}/api/status", headers={"Authorization": f"token {token}"}
    )
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"JupyterLab exited with code {proc.returncode} before it was ready; "
                f"log tail:\n{log_path.read_text(errors='replace')[-3000:]}"
            )
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(
        f"JupyterLab not ready at {url} after {SERVER_START_TIMEOUT_S:.0f} s; "
        f"log tail:\n{log_path.read_text(errors='replace')[-3000:]}"
    )


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """Debian's Chromium; the test skips loudly when it is not installed."""
    if not CHROMIUM.is_file():
        pytest.skip(
            f"E2E BROWSER TEST SKIPPED: {CHROMIUM} not found. Install Debian's chromium "
            "(`apt-get install -y chromium`; `make test` does it when apt is available) "
            "or set SSMLAB_E2E_CHROMIUM to a Chromium binary."
        )
    return CHROMIUM


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """tests/e2e/artifacts/ (git-ignored): screenshots, timings and server log of this run."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in [p for p in ARTIFACTS.iterdir() if p.suffix in (".png", ".json", ".log")]:
        old.unlink()  # files of an earlier run would pass for this one's
    return ARTIFACTS


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory, chromium_path, artifacts_dir) -> LabServer:
    """JupyterLab on 127.0.0.1 with a random token, isolated in a tmp dir; stopped after."""
    base = tmp_path_factory.mktemp("jupyterlab")
    root_dir = base / "root"
    config_dir, settings_dir = base / "config", base / "settings"
    root_dir.mkdir()
    _write_json(config_dir / "labconfig" / "page_config.json", PAGE_CONFIG)
    for rel_path, payload in LAB_SETTINGS.items():
        _write_json(settings_dir / rel_path, payload)
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(config_dir),
        JUPYTER_DATA_DIR=str(base / "data"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        IPYTHONDIR=str(base / "ipython"),
        JUPYTER_PLATFORM_DIRS="1",
        PYTHONUNBUFFERED="1",
    )
    token, port = secrets.token_hex(16), _free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root_dir}",
        "--allow-root",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        f"--LabApp.user_settings_dir={settings_dir}",
        f"--LabApp.workspaces_dir={base / 'workspaces'}",
        "--LabApp.extension_manager=readonly",  # no PyPI queries
        "--ServerApp.terminals_enabled=False",
    ]  # fmt: skip
    log_path = base / "jupyterlab.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=root_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            _wait_ready(proc, url, token, log_path)
            yield LabServer(url=url, token=token, root_dir=root_dir, log_path=log_path)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
            shutil.copy(log_path, artifacts_dir / "jupyterlab.log")


@pytest.fixture(scope="module")
def browser(chromium_path):
    """Headless Debian Chromium driven by Playwright (no downloaded browser)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    with sync_api.sync_playwright() as playwright:
        # launch() gives Chromium a fresh temporary --user-data-dir of its own.
        instance = playwright.chromium.launch(
            executable_path=str(chromium_path), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield instance
        finally:
            instance.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Expose each phase's report on the item so `page` can screenshot failures."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def page(browser, request, artifacts_dir):
    """A fresh browser page (1600x1000). On failure: a screenshot and the browser console
    (errors and warnings) are saved under tests/e2e/artifacts/."""
    from playwright.sync_api import Error as PlaywrightError

    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    console: list[str] = []
    page.on(
        "console",
        lambda m: console.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None,
    )
    page.on("pageerror", lambda exc: console.append(f"pageerror: {exc}"))
    try:
        yield page
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            name = request.node.name
            (artifacts_dir / f"failure-{name}-console.log").write_text("\n".join(console))
            try:
                page.screenshot(path=str(artifacts_dir / f"failure-{name}.png"))
            except PlaywrightError as exc:  # the page may be gone; the failure itself matters
                print(f"could not save the failure screenshot: {exc}")
        context.close()
