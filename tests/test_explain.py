"""`explain` and `python -m lm explain`: the JSON the issue asks for, for every family of the shipped names zoo,
consistent with scoring and with the logit lens, with ablations, and one-line errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lm.cli import main
from lm.inspect.ablation import ablated, parse_ablation
from lm.inspect.attribution import occlusion, target_logprob
from lm.inspect.explain import explain
from lm.run.metrics import score_ids
from lm.store.registry import load_model

TEXT = "emma\nolivia\nava\nsophia\n"
MODELS = ("names-char-5gram", "names-char-lstm", "names-char-transformer")


def run_json(capsys, *args: str) -> dict:
    assert main(["explain", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("name", MODELS)
def test_the_json_has_one_value_per_context_token_and_agrees_with_scoring(name, capsys):
    data = run_json(capsys, "-m", name, "--text", TEXT)
    loaded = load_model(name)
    T = len(loaded.tokenizer.encode(TEXT))
    assert data["tokens"] == loaded.tokenizer.token_strings(loaded.tokenizer.encode(TEXT))
    assert data["position"] == T - 1 and data["target"] == "\n"  # default: the last token
    scored = float(score_ids(loaded.model, loaded.tokenizer.encode(TEXT))[0][-1])
    assert data["logprob"] == pytest.approx(scored, abs=1e-4)
    attribution = data["attribution"]
    assert len(attribution["occlusion"]) == T - 1
    neural = loaded.model.family != "ngram"
    assert ("integrated_gradients" in attribution) == neural == ("completeness_error" in attribution)
    if neural:
        assert len(attribution["integrated_gradients"]) == T - 1 and attribution["completeness_error"] <= 0.05
        total = sum(attribution["integrated_gradients"])
        assert total == pytest.approx(data["logprob"] - attribution["baseline_logprob"], abs=0.05 * abs(total) + 0.01)
    else:  # an order-5 model: nothing further back than 4 tokens matters
        assert all(v == 0 for v in attribution["occlusion"][:-4]) and any(attribution["occlusion"][-4:])
    assert ("logit_lens" in data) == (loaded.model.family == "transformer")


def test_the_logit_lens_in_the_json_ends_in_the_models_prediction(capsys):
    data = run_json(capsys, "-m", "names-char-transformer", "--text", TEXT, "--position", "7")
    loaded = load_model("names-char-transformer")
    lens = data["logit_lens"]
    assert lens["layers"] == ["embeddings"] + [f"layer {i}" for i in range(loaded.model.config.n_layers)]
    assert all(len(layer) == len(data["tokens"]) for layer in lens["top"])
    ids = loaded.tokenizer.encode(TEXT)[:7]
    probs = np.exp(np.array([target_logprob(loaded.model, ids + [v], 7) for v in range(loaded.model.vocab_size)]))
    best = int(np.argmax(probs))
    top = lens["top"][-1][6][0]  # after the last layer, at the token before position 7
    assert top["token"] == loaded.tokenizer.token_strings([best])[0]
    assert top["prob"] == pytest.approx(float(probs[best]), abs=1e-5)
    assert lens["target_prob"][-1] == pytest.approx(math.exp(data["logprob"]), abs=1e-5)


def test_ablations_change_the_answer_and_match_the_library(capsys):
    plain = run_json(capsys, "-m", "names-char-transformer", "--text", TEXT)
    every = run_json(capsys, "-m", "names-char-transformer", "--text", TEXT, "--ablate-heads", "all")
    loaded = load_model("names-char-transformer")
    off = parse_ablation(loaded.model, heads="all")
    ids = loaded.tokenizer.encode(TEXT)
    assert every["logprob"] == pytest.approx(target_logprob(loaded.model, ids, len(ids) - 1, off), abs=1e-5)
    assert every["logprob"] != pytest.approx(plain["logprob"], abs=1e-3)
    assert all(v == 0 for v in every["attribution"]["occlusion"][:-1])  # no heads: only the token before counts
    assert len(every["ablation"]["heads"]) == loaded.model.config.n_layers * loaded.model.config.n_heads
    lstm = run_json(capsys, "-m", "names-char-lstm", "--text", TEXT, "--ablate-units", "0.3,1.7,1.9")
    loaded = load_model("names-char-lstm")
    off = parse_ablation(loaded.model, units="0.3,1.7,1.9")
    np.testing.assert_allclose(lstm["attribution"]["occlusion"],
                               occlusion(loaded.model, ids, len(ids) - 1, 0, off), atol=1e-9)
    assert ablated(loaded.model, off) is not loaded.model


def test_the_text_output_names_the_strongest_tokens(capsys):
    assert main(["explain", "-m", "names-char-lstm", "--text", TEXT, "--position", "5"]) == 0
    out = capsys.readouterr().out
    assert "why 'o' at position 5" in out and "occlusion" in out and "completeness error" in out


def test_explain_cuts_long_texts_and_says_so():
    loaded = load_model("names-char-transformer")
    result = explain(loaded, TEXT * 40)
    assert len(result.ids) == loaded.model.context_length and "only the first" in result.note
    assert result.position == len(result.ids) - 1


@pytest.mark.parametrize("args, fragment", [
    (["-m", "names-char-5gram", "--text", TEXT, "--ablate-heads", "all"], "n-gram models have no attention heads"),
    (["-m", "names-char-transformer", "--text", TEXT, "--ablate-units", "0.1"], "no recurrent units"),
    (["-m", "names-char-transformer", "--text", TEXT, "--ablate-heads", "9.0"], "head 9.0 does not exist"),
    (["-m", "names-char-lstm", "--text", TEXT, "--ablate-units", "0.x"], "cannot read '0.x'"),
    (["-m", "names-char-lstm", "--text", TEXT, "--position", "0"], "position must be"),
    (["-m", "names-char-lstm", "--text", TEXT, "--position", "99"], "position must be"),
    (["-m", "names-char-lstm", "--text", "e"], "at least two tokens"),
    (["-m", "names-char-lstm", "--text", "   "], "type some text"),
    (["-m", "names-char-lstm"], "--text"),
])
def test_bad_input_is_one_line(args, fragment, capsys):
    try:
        code = main(["explain", *args])
    except SystemExit as exc:  # argparse's own errors exit
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1 and err.startswith("error:")


def test_the_page_helpers_align_positions_and_continue_with_the_same_seed():
    from lm.app.explain import ablation_choices, align, attribute_text, continuation
    from lm.data.tokenizer import Tokenizer
    from lm.inspect.text import token_spans

    text = "the cat sat on the mat"
    char, bpe = Tokenizer.char(text), Tokenizer.bpe(text * 20, 300)
    char_spans, bpe_spans = token_spans(char, char.encode(text))[1], token_spans(bpe, bpe.encode(text))[1]
    for index in range(1, len(char_spans)):
        j = align(char_spans, index, bpe_spans)
        start, end = bpe_spans[j]
        assert start <= char_spans[index][0] < end or j == 1
    loaded = load_model("names-char-transformer")
    assert continuation(loaded, "emma\n", 3) == continuation(loaded, "emma\n", 3, parse_ablation(loaded.model))
    off = parse_ablation(loaded.model, heads="all")
    assert continuation(loaded, "emma\n", 3, off) != continuation(loaded, "emma\n", 3)
    view = attribute_text(loaded, TEXT, off)
    assert view.occlusion.shape == (len(view.ids), len(view.ids)) and view.neutral == "\ufffd"
    c = loaded.model.config
    assert len(ablation_choices(loaded.model)) == c.n_layers * (c.n_heads + 2)
    assert ablation_choices(load_model("names-char-lstm").model) == []
