"""The text `lm` builds in the current language (lm/i18n.py, issue 16 item 3): a chart's title and axes, the
sentences the pages show, the LMError messages a page user can cause — Chinese under zh, today's English under
en; the language is per thread (a context variable) and never leaks between two at once; a Streamlit session's
language reaches lm through ui/i18n.py, also in a script thread where nothing set it (a fragment's rerun); a
page's cache of lm-built text keeps one entry per language, so the first session to fill it does not choose the
language of everyone after it; and the byte markers of a byte-level model are drawn apart in the GLTR colouring,
escaped.
"""

from __future__ import annotations

import ast
import json
import pickle
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lm import i18n, viz  # noqa: E402
from lm.errors import LMError  # noqa: E402
from lm.run.generate import GeneratedToken  # noqa: E402
from app_fixtures import app_home  # noqa: E402,F401  (session fixture: the tiny zoo)


def _chinese(text: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" for c in text)


def _vocab_chart():
    return viz.vocab_length_chart([(256, 90), (512, 60)], char_tokens=100)


def test_a_chart_reads_in_the_current_language():
    english = _vocab_chart()
    with i18n.using("zh"):
        chinese = _vocab_chart()
        heatmap = viz.attention_heatmap(np.eye(3), ["a", "b", "c"])
    assert english.layout.title.text == "Bigger vocabulary, shorter sequences"
    assert english.layout.xaxis.title.text == "BPE vocabulary size"
    assert english.layout.yaxis.title.text == "tokens for this text"
    for text in (chinese.layout.title.text, chinese.layout.xaxis.title.text, chinese.layout.yaxis.title.text,
                 chinese.layout.annotations[0].text, heatmap.layout.title.text, heatmap.layout.xaxis.title.text):
        assert _chinese(text), text
    assert "100" in chinese.layout.annotations[0].text  # the number goes into the translation's placeholder
    assert _vocab_chart().layout.title.text == english.layout.title.text  # after the block: English again
    assert "%{y}" in heatmap.data[0].hovertemplate and _chinese(heatmap.data[0].hovertemplate)  # Plotly's own


def test_sentences_for_the_pages_and_a_cached_inspection_follow_the_language():
    from lm.inspect import cut_note, unknown_note

    cut = (600, 128, True, True)
    assert cut_note(cut) == "The text has 600 tokens; only the first 128 are shown (its context length)."
    assert unknown_note(["é"], 1).startswith("1 character of this text never occurred")
    with i18n.using("zh"):
        assert _chinese(cut_note(cut)) and "600" in cut_note(cut) and "128" in cut_note(cut)
        note = unknown_note(["é", "ß"], 2)
        assert _chinese(note) and "é ß" in note  # the characters themselves are the user's, never translated


def test_two_threads_in_two_languages_do_not_leak():
    barrier = threading.Barrier(3)
    seen: dict[str, list[str]] = {}

    def work(lang: str | None) -> None:
        if lang is not None:
            i18n.set_language(lang)
        titles = []
        for _round in range(20):  # interleaved with the other threads, which set their own language
            barrier.wait()
            titles.append(_vocab_chart().layout.title.text)
        seen[str(lang)] = titles

    threads = [threading.Thread(target=work, args=(lang,)) for lang in ("zh", "en", None)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(seen["en"]) == {"Bigger vocabulary, shorter sequences"} == set(seen["None"])  # unset: English
    assert len(set(seen["zh"])) == 1 and _chinese(seen["zh"][0])
    assert i18n.language() == "en"  # this thread set nothing


def test_the_fallback_answers_where_nothing_set_the_language():
    previous = i18n.set_fallback(lambda: "zh")  # (ui/i18n.py's, when a page test imported it)
    try:
        assert i18n.language() == "zh" and _chinese(_vocab_chart().layout.title.text)
        with i18n.using("en"):  # a language set in the context wins
            assert i18n.language() == "en"
        i18n.set_fallback(lambda: "xx")  # not a language lm has: English
        assert i18n.language() == "en"
    finally:
        i18n.set_fallback(previous)


def test_an_upload_error_reads_in_the_language_of_whoever_shows_it(tmp_path):
    from lm.app.uploads import save_upload

    with pytest.raises(LMError) as info:
        save_upload("a short poem".encode(), "poem.txt", home=tmp_path)
    exc = info.value
    assert str(exc) == exc.args[0] == "the file has only 12 characters of text; upload at least 200"
    with i18n.using("zh"):
        shown = str(exc)
        again = str(pickle.loads(pickle.dumps(exc)))  # through a worker process: still its message and values
    assert _chinese(shown) and "12" in shown and again == shown
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_a_training_settings_error_reads_in_chinese_under_zh():
    from lm.train.settings import TrainSettings, resolve_settings

    with i18n.using("zh"):
        with pytest.raises(LMError) as info:
            resolve_settings(TrainSettings(family="transformer", preset="huge"))
        shown = str(info.value)
    assert _chinese(shown) and "'huge'" in shown and "small" in shown  # the value as typed, the choices
    assert str(info.value) == info.value.args[0]  # shown outside: English
    assert info.value.args[0].startswith("unknown preset 'huge' (choose from ")
    with pytest.raises(LMError, match=r"^dropout must be a number >= 0\.0 and < 1\.0, not 2$"):
        resolve_settings(TrainSettings(family="lstm", dropout=2))


def test_an_error_message_that_is_no_message_comes_back_as_it_is():
    exc = LMError("my {model} — name")  # braces but no fields: never formatted
    with i18n.using("zh"):
        assert str(exc) == "my {model} — name"
    bad = LMError("the file has only {chars} characters of text; upload at least 200", chars=3)
    with i18n.using("zh"):
        assert "3" in str(bad)


def test_lm_modules_that_translate_never_rebind_the_translation_function():
    """`for _ in ...` in a module that imports `_` from lm.i18n would turn `_("...")` into a call of a number."""
    bad = []
    for path in sorted((ROOT / "lm").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if not any(isinstance(n, ast.ImportFrom) and n.module == "lm.i18n" and any(a.name == "_" for a in n.names)
                   for n in ast.walk(tree)):
            continue
        bad += [f"{path.relative_to(ROOT)}:{n.lineno}" for n in ast.walk(tree)
                if isinstance(n, ast.Name) and n.id == "_" and isinstance(n.ctx, ast.Store)]
    assert bad == []


# -- byte markers in the GLTR colouring ---------------------------------------------------------------------
def _token(text: str, marks=()) -> GeneratedToken:
    return GeneratedToken(0, 0, 1, text, text, 0.5, 2, [], marks=tuple(marks))


def test_byte_markers_are_drawn_apart_and_escaped():
    from lm.viz.tokens import gltr_html, rank_bins

    token = _token("a<0xE5>b", [(1, 7)])
    html = gltr_html("", [token], rank_bins(300))
    marker = html.split("class='lm-byte'", 1)[1]
    assert "dashed" in marker.split(">", 1)[0] and "title='a byte that is not valid UTF-8 on its own'" in marker
    assert marker.split(">", 1)[1].startswith("&lt;0xE5&gt;</span>")  # escaped, never a tag
    assert html.count("lm-byte") == 1 and "<0xE5>" not in html
    typed = gltr_html("<0xE5>", [_token("<0xBF>")], rank_bins(300))  # text that only reads like a marker
    assert "lm-byte" not in typed and "&lt;0xBF&gt;" in typed
    with i18n.using("zh"):
        chinese = gltr_html("", [token], rank_bins(300))
    assert "lm-byte" in chinese and _chinese(chinese.split("class='lm-byte' title='", 1)[1].split("'", 1)[0])


def test_a_byte_marker_cut_by_the_compare_column_keeps_its_frame_on_what_is_left():
    from lm.viz.tokens import gltr_html

    cut = _token("ab<0xE5>", [(2, 8)])
    cut.text = cut.text[:5]  # Compare cuts a column's last token to its characters (lm.app.compare.until_chars)
    html = gltr_html("", [cut])
    assert "lm-byte" in html and html.split("class='lm-byte'", 1)[1].split(">", 1)[1].startswith("&lt;0x</span>")


# -- a Streamlit session's language reaches lm ---------------------------------------------------------------
def _session_script():
    import sys

    import streamlit as st

    sys.path.insert(0, st.session_state["root"])
    from lm.viz.charts import vocab_length_chart
    from ui.i18n import language_picker

    if st.session_state.get("use_picker", True):
        language_picker()  # what app.py does at the start of every run
    st.markdown(vocab_length_chart([(256, 90)]).layout.title.text)


def _session(lang: str, picker: bool = True):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_session_script, default_timeout=60)
    at.session_state["root"], at.session_state["use_picker"] = str(ROOT), picker
    if picker:
        at.query_params["lang"] = lang
    else:
        at.session_state["lang"] = lang  # the session's choice, with nothing setting lm's context variable
    return at


def test_two_sessions_read_lm_text_in_their_own_languages():
    chinese, english, quiet = _session("zh"), _session("en"), _session("en", picker=False)
    for _round in range(2):  # alternating runs of the sessions; the last one sets nothing itself
        for at in (chinese, english, chinese, quiet):
            at.run()
            assert not at.exception, at.exception
    assert _chinese(chinese.markdown[0].value)
    assert english.markdown[0].value == quiet.markdown[0].value == "Bigger vocabulary, shorter sequences"
    assert i18n.language() == "en"  # the test's own thread is untouched


def test_a_script_thread_nobody_set_the_language_in_asks_the_session():
    """A fragment's rerun may run in a fresh thread, where language_picker did not run."""
    at = _session("zh", picker=False)
    at.run()
    assert not at.exception, at.exception
    assert _chinese(at.markdown[0].value)


# -- errors a page user can cause, and the messages of a job record --------------------------------------------
def _bad_sampling():
    from lm.run.sampling import SamplingSettings

    SamplingSettings(temperature=20)


def _bad_race():
    from lm.app.races import parse_race_values

    parse_race_values("optimizer", "sgd, lion")


def _bad_upload():
    from lm.data.corpus import corpus_from_bytes

    corpus_from_bytes(b"caf\xe9 au lait", "menu.txt")


def _bad_name():
    from lm.store.registry import resolve

    resolve("No Such Model")


def _over_budget():
    from lm.train.budget import MemoryEstimate, check_memory

    check_memory(MemoryEstimate(10, 0, 3 * 2**30, 0), 2**30)


@pytest.mark.parametrize("cause,english,value", [
    (_bad_sampling, "temperature must be between 0 and 10 (0 = greedy), got 20.0", "20.0"),
    (_bad_race, "'lion' is not one of the optimizer choices: adamw, adam, sgd, nesterov, rmsprop, adagrad", "'lion'"),
    (_bad_upload, "'menu.txt' is not valid UTF-8 (byte 0xe9 at byte offset 3); save it as UTF-8 text", "0xe9"),
    (_bad_name, "invalid model name 'No Such Model': use 1-64 lowercase letters, digits, '.', '_' or '-', "
                "starting with a letter or digit", "'No Such Model'"),
    (_over_budget, "this run would need about 3.4 GB of memory, over the training budget of 1.0 GB "
                   "(LM_TRAIN_MEMORY_MB); most of it is activations (try a smaller batch size or context)", "3.4 GB"),
], ids=["sampling", "race", "upload", "name", "budget"])
def test_an_error_of_the_converted_modules_reads_in_chinese_and_stays_the_same_in_english(cause, english, value):
    with pytest.raises(LMError) as info:
        cause()
    assert str(info.value) == info.value.args[0] == english
    with i18n.using("zh"):
        shown = str(info.value)
    assert _chinese(shown) and value in shown, shown


def test_the_fixed_messages_of_a_job_record_are_in_the_catalog(tmp_path, monkeypatch):
    """The Train page shows a record's message through `_()`: it must be one of the catalog's messages."""
    from lm.app.jobs import JobManager
    from lm.train.settings import TrainSettings

    monkeypatch.setenv("LM_PLAYGROUND_HOME", str(tmp_path))
    gate = threading.Event()

    def train(settings, on_event):  # holds the one training slot until the test lets it go
        gate.wait(10)
        raise LMError("stopped by the test")

    manager = JobManager(tmp_path, max_concurrent=1, train_fn=train, memory_budget=None)
    first, second = (manager.submit(TrainSettings(family="ngram", corpus="names", name=name, order=2), queue=True)
                     for name in ("first-run", "second-run"))
    queued = manager.get(second)["message"]
    manager.cancel(second)
    cancelled = manager.get(second)["message"]
    gate.set()
    manager.wait(first, 10)
    zh = i18n.translations("zh")
    assert (queued, cancelled) == ("waiting for a free training slot", "cancelled before it started")
    assert _chinese(zh.gettext(queued)) and _chinese(zh.gettext(cancelled))


# -- a page's cache keeps one entry per language ---------------------------------------------------------------
def _chart_texts(at) -> list[list[str]]:
    """Each chart's title, axis titles and annotations (subplot titles, head labels), as the page sent them."""
    charts = []
    for chart in at.get("plotly_chart"):
        layout = json.loads(chart.proto.spec)["layout"]
        texts = [(layout.get("title") or {}).get("text")] + [a.get("text") for a in layout.get("annotations", [])]
        texts += [((layout.get(axis) or {}).get("title") or {}).get("text") for axis in ("xaxis", "yaxis")]
        charts.append([t for t in texts if t])
    return charts


def _page(file: str, query: dict[str, str], lang: str):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    for key, value in {**query, "lang": lang}.items():
        at.query_params[key] = value
    at.run()
    at.switch_page(file).run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("file,query,cached", [
    ("views/attention.py", {"att_model": "tiny-char-transformer"}, "Every head, "),  # heads_views: the grid
    ("views/rnn.py", {"rnn_model": "tiny-char-lstm"}, "share of steps"),  # saturation: its axis
], ids=["attention", "rnn"])
def test_a_cached_view_is_drawn_in_each_sessions_language(app_home, file, query, cached):
    """Sessions in two languages one after the other on one server: each gets the cached figures in its own."""
    chinese, english, chinese_again = (_page(file, query, lang) for lang in ("zh", "en", "zh"))
    zh, en = _chart_texts(chinese), _chart_texts(english)
    assert zh and len(zh) == len(en)
    assert all(any(_chinese(t) for t in texts) for texts in zh), zh
    assert not any(_chinese(t) for texts in en for t in texts), en
    assert any(t.startswith(cached) for texts in en for t in texts), en
    assert _chart_texts(chinese_again) == zh  # its own entry, found again


def _first_text_script():
    import sys

    import streamlit as st

    sys.path.insert(0, st.session_state["root"])
    from ui.i18n import language_picker
    from ui.texts import first_text

    language_picker()
    st.markdown(first_text("tiny-char-transformer", {"names": "anna\nhannah\nmaria\n" * 8}, "names")[1])


def test_the_first_text_note_is_in_each_sessions_language(app_home):
    from streamlit.testing.v1 import AppTest

    notes = {}
    for lang in ("zh", "en"):
        at = AppTest.from_function(_first_text_script, default_timeout=120)
        at.session_state["root"] = str(ROOT)
        at.query_params["lang"] = lang
        at.run()
        assert not at.exception, at.exception
        notes[lang] = at.markdown[0].value
    assert _chinese(notes["zh"]) and "32" in notes["zh"]  # the model's context, in the translation
    assert notes["en"] == "The sample text is cut at a line or word break to fit this model's context of 32 tokens."
