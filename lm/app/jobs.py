"""Background training jobs for the app: a small, lock-protected manager around `lm.train.loop.train`.

A web page must never block on training, and a page rerun must not start a second copy of a run, so the
app hands `TrainSettings` to `JobManager.submit` and polls `JobManager.get(job_id)`. Each job runs
`lm.train.loop.train` in its own daemon thread; progress events update the job record, which is also written
as JSON to `$LM_PLAYGROUND_HOME/jobs/<id>.json` (throttled, atomically), so:

- a finished model survives a server restart twice over: its checkpoint is in the user models directory,
  and its job record says how it went;
- a run that was going when the server stopped is found marked "running" on the next start and becomes
  "interrupted"; it is *resumable* when `lm.train.loop` left a resume state beside the checkpoint.

At most `max_concurrent` trainings run at once (env `LM_MAX_TRAININGS`, default 1: the app shares a few
CPU cores with everyone generating text); `submit` refuses more with a one-line `LMError`.

Uploaded corpora are validated with `lm.data.corpus.corpus_from_bytes` and kept under `$LM_PLAYGROUND_HOME/
corpora/` (`save_upload`), so training, resuming and the memorisation meter can read them later.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import re
import threading
import time
import traceback
import uuid
from pathlib import Path
from typing import Any, Callable

from lm.errors import LMError
from lm.data.corpus import corpus_from_bytes
from lm.data.textio import atomic_write_bytes, write_json_atomic
from lm.store.registry import home_dir, list_models
from lm.train.settings import TrainSettings, resolve_settings

ACTIVE = ("queued", "running")
TERMINAL = ("finished", "cancelled", "failed", "interrupted")
DEFAULT_MAX_CONCURRENT = 1
DEFAULT_UPLOAD_MAX_BYTES = 5 * 1024 * 1024  # a few MB of text is plenty for a CPU model in a lesson
SAVE_EVERY_SECONDS = 1.0  # job records are rewritten at most this often while a run reports progress
_ID = re.compile(r"^[a-z0-9-]{6,40}$")


def jobs_dir(home: Path | None = None) -> Path:
    return Path(home or home_dir()) / "jobs"


def corpora_dir(home: Path | None = None) -> Path:
    return Path(home or home_dir()) / "corpora"


def _process_start(pid: int) -> str | None:
    """The kernel's start time of a process (Linux /proc), so a recycled pid is not taken for the original."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]  # field 22 of /proc/<pid>/stat, counted after the name
    except (OSError, IndexError):
        return None


def _this_process() -> dict[str, Any]:
    import socket

    return {"host": socket.gethostname(), "pid": os.getpid(), "start": _process_start(os.getpid())}


def _owner_alive(owner: Any) -> bool:
    """True when `owner` (a job record's) is another process on this machine that is still running.

    Several app replicas may share one LM_PLAYGROUND_HOME (docs/serving.md): a replica that starts must
    not mark a sibling's live training as interrupted. A dead owner, this very process (a restart reusing
    the pid), an owner on another host or a record without one count as gone.
    """
    import socket

    if not isinstance(owner, dict) or owner.get("host") != socket.gethostname():
        return False
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid == os.getpid() or owner.get("start") is None:
        return False
    return _process_start(pid) == owner["start"]


def max_concurrent_from_env() -> int:
    raw = os.environ.get("LM_MAX_TRAININGS", "").strip()
    if not raw:
        return DEFAULT_MAX_CONCURRENT
    try:
        value = int(raw)
    except ValueError:
        raise LMError(f"LM_MAX_TRAININGS must be a whole number, not {raw!r}") from None
    if value < 0:
        raise LMError(f"LM_MAX_TRAININGS must be 0 (no training on this server) or more, not {value}")
    return value


def upload_max_bytes() -> int:
    raw = os.environ.get("LM_UPLOAD_MAX_MB", "").strip()
    try:
        return int(float(raw) * 1024 * 1024) if raw else DEFAULT_UPLOAD_MAX_BYTES
    except ValueError:
        return DEFAULT_UPLOAD_MAX_BYTES


