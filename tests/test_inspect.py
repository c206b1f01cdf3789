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


# -- first texts, CJK, bounds (issues 12, 16, 18) -------------------------------------------------------------


def test_fit_to_tokens_cuts_at_a_line_then_at_a_word(char_tokenizer):
    text = "anna\nhannah\nmaria\nmarianne\nelena\n"
    assert I.fit_to_tokens(char_tokenizer, text, 100) == text  # fits: untouched
    assert I.fit_to_tokens(char_tokenizer, text, 20) == "anna\nhannah\nmaria\n"  # 18 characters, a whole line
    words = "to be or not to be that is the question"
    assert I.fit_to_tokens(char_tokenizer, words, 12) == "to be or not"  # no line break: a whole word
    assert I.fit_to_tokens(char_tokenizer, "abcdefghij", 4) == "abcd"  # no break at all: the cap


def test_sample_for_reads_the_models_own_corpus_when_the_sample_is_not_readable(tmp_path):
    from lm.data.tokenizer import Tokenizer
    from lm.models.ngram.model import NgramModel

    corpus = tmp_path / "corpora" / "poems-1234.txt"
    corpus.parent.mkdir()
    corpus.write_text("\n\n".join(f"verse {i} of the little poem\nline two of verse {i}" for i in range(200)))
    tok = Tokenizer.char(corpus.read_text())
    model = NgramModel.build(tok.encode("verse one of"), tok.vocab_size, order=2)
    meta = {"corpus": {"name": "poems-1234.txt"}, "training": {"settings": {"corpus": str(corpus)}}}
    user = LoadedModel("poems", model, tok, meta, None)
    samples = {"shakespeare": "ROMEO:\nBut soft!"}  # capitals and '!': this alphabet has neither
    text, note = I.sample_for(user, samples, "poems-1234.txt")
    assert text.startswith("verse ") and I.readable(tok, text) and note == ""
    assert text in corpus.read_text() and len(text) <= I.SAMPLE_CHARS
    short, note = I.sample_for(user, {"poems-1234.txt": "verse one of the little poem\nline two"}, "poems-1234.txt")
    assert short == "verse one of the little poem\nline two"  # a readable sample is kept as written


def test_sample_for_says_when_it_cut_the_sample_to_the_context(char_tokenizer):
    from lm.models.transformer.model import TransformerConfig, TransformerModel

    model = TransformerModel(TransformerConfig(vocab_size=char_tokenizer.vocab_size, context_length=16, n_layers=1,
                                               n_heads=1, d_model=8), generator=torch.Generator().manual_seed(0))
    text, note = I.sample_for(loaded(model, char_tokenizer), {"names": "anna\nhannah\nmaria\nmarianne\n"}, "names")
    assert text == "anna\nhannah\n" and "16 tokens" in note


def test_inspect_text_keeps_the_typed_text_and_counts_characters_never_seen(char_tokenizer):
    from lm.models.rnn import RNNConfig, RNNModel

    model = RNNModel(RNNConfig(vocab_size=char_tokenizer.vocab_size, cell="lstm", n_layers=1, d_embed=4, d_hidden=4),
                     generator=torch.Generator().manual_seed(0))
    ins = I.inspect_text(loaded(model, char_tokenizer), "anna 床前明月光 床")
    assert ins.text == "anna 床前明月光 床" and ins.pieces[5:10] == list("床前明月光")  # painted as typed
    assert ins.tokens[5] == "\ufffd"  # what the model read
    assert ins.unknown == list("床前明月光") and ins.unknown_count == 6
    assert ins.unknown_note.startswith("6 characters of this text never occurred") and "\n" not in ins.unknown_note
    assert I.inspect_text(loaded(model, char_tokenizer), "anna").unknown_note == ""


def test_inspect_text_tokenizes_only_what_it_can_trace(char_tokenizer):
    from lm.models.transformer.model import TransformerConfig, TransformerModel

    seen = []

    class Spy:  # the model's tokenizer, recording how much text it was asked to encode
        kind, vocab_size = char_tokenizer.kind, char_tokenizer.vocab_size

        def encode(self, text):
            seen.append(len(text))
            return char_tokenizer.encode(text)

        def __getattr__(self, name):
            return getattr(char_tokenizer, name)

    model = TransformerModel(TransformerConfig(vocab_size=char_tokenizer.vocab_size, context_length=16, n_layers=1,
                                               n_heads=1, d_model=8), generator=torch.Generator().manual_seed(0))
    ins = I.inspect_text(LoadedModel("spy", model, Spy(), {}, None), "ab " * 1_000_000)
    assert max(seen) <= 16 * I.MAX_CHARS_PER_TOKEN and len(ins.ids) == 16
    assert ins.truncated and "over" in ins.note


