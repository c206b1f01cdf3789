"""AppTest checks of the Home, Playground, Compare and Train pages, run through app.py's navigation.

The pages run against the tiny checkpoints of `app_fixtures` (names corpus): they must render without an
exception, react to their widgets, produce the expected Plotly figures and honour the URL query string.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the pages import `ui` and `lm` from the repository root
    sys.path.insert(0, str(ROOT))

from app_fixtures import TINY_CHAR_TRIO, TINY_MODELS, app_home  # noqa: E402,F401
from lm.store.registry import list_models  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

TIMEOUT = 60  # the first run imports torch


def page(name: str, query: dict | None = None) -> AppTest:
    """app.py, switched to views/<name>.py (query parameters set before the first run)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    if name != "home":
        at.switch_page(f"views/{name}.py").run()
        assert not at.exception, at.exception
    return at


def figures(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def html_blocks(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if "class='gltr'" in m.value]


# -- home -------------------------------------------------------------------------------------------------
def test_home_shows_the_zoo_and_the_tour(app_home):
    at = page("home")
    table = at.dataframe[0].value
    assert set(TINY_CHAR_TRIO) <= set(table["Model"])
    assert {"Kind", "Tokens", "Corpus", "Parameters", "Bits/char"} <= set(table.columns)
    tiny = table[table["Model"].isin(TINY_CHAR_TRIO)]
    assert all(float(v) > 0 for v in tiny["Bits/char"]) and all(v != "—" for v in tiny["Parameters"])
    assert at.title[0].value.endswith("LM Playground")


# -- playground -------------------------------------------------------------------------------------------
def test_playground_generates_gltr_coloured_text(app_home):
    at = page("playground", {"model": "tiny-char-ngram"})
    assert at.selectbox(key="model").value == "tiny-char-ngram"
    at.text_area(key="prompt").input("em")
    at.slider(key="temperature").set_value(0.5)
    at.slider(key="max_new_tokens").set_value(40)
    at.button(key="generate").click().run()
    assert not at.exception and not at.error
    blocks = html_blocks(at)
    assert len(blocks) == 1
    assert "title='rank " in blocks[0] and "background:#" in blocks[0]  # GLTR colours and hover details
    assert at.query_params["temperature"] == "0.5" and at.query_params["prompt"] == "em"
    assert len(at.get("download_button")) == 2
    assert any("tokens in" in c.value for c in at.caption)
    # the result survives an unrelated rerun (e.g. moving a slider)
    at.slider(key="top_p").set_value(0.5).run()
    assert html_blocks(at) == blocks


def test_playground_same_seed_same_text_and_samples(app_home):
    texts = []
    for _ in range(2):
        at = page("playground", {"model": "tiny-char-lstm", "seed": "7", "samples": "3", "max_new_tokens": "30"})
        at.button(key="generate").click().run()
        texts.append(html_blocks(at))
    assert len(texts[0]) == 3 and texts[0] == texts[1]


def test_playground_step_mode_shows_each_knob(app_home):
    at = page("playground", {"model": "tiny-char-transformer", "prompt": "ma"})
    at.toggle(key="step_mode").set_value(True).run()
    at.slider(key="top_k").set_value(5).run()
    assert not at.exception
    (fig,) = figures(at)
    titles = [a["text"] for a in fig["layout"]["annotations"]]
    assert any(t.startswith("the model's distribution") for t in titles)
    assert any(t.startswith("after temperature") for t in titles)
    assert any("after top-k (k = 5) — 5 tokens left" in t for t in titles)
    colours = fig["data"][2]["marker"]["color"]  # the top-k row: cut tokens are grey
    assert "#D3D3D3" in colours and colours.count("#D3D3D3") == len(colours) - 5
    at.button(key="pg_step").click().run()
    assert not at.exception
    assert len(at.text_area(key="prompt").value) == 3 and at.text_area(key="prompt").value.startswith("ma")


def test_playground_warns_about_unknown_characters(app_home):
    at = page("playground", {"model": "tiny-char-ngram", "prompt": "Zoë"})
    assert not at.exception
    warning = " ".join(w.value for w in at.warning)
    assert "'Z'" in warning and "'ë'" in warning


def test_playground_survives_a_bad_link(app_home):
    at = page("playground", {"model": "no-such-model", "temperature": "hot", "top_k": "-5", "samples": "99"})
    assert not at.exception and not at.error
    assert at.selectbox(key="model").value in {m.name for m in list_models()}
    assert at.slider(key="temperature").value == 0.8
    assert at.slider(key="top_k").value == 0
    assert at.number_input(key="samples").value == 8


def test_gltr_html_escapes_model_text():
    from types import SimpleNamespace

    from ui.widgets import gltr_html

    token = SimpleNamespace(text="<script>alert(1)</script>\n\n$x$", rank=5, prob=0.5,
                            top=[("<b>", 0.5), ("'\"", 0.2)])
    html = gltr_html("<i>prompt</i>", [token])
    assert "<script>" not in html and "<i>" not in html and "<b>" not in html
    assert "&lt;script&gt;" in html and "\n" not in html and "$" not in html


# -- compare ----------------------------------------------------------------------------------------------
def test_compare_defaults_to_a_trio_of_one_tokenizer(app_home, tmp_path, monkeypatch):
    """Only the fixture's models (no zoo, nothing another test trained): the char trio; the BPE n-gram has no
    family mates of its tokenizer."""
    import shutil

    import lm.store.registry

    for name in TINY_MODELS:
        shutil.copytree(app_home / "models" / name, tmp_path / "models" / name)
    monkeypatch.setenv("LM_PLAYGROUND_HOME", str(tmp_path))
    monkeypatch.setattr(lm.store.registry, "ASSETS_DIR", tmp_path / "no-zoo")
    at = page("compare", {"cmp_text": " "})  # no surprisal chart: nothing needs loading
    assert not at.exception and not at.error
    assert at.multiselect(key="models").value == ["tiny-char-ngram", "tiny-char-lstm", "tiny-char-transformer"]


def test_compare_defaults_to_the_zoos_char_shakespeare_trio(app_home):
    at = page("compare", {"cmp_text": " "})
    infos = {m.name: m for m in list_models()}
    lineup = [infos[name] for name in at.multiselect(key="models").value]
    assert [m.variant for m in lineup] == ["ngram", "lstm", "transformer"]
    assert {(m.source, m.corpus, m.tokenizer) for m in lineup} == {("zoo", "shakespeare", "char")}
    ngrams = [m for m in infos.values()
              if (m.family, m.source, m.corpus, m.tokenizer) == ("ngram", "zoo", "shakespeare", "char")]
    assert len(ngrams) > 1 and lineup[0].valid_bits_per_char == min(m.valid_bits_per_char for m in ngrams)  # best


def test_compare_runs_models_side_by_side_and_cross_scores(app_home):
    at = page("compare", {"max_new_tokens": "60", "models": ",".join(TINY_CHAR_TRIO)})
    at.button(key="compare").click().run()
    assert not at.exception and not at.error
    assert len(html_blocks(at)) == 3
    labels = [m.label for m in at.metric]
    assert labels.count("Tokens/s") == 3 and labels.count("Distinct-2") == 3
    assert sum("copied from the training text" in (p.proto.text or "") for p in at.get("progress")) == 3
    heat, surprisal = figures(at)
    assert heat["data"][0]["type"] == "heatmap" and len(heat["data"][0]["z"]) == 3
    assert all(v is not None and v > 0 for row in heat["data"][0]["z"] for v in row)
    assert [t["name"] for t in surprisal["data"]] == list(TINY_CHAR_TRIO)
    assert at.query_params["models"] == ",".join(TINY_CHAR_TRIO)


def test_compare_respects_the_url_and_aligns_tokenizers(app_home):
    at = page("compare", {"models": "tiny-char-ngram,tiny-bpe-ngram", "cmp_text": "emma\noliver"})
    assert at.multiselect(key="models").value == ["tiny-char-ngram", "tiny-bpe-ngram"]
    (surprisal,) = figures(at)  # nothing generated yet: only the surprisal chart
    xs = [trace["x"] for trace in surprisal["data"]]
    assert xs[0] == xs[1] == list(range(len("emma\noliver")))  # char and BPE on one character axis


def test_compare_needs_two_models(app_home):
    at = page("compare", {"models": "tiny-char-ngram"})
    assert not at.exception
    assert any("2 to 4" in w.value for w in at.warning)


# -- train ------------------------------------------------------------------------------------------------
def test_train_page_trains_a_tiny_model_and_lists_it(app_home):
    from lm.app.jobs import get_manager

    at = page("train", {"tr_family": "lstm", "tr_corpus": "names", "tr_steps": "20"})
    assert at.selectbox(key="tr_family").value == "lstm" and at.number_input(key="tr_steps").value == 20
    at.text_input(key="tr_name").input("apptest-lstm")
    at.button(key="tr_start").click().run()
    assert not at.exception and not at.error
    job = at.session_state["job"]
    record = get_manager().wait(job, timeout=180)
    assert record["status"] == "finished", record
    at.run()
    assert not at.exception
    assert any("apptest-lstm" in s.value for s in at.success)
    assert figures(at)[0]["data"][0]["name"] == "training loss"
    assert "apptest-lstm" in {m.name for m in list_models()}
    assert at.query_params["job"] == job
    # the same name again is refused with one line
    at.button(key="tr_start").click().run()
    assert any("already exists" in e.value for e in at.error)


def test_train_page_keeps_showing_a_run_it_picked_after_the_run_ends(app_home):
    """A fresh visit shows the run in progress; when that run ends it stays on screen (it used to vanish,
    as the page only picks live or interrupted runs by itself)."""
    from lm.app.jobs import get_manager

    starter = page("train", {"tr_family": "lstm", "tr_corpus": "names", "tr_steps": "100000", "tr_minutes": "5"})
    starter.text_input(key="tr_name").input("apptest-sticky")
    starter.button(key="tr_start").click().run()
    job = starter.session_state["job"]
    try:
        viewer = page("train")  # another session, no job in its URL
        headings = [m.value for m in viewer.markdown if "apptest-sticky — " in m.value]
        assert headings and headings[0].endswith(("queued", "running")), headings
    finally:
        get_manager().cancel(job)
    assert get_manager().wait(job, timeout=120)["status"] == "cancelled"
    viewer.run()
    assert not viewer.exception
    assert any(m.value.endswith("apptest-sticky — cancelled") for m in viewer.markdown)
    assert viewer.query_params["job"] == job


def test_train_page_rejects_a_missing_upload(app_home):
    at = page("train", {"tr_source": "Upload a .txt"})
    at.button(key="tr_start").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == ["choose a .txt file to upload first"]
