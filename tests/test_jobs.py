"""The background training job manager (lm/jobs.py): cap, cancel, persistence across restarts, uploads.

A fake `train_fn` stands in for `lm.train.loop.train` so these tests take milliseconds; the real training path
is exercised by tests/test_app_pages.py.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from lm.errors import LMError
from lm.app.jobs import JobManager, progress_fraction, save_upload
from lm.train.settings import TrainEvent, TrainResult, TrainSettings, resolve_settings
from lm.train.state import resume_dir_for


def fake_train(release: threading.Event | None = None, fail: str | None = None):
    """A train() lookalike that keeps train()'s resume contract: with `settings.resume` it continues from the
    step in the resume state (and fails without one), otherwise it starts at step 0 and drops any old state.
    It reports three steps and an evaluation, waits for `release` (or a stop request), then 'saves': a stopped
    run leaves a resume state at the step it reached, a finished one removes it."""

    def train(settings: TrainSettings, callback):
        state = resume_dir_for(resolve_settings(settings).directory) / "state.json"
        if settings.resume:
            if not state.is_file():
                raise LMError(f"no resume state at {state}")
            start = json.loads(state.read_text())["step"]
        else:
            start = 0
            shutil.rmtree(state.parent, ignore_errors=True)
        step = start
        for step in range(start + 1, start + 4):
            stop = callback(TrainEvent(step, 10, 3.0 - step * 0.1, None, 1e-3, 100.0, step * 0.1, "train"))
            if stop:
                break
        callback(TrainEvent(step, 10, None, 2.5, 1e-3, 0.0, step * 0.1, "eval", valid_bits_per_char=3.6))
        if fail:
            raise LMError(fail)
        while release is not None and not release.is_set() and not settings.should_stop.is_set():
            time.sleep(0.01)
        stopped = settings.should_stop.is_set()
        if stopped:
            state.parent.mkdir(parents=True, exist_ok=True)
            state.write_text(json.dumps({"step": step}))
        else:
            shutil.rmtree(state.parent, ignore_errors=True)
        return TrainResult(settings.name, Path("/nowhere") / settings.name, None, None,
                           {"metrics": {"valid_bits_per_char": 3.5}}, step, 0.3, stopped, {})

    return train


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("LM_PLAYGROUND_HOME", str(tmp_path))
    return tmp_path


def settings(name: str, **kw) -> TrainSettings:
    return TrainSettings(family="lstm", corpus="names", name=name, preset="tiny", steps=10, device="cpu", **kw)


def test_a_job_runs_reports_progress_and_is_saved(home):
    manager = JobManager(home, train_fn=fake_train())
    job = manager.submit(settings("job-a"))
    record = manager.wait(job, 10)
    assert record["status"] == "finished" and record["result"]["valid_bits_per_char"] == 3.5
    assert [p[0] for p in record["history"]["train"]] == [1, 2, 3]
    assert record["history"]["valid"] == [[3, 2.5, 3.6]]
    assert progress_fraction(record) == 1.0
    saved = json.loads((home / "jobs" / f"{job}.json").read_text())
    assert saved["status"] == "finished" and saved["name"] == "job-a"


def test_the_cap_refuses_a_second_training_with_one_line(home):
    release = threading.Event()
    manager = JobManager(home, max_concurrent=1, train_fn=fake_train(release))
    first = manager.submit(settings("job-one"))
    with pytest.raises(LMError, match="already training 1 model.*job-one.*limit is 1"):
        manager.submit(settings("job-two"))
    release.set()
    assert manager.wait(first, 10)["status"] == "finished"
    assert manager.wait(manager.submit(settings("job-two")), 10)["status"] == "finished"


def test_cancel_stops_the_run(home):
    manager = JobManager(home, train_fn=fake_train(threading.Event()))
    job = manager.submit(settings("job-c"))
    assert manager.cancel(job)
    record = manager.wait(job, 10)
    assert record["status"] == "cancelled"
    assert not manager.cancel(job)  # nothing left to cancel


def test_a_failed_run_ends_failed_with_its_message(home):
    manager = JobManager(home, train_fn=fake_train(fail="the corpus is too short"))
    record = manager.wait(manager.submit(settings("job-f")), 10)
    assert record["status"] == "failed" and record["error"] == "the corpus is too short"


def test_bad_settings_and_taken_names_fail_before_a_thread_starts(home):
    manager = JobManager(home, train_fn=fake_train())
    with pytest.raises(LMError, match="invalid model name"):
        manager.submit(settings("Bad Name"))
    (home / "models" / "taken").mkdir(parents=True)
    (home / "models" / "taken" / "config.json").write_text(json.dumps({"model": {"family": "rnn"}}))
    with pytest.raises(LMError, match="already exists"):
        manager.submit(settings("taken"))
    assert manager.list() == []


def test_runs_cut_off_by_a_restart_become_interrupted_and_resumable(home):
    jobs = home / "jobs"
    jobs.mkdir()
    directory = home / "models" / "half-done"
    (home / "models" / "half-done.resume").mkdir(parents=True)
    (home / "models" / "half-done.resume" / "state.json").write_text(json.dumps({"step": 5}))
    record = {"id": "20250101-000000-abcdef", "name": "half-done", "directory": str(directory), "status": "running",
              "settings": settings("half-done").to_json(), "created": 1.0, "progress": {"step": 5, "total": 10},
              "history": {"train": [[5, 2.0]], "valid": []}}
    (jobs / f"{record['id']}.json").write_text(json.dumps(record))
    (jobs / "garbage.json").write_text("{not json")
    manager = JobManager(home, train_fn=fake_train())
    (loaded,) = manager.list()
    assert loaded["status"] == "interrupted" and loaded["resumable"] is True
    assert json.loads((jobs / f"{record['id']}.json").read_text())["status"] == "interrupted"
    resumed = manager.wait(manager.resume(record["id"]), 10)
    assert resumed["id"] == record["id"] and resumed["status"] == "finished" and resumed["runs"] == 1
    assert [p[0] for p in resumed["history"]["train"]] == [5, 6, 7, 8]  # on from the saved step 5


def test_a_cancelled_run_resumes_from_the_step_it_saved(home):
    release = threading.Event()
    manager = JobManager(home, train_fn=fake_train(release))
    job = manager.submit(settings("job-r"))
    deadline = time.monotonic() + 10
    while manager.get(job)["progress"]["phase"] != "eval" and time.monotonic() < deadline:
        time.sleep(0.01)  # until the run waits for `release`, after its three steps
    assert manager.cancel(job)
    first = manager.wait(job, 10)
    assert first["status"] == "cancelled" and first["resumable"] and first["result"]["steps"] == 3
    release.set()
    resumed = manager.wait(manager.resume(job), 10)
    assert resumed["id"] == job and resumed["status"] == "finished" and resumed["runs"] == 2
    assert resumed["result"]["steps"] == 6 and not resumed["resumable"]
    assert [p[0] for p in resumed["history"]["train"]] == [1, 2, 3, 4, 5, 6]  # one curve, continued
    assert [p[0] for p in resumed["history"]["valid"]] == [3, 6]


def test_a_replica_sharing_the_home_leaves_a_live_siblings_run_alone(home):
    """Two app replicas on one machine share LM_PLAYGROUND_HOME: a replica that (re)starts marks only runs
    whose owning process is gone as interrupted, never one a live sibling is still training."""
    import socket
    import subprocess
    import sys

    from lm.app.records import process_start as _process_start

    jobs = home / "jobs"
    jobs.mkdir()
    sibling = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_start = _process_start(dead.pid)
    dead.wait()
    try:
        records = {}
        for name, pid, start in (("live-run", sibling.pid, _process_start(sibling.pid)),
                                 ("dead-run", dead.pid, dead_start)):
            records[name] = {"id": f"20250101-000000-{name}", "name": name, "directory": str(home / "models" / name),
                             "status": "running", "settings": settings(name).to_json(), "created": 1.0,
                             "progress": {"step": 5, "total": 10}, "history": {"train": [], "valid": []},
                             "owner": {"host": socket.gethostname(), "pid": pid, "start": start}}
            (jobs / f"{records[name]['id']}.json").write_text(json.dumps(records[name]))
        manager = JobManager(home, train_fn=fake_train())
        statuses = {r["name"]: r["status"] for r in manager.list()}
        assert statuses == {"dead-run": "interrupted"}  # the live sibling's run is not this replica's to show
        on_disk = json.loads((jobs / f"{records['live-run']['id']}.json").read_text())
        assert on_disk == records["live-run"]  # untouched
    finally:
        sibling.kill()
        sibling.wait()


def test_uploads_are_validated_and_kept(home):
    text = ("To be, or not to be, that is the question.\n" * 10).encode()
    path = save_upload(text, "My Play.TXT")
    assert path.parent == home / "corpora" and path.name.startswith("my-play-")
    assert path.read_text(encoding="utf-8") == text.decode().strip()
    assert save_upload(text, "My Play.TXT") == path  # same bytes, same file
    with pytest.raises(LMError):
        save_upload(b"\x00\x01\x02binary" * 100, "x.txt")
    with pytest.raises(LMError, match="at least 200"):
        save_upload(b"short text", "x.txt")
    with pytest.raises(LMError):
        save_upload(text, "x.txt", max_bytes=100)


def test_max_trainings_from_the_environment(home, monkeypatch):
    from lm.app.jobs import max_concurrent_from_env

    for raw, expected in (("", 1), ("3", 3), ("0", 0)):
        monkeypatch.setenv("LM_MAX_TRAININGS", raw)
        assert max_concurrent_from_env() == expected
    for bad in ("-1", "many"):
        monkeypatch.setenv("LM_MAX_TRAININGS", bad)
        with pytest.raises(LMError, match="LM_MAX_TRAININGS"):
            max_concurrent_from_env()
    manager = JobManager(home, max_concurrent=0, train_fn=fake_train())
    with pytest.raises(LMError, match="training is switched off on this server"):
        manager.submit(settings("nope"))
    assert manager.list() == []
