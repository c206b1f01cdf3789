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
CPU cores with everyone generating text); `submit` refuses more with a one-line `LMError`, or, with
`queue=True` (races: lm/app/races.py), records the run as "queued" and starts it when a slot frees, oldest
first. A running job can be paused, unpaused, or run to its next evaluation and paused again (`pause`,
`unpause`, `step_eval`; the worker's stdin commands, lm/app/worker.py). Its record's history keeps, besides
the losses, `clock` ([step, tokens seen, seconds trained]) and `samples` ([step, text]) as the run reports them.

Uploaded corpora (`save_upload`: validated, kept under `$LM_PLAYGROUND_HOME/corpora/`) are lm/app/uploads.py's.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
import dataclasses
import json
import logging
import os
import re
import threading
import time
import traceback
import uuid
from pathlib import Path
from typing import Any, Callable

from lm.errors import LMError
from lm.i18n import N_  # the fixed messages of a job record: the Train page shows them translated
from lm.app.quotas import TEACHER, Quotas, check_training
from lm.app.uploads import corpora_dir, save_upload, upload_max_bytes  # noqa: F401  re-exported for the pages
from lm.app.records import (  # noqa: F401  ACTIVE, TERMINAL and jobs_dir are read through this module
    ACTIVE, TERMINAL, checked_record, jobs_dir, owner_alive, this_process,
)
from lm.app.worker import WorkerHandle, result_summary, settings_from_json, supervise
from lm.data.textio import write_json_atomic
from lm.store.registry import clean_stale_staging, delete_model, home_dir, list_models
from lm.train.budget import check_memory, estimate_run, memory_budget as default_budget
from lm.train.control import PauseGate
from lm.train.settings import TrainSettings, resolve_settings

DEFAULT_MAX_CONCURRENT = 1
SAVE_EVERY_SECONDS = 1.0  # job records are rewritten at most this often while a run reports progress
WORKER_NICE = 10  # training yields the CPU to students generating text
MEMORY_KILL_FACTOR = 1.25  # a worker is stopped when it grows past its budget by this factor (estimates err)
STOP_GRACE_SECONDS = 15.0  # a cancelled run that has not stopped by then (e.g. still tokenizing) is ended
WATCH_SECONDS = 0.25
HISTORY_PARTS = ("train", "valid", "clock", "samples")
_log = logging.getLogger(__name__)


def max_concurrent_from_env() -> int:
    raw = os.environ.get("LM_MAX_TRAININGS", "").strip()
    if not raw:
        return DEFAULT_MAX_CONCURRENT
    try:
        value = int(raw)
    except ValueError:
        raise LMError("LM_MAX_TRAININGS must be a whole number, not {value!r}", value=raw) from None
    if value < 0:
        raise LMError("LM_MAX_TRAININGS must be 0 (no training on this server) or more, not {value}", value=value)
    return value


class JobManager:
    """Runs training jobs in background threads; every public method is thread-safe and returns copies."""

    def __init__(self, home: Path | str, max_concurrent: int = DEFAULT_MAX_CONCURRENT,
                 train_fn: Callable | None = None, threads: int | None = 1, memory_budget: int | None = None,
                 nice: int = WORKER_NICE, quotas: Quotas | None = None):
        self.home = Path(home)
        self.dir = jobs_dir(self.home)
        self.max_concurrent = max_concurrent
        # `train_fn` (tests) runs in a thread of this process; by default every run gets its own worker
        # process (lm/app/worker.py), niced, watched for memory, so it can neither slow nor crash the server
        self._train_fn = train_fn
        self._threads = threads  # torch threads per training (None: leave torch's setting alone)
        # the memory one training may use (lm.train.budget: a quarter of the machine, at most 8 GB)
        self.memory_budget = memory_budget if memory_budget is not None else default_budget()
        self.nice = nice
        self.kill_factor = MEMORY_KILL_FACTOR
        self.quotas = quotas if quotas is not None else Quotas.from_env()
        self._lock = threading.RLock()
        self._jobs: dict[str, dict[str, Any]] = {}
        self._stops: dict[str, threading.Event] = {}
        self._threads_by_job: dict[str, threading.Thread] = {}
        self._workers: dict[str, WorkerHandle] = {}
        self._controls: dict[str, Callable[[str], None]] = {}  # job -> send pause / resume / step
        self._pending: OrderedDict[str, TrainSettings] = OrderedDict()  # queued runs' settings, in order
        self._last_save: dict[str, float] = {}
        self._load()

    # -- persistence ------------------------------------------------------------------------------
    def _load(self) -> None:
        """Read earlier job records; runs that were going when the server stopped become interrupted.
        Half-written saves a killed process left behind are removed first."""
        clean_stale_staging(self.home / "models")
        if not self.dir.is_dir():
            return
        for path in sorted(self.dir.glob("*.json")):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, ValueError, RecursionError):
                _log.warning("skipping job record %s: unreadable", path.name)
                continue
            record = checked_record(record)
            if record is None:
                _log.warning("skipping job record %s: not a valid job record", path.name)
                continue
            if record.get("status") in ACTIVE:
                if owner_alive(record.get("owner")):  # a sibling replica sharing this home is training it
                    continue
                record.update(status="interrupted", message=N_("the server stopped during this run"), paused=False)
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
            return {r["name"] for r in self._jobs.values() if r["status"] in ACTIVE or r.get("resumable")}

    # -- commands ---------------------------------------------------------------------------------
    def submit(self, settings, *, job_id: str | None = None, owner: str | None = None, queue: bool = False,
               race: dict[str, Any] | None = None) -> str:
        """Start training `settings` (an `lm.train.settings.TrainSettings`) in the background; returns the job
        id. `owner` (a browser session's token) is the only one besides the teacher who may control it. `queue`:
        over the cap, wait as "queued" instead of being refused. `race`: {"id", "setting", "value"} of the race
        it is in (lm/app/races.py); a race counts once in a student's quota of trainings at a time."""
        plan = resolve_settings(settings)  # every settings error surfaces here, before a worker starts
        check_memory(estimate_run(settings, plan), self.memory_budget)
        if self.max_concurrent == 0:
            raise LMError("training is switched off on this server (LM_MAX_TRAININGS=0); ask your teacher which "
                          "server trains models")
        with self._lock:
            running = [r for r in self._jobs.values() if r["status"] in ACTIVE]
            full = self._occupied() >= self.max_concurrent
            if full and not queue:
                raise LMError("the server is already training {count} model(s) ({names}); the limit is {limit} "
                              "at a time — wait for it to finish or cancel it", count=len(running),
                              limit=self.max_concurrent, names=", ".join(r["name"] for r in running))
            if plan.name in {r["name"] for r in self._jobs.values() if r["status"] in ACTIVE}:
                raise LMError("a model named {name!r} is being trained right now; pick another name", name=plan.name)
            if any(r["name"] == plan.name and r.get("resumable") and r["id"] != job_id for r in self._jobs.values()):
                raise LMError("the name {name!r} is held by a stopped run that can still be resumed; pick another "
                              "name (or resume or delete that run)", name=plan.name)
            if not settings.resume and any(m.name == plan.name for m in list_models()):
                raise LMError("a model named {name!r} already exists; pick another name", name=plan.name)
            if not settings.resume:
                others = [r for r in self._jobs.values() if not race or (r.get("race") or {}).get("id") != race["id"]]
                check_training(self.quotas, others, None if owner == TEACHER else owner, self.home, ACTIVE)
            job_id = job_id or f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
            previous = self._jobs.get(job_id, {})
            record = {
                "id": job_id, "name": plan.name, "directory": str(plan.directory), "status": "queued",
                "settings": settings.to_json(), "created": previous.get("created", time.time()),
                "started": None, "ended": None, "error": None,
                "message": N_("waiting for a free training slot") if full else N_("starting"),
                "progress": {"step": 0, "total": plan.steps, "minutes": plan.minutes, "elapsed": 0.0,
                             "phase": "setup", "tokens_per_second": 0.0},
                "history": {part: list((previous.get("history") or {}).get(part, [])) if settings.resume else []
                            for part in HISTORY_PARTS},
                "result": None, "resumable": False, "runs": previous.get("runs", 0) + 1, "paused": False,
                "owner": this_process(), "owner_token": owner if owner is not None else previous.get("owner_token"),
                "race": race if race is not None else previous.get("race"),
            }
            self._jobs[job_id] = record
            self._stops[job_id] = threading.Event()
            self._save(job_id, force=True)
            if full:
                self._pending[job_id] = settings
            else:
                self._start(job_id, settings)
        return job_id

    def _start(self, job_id: str, settings) -> None:
        thread = threading.Thread(target=self._run, args=(job_id, settings, self._stops[job_id]), daemon=True,
                                  name=f"lm-train-{job_id}")
        self._threads_by_job[job_id] = thread
        thread.start()

    def _start_queued(self) -> None:
        """Start queued runs, first come first served, while a slot is free (called whenever a run ends)."""
        with self._lock:
            while self._pending and self._occupied() < self.max_concurrent:
                self._start(*self._pending.popitem(last=False))

    def _occupied(self) -> int:  # training slots in use: active runs, queued ones left out
        return sum(1 for r in self._jobs.values() if r["status"] in ACTIVE and r["id"] not in self._pending)

    def may_control(self, record: dict[str, Any], by: str | None) -> bool:
        """Whether `by` (a session token; None: the library's own caller, the CLI or a test; TEACHER: the
        teacher) may cancel, resume or delete the run of `record`."""
        return by is None or by == TEACHER or record.get("owner_token") in (None, by)

    def _check_control(self, record: dict[str, Any], by: str | None) -> None:
        if not self.may_control(record, by):
            raise LMError("{name} was started by another student: only they or the teacher can change it",
                          name=record["name"])

    def resume(self, job_id: str, by: str | None = None) -> str:
        """Continue an interrupted or cancelled run from the resume state `lm.train.loop` left behind."""
        with self._lock:
            record = self._jobs.get(job_id)
            if record is None:
                raise LMError("no training job {job!r}", job=job_id)
            self._check_control(record, by)
            if record.get("killed_for_memory"):
                raise LMError("{name} was stopped for using too much memory; resuming it would do the same — "
                              "start a smaller run instead", name=record["name"])
            if record["status"] in ACTIVE:
                raise LMError("{name} is still training", name=record["name"])
            if not self._has_resume_state(record):
                raise LMError("{name} has no saved state to resume from", name=record["name"])
            settings = settings_from_json(record["settings"], resume=True, out=record["directory"])
        return self.submit(settings, job_id=job_id, owner=record.get("owner_token"))

    def cancel(self, job_id: str, by: str | None = None) -> bool:
        """Ask a run to stop; it saves what it has (and a resume state) and ends as "cancelled"."""
        with self._lock:
            record = self._jobs.get(job_id)
            if record is None or record["status"] not in ACTIVE:
                return False
            self._check_control(record, by)
            if self._pending.pop(job_id, None) is not None:
                self._end(job_id, "cancelled", message=N_("cancelled before it started"))
                return True
            self._stops[job_id].set()
            record["message"] = N_("stopping…")
            self._save(job_id, force=True)
            return True

    def pause(self, job_id: str, by: str | None = None) -> bool:
        """Hold a running run between two steps (its clock stops too); False when it is not running."""
        return self._command(job_id, by, "pause", N_("pausing…"))

    def unpause(self, job_id: str, by: str | None = None) -> bool:
        """Let a paused run go on."""
        return self._command(job_id, by, "resume", N_("going on…"))

    def step_eval(self, job_id: str, by: str | None = None) -> bool:
        """Run a (paused or running) run to its next evaluation, then pause it there."""
        return self._command(job_id, by, "step", N_("running to the next evaluation…"))

    def _command(self, job_id: str, by: str | None, command: str, message: str) -> bool:
        with self._lock:
            record = self._jobs.get(job_id)
            if record is None:
                raise LMError("no training job {job!r}", job=job_id)
            self._check_control(record, by)
            send = self._controls.get(job_id)
            if record["status"] != "running" or send is None:
                return False  # queued, finished, or still starting its worker
            send(command)
            record["message"] = message
            self._save(job_id, force=True)
            return True

    def worker_pid(self, job_id: str) -> int | None:
        """The process id of the run's worker while it runs (None: not started, finished, or in-thread)."""
        with self._lock:
            handle = self._workers.get(job_id)
            return handle.process.pid if handle is not None else None

    def delete_model(self, name: str, by: str | None = None) -> None:
        """Delete a user model: its owner (the session whose run made it) or the teacher; never while training."""
        with self._lock:
            records = [r for r in self._jobs.values() if r["name"] == name]
            if any(r["status"] in ACTIVE for r in records):
                raise LMError("{name} is being trained right now; cancel the run first", name=name)
            if by is not None and by != TEACHER and not any(r.get("owner_token") == by for r in records):
                raise LMError("{name} was not made by you: only its owner or the teacher can delete it", name=name)
            delete_model(name)
            for record in records:  # its runs can no longer be resumed, and the name is free again
                record["resumable"] = False
                record["message"] = N_("model deleted")
                self._save(record["id"], force=True)

    def wait(self, job_id: str, timeout: float | None = None) -> dict[str, Any] | None:
        """Block until the job's thread ends (tests and scripts; the app polls instead)."""
        thread = self._threads_by_job.get(job_id)
        if thread is not None:
            thread.join(timeout)
        return self.get(job_id)

    # -- the worker -------------------------------------------------------------------------------
    def _run(self, job_id: str, settings, stop: threading.Event) -> None:
        settings = dataclasses.replace(settings, save_minutes=min(settings.save_minutes, 1.0),
                                       threads=settings.threads or self._threads)
        with self._lock:
            self._jobs[job_id].update(status="running", started=time.time(), message=N_("starting"))
            self._save(job_id, force=True)
        if self._train_fn is not None:
            gate = PauseGate()
            self._controls[job_id] = gate.send
            self._run_in_thread(job_id, dataclasses.replace(settings, should_stop=stop, control=gate))
        else:
            self._run_in_worker(job_id, settings, stop)

    def _run_in_thread(self, job_id: str, settings) -> None:
        try:
            result = self._train_fn(settings, lambda event: self._on_event(job_id, event))
        except LMError as exc:
            self._end(job_id, "failed", error=str(exc))
        except Exception as exc:  # noqa: BLE001 — a crashed run must end as "failed", not hang as "running"
            traceback.print_exc()  # the server log keeps the details; the page shows one line
            self._end(job_id, "failed", error=f"training crashed: {exc.__class__.__name__}: {str(exc)[:200]}")
        else:
            self._finish(job_id, result_summary(result))

    def _run_in_worker(self, job_id: str, settings, stop: threading.Event) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        handle = WorkerHandle(settings, nice=self.nice, memory_budget=self.memory_budget,
                              log_path=self.dir / f"{job_id}.log")
        with self._lock:
            self._workers[job_id] = handle
            self._controls[job_id] = handle.send
        outcome = supervise(handle, lambda event: self._on_event(job_id, event), stop, self.memory_budget,
                            self.kill_factor, STOP_GRACE_SECONDS, WATCH_SECONDS)
        with self._lock:
            self._workers.pop(job_id, None)
        status, details = outcome.ending(self.memory_budget, f"{job_id}.log")
        if status == "result":
            self._finish(job_id, outcome.result)
        else:
            self._end(job_id, status, **details)

    def _finish(self, job_id: str, summary: dict[str, Any]) -> None:
        stopped = bool(summary.pop("stopped", False))
        self._end(job_id, "cancelled" if stopped else "finished", result=summary,
                  message=(N_("stopped early; the best weights so far are saved") if stopped and summary.get("path")
                           else N_("stopped before the first step") if stopped else N_("done")))

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
            if event.phase in ("train", "eval") and event.tokens_seen is not None:
                if not history["clock"] or history["clock"][-1][0] != event.step:
                    history["clock"].append([event.step, int(event.tokens_seen), round(float(event.elapsed), 3)])
            if event.sample is not None:
                history["samples"].append([event.step, str(event.sample)])
            if event.phase in ("pause", "resume"):
                record["paused"] = event.phase == "pause"
            self._save(job_id, force=event.phase in ("done", "save"))
            return self._stops[job_id].is_set()

    def _end(self, job_id: str, status: str, *, error: str | None = None, result: dict | None = None,
             message: str | None = None, killed_for_memory: bool = False) -> None:
        with self._lock:
            record = self._jobs[job_id]
            record.update(status=status, ended=time.time(), error=error, result=result,
                          message=message or error or status, killed_for_memory=killed_for_memory)
            record["resumable"] = status != "finished" and not killed_for_memory and self._has_resume_state(record)
            record["paused"] = False
            self._controls.pop(job_id, None)
            self._save(job_id, force=True)
            self._start_queued()


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
