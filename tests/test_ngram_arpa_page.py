"""The Counting page for a model read from an ARPA file (AppTest): what the file lists after the context, its
n-grams per order, the back-off path and its probability order by order, and one line where a chart needs the
counts or the training text an ARPA file does not hold."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from app_fixtures import app_home  # noqa: F401  (session fixture: tiny checkpoints in LM_PLAYGROUND_HOME)

streamlit_testing = pytest.importorskip("streamlit.testing.v1")
from lm.store.arpa import arpa_header, export_arpa  # noqa: E402
from lm.store.paths import user_models_dir  # noqa: E402
from lm.store.registry import load_model  # noqa: E402

PAGE = Path(__file__).resolve().parent.parent / "views" / "ngram.py"
NAME = "tiny-names.arpa"


@pytest.fixture()
def arpa_file(app_home):
    """tiny-char-ngram (order 4) exported as an ARPA file in the user directory; removed afterwards (the home
    is shared by every app test of the session)."""
    path = user_models_dir() / NAME
    counted = load_model("tiny-char-ngram")
    export_arpa(counted.model, counted.tokenizer, path)
    try:
        yield path, counted
    finally:
        path.unlink(missing_ok=True)


def run(**query):
    at = streamlit_testing.AppTest.from_file(str(PAGE), default_timeout=90)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def figures(at) -> dict[str, dict]:
    out = {}
    for chart in at.get("plotly_chart"):
        fig = json.loads(chart.proto.spec)
        out[fig["layout"]["title"]["text"]] = fig
    return out


def test_an_arpa_model_shows_what_its_file_lists(arpa_file):
    path, counted = arpa_file
    at = run(ng_model=NAME, ng_context="mar")
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    assert [s.value for s in at.subheader] == ["What the file lists after the context", "The back-off path",
                                               "Longer context is not always better"]
    assert not [w for w in at.selectbox if w.key == "ng_smoothing"]  # the file fixes the probabilities
    assert any("holds neither" in i.value for i in at.info)  # the held-out chart: one line, no error
    charts = figures(at)
    assert set(charts) == {"Next-token distribution", "N-grams the ARPA file lists, per order",
                           "The probability of i order by order"}
    per_order, after = charts["N-grams the ARPA file lists, per order"]["data"]
    assert per_order["y"] == arpa_header(path)[0]  # the header's counts
    # what follows "mar": the file's listed probabilities are the counted model's own (within the file's 6 digits)
    listed = at.dataframe[0].value
    tok = counted.tokenizer
    ctx = torch.tensor([tok.encode("mar")])
    probs = torch.softmax(counted.model.logits(ctx)[0, -1].double(), -1)
    for piece, p in zip(listed["next token"], listed["probability"]):
        assert abs(math.log10(p) - math.log10(float(probs[tok.encode(piece.replace("↵", "\n"))[0]]))) < 1e-4
    assert listed["next token"].iloc[0] == "i" and list(listed["probability"]) == sorted(listed["probability"],
                                                                                         reverse=True)
    # the back-off path: a listed n-gram gives its p, otherwise weight x the order below
    path_rows = at.dataframe[1].value
    assert list(path_rows["order"]) == [4, 3, 2, 1] and path_rows["n-gram listed"].iloc[0] == "yes"
    assert after["y"] == [n or None for n in list(path_rows["listed continuations"])[::-1]]  # per order
    ps, weights, hits = list(path_rows["p at this order"]), list(path_rows["back-off weight"]), \
        list(path_rows["n-gram listed"])
    for j in range(3):  # row j (order 4 - j) against the row below it
        if hits[j] == "no":
            assert ps[j] == pytest.approx(weights[j] * ps[j + 1], rel=1e-12)
    assert ps[0] == pytest.approx(float(probs[tok.encode("i")[0]]), rel=3e-4)


def test_an_arpa_models_page_follows_order_and_target(arpa_file):
    at = run(ng_model=NAME, ng_context="mar")
    at.slider(key="ng_order").set_value(2).run()
    assert not at.exception and not at.error
    assert at.query_params["ng_order"] == "2" and len(at.dataframe[1].value) == 2
    target = at.selectbox(key="ng_target")
    piece = target.options[1].split("  (p =")[0]  # the second most likely token (labels: "piece  (p = ...)")
    assert piece != "i"
    target.set_value(load_model(NAME).tokenizer.encode(piece)[0]).run()  # values are token ids
    assert not at.exception
    assert f"The probability of {piece} order by order" in figures(at)


def test_listed_after_backs_off_to_a_listed_context(arpa_file):
    path, _ = arpa_file
    loaded = load_model(NAME)
    model, tok = loaded.model, loaded.tokenizer
    used, words, probs = model.listed_after(tok.encode("qqmar"))  # "qqm" never occurs, "mar" does
    assert "".join(tok.token_strings(used)) == "mar" and words.size == np.unique(words).size
    assert used == tok.encode("mar") and probs.max() <= 1.0
    none, every, unigram = model.listed_after([])
    assert none == [] and every.size == model.vocab_size
    assert sum(model.listed_per_order()) == sum(arpa_header(path)[0])
