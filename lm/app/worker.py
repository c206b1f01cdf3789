"""A training job's own process: `python -m lm.app.worker`, started by `lm.app.jobs.JobManager`.

Why a process: a training thread in the Streamlit server shares Python's interpreter lock with every student
(a burst of Generate clicks ran 1.6x slower while one model trained), and a run that runs out of memory must
fail alone instead of taking the server and every session down with it. The worker runs at a lower CPU
priority (`nice`), and its parent watches its memory (`WorkerHandle.rss`).

The protocol is JSON lines, nothing pickled:
- stdin, first line: `{"settings": {...TrainSettings fields...}, "nice": 10, "memory_budget": bytes | null}`;
  any later line is a command: `stop` asks the run to stop cleanly (it saves its best weights and a resume
  state); `pause` holds it between two steps, `resume` lets it go on, `step` runs it to its next evaluation
  and pauses it again (lm/train/control.py); anything else is ignored;
- stdout: `{"event": {...TrainEvent...}}` per progress report (phase `pause` / `resume` when it holds or
  goes on), then `{"result": {...}}` or `{"error": "one line"}`; the exit status is 0 after either. Anything
  else (a crash, a kill) is the parent's to report from the exit status (`supervise`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from lm.errors import LMError
from lm.i18n import N_
from lm.train.control import PauseGate
from lm.train.settings import TrainEvent, TrainSettings

RUNTIME_FIELDS = ("out", "resume", "keep_resume_state", "threads", "device", "save_minutes")
COMMANDS = ("stop", "pause", "resume", "step")  # what the parent may write to a worker's stdin


def settings_message(settings: TrainSettings, nice: int, memory_budget: int | None) -> str:
    """The first stdin line for a worker: every field that describes the run and how to run it."""
    data = settings.to_json()
    for name in RUNTIME_FIELDS:
        value = getattr(settings, name)
        data[name] = os.fspath(value) if isinstance(value, os.PathLike) else value
    return json.dumps({"settings": data, "nice": nice, "memory_budget": memory_budget}) + "\n"


def settings_from_json(data: dict[str, Any], **changes: Any) -> TrainSettings:
    """`TrainSettings` from their JSON form (a job record's, a settings message's), with `changes` on top."""
    names = {f.name for f in dataclasses.fields(TrainSettings)}
    return TrainSettings(**{k: v for k, v in {**data, **changes}.items() if k in names})


def result_summary(result) -> dict[str, Any]:
    """What a job record keeps of a `TrainResult` (the checkpoint's config.json has the rest)."""
    metrics = dict(getattr(result, "metrics", {}) or {})
    return {"path": str(result.path) if result.path else None, "steps": result.steps,
            "seconds": round(result.seconds, 2), "stopped": result.stopped,
            "valid_bits_per_char": metrics.get("valid_bits_per_char"),
            "test_bits_per_char": metrics.get("test_bits_per_char"), "adaptation": metrics.get("adaptation")}


def _write(out, payload: dict[str, Any], lock: threading.Lock) -> None:
    with lock:
        out.write(json.dumps(payload) + "\n")
        out.flush()


def main() -> int:
    """The worker's side: read the settings, train, report. Runs in its own process."""
    header = json.loads(sys.stdin.readline())
    if header.get("nice"):
        os.nice(int(header["nice"]))
    stop, gate = threading.Event(), PauseGate()

    def watch_stdin() -> None:
        for line in sys.stdin:  # the parent closing stdin (it went away) also stops the run
            command = line.strip()
            if command == "stop":
                break
            if command in COMMANDS:
                gate.send(command)
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    out, lock = sys.stdout, threading.Lock()
    sys.stdout = sys.stderr  # nothing else may write into the protocol stream
    from lm.train.loop import train  # torch: after the header, so a bad start fails fast

    settings = settings_from_json(header["settings"], should_stop=stop, control=gate)
    try:
        result = train(settings, lambda event: _write(out, {"event": dataclasses.asdict(event)}, lock)
                       or stop.is_set(), memory_budget=header.get("memory_budget"))
    except LMError as exc:
        _write(out, {"error": str(exc)}, lock)
        return 0
    _write(out, {"result": result_summary(result)}, lock)
    return 0


def process_rss(pid: int) -> int | None:
    """Resident memory of a process in bytes (Linux /proc), None when unknown or gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


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

    def send(self, command: str) -> None:
        """One of COMMANDS to the worker (nothing happens when it is already gone)."""
        assert command in COMMANDS, command
        try:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass  # already gone

    def stop(self) -> None:
        self.send("stop")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()

    def rss(self) -> int | None:
        """Resident memory of the worker in bytes (Linux /proc), None when unknown or gone."""
        return process_rss(self.process.pid)

    def wait(self) -> int:
        code = self.process.wait()
        if self._log is not subprocess.DEVNULL:
            self._log.close()
        return code


@dataclasses.dataclass
class Outcome:
    """How a worker ended, as its parent saw it."""

    result: dict[str, Any] | None  # its result message
    error: str | None  # its one-line error message
    code: int  # exit status (negative: killed by that signal)
    peak_rss: int  # the most memory it was seen to use
    over_memory: bool  # killed by the watchdog for outgrowing the budget
    forced: bool  # killed because it did not stop within the grace period after a stop request

    def ending(self, memory_budget: int | None, log_name: str) -> tuple[str, dict[str, Any]]:
        """(status, `JobManager._end` keywords) for the job record; status "result" when the run reported
        its result (the record then takes it as a finished or stopped run)."""
        if self.over_memory:
            return "failed", {"killed_for_memory": True, "error": (
                f"stopped: the training grew to {self.peak_rss / 2**30:.1f} GB of memory, over this server's "
                f"limit of {(memory_budget or 0) / 2**30:.1f} GB; choose a smaller size, batch or context")}
        if self.forced:
            return "cancelled", {"message": N_("cancelled before the first step")}
        if self.error is not None:
            return "failed", {"error": self.error}
        if self.result is not None:
            return "result", {}
        how = f"was killed by signal {-self.code}" if self.code < 0 else f"ended with exit code {self.code}"
        hint = " (perhaps the machine ran out of memory)" if self.code == -9 else ""
        return "failed", {"error": f"the training process {how}{hint}; see {log_name} in the jobs folder"}


def supervise(handle: WorkerHandle, on_event, stop: threading.Event, memory_budget: int | None, kill_factor: float,
              grace_seconds: float, poll_seconds: float) -> Outcome:
    """Relay a worker's events to `on_event(TrainEvent)` until it ends, watching it meanwhile: its memory
    (killed past `memory_budget` x `kill_factor`) and a `stop` request (passed on; killed after the grace)."""
    seen = {"peak": 0, "over": False, "forced": False}

    def watch() -> None:
        asked = None
        while handle.process.poll() is None:
            rss = handle.rss() or 0
            seen["peak"] = max(seen["peak"], rss)
            if memory_budget and rss > memory_budget * kill_factor:
                seen["over"] = True
                handle.kill()
            elif stop.is_set() and asked is None:
                handle.stop()
                asked = time.monotonic()
            elif asked is not None and time.monotonic() - asked > grace_seconds:
                seen["forced"] = True  # e.g. still tokenizing: nothing to save yet
                handle.kill()
            time.sleep(poll_seconds)

    watcher = threading.Thread(target=watch, daemon=True, name="lm-watch-worker")
    watcher.start()
    result = error = None
    for message in handle.messages():
        if "event" in message:
            on_event(TrainEvent(**message["event"]))
        elif "result" in message:
            result = message["result"]
        elif "error" in message:
            error = str(message["error"])
    code = handle.wait()
    watcher.join()
    return Outcome(result, error, code, seen["peak"], seen["over"], seen["forced"])


if __name__ == "__main__":
    raise SystemExit(main())