def test_painted_by_and_attention_on_text_give_a_split_character_its_tokens_weight():
    from lm.viz.attention import attention_on_text

    pieces = ["a", "", "", "床", "b"]  # a character split over three byte tokens
    assert I.painted_by(pieces) == [0, 3, 3, 3, 4]
    assert I.painted_by(["a", "", ""]) == [0, 1, 2]  # a cut-off tail paints itself (not at all)
    html = attention_on_text(pieces, [0.1, 0.2, 0.3, 0.1, 0.3], chosen=1)
    assert 'title="tokens 1-3 (one character): weight 0.600"' in html
    assert "outline" in html.split("床")[0].rsplit("<span", 1)[1]  # the chosen byte frames its character
    assert html.count("<span") == 3


def test_describe_order_scores_says_what_the_scores_show():
    S = I.OrderScore
    rows = [S(1, "mle", 4.0, 0), S(2, "mle", math.inf, 0), S(3, "mle", math.inf, 0),
            S(1, "addk", 4.0, 0), S(2, "addk", 3.0, 0), S(3, "addk", 3.5, 0),
            S(1, "kneser_ney", 4.0, 0), S(2, "kneser_ney", 3.0, 0), S(3, "kneser_ney", 2.5, 0)]
    text = I.describe_order_scores(rows, {"addk": "add-k", "kneser_ney": "Kneser-Ney"})
    assert "mle is infinite from order 2 on" in text
    assert "add-k is best at order 2 (3.00 bits/char) and worse above it (3.50 at order 3)" in text
    assert "Kneser-Ney keeps improving up to order 3 (2.50 bits/char)" in text
    improving = [S(1, "addk", 4.0, 0), S(2, "addk", 3.0, 0), S(3, "addk", 2.9, 0)]
    assert "addk keeps improving up to order 3" in I.describe_order_scores(improving)


def test_backoff_table_says_which_counts_are_kneser_ney_continuations(ngram, char_tokenizer):
    ids = char_tokenizer.encode("the c")
    target = char_tokenizer.encode("a")[0]
    rows, _ = I.ngram_backoff(ngram.model, char_tokenizer, ids, target, 4, "kneser_ney")
    table = I.backoff_table(rows, char_tokenizer, smoothing="kneser_ney")
    assert [r["counts"] for r in table] == ["times seen", "continuations", "continuations", "continuations"]
    assert table[0]["c(context)"] == 5  # "e c" occurred five times
    assert table[1]["c(context, next)"] == 1  # only "e" ever came before " ca"
    mle_rows, _ = I.ngram_backoff(ngram.model, char_tokenizer, ids, target, 4, "mle")
    assert {r["counts"] for r in I.backoff_table(mle_rows, char_tokenizer, smoothing="mle")} == {"times seen"}
    assert "continuation" in I.backoff_caption("kneser_ney") and "continuation" not in I.backoff_caption("mle")


def test_notable_head_is_the_previous_token_head_and_describe_head_says_so():
    T = 6
    heads = torch.stack([torch.full((T, T), 1.0 / T), one_hot_rows(T, lambda q: max(q - 1, 0)),
                         one_hot_rows(T, lambda q: 0)])  # spread, previous token, first token
    summary = I.head_summary(heads[None])
    assert I.notable_head(summary) == (0, 1)
    assert "a previous-token head" in I.describe_head(summary, 0, 1)
    assert "an attention sink" in I.describe_head(summary, 0, 2)
    assert "spreads its attention" in I.describe_head(summary, 0, 0, math.log(T))


def test_ngram_valid_text_finds_an_uploaded_corpus_by_its_recorded_path(ngram, tmp_path, monkeypatch):
    upload = tmp_path / "corpora" / "payload-1234.txt"
    upload.parent.mkdir()
    upload.write_text("\n\n".join(f"paragraph {i}: the cat sat on the mat." for i in range(100)))
    meta = {"corpus": {"name": upload.name}, "training": {"settings": {"corpus": str(upload)}}}
    monkeypatch.chdir(tmp_path)  # the bare name is no file here either
    text = I.ngram_valid_text(LoadedModel("up", ngram.model, ngram.tokenizer, meta, None))
    assert text.startswith("paragraph ") and text in upload.read_text()  # read from the recorded path ...
    assert "paragraph 0:" not in text  # ... and only its held-out part (the first document is for training)
    upload.unlink()
    with pytest.raises(LMError, match="no longer at"):
        I.ngram_valid_text(LoadedModel("up", ngram.model, ngram.tokenizer, meta, None))
