"""Start and stop `streamlit run app.py` on loopback, the browser settings, and the steps every browser check
takes (wait for the app, look for exceptions, clipped text, screenshots): shared by the browser tests,
tools/screenshots.py and the app benchmarks in bench/."""

from __future__ import annotations

import ast
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent

# Debian's Chromium, driven by Playwright (which cannot download its own browsers on this kind of machine)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
# True in the page once the app is connected and no script is running (Streamlit's own test attributes)
IDLE = """() => {
    const app = document.querySelector('.stApp');
    return app && app.getAttribute('data-test-connection-state') === 'CONNECTED'
        && app.getAttribute('data-test-script-state') !== 'running';
}"""


def require_chromium() -> None:
    """Skip (locally) or fail (under CI, env CI=true) a browser test when Chromium is missing."""
    import pytest  # only the tests need it, not the benchmarks that share this module

    if Path(CHROMIUM).exists():
        return
    message = f"{CHROMIUM} is missing (apt-get install -y chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser test cannot run in CI: {message}")
    pytest.skip(f"no browser: {message}")


@contextlib.contextmanager
def chromium():
    """Debian's Chromium under Playwright, closed on exit."""
    from playwright.sync_api import sync_playwright  # the benchmarks that only start servers need no Playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(port: int, env: dict, log) -> subprocess.Popen:
    """The app in its own process group (so `stop` ends Streamlit and anything it started)."""
    return subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.fileWatcherType", "none", "--server.port", str(port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the whole group, SIGKILL it if it lingers."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def wait_healthy(proc: subprocess.Popen, url: str, log_path: Path, timeout: float = 60) -> None:
    """Poll Streamlit's health endpoint until it answers; fail with the server's log if it never does."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError("the server did not start:\n" + Path(log_path).read_text(errors="replace")[-3000:])
        time.sleep(0.2)


@contextlib.contextmanager
def serve(home: Path, log_path: Path, env: dict | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """(url, process) of the app serving `home` as LM_PLAYGROUND_HOME (`env`: more variables, such as
    LM_TEACHER_TOKEN); stopped on exit (if still running)."""
    env = {**os.environ, "LM_PLAYGROUND_HOME": str(home), "PYTHONUNBUFFERED": "1", **(env or {})}
    port = free_port()
    with open(log_path, "ab") as log:
        proc = launch(port, env, log)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_healthy(proc, url, log_path)
            yield url, proc
        finally:
            if proc.poll() is None:
                stop(proc)


# -- what every browser check does ------------------------------------------------------------------------
VIEWPORT = {"width": 1280, "height": 800}  # a classroom projector's window


def app_pages() -> list[tuple[str, str, str]]:
    """(file, title, url_path) of every page in app.py's PAGES whose file exists (read with `ast`, so a new
    page is visited without touching the tests)."""
    tree = ast.parse((ROOT / "app.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "PAGES" for t in node.targets):
            pages = ast.literal_eval(node.value)
            return [(file, title, url) for _, file, title, _, url in pages if (ROOT / file).is_file()]
    raise AssertionError("app.py has no PAGES list")


def settle(tab, timeout: float = 60_000) -> None:
    """Wait until the app has finished its current run and shows a page title."""
    tab.wait_for_selector("[data-testid='stApp']", timeout=timeout)
    tab.wait_for_timeout(400)  # let a rerun triggered by the last action start
    tab.wait_for_function(IDLE, timeout=timeout)
    tab.wait_for_selector("[data-testid='stMain'] h1", timeout=timeout)


def no_exception(tab, where: str) -> None:
    errors = tab.locator("[data-testid='stException']")
    assert errors.count() == 0, f"{where}: {errors.first.inner_text()[:500]}"


# Text cut off by its box: a metric's value or label, a widget label, a button, a tab (each element or one of
# its descendants scrolls horizontally: Streamlit hides the overflow behind an ellipsis), or a data table
# wider than its frame (columns cut off at the right).
CLIPPED = """() => {
    const boxes = '[data-testid="stMetricValue"], [data-testid="stMetricLabel"], [data-testid="stMetricDelta"], '
        + '[data-testid="stWidgetLabel"], [data-testid="stMain"] button, [data-baseweb="tab"]';
    const cut = [];
    for (const box of document.querySelectorAll(boxes)) {
        if (!box.offsetParent) continue;  // not shown
        // an icon-only button (the uploader's "add"): its text is the icon font's ligature name, drawn as a glyph
        if ((box.getAttribute('data-testid') || '').startsWith('stBaseButton-borderlessIcon')) continue;
        const parts = [box, ...box.querySelectorAll('*')];
        if (parts.some(e => e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1))
            cut.push(`${box.getAttribute('data-testid') || box.tagName}: ${box.innerText.trim().slice(0, 60)}`);
    }
    for (const frame of document.querySelectorAll('[data-testid="stDataFrame"] .dvn-scroller'))
        if (frame.scrollWidth > frame.clientWidth + 1) cut.push(`stDataFrame: ${frame.scrollWidth}px in ${frame.clientWidth}px`);
    return cut;
}"""


def nothing_clipped(tab, where: str) -> None:
    """No metric value or label, widget label, button or table is cut off at the current viewport."""
    cut = tab.evaluate(CLIPPED)
    assert cut == [], f"{where}: text cut off at {tab.viewport_size}: {cut}"


CHARTS_DRAWN = """() => [...document.querySelectorAll("[data-testid='stPlotlyChart']")]
    .every(chart => chart.querySelector('.main-svg'))"""


def shoot(tab, path: Path) -> None:
    """Screenshot the whole page to `path`: Streamlit scrolls inside its main block, so grow the viewport to fit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    width = tab.viewport_size["width"]
    height = tab.evaluate("() => document.querySelector(\"[data-testid='stMain']\").scrollHeight")
    tab.set_viewport_size({"width": width, "height": max(VIEWPORT["height"], min(int(height), 3000))})
    tab.wait_for_function(CHARTS_DRAWN, timeout=60_000)  # every Plotly chart has drawn its SVG
    tab.wait_for_timeout(1000)  # charts re-layout to the new size
    tab.screenshot(path=str(path))
    tab.set_viewport_size({"width": width, "height": VIEWPORT["height"]})
