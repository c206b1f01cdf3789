"""The "Why this token?" page headless with AppTest on the tiny zoo: attribution side by side for an n-gram, an
LSTM and a Transformer, the position slider, ablations with their continuation, the lens, the steps, the
embeddings, escaping, and bad links."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app_fixtures import TINY_CHAR_TRIO, app_home  # noqa: F401  (session fixture: tiny checkpoints)

streamlit_testing = pytest.importorskip("streamlit.testing.v1")
PAGE = Path(__file__).resolve().parent.parent / "views" / "explain.py"
TEXT = "emma\nolivia\nava\nmia\n"
TRIO = ",".join(TINY_CHAR_TRIO)


def page(**query) -> "streamlit_testing.AppTest":
    at = streamlit_testing.AppTest.from_file(str(PAGE), default_timeout=120)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def ok(at) -> None:
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def figures(at) -> dict[str, dict]:
    return {chart.key: json.loads(chart.proto.spec) for chart in at.get("plotly_chart")}


def painted(at) -> list[str]:
    return [m.value for m in at.markdown if "lm-tokens" in m.value]


def test_three_families_side_by_side_and_the_slider(app_home):
    at = page(xp_models=TRIO, xp_text=TEXT)
    ok(at)
    T = len(TEXT)  # character models: one token per character
    assert at.select_slider(key="xp_pos").value == T - 1  # the last token by default
    texts = painted(at)
    assert len(texts) == 3 + 2 + 2  # occlusion x 3, gradients x 2 (neural), two continuations
    assert any("An order-4 model reads only the last 3 tokens" in c.value for c in at.caption)
    assert sum("Completeness" in c.value for c in at.caption) == 2
    figs = figures(at)
    assert {"xp_change", "xp_lens_tiny-char-transformer", "xp_step_scores", "xp_embed_tiny-char-lstm",
            "xp_embed_tiny-char-transformer"} <= set(figs)
    assert len([k for k in figs if k.startswith("xp_step_")]) == 7
    bars = figs["xp_bars_tiny-char-lstm"]["data"]
    assert [b["name"] for b in bars] == ["occlusion", "integrated gradients"] and len(bars[0]["x"]) == 19
    assert [b["name"] for b in figs["xp_bars_tiny-char-ngram"]["data"]] == ["occlusion"]
    lens = figs["xp_lens_tiny-char-transformer"]["data"][0]
    assert lens["y"] == ["embeddings", "layer 0", "layer 1"]
    at.select_slider(key="xp_pos").set_value(6).run()
    ok(at)
    assert at.query_params["xp_pos"] == "6"
    assert any("token 6 (l)" in c.value for c in at.caption)  # "emma\nol": the explained token is 'l'
    ngram_row = painted(at)[0]
    assert ngram_row.count("outline:2px") == 1 and 'title="token 2: +0.000 nats"' in ngram_row  # beyond 3 back


def test_switching_heads_off_changes_the_prediction_and_the_url(app_home):
    at = page(xp_models=TRIO, xp_text=TEXT, xp_off="tiny-char-transformer")
    ok(at)
    change = figures(at)["xp_change"]["data"]
    assert change[0]["y"] == pytest.approx(change[1]["y"])  # nothing off yet: the same distribution twice
    plain, same = painted(at)[-2:]
    assert plain == same
    at.multiselect(key="xp_heads").set_value(["0.0", "0.1", "1.0", "1.1", "1.mlp"]).run()
    ok(at)
    change = figures(at)["xp_change"]["data"]
    assert change[0]["y"] != pytest.approx(change[1]["y"])
    assert at.query_params["xp_heads"] == "0.0,0.1,1.0,1.1,1.mlp"
    assert any("with the switches below" in c.value for c in at.caption)


def test_lstm_units_are_typed_and_bad_ones_are_one_line(app_home):
    at = page(xp_models="tiny-char-lstm", xp_text=TEXT, xp_units="0.3,0.17")
    ok(at)
    change = figures(at)["xp_change"]["data"]
    assert change[0]["y"] != pytest.approx(change[1]["y"])
    at.text_input(key="xp_units").input("0.999").run()
    assert not at.exception and "unit 0.999 does not exist" in at.error[0].value


def test_text_is_escaped_everywhere(app_home):
    at = page(xp_models="tiny-char-ngram,tiny-char-transformer", xp_text="<script>alert(1)</script>\nemma")
    assert not at.exception
    html = " ".join(m.value for m in at.markdown)
    assert "<script>" not in html and "&lt;" in painted(at)[0]  # a character model: one escaped '<' per token
    assert "<script>" not in json.dumps(figures(at))


@pytest.mark.parametrize("query", [
    {"xp_models": "nope,tiny-char-lstm", "xp_pos": "-5", "xp_off": "tiny-char-ngram", "xp_layer": "9"},
    {"xp_models": TRIO, "xp_pos": "99999", "xp_heads": "7.7,x", "xp_head": "-1", "xp_seed": "abc"},
])
def test_a_bad_link_falls_back(app_home, query):
    at = page(xp_text=TEXT, **query)
    ok(at)
    slider = at.select_slider(key="xp_pos")
    assert slider.value in (1, len(TEXT) - 1)


def test_the_compare_lineup_is_the_default(app_home):
    from lm.app.compare import default_lineup
    from lm.store.registry import list_models

    at = page(xp_text="ROMEO:\nBut soft")
    ok(at)
    lineup = default_lineup(list_models())[:4]
    assert at.multiselect(key="xp_models").value == lineup
    assert len(painted(at)) >= len(lineup)  # every model's attribution, painted


def test_integrated_gradients_can_be_left_out(app_home):
    at = page(xp_models=TRIO, xp_text=TEXT, xp_ig="false")
    ok(at)
    assert len(painted(at)) == 3 + 2  # occlusion for each model, the two continuations
    assert not any("Completeness" in c.value for c in at.caption)


def test_the_target_token_of_a_typed_text_never_renders_as_markdown(app_home):
    at = page(xp_text="to be, or not to be:")  # the last token, the default target, is ":" (as in ":red[...]")
    ok(at)
    lines = [c.value for c in at.caption if " · " in c.value]
    assert lines and all("(\\:)" in line for line in lines), lines  # escaped: shown as typed
