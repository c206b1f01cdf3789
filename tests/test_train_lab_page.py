"""The training lab on the Train page (AppTest, real training in the manager's threads on the names corpus):
every knob reaches the run, a race of SGD against Adam with both curves and both sample timelines, pause and
step, fine-tuning a model on pasted text with its before/after, and a pasted character the base never saw.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app_fixtures import app_home  # noqa: E402,F401
from app_server import app_pages  # noqa: E402
from lm.app import jobs  # noqa: E402
from lm.app.races import race_records  # noqa: E402
from lm.train.loop import train  # noqa: E402
from lm.train.settings import PRESETS  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

TRAIN_PAGE = next(file for file, _, url in app_pages() if url == "train")
TINY = {"tr_corpus": "names", "tr_family": "lstm", "tr_preset": "tiny", "tr_minutes": "2"}
# The tiny LSTM knows only the names corpus's characters (lowercase letters and line breaks): one word a line.
POEMS = ("the moon is bright above the hill the river runs so cold and still " * 6
         + "a bird will sing when night is done and wake the field to meet the sun " * 6).replace(" ", "\n")


@pytest.fixture
def lab(app_home, tmp_path, monkeypatch):
    """A home of its own holding a copy of the tiny LSTM, and a manager that trains in its own threads."""
    monkeypatch.setenv("LM_PLAYGROUND_HOME", str(tmp_path))
    monkeypatch.delenv("LM_TEACHER_TOKEN", raising=False)
    shutil.copytree(app_home / "models" / "tiny-char-lstm", tmp_path / "models" / "tiny-char-lstm")
    manager = jobs.JobManager(tmp_path, train_fn=train, max_concurrent=1)
    jobs._managers[tmp_path.resolve()] = manager
    yield tmp_path, manager
    for record in manager.active():
        manager.cancel(record["id"])
    for record in manager.list():
        manager.wait(record["id"], timeout=30)
    jobs._managers.pop(tmp_path.resolve(), None)


def open_train(query: dict) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    at.switch_page(TRAIN_PAGE).run()
    assert not at.exception, at.exception
    return at


def wait_until(test, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = test()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def test_every_knob_set_on_the_page_reaches_the_run_and_unset_ones_stay_defaults(lab):
    home, manager = lab
    at = open_train({**TINY, "tr_steps": "30", "tr_k_lr": "0.02", "tr_k_optimizer": "sgd", "tr_k_eval_every": "10",
                     "tr_k_sample_tokens": "12"})
    assert at.number_input(key="tr_k_lr").value == 0.02 and at.selectbox(key="tr_k_optimizer").value == "sgd"
    assert at.number_input(key="tr_k_width").value is None  # unset: the preset's value, shown as a placeholder
    width = PRESETS["rnn"]["tiny"]["width"]
    assert f"default: {width}" == at.number_input(key="tr_k_width").proto.placeholder
    at.number_input(key="tr_k_seed").set_value(7)
    at.checkbox(key="tr_k_full_batch").check()
    at.text_input(key="tr_name").input("knobs-run")
    at.button(key="tr_start").click().run()
    assert not at.exception and not errors(at), errors(at)
    settings = manager.get(at.session_state["job"])["settings"]
    assert (settings["lr"], settings["optimizer"], settings["seed"], settings["batch_size"]) == (0.02, "sgd", 7, "full")
    assert settings["eval_every"] == 10 and settings["sample_tokens"] == 12
    assert settings["width"] is None and settings["momentum"] is None  # left to the preset / the optimizer
    assert at.query_params["tr_k_lr"] == "0.02" and "tr_k_width" not in at.query_params


def test_a_knob_the_new_family_lacks_is_not_sent(lab):
    home, manager = lab
    at = open_train({**TINY, "tr_steps": "5", "tr_k_embed": "24"})
    at.selectbox(key="tr_family").set_value("transformer").run()
    assert "tr_k_embed" not in {n.key for n in at.number_input}  # a Transformer has no embedding-size knob
    at.text_input(key="tr_name").input("switched-family")
    at.button(key="tr_start").click().run()
    assert not errors(at), errors(at)
    assert manager.get(at.session_state["job"])["settings"]["embed"] is None


def test_race_sgd_against_adam_overlays_both_curves_and_both_timelines(lab):
    home, manager = lab
    at = open_train({**TINY, "tr_mode": "Race", "tr_steps": "40", "tr_k_eval_every": "20", "tr_k_sample_tokens": "10"})
    assert at.text_input(key="tr_race_values").value == "sgd, adam"  # the lesson, ready to press
    at.text_input(key="tr_name").input("opt-race")
    at.button(key="tr_start").click().run()
    assert not at.exception and not errors(at), errors(at)
    race_id = at.session_state["race"]
    records = race_records(manager, race_id)
    assert [r["settings"]["optimizer"] for r in records] == ["sgd", "adam"]
    wait_until(lambda: all(r["status"] == "finished" for r in race_records(manager, race_id)), 180)
    at.run()
    assert not at.exception
    chart = at.get("plotly_chart")
    figures = [c for c in chart if '"optimizer = sgd"' in c.proto.spec and '"optimizer = adam"' in c.proto.spec]
    assert figures, "the race chart names both runs"
    steps_spec = figures[0].proto.spec
    at.radio(key="tr_race_axis").set_value("tokens").run()
    tokens_spec = next(c.proto.spec for c in at.get("plotly_chart") if '"optimizer = sgd"' in c.proto.spec)
    assert tokens_spec != steps_spec and "tokens seen" in tokens_spec
    timelines = [h.proto.body for h in at.get("html") if "lm-sample" in h.proto.body]
    assert len(timelines) == 2 and all("step 40" in t and "step 20" in t for t in timelines)
    assert at.query_params["race"] == race_id


def test_pause_holds_the_run_and_step_runs_it_to_the_next_evaluation(lab):
    home, manager = lab
    at = open_train({**TINY, "tr_steps": "100000", "tr_k_eval_every": "25", "tr_k_sample_tokens": "0"})
    at.text_input(key="tr_name").input("paused-run")
    at.button(key="tr_start").click().run()
    job_id = at.session_state["job"]
    wait_until(lambda: manager.get(job_id)["progress"].get("phase") == "train")
    at.run()  # the panel as a student sees it once the run trains (before, Pause is disabled)
    at.button(key="tr_pause").click().run()
    record = wait_until(lambda: manager.get(job_id) if manager.get(job_id)["paused"] else None)
    held = record["progress"]["step"]
    time.sleep(1.0)
    assert manager.get(job_id)["progress"]["step"] <= held + 1  # held between two steps
    at.run()
    assert "Go on" in {b.label for b in at.button}
    evaluations = len(manager.get(job_id)["history"]["valid"])
    at.button(key="tr_step").click().run()
    wait_until(lambda: len(manager.get(job_id)["history"]["valid"]) > evaluations and manager.get(job_id)["paused"])
    step = manager.get(job_id)["progress"]["step"]
    assert step % 25 == 0 and step > held
    at.run()
    at.button(key="tr_cancel").click().run()
    wait_until(lambda: manager.get(job_id)["status"] == "cancelled")


def test_fine_tune_on_pasted_poems_shows_what_it_gained_and_forgot(lab):
    home, manager = lab
    at = open_train({"tr_mode": "Fine-tune", "tr_source": "Paste text", "tr_base": "tiny-char-lstm", "tr_steps": "60",
                     "tr_minutes": "2", "tr_k_test_every": "0"})
    assert "tr_family" not in {s.key for s in at.selectbox}  # the base's family, tokenizer and shape
    at.text_area(key="tr_paste").input(POEMS)
    at.text_input(key="tr_name").input("tuned-poems")
    at.button(key="tr_start").click().run()
    assert not at.exception and not errors(at), errors(at)
    job_id = at.session_state["job"]
    assert manager.get(job_id)["settings"]["init_from"] == "tiny-char-lstm"
    wait_until(lambda: manager.get(job_id)["status"] == "finished", 180)
    at.run()
    report = manager.get(job_id)["result"]["adaptation"]
    assert report["new_text"]["after"] < report["new_text"]["before"]  # it learned the poems
    assert "tr_adapt_chart" in {c.key for c in at.get("plotly_chart") if hasattr(c, "key")} or \
        any("before fine-tuning" in c.proto.spec for c in at.get("plotly_chart"))
    assert any("improved by" in c.value for c in at.caption)
    assert list((home / "corpora").glob("pasted-*.txt"))  # the pasted text was kept like an upload


def test_a_pasted_character_the_base_never_saw_is_refused_and_nothing_is_written(lab):
    home, manager = lab
    at = open_train({"tr_mode": "Fine-tune", "tr_source": "Paste text", "tr_base": "tiny-char-lstm"})
    at.text_area(key="tr_paste").input("床前明月光，疑是地上霜。" * 30)
    at.text_input(key="tr_name").input("tuned-chinese")
    at.button(key="tr_start").click().run()
    assert any("床" in e for e in errors(at)), errors(at)
    assert not manager.list() and not (home / "corpora").exists()


def test_a_chinese_teacher_trains_a_byte_level_model_on_pasted_chinese_and_it_writes_no_broken_characters(lab):
    import re

    import torch

    from lm.run.generate import collect, generate
    from lm.run.sampling import SamplingSettings
    from lm.store.registry import load_model

    home, manager = lab
    catalog = (ROOT / "locale" / "zh_CN" / "LC_MESSAGES" / "lm_playground.po").read_text(encoding="utf-8")
    text = "\n".join(re.findall(r'^msgstr "(.+)"$', catalog, flags=re.M))
    assert sum("\u4e00" <= c <= "\u9fff" for c in text) > 3000
    at = open_train({"lang": "zh", "tr_source": "Paste text", "tr_family": "transformer", "tr_preset": "tiny",
                     "tr_tokenizer": "bpe", "tr_vocab": "300", "tr_steps": "60", "tr_minutes": "2",
                     "tr_k_sample_tokens": "0"})
    at.text_area(key="tr_paste").input(text)
    at.text_input(key="tr_name").input("zh-bytes")
    at.button(key="tr_start").click().run()
    assert not at.exception and not errors(at), errors(at)
    job_id = at.session_state["job"]
    assert wait_until(lambda: manager.get(job_id)["status"] in ("finished", "failed"), 240) and \
        manager.get(job_id)["status"] == "finished", manager.get(job_id)["error"]
    loaded = load_model("zh-bytes")
    settings = SamplingSettings(max_new_tokens=300, samples=3)  # the app's defaults: valid UTF-8 on
    out = collect(generate(loaded.model, loaded.tokenizer, "床前明月光，", settings, torch.Generator().manual_seed(1)),
                  samples=3)
    written = "".join(out.texts)
    assert len(written) > 100 and "\ufffd" not in written and not re.search(r"<0x[0-9A-F]{2}>", written)
    assert sum("\u4e00" <= c <= "\u9fff" for c in written) > 50  # it writes Chinese


@pytest.mark.parametrize("mode", ["One model", "Race", "Fine-tune"])
def test_every_mode_reads_in_chinese(lab, mode):
    at = open_train({"lang": "zh", "tr_mode": mode, "tr_base": "tiny-char-lstm", "tr_corpus": "names"})
    start = at.button(key="tr_start").label
    assert any("\u4e00" <= c <= "\u9fff" for c in start), start
    labels = [e.label for e in at.expander] + [n.label for n in at.number_input]
    assert all(any("\u4e00" <= c <= "\u9fff" for c in label) for label in labels), labels