def save_upload(data: bytes, filename: str, home: Path | None = None, max_bytes: int | None = None) -> Path:
    """Validate an uploaded text file and keep it under corpora/; returns its path (same bytes, same path)."""
    max_bytes = upload_max_bytes() if max_bytes is None else max_bytes
    stem = re.sub(r"[^a-z0-9]+", "-", Path(str(filename or "upload")).stem.lower()).strip("-")[:40] or "upload"
    corpus = corpus_from_bytes(data, f"{stem}.txt", max_bytes=max_bytes)  # raises a one-line LMError
    if len(corpus.text) < 200:
        raise LMError(f"'{filename}' has only {len(corpus.text)} characters of text; upload at least 200")
    digest = hashlib.sha256(bytes(data)).hexdigest()[:8]
    path = corpora_dir(home) / f"{stem}-{digest}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        atomic_write_bytes(path, corpus.text.encode("utf-8"))
    return path


def _settings_from_json(data: dict[str, Any], **changes: Any):
    names = {f.name for f in dataclasses.fields(TrainSettings)}
    return TrainSettings(**{k: v for k, v in {**data, **changes}.items() if k in names})


class JobManager:
    """Runs training jobs in background threads; every public method is thread-safe and returns copies."""

    def __init__(self, home: Path | str, max_concurrent: int = DEFAULT_MAX_CONCURRENT,
                 train_fn: Callable | None = None, threads: int | None = 1):
        self.home = Path(home)
        self.dir = jobs_dir(self.home)
        self.max_concurrent = max_concurrent
        self._train_fn = train_fn
        self._threads = threads  # torch threads per training (None: leave torch's setting alone)
        self._lock = threading.RLock()
        self._jobs: dict[str, dict[str, Any]] = {}
        self._stops: dict[str, threading.Event] = {}
        self._threads_by_job: dict[str, threading.Thread] = {}
        self._last_save: dict[str, float] = {}
        self._load()

    # -- persistence ------------------------------------------------------------------------------
    def _load(self) -> None:
        """Read earlier job records; runs that were going when the server stopped become interrupted."""
        if not self.dir.is_dir():
            return
        for path in sorted(self.dir.glob("*.json")):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                continue
            if not isinstance(record, dict) or not _ID.match(str(record.get("id", ""))):
                continue
            if record.get("status") in ACTIVE:
                if _owner_alive(record.get("owner")):  # a sibling replica sharing this home is training it
                    continue
                record["status"] = "interrupted"
                record["message"] = "the server stopped during this run"
                record["resumable"] = self._has_resume_state(record)
                self._jobs[record["id"]] = record
                self._save(record["id"], force=True)
            else:
                self._jobs[record["id"]] = record

    def _save(self, job_id: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_save.get(job_id, 0.0) < SAVE_EVERY_SECONDS:
            return
        self._last_save[job_id] = now
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            write_json_atomic(self.dir / f"{job_id}.json", self._jobs[job_id])
        except OSError:
            pass  # a full disk must not kill the run; the in-memory record is still served

    def _has_resume_state(self, record: dict[str, Any]) -> bool:
        from lm.train.state import resume_dir_for  # torch: pages import this module

        directory = record.get("directory")
        return bool(directory) and resume_dir_for(Path(directory)).is_dir()

    # -- queries ----------------------------------------------------------------------------------
    def get(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            record = self._jobs.get(job_id)
            return copy.deepcopy(record) if record is not None else None

    def list(self) -> list[dict[str, Any]]:
        """Every job, newest first."""
        with self._lock:
            return [copy.deepcopy(r) for r in sorted(self._jobs.values(), key=lambda r: r["created"], reverse=True)]

    def active(self) -> list[dict[str, Any]]:
        return [r for r in self.list() if r["status"] in ACTIVE]

    def names_in_use(self) -> set[str]:
        with self._lock:
            return {r["name"] for r in self._jobs.values() if r["status"] in ACTIVE}

    # -- commands ---------------------------------------------------------------------------------
    def submit(self, settings, *, job_id: str | None = None) -> str:
        """Start training `settings` (an `lm.train.loop.TrainSettings`) in the background; returns the job id."""
        plan = resolve_settings(settings)  # every settings error surfaces here, before a thread starts
        if self.max_concurrent == 0:
            raise LMError("training is switched off on this server (LM_MAX_TRAININGS=0); ask your teacher which "
                          "server trains models")
        with self._lock:
            running = [r for r in self._jobs.values() if r["status"] in ACTIVE]
            if len(running) >= self.max_concurrent:
                names = ", ".join(r["name"] for r in running)
                raise LMError(f"the server is already training {len(running)} model(s) ({names}); the limit is "
                              f"{self.max_concurrent} at a time — wait for it to finish or cancel it")
            if plan.name in self.names_in_use():
                raise LMError(f"a model named {plan.name!r} is being trained right now; pick another name")
            if not settings.resume and any(m.name == plan.name for m in list_models()):
                raise LMError(f"a model named {plan.name!r} already exists; pick another name")
            job_id = job_id or f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
            previous = self._jobs.get(job_id, {})
            record = {
                "id": job_id, "name": plan.name, "directory": str(plan.directory), "status": "queued",
                "settings": settings.to_json(), "created": previous.get("created", time.time()),
                "started": None, "ended": None, "message": "starting", "error": None,
                "progress": {"step": 0, "total": plan.steps, "minutes": plan.minutes, "elapsed": 0.0,
                             "phase": "setup", "tokens_per_second": 0.0},
                "history": previous.get("history", {"train": [], "valid": []}) if settings.resume
                else {"train": [], "valid": []},
                "result": None, "resumable": False, "runs": previous.get("runs", 0) + 1,
                "owner": _this_process(),
            }
            self._jobs[job_id] = record
            stop = threading.Event()
            self._stops[job_id] = stop
            self._save(job_id, force=True)
            thread = threading.Thread(target=self._run, args=(job_id, settings, stop), daemon=True,
                                      name=f"lm-train-{job_id}")
            self._threads_by_job[job_id] = thread
            thread.start()
        return job_id

    def resume(self, job_id: str) -> str:
        """Continue an interrupted or cancelled run from the resume state `lm.train.loop` left behind."""
        with self._lock:
            record = self._jobs.get(job_id)
            if record is None:
                raise LMError(f"no training job {job_id!r}")
            if record["status"] in ACTIVE:
                raise LMError(f"{record['name']} is still training")
            if not self._has_resume_state(record):
                raise LMError(f"{record['name']} has no saved state to resume from")
            settings = _settings_from_json(record["settings"], resume=True, out=record["directory"])
        return self.submit(settings, job_id=job_id)

    def cancel(self, job_id: str) -> bool:
        """Ask a run to stop; it saves what it has (and a resume state) and ends as "cancelled"."""
        with self._lock:
            record = self._jobs.get(job_id)
            if record is None or record["status"] not in ACTIVE:
                return False
            self._stops[job_id].set()
            record["message"] = "stopping…"
            self._save(job_id, force=True)
            return True

    def wait(self, job_id: str, timeout: float | None = None) -> dict[str, Any] | None:
        """Block until the job's thread ends (tests and scripts; the app polls instead)."""
        thread = self._threads_by_job.get(job_id)
        if thread is not None:
            thread.join(timeout)
        return self.get(job_id)

    # -- the worker -------------------------------------------------------------------------------
    def _run(self, job_id: str, settings, stop: threading.Event) -> None:
        from lm.train.loop import train  # torch: pages import this module

        train_fn = self._train_fn or train
        settings = dataclasses.replace(settings, should_stop=stop, save_minutes=min(settings.save_minutes, 1.0),
                                       threads=settings.threads or self._threads)
        with self._lock:
            record = self._jobs[job_id]
            record.update(status="running", started=time.time(), message="starting")
            self._save(job_id, force=True)
        try:
            result = train_fn(settings, lambda event: self._on_event(job_id, event))
        except LMError as exc:
            self._end(job_id, "failed", error=str(exc))
        except Exception as exc:  # noqa: BLE001 — a crashed run must end as "failed", not hang as "running"
            traceback.print_exc()  # the server log keeps the details; the page shows one line
            self._end(job_id, "failed", error=f"training crashed: {exc.__class__.__name__}: {str(exc)[:200]}")
        else:
            metrics = dict(getattr(result, "metrics", {}) or {})
            summary = {"path": str(result.path) if result.path else None, "steps": result.steps,
                       "seconds": round(result.seconds, 2), "valid_bits_per_char": metrics.get("valid_bits_per_char")}
            status = "cancelled" if result.stopped else "finished"
            self._end(job_id, status, result=summary,
                      message=("stopped early; the best weights so far are saved" if result.stopped and result.path
                               else "stopped before the first step" if result.stopped else "done"))

    def _on_event(self, job_id: str, event) -> bool:
        with self._lock:
            record = self._jobs[job_id]
            progress = record["progress"]
            progress.update(step=event.step, total=event.total, elapsed=round(event.elapsed, 2), phase=event.phase,
                            tokens_per_second=round(event.tokens_per_second, 1))
            if event.message:
                record["message"] = event.message
            history = record["history"]
            if event.phase == "train" and event.train_loss is not None:
                history["train"].append([event.step, round(float(event.train_loss), 5)])
            if event.phase == "eval" and event.valid_loss is not None:
                point = [event.step, round(float(event.valid_loss), 5), event.valid_bits_per_char]
                if not history["valid"] or history["valid"][-1][:2] != point[:2]:
                    history["valid"].append(point)
            self._save(job_id, force=event.phase in ("done", "save"))
            return self._stops[job_id].is_set()

    def _end(self, job_id: str, status: str, *, error: str | None = None, result: dict | None = None,
             message: str | None = None) -> None:
        with self._lock:
            record = self._jobs[job_id]
            record.update(status=status, ended=time.time(), error=error, result=result,
                          message=message or error or status)
            record["resumable"] = status != "finished" and self._has_resume_state(record)
            self._save(job_id, force=True)


_managers: dict[Path, JobManager] = {}
_managers_lock = threading.Lock()


def get_manager() -> JobManager:
    """The process-wide manager for the current `$LM_PLAYGROUND_HOME` (one per home directory)."""
    home = home_dir().resolve()
    with _managers_lock:
        if home not in _managers:
            _managers[home] = JobManager(home, max_concurrent_from_env())
        return _managers[home]


def progress_fraction(record: dict[str, Any]) -> float:
    """How far a job is, 0..1, by steps or by its time budget (whichever is further)."""
    if record.get("status") == "finished":
        return 1.0
    p = record.get("progress") or {}
    parts = []
    if p.get("total"):
        parts.append(p.get("step", 0) / p["total"])
    if p.get("minutes"):
        parts.append(p.get("elapsed", 0.0) / (p["minutes"] * 60.0))
    return max(0.0, min(1.0, max(parts) if parts else 0.0))


def suggest_name(base: str, taken: set[str] | None = None) -> str:
    """A valid, unused model name built from `base` ("shakespeare-char-lstm" -> "...-2" if taken)."""
    taken = set(taken or set()) | {m.name for m in list_models()} | get_manager().names_in_use()
    stem = re.sub(r"[^a-z0-9._-]+", "-", base.lower()).strip("-._")[:56] or "my-model"
    if stem not in taken:
        return stem
    n = 2
    while f"{stem}-{n}" in taken:
        n += 1
    return f"{stem}-{n}"
