"""Start and stop `streamlit run app.py` on loopback, and the browser settings: shared by the browser tests and
the app benchmarks in bench/."""

from __future__ import annotations

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
def serve(home: Path, log_path: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """(url, process) of the app serving `home` as LM_PLAYGROUND_HOME; stopped on exit (if still running)."""
    env = {**os.environ, "LM_PLAYGROUND_HOME": str(home), "PYTHONUNBUFFERED": "1"}
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
