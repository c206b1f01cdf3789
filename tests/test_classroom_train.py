"""The Train page for a class (AppTest): a default run a class can watch, honest live status in one loss unit,
owners' controls only for owners, the teacher's panel, Delete, and student text shown as typed.

A fake `train_fn` in a `JobManager` of its own (a temporary user directory) stands in for training, so every
state of a run can be held on screen; the real worker path is timed in lm/train/budget.py's table and run by
tests/test_app_pages.py and the browser tests.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app_fixtures import app_home  # noqa: E402,F401
from app_server import app_pages  # noqa: E402
from lm.app import jobs  # noqa: E402
from lm.errors import LMError  # noqa: E402
from lm.train.budget import CorpusSize, estimate_seconds, estimate_time  # noqa: E402
from lm.train.settings import TrainEvent, TrainResult, TrainSettings, resolve_settings  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

TRAIN_PAGE = next(file for file, _, url in app_pages() if url == "train")
PAYLOAD = "no such file: ![t](http://127.0.0.1:9/x.png) [l](http://x) :red[x] $x$"


class FakeTraining:
    """A train() lookalike: a setup event that says "tokenizing", then train and eval events, then it waits for
    `release` (or a stop request) and 'saves' a copy of a tiny checkpoint as the model (or fails)."""

    def __init__(self, model_source: Path, fail: str | None = None):
        self.release = threading.Event()
        self.model_source, self.fail = model_source, fail

    def __call__(self, settings: TrainSettings, callback):
        plan = resolve_settings(settings)
        callback(TrainEvent(0, 100, None, None, 0.0, 0.0, 0.0, "setup", message="tokenizing"))
        for step in (10, 20):
            callback(TrainEvent(step, 100, 3.0 - step / 100, None, 1e-3, 5000.0, step / 10, "train"))
        callback(TrainEvent(20, 100, None, 2.0, 1e-3, 0.0, 2.0, "eval", valid_bits_per_char=2.9,
                            message="held-out 2.0000 nats/token"))
        callback(TrainEvent(30, 100, 2.5, 2.0, 1e-3, 5000.0, 3.0, "train", valid_bits_per_char=2.9))
        if self.fail:
            raise LMError(self.fail)
        while not self.release.is_set() and not settings.should_stop.is_set():
            self.release.wait(0.01)
        shutil.copytree(self.model_source, plan.directory)
        return TrainResult(plan.name, plan.directory, None, None, {"metrics": {"valid_bits_per_char": None}}, 30,
                           3.0, settings.should_stop.is_set(), {})


@pytest.fixture
def home(app_home, tmp_path, monkeypatch):
    """A user directory of its own (no other test's runs) with the process-wide manager replaced by
    `install(fake)`."""
    monkeypatch.setenv("LM_PLAYGROUND_HOME", str(tmp_path))
    monkeypatch.delenv("LM_TEACHER_TOKEN", raising=False)
    installed = []

    def install(fake, **kwargs):
        manager = jobs.JobManager(tmp_path, train_fn=fake, **kwargs)
        jobs._managers[tmp_path.resolve()] = manager
        installed.append(fake)
        return manager

    yield tmp_path, install
    for fake in installed:
        fake.release.set()
    jobs._managers.pop(tmp_path.resolve(), None)


def open_train(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    at.switch_page(TRAIN_PAGE).run()
    assert not at.exception, at.exception
    return at


def start(at: AppTest, name: str, description: str = "") -> str:
    at.text_input(key="tr_name").input(name)
    at.text_input(key="tr_description").input(description)
    at.button(key="tr_start").click().run()
    assert not at.exception, at.exception
    return at.session_state["job"]


def texts(at: AppTest) -> list[str]:
    """Every Markdown body on the page: markdown, captions, alerts, metric labels, progress texts."""
    bodies = [e.value for kind in ("markdown", "caption", "error", "warning", "success", "info")
              for e in getattr(at, kind)]
    bodies += [m.label for m in at.metric] + [p.proto.text for p in at.get("progress")]
    return bodies


def buttons(at: AppTest) -> set[str]:
    return {b.key for b in at.button}


def wait_for(manager, job_id: str, test, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = manager.get(job_id)
        if test(record):
            return record
        time.sleep(0.02)
    raise AssertionError(manager.get(job_id))


def test_no_pages_folder_beside_app_py():
    """Streamlit treats a `pages/` folder beside app.py as a legacy multipage app until app.py has run once: a
    shared link opened as a server's first request then landed on Home. The pages live in views/."""
    assert not (ROOT / "pages").exists()
    assert TRAIN_PAGE.startswith("views/") and (ROOT / TRAIN_PAGE).is_file()


# -- the default run ----------------------------------------------------------------------------------------
def test_the_default_run_takes_20_to_40_seconds_and_the_page_says_so(home):
    at = open_train()
    s = at.session_state
    settings = TrainSettings(family=s["tr_family"], corpus=s["tr_corpus"], tokenizer=s["tr_tokenizer"],
                             preset=s["tr_preset"], steps=s["tr_steps"], minutes=s["tr_minutes"], name="x",
                             device="cpu")
    from lm.data.corpus import load_corpus

    size = CorpusSize.of(load_corpus(settings.corpus))
    seconds = estimate_seconds(resolve_settings(settings), size.train_chars, valid_chars=size.valid_chars)
    assert 20 <= seconds <= 40, seconds
    assert settings.minutes * 60 <= 40  # a busy server is stopped by the time limit, still inside 40 s
    [estimate] = [c.value for c in at.caption if "on an idle server" in c.value]
    assert f"About {seconds:.0f} s" in estimate and "GB" in estimate, estimate


def test_estimates_follow_size_steps_and_the_time_limit():
    def seconds(**kw) -> float:
        return estimate_time(resolve_settings(TrainSettings(name="x", device="cpu", **kw)), 1_000_000).seconds

    for family in ("lstm", "gru", "rnn", "transformer"):
        sizes = [seconds(family=family, preset=p, steps=100) for p in ("tiny", "small", "medium", "large")]
        assert sizes == sorted(sizes) and len(set(sizes)) == 4, (family, sizes)
    assert seconds(family="lstm", preset="small", steps=2000) > seconds(family="lstm", preset="small", steps=1000)
    capped = estimate_time(resolve_settings(TrainSettings(name="x", device="cpu", family="transformer",
                                                          preset="small", steps=3000, minutes=0.5)), 1_000_000)
    assert capped.limited_by == "minutes" and capped.train_seconds == 30 and capped.steps < 3000
    counted = estimate_time(resolve_settings(TrainSettings(name="x", family="ngram", preset="large")), 1_000_000)
    assert counted.limited_by == "counting" and counted.steps is None and counted.seconds > 0


# -- a run on screen ----------------------------------------------------------------------------------------
def test_live_status_follows_the_phase_in_bits_per_character(home, app_home):
    _, install = home
    manager = install(FakeTraining(app_home / "models" / "tiny-char-lstm"))
    at = open_train({"tr_corpus": "names"})
    job = start(at, "watch-me")
    wait_for(manager, job, lambda r: r["progress"]["step"] == 30)
    at.run()
    [progress] = [p.proto.text for p in at.get("progress")]
    assert progress.startswith("training · step 30 of 100"), progress  # not the setup's "tokenizing"
    assert not any("nats" in body for body in texts(at)), texts(at)
    values = {m.label: m.value for m in at.metric}
    assert values["Training batches"] == f"{2.5 / math.log(2):.3f}" and values["Held-out sample"] == "2.900"
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert figure["layout"]["yaxis"]["title"]["text"] == "bits per character"
    assert [round(y, 4) for y in figure["data"][0]["y"]] == [round(v / math.log(2), 4) for v in (2.9, 2.8, 2.5)]
    manager._stops[job].set()
    wait_for(manager, job, lambda r: r["status"] not in jobs.ACTIVE)
    at.run()
    table = at.dataframe[0].value
    row = table[table["Model"] == "watch-me"].iloc[0]
    assert row["Steps"] == "30" and row["Bits/char"] == "—" and row["Started by"] == "you", row.to_dict()


def test_a_job_error_echoing_input_is_shown_as_typed(home, app_home):
    _, install = home
    manager = install(FakeTraining(app_home / "models" / "tiny-char-lstm", fail=PAYLOAD))
    at = open_train({"tr_corpus": "names"})
    job = start(at, "fails", description="![t](http://127.0.0.1:9/y.png) :red[y]")
    wait_for(manager, job, lambda r: r["status"] == "failed")
    at.run()
    [error] = [e.value for e in at.error]
    [description] = [c.value for c in at.caption if ":red" in c.value]
    for body in (error, description):
        assert "\\!\\[t\\]" in body and "http\u2060" in body, body  # no image, no bare address made a link
        assert not re.search(r"(?<!\\)(:red\[|\$|\]\()", body), body


# -- owners, the teacher, delete ------------------------------------------------------------------------------
def test_only_the_owner_gets_the_controls_and_may_delete(home, app_home):
    user_home, install = home
    fake = FakeTraining(app_home / "models" / "tiny-char-lstm")
    manager = install(fake)
    owner = open_train({"tr_corpus": "names"})
    job = start(owner, "owned")
    other = open_train({"job": job})
    assert "tr_cancel" in buttons(owner) and "tr_cancel" not in buttons(other)
    assert any("Started by another student" in c.value for c in other.caption)
    with pytest.raises(LMError, match="another student"):
        manager.cancel(job, by=other.session_state["lm_owner_token"])
    fake.release.set()
    wait_for(manager, job, lambda r: r["status"] == "finished")
    owner.run()
    other.run()
    assert not {"tr_del_panel_model_owned", "tr_del_list_model_owned"} & buttons(other)
    owner.button(key="tr_del_panel_model_owned").click().run()
    owner.button(key="tr_yes_panel_model_owned").click().run()
    assert not owner.exception and not owner.error, [e.value for e in owner.error]
    assert not (user_home / "models" / "owned").exists()


def test_the_teacher_cancels_any_run_and_switches_training_off(home, app_home, monkeypatch):
    _, install = home
    monkeypatch.setenv("LM_TEACHER_TOKEN", "let-me-teach-0123456789")
    manager = install(FakeTraining(app_home / "models" / "tiny-char-lstm"))
    student = open_train({"tr_corpus": "names"})
    job = start(student, "student-run")
    teacher = open_train({"job": job})
    assert "tr_cancel" not in buttons(teacher)
    teacher.text_input(key="tr_teacher_token").input("wrong").run()
    teacher.button(key="tr_teacher_unlock").click().run()
    assert "tr_cancel" not in buttons(teacher) and teacher.error
    teacher.text_input(key="tr_teacher_token").input("let-me-teach-0123456789").run()
    teacher.button(key="tr_teacher_unlock").click().run()
    assert {"tr_cancel", f"tr_teacher_cancel_{job}", "tr_teacher_switch"} <= buttons(teacher)
    assert any(body.startswith("**Memory**") for body in texts(teacher)), texts(teacher)
    assert any(body.startswith("**Disk**") for body in texts(teacher))
    teacher.button(key=f"tr_teacher_cancel_{job}").click().run()
    assert wait_for(manager, job, lambda r: r["status"] not in jobs.ACTIVE)["status"] == "cancelled"
    teacher.button(key="tr_teacher_switch").click().run()
    assert manager.max_concurrent == 0
    student.text_input(key="tr_name").input("student-run-2")
    student.button(key="tr_start").click().run()
    assert any("switched off" in e.value for e in student.error), [e.value for e in student.error]
    teacher.button(key="tr_teacher_switch").click().run()
    assert manager.max_concurrent >= 1
