"""One command for a class server that uses every core: `python -m lm.app.serve [--replicas N] [--port 8501]`.

Why: a Streamlit server is one Python process, and most of a script run holds the interpreter lock, so one
process uses one core however many students press Generate. This starts N replicas of `streamlit run app.py`
(default: one per core) on loopback ports, all sharing one `LM_PLAYGROUND_HOME`, behind HAProxy (Debian's
`haproxy` package) with sticky sessions: the first response sets a `lm_replica` cookie and every later request
of that browser, the websocket included, reaches the same replica (a session's state lives in one process).
Each response names its replica in an `X-LM-Replica` header (for the tests and the curious).

Every replica is warmed at start, before the proxy lets anyone in: `warm` runs app.py once in each (Streamlit's
script health check, a bare script run with no browser, reachable on the replica's loopback port only; the proxy
refuses it), and that run starts the replica's background warm-up (lm/app/warmup.py). Without it a replica began
warming at its first student's click, so the first clicks of a class met a cold replica.

A teacher's laptop needs none of this: `streamlit run app.py` (the README) is the whole set-up. Trainings are
capped per replica (`LM_MAX_TRAININGS`, default 1 each).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# scriptHealthCheckEnabled: the endpoint `warm` calls (a hidden Streamlit option, in Streamlit since 0.8x)
STREAMLIT_FLAGS = ["--server.headless", "true", "--server.fileWatcherType", "none", "--server.address", "127.0.0.1",
                   "--server.scriptHealthCheckEnabled", "true"]
SCRIPT_RUN_PATH = "/_stcore/script-health-check"  # runs app.py once, without a browser; 200 "ok" when it ran clean
WARM_TIMEOUT = 120.0  # seconds for one replica's first script run (it imports torch, Plotly, the pages' modules)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def haproxy_config(port: int, backends: list[int], bind: str = "0.0.0.0") -> str:
    servers = "\n".join(f"    server r{i} 127.0.0.1:{p} cookie r{i} check inter 2s" for i, p in enumerate(backends))
    return f"""global
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
frontend class
    bind {bind}:{port}
    http-request deny if {{ path,url_dec -m sub -i {SCRIPT_RUN_PATH.rsplit("/", 1)[-1]} }}
    default_backend replicas
backend replicas
    balance roundrobin
    cookie lm_replica insert indirect nocache httponly
    option httpchk GET /_stcore/health
    http-response set-header X-LM-Replica %s
{servers}
"""


def wait_healthy(url: str, timeout: float = 120.0, procs: list[subprocess.Popen] = ()) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            raise SystemExit("error: a replica exited during start-up; see its log")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"error: {url} did not become healthy within {timeout:.0f} s")


def replica_log(log_dir: Path, index: int) -> Path:
    """Where replica `index` writes its server log."""
    return log_dir / f"replica-{index}.log"


def warm(ports: list[int], timeout: float = WARM_TIMEOUT) -> list[str]:
    """Run app.py once in every replica at once, so each starts its background warm-up now; the problems, one line
    per replica that could not (such a replica still warms at its first request)."""

    def run_once(backend: int) -> str | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{backend}{SCRIPT_RUN_PATH}", timeout=timeout) as response:
                body = response.read().decode("utf-8", "replace").strip()
                return None if body == "ok" else f"port {backend}: the first script run said {body!r}"
        except OSError as exc:  # 404: a Streamlit without the endpoint; 503: the run failed; or a timeout
            return f"port {backend}: no script run at start ({exc})"

    with ThreadPoolExecutor(max_workers=max(1, len(ports))) as pool:
        return [problem for problem in pool.map(run_once, ports) if problem]


def start(replicas: int, port: int, log_dir: Path, bind: str = "0.0.0.0") -> list[subprocess.Popen]:
    """Start the replicas, warm each (`warm`), then the proxy; returns every process (the proxy last)."""
    haproxy = shutil.which("haproxy")
    if haproxy is None:
        raise SystemExit("error: haproxy is not installed (Debian/Ubuntu: apt-get install haproxy); "
                         "for one process, run: streamlit run app.py")
    env = {**os.environ, "LM_PLAYGROUND_HOME": os.environ.get("LM_PLAYGROUND_HOME")
           or str(Path.home() / ".lm-playground")}
    procs, ports = [], []
    for i in range(replicas):
        backend = free_port()
        log = open(replica_log(log_dir, i), "ab")  # noqa: SIM115  the process keeps it open
        procs.append(subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
                                       "--server.port", str(backend), *STREAMLIT_FLAGS],
                                      cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True))
        ports.append(backend)
    for backend in ports:
        wait_healthy(f"http://127.0.0.1:{backend}", procs=procs)
    for problem in warm(ports):
        print(f"warning: {problem}; that replica warms at its first request instead", file=sys.stderr, flush=True)
    config = log_dir / "haproxy.cfg"
    config.write_text(haproxy_config(port, ports, bind), encoding="utf-8")
    proxy_log = open(log_dir / "haproxy.log", "ab")  # noqa: SIM115
    procs.append(subprocess.Popen([haproxy, "-db", "-f", str(config)], stdout=proxy_log, stderr=subprocess.STDOUT,
                                  start_new_session=True))
    wait_healthy(f"http://127.0.0.1:{port}", procs=procs)
    return procs


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in reversed(procs):
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lm.app.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=os.cpu_count() or 1, help="Streamlit processes (default: cores)")
    parser.add_argument("--port", type=int, default=8501, help="the port students open")
    parser.add_argument("--bind", default="0.0.0.0", help="the proxy's address (default: every interface)")
    parser.add_argument("--log-dir", dest="log_dir", help="replica and proxy logs (default: a temporary folder)")
    args = parser.parse_args(argv)
    if args.replicas < 1:
        parser.error("--replicas must be 1 or more")
    log_dir = Path(args.log_dir) if args.log_dir else Path(tempfile.mkdtemp(prefix="lm-serve-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    procs = start(args.replicas, args.port, log_dir, args.bind)
    print(f"LM Playground: {args.replicas} replicas behind http://localhost:{args.port} (logs in {log_dir})",
          flush=True)

    def on_term(signum, frame):  # systemd / docker stop: shut down like Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(1.0)
        print("error: a replica or the proxy stopped; shutting down (see the logs)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop(procs)


if __name__ == "__main__":
    raise SystemExit(main())
