"""lm.inspect.text: summaries on synthetic traces with known answers, and inspect_text on tiny real models."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lm import inspect as I
from lm.store.checkpoint import LoadedModel
from lm.errors import LMError
from lm.models.trace import AttentionTrace, RecurrentTrace


def one_hot_rows(T: int, key_of) -> torch.Tensor:
    a = torch.zeros(T, T)
    for q in range(T):
        a[q, key_of(q)] = 1.0
    return a


# -- attention ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("T", [1, 4, 17])
def test_entropy_of_a_uniform_row_is_log_T(T):
    uniform = torch.full((2, 3, T, T), 1.0 / T)
    assert np.allclose(I.attention_entropy(uniform), math.log(T), atol=1e-5)
    assert I.attention_entropy(uniform).shape == (2, 3)


def test_entropy_of_one_hot_rows_is_zero_and_causal_rows_average():
    assert np.allclose(I.attention_entropy(one_hot_rows(6, lambda q: 0)), 0.0)
    T = 5
    causal = torch.tril(torch.ones(T, T))
    causal = causal / causal.sum(-1, keepdim=True)  # row q uniform over q + 1 keys
    expected = np.mean([math.log(q + 1) for q in range(T)])
    assert I.attention_entropy(causal) == pytest.approx(expected, abs=1e-5)


def test_mean_attention_distance():
    T = 6
    previous = one_hot_rows(T, lambda q: max(q - 1, 0))
    assert I.mean_attention_distance(previous) == pytest.approx((T - 1) / T)
    first = one_hot_rows(T, lambda q: 0)
    assert I.mean_attention_distance(first) == pytest.approx(np.mean(range(T)))
    assert I.mean_attention_distance(torch.eye(T)) == pytest.approx(0.0)


def test_head_summary_recognises_simple_heads():
    T = 8
    heads = torch.stack([one_hot_rows(T, lambda q: max(q - 1, 0)), one_hot_rows(T, lambda q: 0), torch.eye(T)])
    s = I.head_summary(heads[None], head_output_norm=torch.ones(1, 3, T) * 2)  # [1 layer, 3 heads, T, T]
    assert s.entropy.shape == (1, 3)
    assert s.previous[0].tolist() == pytest.approx([1.0, 1 / (T - 1), 0.0])
    assert s.first[0].tolist() == pytest.approx([1 / (T - 1), 1.0, 0.0])
    assert s.self_[0].tolist() == pytest.approx([1 / T, 1 / T, 1.0])
    rows = s.rows()
    assert len(rows) == 3 and rows[2]["head"] == 2 and rows[0]["output norm"] == pytest.approx(2.0)
    with pytest.raises(LMError):
        I.head_summary(torch.ones(3, 3))


# -- recurrent ----------------------------------------------------------------------------------------------


def test_gate_saturation_shares_per_unit():
    values = np.array([[0.95, 0.5, 0.05],
                       [0.99, 0.5, 0.50],
                       [0.20, 0.5, 0.01],
                       [0.91, 0.5, 0.02]])  # [T=4, units=3]
    high, low = I.gate_saturation(values)
    assert high.tolist() == pytest.approx([0.75, 0.0, 0.0])
    assert low.tolist() == pytest.approx([0.0, 0.0, 0.75])
    high_l, _ = I.gate_saturation(np.stack([values, 1 - values]))  # [layers, T, units] -> [layers, units]
    assert high_l.shape == (2, 3) and high_l[1].tolist() == pytest.approx([0.0, 0.0, 0.75])
    with pytest.raises(LMError):
        I.gate_saturation(np.zeros(3))


def test_correlations():
    f = np.array([0.0, 1.0, 0.0, 1.0, 1.0])
    values = np.stack([f, -f, np.ones(5), 3 * f + 2], axis=1)  # [T, 4 units]
    assert I.correlations(values, f).tolist() == pytest.approx([1.0, -1.0, 0.0, 1.0], abs=1e-6)
    assert I.correlations(values, np.zeros(5)).tolist() == [0.0] * 4  # constant feature: no correlation


def test_char_and_token_features():
    text = 'ROMEO:\nHe said "hi" there\nX'
    spans = [(i, i + 1) for i in range(len(text))]
    f = I.token_features(text, spans)
    inside = "".join(c for c, v in zip(text, f["inside quotes"]) if v)
    assert inside == '"hi'  # the opening quote switches it on, the closing quote off
    assert [text[i] for i in np.flatnonzero(f["line end"])] == ["\n", "\n"]
    speaker = "".join(c for c, v in zip(text, f["after a speaker name"]) if v)
    assert speaker == 'He said "hi" there\n'
    assert "".join(c for c, v in zip(text, f["uppercase"]) if v) == "ROMEOHX"
    assert f["position in line"][:6].tolist() == [1, 2, 3, 4, 5, 6] and f["position in line"][6] == 0
    words = I.token_features("AB cd\n", [(0, 2), (2, 5), (5, 6), (6, 6)])  # an empty span repeats the last value
    assert words["uppercase"].tolist() == [1, 0, 0, 0] and words["line end"].tolist() == [0, 0, 1, 1]


def test_feature_units_finds_a_planted_unit():
    text = "ab\ncde\nf\nghij\n"
    T = len(text)
    spans = [(i, i + 1) for i in range(T)]
    position = I.token_features(text, spans)["position in line"]
    rng = np.random.default_rng(0)
    hidden = rng.normal(size=(1, T, 6)).astype(np.float32)
    hidden[0, :, 4] = position * 0.1 - 0.2  # unit 4 counts characters since the line break
    trace = RecurrentTrace("rnn", {"hidden": torch.from_numpy(hidden)}, torch.zeros(T, 3))
    ins = I.Inspection(list(text), list(range(T)), trace, text, spans)
    found = I.feature_units(ins, "hidden", 0, top=2)
    best = [m for m in found if m.feature == "position in line"][0]
    assert best.unit == 4 and best.r == pytest.approx(1.0)
    assert all(m.feature != "inside quotes" for m in found)  # no quotes in the text: nothing to correlate
    with pytest.raises(LMError):
        I.feature_units(ins, "cell", 0)


# -- inspect_text on real (tiny, untrained) models ------------------------------------------------------------


def loaded(model, tokenizer) -> LoadedModel:
    return LoadedModel("test-model", model, tokenizer, {"corpus": {"name": "names"}}, None)


def test_inspect_text_transformer_caps_at_its_context(char_tokenizer):
    from lm.models.transformer.model import TransformerConfig, TransformerModel

    model = TransformerModel(TransformerConfig(vocab_size=char_tokenizer.vocab_size, context_length=16, n_layers=2,
                                               n_heads=2, d_model=16), generator=torch.Generator().manual_seed(0))
    ins = I.inspect_text(loaded(model, char_tokenizer), "Hello there, General Kenobi!")
    assert isinstance(ins.trace, AttentionTrace)
    assert len(ins.tokens) == len(ins.ids) == 16 and ins.truncated
    assert "16" in ins.note and "context" in ins.note
    assert ins.text == "Hello there, Gen" and ins.pieces == list("Hello there, Gen")
    assert ins.trace.attention.shape == (2, 2, 16, 16)
    short = I.inspect_text(loaded(model, char_tokenizer), "Hi", max_tokens=1)
    assert short.ids == char_tokenizer.encode("H") and short.truncated


def test_inspect_text_rnn_uses_the_inspection_cap(char_tokenizer):
    from lm.models.rnn import RNNConfig, RNNModel

    model = RNNModel(RNNConfig(vocab_size=char_tokenizer.vocab_size, cell="gru", n_layers=2, d_embed=8, d_hidden=12),
                     generator=torch.Generator().manual_seed(0))
    assert I.trace_cap(model) == I.MAX_TRACE_TOKENS
    ins = I.inspect_text(loaded(model, char_tokenizer), "ab\ncd", max_tokens=100)
    assert not ins.truncated and ins.note == ""
    assert set(ins.trace.states) == {"reset", "update", "candidate", "hidden"}
    assert ins.trace.states["hidden"].shape == (2, 5, 12)
    with pytest.raises(LMError):
        I.inspect_text(loaded(model, char_tokenizer), "   ")


def test_token_spans_cover_the_text_with_bpe():
    from lm.data.tokenizer import Tokenizer

    tok = Tokenizer.bpe("the cat sat on the mat. " * 20, 270)
    text = "the mat 😀 é"
    ids = tok.encode(text)
    decoded, spans = I.token_spans(tok, ids)
    assert decoded == text and len(spans) == len(ids)
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert "".join(decoded[s:e] for s, e in spans) == text
    assert all(s <= e for s, e in spans) and any(s == e for s, e in spans)  # the emoji is split into bytes


# -- n-gram -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ngram(char_tokenizer):
    from lm.models.ngram.model import NgramModel

    train = "the cat sat on the mat. the dog sat on the log. " * 5
    model = NgramModel.build(char_tokenizer.encode(train), char_tokenizer.vocab_size, order=4)
    return loaded(model, char_tokenizer)


def test_ngram_order_scores_show_over_fitting(ngram):
    scores = I.ngram_order_scores(ngram, orders=range(1, 8), text="the cat sat on the log. a rat ran.")
    assert {s.order for s in scores} == {1, 2, 3, 4}  # orders above the counted one are skipped
    by = {(s.order, s.smoothing): s.bits_per_char for s in scores}
    assert math.isinf(by[(4, "mle")])  # 'a rat ran' holds n-grams never counted: p = 0
    assert all(math.isfinite(by[(n, s)]) for n in range(1, 5) for s in ("addk", "kneser_ney"))
    assert by[(3, "kneser_ney")] < by[(1, "kneser_ney")]


def test_ngram_comparison_counts_and_backoff(ngram, char_tokenizer):
    ids = char_tokenizer.encode("the c")
    comparison = I.ngram_smoothing_comparison(ngram, ids, ("mle", "addk", "kneser_ney"), k=5)
    assert list(comparison) == ["mle", "addk", "kneser_ney"]
    assert comparison["mle"] == [(char_tokenizer.encode("a")[0], "a", pytest.approx(1.0))]  # zero-p tokens dropped
    assert len(comparison["kneser_ney"]) == 5 and comparison["kneser_ney"][0][1] == "a"
    used, counts, total = I.ngram_counts(ngram.model, ids, order=4)
    assert char_tokenizer.decode(used) == "e c" and total == 5 and counts == [(char_tokenizer.encode("a")[0], 5)]
    used, _, _ = I.ngram_counts(ngram.model, char_tokenizer.encode("xyz c"), order=4)
    assert char_tokenizer.decode(used) == " c"  # backs off to the longest ending seen in training
    rows, notes = I.ngram_backoff(ngram.model, char_tokenizer, ids, char_tokenizer.encode("o")[0], 4, "mle")
    assert [r.order for r in rows] == [4, 3, 2, 1]
    assert rows[0].probability == 0.0 and any("never followed" in n for n in notes)
    table = I.backoff_table(rows, char_tokenizer)
    assert table[0]["context"] == "e c" and table[-1]["context"] == "(none)"


def test_top_tokens_and_next_token_distribution(ngram, char_tokenizer):
    p = I.next_token_distribution(ngram.model, char_tokenizer.encode("the "))
    assert p.shape == (char_tokenizer.vocab_size,) and p.sum() == pytest.approx(1.0, abs=1e-5)
    top = I.top_tokens(p, char_tokenizer, 3)
    assert [t[2] for t in top] == sorted((t[2] for t in top), reverse=True)


def test_token_counts(char_tokenizer):
    from lm.data.tokenizer import Tokenizer

    counts = I.token_counts("the cat", {"char": char_tokenizer, "bpe": Tokenizer.bpe("the cat " * 50, 300)})
    assert counts[0].tokens == 7 and counts[0].chars_per_token == pytest.approx(1.0)
    assert counts[1].kind == "bpe" and counts[1].tokens < 7
