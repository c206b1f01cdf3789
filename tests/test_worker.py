"""Trainings in their own worker process (lm/app/worker.py via lm/app/jobs.py): real tiny runs, progress and
curves in the job record, ownership, cancel, a killed worker, the memory watchdog and the memory estimate."""

from __future__ import annotations

import os
import signal
import time

import pytest

from lm.app.jobs import TEACHER, JobManager
from lm.errors import LMError
from lm.models import FAMILIES, SIZES, VARIANTS
from lm.train.budget import check_memory, estimate_memory, estimate_run, memory_budget
from lm.train.settings import TrainSettings, resolve_settings


def tiny(name: str, **kw) -> TrainSettings:
    return TrainSettings(**{"family": "lstm", "preset": "tiny", "corpus": "names", "name": name, "steps": 40,
                            "score_chars": 2000, "log_every": 5, **kw})


@pytest.fixture()
def manager(tmp_path, monkeypatch):
    monkeypatch.setenv("LM_PLAYGROUND_HOME", str(tmp_path))
    return JobManager(tmp_path, max_concurrent=2)


def _wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_real_run_reports_progress_and_finishes_in_its_own_process(manager):
    job = manager.submit(tiny("w-ok"), owner="alice")
    assert _wait_for(lambda: manager.worker_pid(job) is not None)
    assert manager.worker_pid(job) != os.getpid()
    record = manager.wait(job, 120)
    assert record["status"] == "finished", record
    assert record["history"]["train"] and record["history"]["train"][-1][0] == 40
    assert record["result"]["valid_bits_per_char"] > 0
    assert (manager.home / "models" / "w-ok" / "config.json").is_file()


def test_only_the_owner_or_the_teacher_controls_a_run(manager):
    job = manager.submit(tiny("w-own", steps=100000, minutes=1.0), owner="alice")
    with pytest.raises(LMError, match="another student"):
        manager.cancel(job, by="bob")
    assert manager.get(job)["status"] in ("queued", "running")
    assert manager.cancel(job, by=TEACHER)
    record = manager.wait(job, 120)
    assert record["status"] == "cancelled"
    with pytest.raises(LMError, match="another student"):
        manager.resume(job, by="bob")


def test_a_killed_worker_is_reported_not_hung(manager):
    job = manager.submit(tiny("w-kill", steps=100000, minutes=1.0))
    assert _wait_for(lambda: manager.get(job)["progress"]["step"] > 0)
    os.kill(manager.worker_pid(job), signal.SIGKILL)
    record = manager.wait(job, 60)
    assert record["status"] == "failed" and "signal 9" in record["error"]


def test_a_worker_outgrowing_its_memory_is_stopped_and_not_offered_for_resume(manager):
    manager.kill_factor = 0.01  # any real process is "too big" now: the watchdog must stop it
    job = manager.submit(tiny("w-mem", steps=100000, minutes=1.0, save_minutes=0.001))
    record = manager.wait(job, 60)
    assert record["status"] == "failed" and record["killed_for_memory"] is True
    assert "memory" in record["error"] and record["resumable"] is False
    with pytest.raises(LMError):
        manager.resume(job)


def test_the_large_transformer_is_refused_before_anything_runs(manager):
    manager.memory_budget = 4 * 2**30
    with pytest.raises(LMError, match=r"would need about \d+\.\d GB of memory, over the training budget of 4\.0 GB"):
        manager.submit(TrainSettings(family="transformer", preset="large", corpus="shakespeare", name="big", steps=1))
    assert manager.list() == [] and not (manager.home / "models" / "big").exists()


def test_estimates_grow_with_the_run_and_the_budget_reads_the_environment(monkeypatch):
    small = resolve_settings(TrainSettings(family="transformer", preset="small", name="a"))
    wide = resolve_settings(TrainSettings(family="transformer", preset="small", name="a", batch_size=64))
    long = resolve_settings(TrainSettings(family="transformer", preset="small", name="a", context=256))
    base = estimate_memory(small, 81, 10**6).total
    assert estimate_memory(wide, 81, 10**6).total > base and estimate_memory(long, 81, 10**6).total > base
    assert estimate_memory(small, 81, 10**7).total > base
    monkeypatch.setenv("LM_TRAIN_MEMORY_MB", "1500")
    assert memory_budget() == 1500 * 2**20
    monkeypatch.setenv("LM_TRAIN_MEMORY_MB", "lots")
    with pytest.raises(LMError, match="LM_TRAIN_MEMORY_MB"):
        memory_budget()
    with pytest.raises(LMError, match="most of it is activations"):
        check_memory(estimate_memory(wide, 81, 10**6), 2**20)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_size_but_large_fits_the_default_class_budget(variant):
    """The page offers every size; all but "large" must fit a 6 GB budget (this machine's default)."""
    for size in SIZES[:-1]:
        settings = TrainSettings(family=variant, preset=size, corpus="shakespeare", name="x")
        assert estimate_run(settings, resolve_settings(settings)).total < 6 * 2**30, (variant, size)
    assert FAMILIES  # the specs are what the page loops over
