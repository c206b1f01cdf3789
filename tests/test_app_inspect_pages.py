"""The "look inside" pages (attention, RNN, n-gram, tokenizers) run headless with AppTest on the tiny zoo.

Each test renders a page, checks the figures it draws (from the Plotly JSON the page sends), moves the key
widgets and checks that the views and the URL follow.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import lm.data.tokenizer  # noqa: F401
from app_fixtures import app_home  # noqa: F401  (session fixture: tiny checkpoints in LM_PLAYGROUND_HOME)

streamlit_testing = pytest.importorskip("streamlit.testing.v1")
from ui.loaders import cached_model  # noqa: E402  (the same cache the pages use)
PAGES = Path(__file__).resolve().parent.parent / "views"


def page(name: str, **query) -> "streamlit_testing.AppTest":
    at = streamlit_testing.AppTest.from_file(str(PAGES / name), default_timeout=90)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def figures(at) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def trace_types(fig: dict) -> list[str]:
    return [trace["type"] for trace in fig["data"]]


def title(fig: dict) -> str:
    return fig["layout"].get("title", {}).get("text", "")


def ok(at) -> None:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def test_attention_page(app_home):
    at = page("attention.py", att_model="tiny-char-transformer")  # explicit: the shipped zoo may rank first
    ok(at)
    head, grid, summary = figures(at)
    assert trace_types(head) == ["heatmap"] and title(head) == "Layer 0, head 0"
    assert trace_types(grid) == ["heatmap"] * 4  # 2 layers x 2 heads
    assert trace_types(summary) == ["heatmap", "heatmap"]
    assert "lm-tokens" in at.markdown[0].value  # the attention painted on the text
    at.selectbox(key="att_layer").set_value(1).run()
    at.selectbox(key="att_head").set_value(1).run()
    at.select_slider(key="att_token").set_value(2).run()
    ok(at)
    assert title(figures(at)[0]) == "Layer 1, head 1"
    assert at.subheader[0].value.startswith("Where token 2 ")
    assert at.query_params["att_layer"] == "1" and at.query_params["att_token"] == "2"
    at.text_area(key="att_text").input("   ").run()
    assert not at.exception and "type some text" in at.error[0].value  # bad input: one line, no traceback


def test_rnn_page(app_home):
    at = page("rnn.py", rnn_model="tiny-char-lstm")
    ok(at)
    heat, line, saturation = figures(at)
    assert trace_types(heat) == ["heatmap"] and title(heat).startswith("cell state (c), layer 0")
    assert trace_types(line) == ["scatter"]
    assert trace_types(saturation) == ["histogram"] * 6  # input, forget, output: above 0.9 and below 0.1
    at.slider(key="rnn_unit").set_value(5).run()
    ok(at)
    assert title(figures(at)[1]) == "Unit 5 of the cell state (c)"
    assert at.query_params["rnn_unit"] == "5"
    at.selectbox(key="rnn_state").set_value("forget").run()
    ok(at)
    assert title(figures(at)[0]).startswith("forget gate (f)")
    jump = at.selectbox(key="rnn_jump")
    assert jump.options and all("unit" in option for option in jump.options)
    target = int(jump.options[0].split("unit ")[1].split(" ")[0])
    jump.select_index(0).run()
    ok(at)
    assert at.slider(key="rnn_unit").value == target


def test_ngram_page(app_home):
    at = page("ngram.py", ng_model="tiny-char-ngram")
    ok(at)
    bars, orders = figures(at)
    assert trace_types(bars) == ["bar"] * 4  # MLE, add-k, Kneser-Ney, stupid back-off
    assert {t["name"] for t in orders["data"] if t["mode"] == "lines+markers"} >= {"MLE (no smoothing)", "add-k",
                                                                                  "Kneser-Ney"}
    assert len(at.dataframe) == 2  # the counts and the back-off path
    at.slider(key="ng_order").set_value(2).run()
    ok(at)
    assert at.query_params["ng_order"] == "2"
    assert len(at.dataframe[1].value) == 2  # one back-off row per order
    at.selectbox(key="ng_smoothing").set_value("mle").run()
    target = cached_model("tiny-char-ngram").tokenizer.encode("a")[0]
    at.selectbox(key="ng_target").set_value(target).run()  # values are token ids (labels show p)
    ok(at)
    assert at.session_state["ng_target"] == target
    assert at.dataframe[1].value["c(context, next)"].iloc[0] > 0  # 'a' did follow the context in training


def test_ngram_page_bpe_model(app_home):
    at = page("ngram.py", ng_model="tiny-bpe-ngram", ng_context="mari")
    ok(at)
    assert at.slider(key="ng_order").value == 3
    assert len(figures(at)) == 2


def test_tokenizers_page(app_home):
    at = page("tokens.py", tok_corpus="names", tok_vocab="512", tok_text="<script>x</script> anna",
              tok_models="tiny-char-lstm,tiny-bpe-ngram")
    ok(at)
    boundaries = [m.value for m in at.markdown if "lm-tokens" in m.value]
    assert len(boundaries) == 4  # two models' tokenizers + characters and BPE of the corpus
    assert all("<script" not in b for b in boundaries) and "&lt;" in boundaries[1]  # BPE: escaped, never run
    assert any("unknown" in c.value and "'<'" in c.value for c in at.caption)  # names has no '<' character
    (ladder,) = figures(at)
    assert ladder["data"][0]["x"] == [256, 512, 1024, 2048, 4096]
    at.select_slider(key="tok_vocab").set_value(1024).run()
    at.toggle(key="tok_train").set_value(False).run()
    ok(at)
    assert not figures(at) and at.query_params["tok_train"] == "False"


@pytest.mark.parametrize("name, query", [
    ("attention.py", {"att_model": "no-such-model", "att_layer": "x", "att_head": "99", "att_token": "-4"}),
    ("rnn.py", {"rnn_model": "../etc", "rnn_layer": "7", "rnn_state": "bogus", "rnn_unit": "99999"}),
    ("ngram.py", {"ng_model": "tiny-char-ngram", "ng_order": "99", "ng_smoothing": "magic", "ng_context": ""}),
    ("tokens.py", {"tok_vocab": "777", "tok_models": "nope,tiny-char-lstm", "tok_corpus": "klingon",
                       "tok_train": "false"}),
])
def test_pages_survive_a_bad_link(app_home, name, query):
    at = page(name, **query)
    assert not at.exception, at.exception
    if name == "ngram.py":
        assert at.slider(key="ng_order").value == 4 and at.selectbox(key="ng_smoothing").value == "kneser_ney"
        assert "Type a context" in at.error[0].value
    if name == "rnn.py":
        unit = at.slider(key="rnn_unit")
        assert unit.value == unit.max  # clamped to the last unit
        assert at.selectbox(key="rnn_state").value in ("cell", "hidden")  # the default state
    if name == "tokens.py":
        assert at.multiselect(key="tok_models").value == ["tiny-char-lstm"] and not figures(at)


def test_rnn_page_gru_and_elman(tmp_path, monkeypatch, char_tokenizer):
    import torch

    from lm.store.checkpoint import save_checkpoint
    from lm.models.rnn import RNNConfig, RNNModel

    for cell in ("gru", "rnn"):
        model = RNNModel(RNNConfig(vocab_size=char_tokenizer.vocab_size, cell=cell, n_layers=2, d_embed=8, d_hidden=16),
                         generator=torch.Generator().manual_seed(0))
        save_checkpoint(tmp_path / "models" / f"page-test-{cell}", model, char_tokenizer, {"corpus": {"name": "names"}})
    monkeypatch.setenv("LM_PLAYGROUND_HOME", str(tmp_path))
    at = page("rnn.py", rnn_model="page-test-gru", rnn_layer="1")
    ok(at)
    assert at.selectbox(key="rnn_state").options == ["reset gate (r)", "update gate (z)", "candidate (n)",
                                                     "hidden state (h)"]
    heat, _, saturation = figures(at)
    assert title(heat).startswith("hidden state (h), layer 1")
    assert trace_types(saturation) == ["histogram"] * 4  # reset and update gates
    at = page("rnn.py", rnn_model="page-test-rnn")
    ok(at)
    assert len(figures(at)) == 2  # an Elman RNN has no gates to saturate
