"""A training job's own process: `python -m lm.app.worker`, started by `lm.app.jobs.JobManager`.

Why a process: a training thread in the Streamlit server shares Python's interpreter lock with every student
(a burst of Generate clicks ran 1.6x slower while one model trained), and a run that runs out of memory must
fail alone instead of taking the server and every session down with it. The worker runs at a lower CPU
priority (`nice`), and its parent watches its memory (`WorkerHandle.rss`).

The protocol is JSON lines, nothing pickled:
- stdin, first line: `{"settings": {...TrainSettings fields...}, "nice": 10, "memory_budget": bytes | null}`;
  any later line `stop` asks the run to stop cleanly (it saves its best weights and a resume state);
- stdout: `{"event": {...TrainEvent...}}` per progress report, then `{"result": {...}}` or
  `{"error": "one line"}`; the exit status is 0 after either. Anything else (a crash, a kill) is the parent's
  to report from the exit status.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from lm.errors import LMError
from lm.train.settings import TrainSettings

RUNTIME_FIELDS = ("out", "resume", "keep_resume_state", "threads", "device", "save_minutes")


def settings_message(settings: TrainSettings, nice: int, memory_budget: int | None) -> str:
    """The first stdin line for a worker: every field that describes the run and how to run it."""
    data = settings.to_json()
    for name in RUNTIME_FIELDS:
        value = getattr(settings, name)
        data[name] = os.fspath(value) if isinstance(value, os.PathLike) else value
    return json.dumps({"settings": data, "nice": nice, "memory_budget": memory_budget}) + "\n"


def _settings_from(data: dict[str, Any], stop: threading.Event) -> TrainSettings:
    names = {f.name for f in dataclasses.fields(TrainSettings)}
    return TrainSettings(**{k: v for k, v in data.items() if k in names}, should_stop=stop)


def _write(out, payload: dict[str, Any], lock: threading.Lock) -> None:
    with lock:
        out.write(json.dumps(payload) + "\n")
        out.flush()


def main() -> int:
    """The worker's side: read the settings, train, report. Runs in its own process."""
    header = json.loads(sys.stdin.readline())
    if header.get("nice"):
        os.nice(int(header["nice"]))
    stop = threading.Event()

    def watch_stdin() -> None:
        for line in sys.stdin:  # the parent closing stdin (it went away) also stops the run
            if line.strip() == "stop":
                break
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    out, lock = sys.stdout, threading.Lock()
    sys.stdout = sys.stderr  # nothing else may write into the protocol stream
    from lm.train.loop import train  # torch: after the header, so a bad start fails fast

    settings = _settings_from(header["settings"], stop)
    try:
        result = train(settings, lambda event: _write(out, {"event": dataclasses.asdict(event)}, lock)
                       or stop.is_set(), memory_budget=header.get("memory_budget"))
    except LMError as exc:
        _write(out, {"error": str(exc)}, lock)
        return 0
    metrics = dict(result.metrics or {})
    _write(out, {"result": {"path": str(result.path) if result.path else None, "steps": result.steps,
                            "seconds": round(result.seconds, 2), "stopped": result.stopped,
                            "valid_bits_per_char": metrics.get("valid_bits_per_char")}}, lock)
    return 0


class WorkerHandle:
    """The parent's side of one worker process."""

    def __init__(self, settings: TrainSettings, *, nice: int = 10, memory_budget: int | None = None,
                 log_path: Path | None = None):
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if settings.threads:
            env["OMP_NUM_THREADS"] = str(settings.threads)
        self._log = open(log_path, "ab") if log_path is not None else subprocess.DEVNULL  # noqa: SIM115
        root = Path(__file__).resolve().parents[2]  # the worker imports lm from the same checkout
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH", "")]))
        self.process = subprocess.Popen([sys.executable, "-m", "lm.app.worker"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self._log, text=True, env=env)
        self.process.stdin.write(settings_message(settings, nice, memory_budget))
        self.process.stdin.flush()

    def messages(self):
        """The worker's JSON messages, until its stdout closes."""
        for line in self.process.stdout:
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue  # a stray line (a library printing to stdout despite the redirect): not protocol
            if isinstance(message, dict):
                yield message

    def stop(self) -> None:
        try:
            self.process.stdin.write("stop\n")
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass  # already gone

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()

    def rss(self) -> int | None:
        """Resident memory of the worker in bytes (Linux /proc), None when unknown or gone."""
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            return None
        return None

    def wait(self) -> int:
        code = self.process.wait()
        if self._log is not subprocess.DEVNULL:
            self._log.close()
        return code


if __name__ == "__main__":
    raise SystemExit(main())
