"""The "look inside" pages as a teacher at a projector meets them (issues 12, 16 and 18), headless with AppTest.

- first views: a text that fits the model's context and alphabet (and follows the model when it changes),
  tokenizers that read the text, the Counting page's captions saying what its table and chart show;
- CJK text painted as typed, and one line when a character model meets characters it never saw;
- bounds and crafted values: a huge text, a hand-written websocket value outside a widget's choices;
- no Markdown from user data; the order chart of an n-gram counted on an upload.

Tests on the shipped zoo (assets/) skip when it is not there; the others use the tiny zoo of app_fixtures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app_fixtures import app_home  # noqa: F401  (session fixture: tiny checkpoints in LM_PLAYGROUND_HOME)

streamlit_testing = pytest.importorskip("streamlit.testing.v1")
from streamlit.proto.WidgetStates_pb2 import WidgetState  # noqa: E402
from test_app_inspect_pages import figures, ok, page  # noqa: E402  (the same page runner and checks)

from lm.store.paths import ASSETS_DIR  # noqa: E402
from ui.loaders import cached_model  # noqa: E402  (the same cache the pages use)

CJK = "床前明月光"
PAYLOADS = ("![](/x)", ":red[x]", "$a$")  # an image fetch, a colour directive, KaTeX: each within an 8-gram's reach


def html_bodies(at) -> list[str]:
    return [element.proto.body for element in at.get("html")]


def markdown_texts(at) -> list[str]:
    """Every element Streamlit renders as Markdown, except the escaped token paintings (HTML blocks)."""
    out = []
    for kind in ("markdown", "caption", "subheader", "header", "title", "info", "warning", "error", "success"):
        out += [e.value for e in at.get(kind) if not str(e.value).startswith('<div class="lm-tokens"')]
    return out


def crafted(widget, value):
    """What a hand-written websocket message can send for `widget`: any string (or list of strings)."""
    state = WidgetState()
    state.id = widget.id
    if isinstance(value, list):
        state.string_array_value.data[:] = value
    else:
        state.string_value = value
    widget.__class__ = type(f"Crafted{type(widget).__name__}", (type(widget),),
                            {"_widget_state": property(lambda self: state)})
    return widget


def zoo(*names: str) -> None:
    missing = [n for n in names if not (ASSETS_DIR / n).is_dir()]
    if missing:
        pytest.skip(f"the shipped zoo has no {', '.join(missing)}")


# -- Attention -------------------------------------------------------------------------------------------------


def test_attention_first_text_fits_the_context(app_home):
    at = page("attention.py", att_model="tiny-char-transformer")  # context 32 tokens, names alphabet
    ok(at)
    text = at.session_state["att_text"]
    assert len(at.select_slider(key="att_token").options) == len(text)  # every character is shown
    assert text.endswith("\n") and not any("only the first" in c.value for c in at.caption)
    assert not cached_model("tiny-char-transformer").tokenizer.encode_report(text)[1]  # and readable


def test_attention_shakespeare_text_keeps_the_repeated_name(app_home):
    zoo("shakespeare-char-transformer")
    at = page("attention.py", att_model="shakespeare-char-transformer")
    ok(at)
    options = at.select_slider(key="att_token").options
    shown = "".join(o.split(": ", 1)[1] for o in options)  # the tokens the view covers, whitespace made visible
    assert shown.count("Romeo") == 3 and shown.endswith("Romeo?")


def test_attention_text_follows_the_model_but_keeps_a_typed_one(app_home):
    zoo("shakespeare-char-transformer", "names-char-transformer")
    at = page("attention.py", att_model="shakespeare-char-transformer")
    ok(at)
    at.selectbox(key="att_model").set_value("names-char-transformer").run()
    ok(at)
    names = cached_model("names-char-transformer").tokenizer
    assert not names.encode_report(at.session_state["att_text"])[1]  # the names sample, not Shakespeare
    at.text_area(key="att_text").input("zara\nzoe\n").run()
    at.selectbox(key="att_model").set_value("shakespeare-char-transformer").run()
    ok(at)
    assert at.session_state["att_text"] == "zara\nzoe\n"


def test_attention_paints_cjk_and_says_the_model_never_saw_it(app_home):
    at = page("attention.py", att_model="tiny-char-transformer", att_text=f"anna\n{CJK}\n")
    ok(at)
    painting = next(m.value for m in at.markdown if "lm-tokens" in m.value)
    assert all(f">{c}<" in painting for c in CJK) and "\ufffd" not in painting
    notes = [b for b in html_bodies(at) if "never occurred" in b]
    assert len(notes) == 1 and notes[0].count("\n") == 0 and f"{len(CJK)} characters" in notes[0]


def test_attention_colour_bars_stay_under_their_own_map(app_home):
    at = page("attention.py", att_model="tiny-char-transformer")
    ok(at)
    summary = figures(at)[2]
    domains = [summary["layout"]["xaxis"]["domain"], summary["layout"]["xaxis2"]["domain"]]
    for trace, (left, right) in zip(summary["data"], domains):
        bar = trace["colorbar"]
        assert bar.get("orientation") == "h"  # a vertical bar between the maps covers the right map's labels
        assert left <= bar["x"] <= right


def test_attention_names_the_clearest_head(app_home):
    at = page("attention.py", att_model="tiny-char-transformer")
    ok(at)
    assert any(c.value.startswith("Layer 0, head 0 ") for c in at.caption)  # what the shown head does
    rows = at.dataframe[0].value.to_dict("records")
    strongest = max(rows, key=lambda r: r["previous token"])
    if strongest["previous token"] < 0.3:
        strongest = min(rows, key=lambda r: r["entropy"])
    clearest = (strongest["layer"], strongest["head"])
    buttons = [b for b in at.button if b.key == "att_clearest"]
    assert len(buttons) == (clearest != (0, 0))
    if buttons:
        buttons[0].click().run()
        ok(at)
        assert (at.session_state["att_layer"], at.session_state["att_head"]) == clearest
        assert any(c.value.startswith(f"Layer {clearest[0]}, head {clearest[1]} ") for c in at.caption)


# -- Memory --------------------------------------------------------------------------------------------------


def test_memory_paints_cjk_and_says_the_model_never_saw_it(app_home):
    at = page("rnn.py", rnn_model="tiny-char-lstm", rnn_text=f"anna\n{CJK}\n")
    ok(at)
    painting = next(m.value for m in at.markdown if "lm-tokens" in m.value)
    assert all(f">{c}<" in painting for c in CJK) and "\ufffd" not in painting
    assert sum("never occurred" in b for b in html_bodies(at)) == 1


def test_memory_says_what_the_first_unit_follows(app_home):
    at = page("rnn.py", rnn_model="tiny-char-lstm")
    ok(at)
    unit = at.slider(key="rnn_unit").value
    assert any(c.value.startswith(f"On this text, unit {unit} follows") for c in at.caption)


# -- Counting --------------------------------------------------------------------------------------------------


def test_counting_says_which_counts_are_continuation_counts(app_home):
    at = page("ngram.py", ng_model="tiny-char-ngram", ng_context="mari")
    ok(at)
    kinds = list(at.dataframe[1].value["counts"])
    assert kinds[0] == "times seen" and set(kinds[1:]) == {"continuations"}  # Kneser-Ney, order 4
    assert any("continuation counts" in c.value for c in at.caption)
    at.selectbox(key="ng_smoothing").set_value("mle").run()
    ok(at)
    assert set(at.dataframe[1].value["counts"]) == {"times seen"}
    assert not any("continuation counts" in c.value for c in at.caption)


def test_counting_caption_says_what_the_order_chart_shows(app_home):
    at = page("ngram.py", ng_model="tiny-char-ngram")
    ok(at)
    chart = figures(at)[1]
    addk = next(t for t in chart["data"] if t["name"] == "add-k" and t["mode"] == "lines+markers")
    points = [(y, x) for x, y in zip(addk["x"], addk["y"]) if y is not None]
    best = min(points)[1]
    caption = next(c.value for c in at.caption if c.value.startswith("Scored on"))
    assert "add-k gets worse at high orders" not in caption
    if best == max(addk["x"]):
        assert f"add-k keeps improving up to order {best}" in caption or f"add-k is best at order {best}" in caption
    else:
        assert f"add-k is best at order {best} " in caption and "worse above it" in caption


def test_counting_first_view_shows_add_k_turning_worse(app_home):
    zoo("shakespeare-char-5gram", "shakespeare-char-7gram")
    at = page("ngram.py")
    ok(at)
    assert at.session_state["ng_model"] == "shakespeare-char-7gram"  # the chart that goes furthest
    caption = next(c.value for c in at.caption if c.value.startswith("Scored on"))
    assert "add-k is best at order" in caption and "worse above it" in caption


def upload_ngram(home: Path, name: str, text: str, order: int):
    """An n-gram counted, as the Train page does, on an upload kept under home/corpora/."""
    from lm.app.uploads import save_upload
    from lm.train.loop import train
    from lm.train.settings import TrainSettings

    path = save_upload(text.encode(), "payload.txt", home=home, owner="student-a")
    train(TrainSettings(family="ngram", corpus=str(path), order=order, name=name, score_chars=2000))
    return path


@pytest.fixture(scope="module")
def upload_home(tmp_path_factory):
    """A user directory with one n-gram of order 8 counted on an upload whose text holds the payloads."""
    home = tmp_path_factory.mktemp("upload-home")
    with pytest.MonkeyPatch.context() as patch:  # only while training: each test points the pages at it
        patch.setenv("LM_PLAYGROUND_HOME", str(home))
        lines = [f"line {i}: {' '.join(PAYLOADS)} and some words to count, {i * 7 % 13}" for i in range(120)]
        upload_ngram(home, "upload-8gram", "\n\n".join(lines) + "\n", order=8)
    return home


def test_counting_order_chart_finds_an_uploaded_corpus(upload_home, monkeypatch, tmp_path_factory):
    monkeypatch.setenv("LM_PLAYGROUND_HOME", str(upload_home))
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))  # the upload's name means nothing here
    at = page("ngram.py", ng_model="upload-8gram", ng_context="line 3: ")
    ok(at)
    assert len(figures(at)) == 2


@pytest.mark.parametrize("payload", PAYLOADS)
def test_counting_shows_contexts_and_notes_as_text(upload_home, monkeypatch, payload):
    monkeypatch.setenv("LM_PLAYGROUND_HOME", str(upload_home))
    at = page("ngram.py", ng_model="upload-8gram", ng_context=f"count, {payload}")
    ok(at)
    assert not [t for t in markdown_texts(at) if payload[:4] in t]
    assert any(payload[-5:] in b for b in html_bodies(at))  # shown, as text


# -- Tokenizers ------------------------------------------------------------------------------------------------


def test_tokenizers_first_view_reads_its_text(app_home):
    zoo("shakespeare-char-transformer", "shakespeare-bpe-transformer")
    at = page("tokens.py")
    ok(at)
    assert not [c.value for c in at.caption if "unknown to this tokenizer" in c.value]
    chosen = at.multiselect(key="tok_models").value
    assert {cached_model(n).tokenizer.kind for n in chosen} == {"char", "bpe"}


def test_tokenizers_text_follows_the_character_tokenizer(app_home):
    at = page("tokens.py", tok_models="tiny-char-lstm", tok_train="false")
    ok(at)
    assert not cached_model("tiny-char-lstm").tokenizer.encode_report(at.session_state["tok_text"])[1]
    assert not [c.value for c in at.caption if "unknown to this tokenizer" in c.value]


def test_tokenizers_show_how_chinese_splits(app_home):
    at = page("tokens.py", tok_models="tiny-char-lstm,tiny-bpe-ngram", tok_train="false", tok_text="anna")
    ok(at)
    line = "床前明月光，疑是地上霜。"
    rows = {r["tokenizer"]: r for r in at.dataframe[-1].value.to_dict("records")}
    assert rows["tiny-char-lstm (char)"]["unknown characters"] == len(line)  # names never had these
    assert rows["tiny-bpe-ngram (bpe)"]["tokens"] == len(line.encode())  # bytes: 3 per character
    assert rows["characters of this line"]["tokens"] == len(line)
    assert any("\\xe5" in b for b in html_bodies(at))  # the bytes are painted


def test_tokenizers_cap_a_huge_text(app_home):
    at = page("tokens.py", tok_models="tiny-char-lstm,tiny-bpe-ngram", tok_corpus="names", tok_text="ab " * 50_000)
    ok(at)
    sent = sum(len(e.value) for e in at.markdown) + sum(len(e.value) for e in at.code) + sum(map(len, html_bodies(at)))
    assert len(at.session_state["tok_text"]) <= 2_000 and sent < 1_500_000


# -- crafted widget values -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, query, key, value", [
    ("rnn.py", {"rnn_model": "tiny-char-lstm"}, "rnn_jump", "x"),  # read before the widget heals it
    ("rnn.py", {"rnn_model": "tiny-char-lstm"}, "rnn_layer", "7"),
])
def test_pages_survive_crafted_widget_values(app_home, name, query, key, value):
    at = page(name, **query)
    ok(at)
    widget = next(w for w in at.get("selectbox") if w.key == key)
    crafted(widget, value).run()
    ok(at)  # no traceback, and no error either: the value falls back to a choice


@pytest.mark.parametrize("name, query, key, limit", [
    ("attention.py", {"att_model": "tiny-char-transformer"}, "att_text", 2_000),
    ("rnn.py", {"rnn_model": "tiny-char-lstm"}, "rnn_text", 2_000),
    ("ngram.py", {"ng_model": "tiny-char-ngram"}, "ng_context", 500),
    ("tokens.py", {"tok_models": "tiny-char-lstm", "tok_train": "false"}, "tok_text", 2_000),
])
def test_pages_bound_a_crafted_text(app_home, name, query, key, limit):
    at = page(name, **query)
    ok(at)
    crafted(at.text_area(key=key), "anna\n" * 40_000).run()  # 200,000 characters in one message
    ok(at)
    assert 0 < len(at.session_state[key]) <= limit
    assert len(at.query_params.get(key, "")) <= limit  # the shared link stays short too
