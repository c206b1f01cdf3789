"""Scoring, bits per character, distinct-n and the memorisation meter."""

import math

import pytest
import torch
from hypothesis import given, strategies as st

from lm.errors import LMError
from lm.run.metrics import distinct_n, distinct_n_words, longest_copied_span, score, score_ids


def test_score_matches_the_model_table(bigram, char_tokenizer):
    model = bigram(char_tokenizer.vocab_size)
    text = "the cat sat."
    result = score(model, char_tokenizer, text)
    ids = char_tokenizer.encode("\n" + text)
    logp = torch.log_softmax(model.table, -1)
    expected = [float(logp[a, b]) for a, b in zip(ids, ids[1:])]
    assert [t.logprob for t in result.tokens] == pytest.approx(expected, abs=1e-5)
    assert result.characters == len(text) and len(result.tokens) == len(text)
    assert result.bits_per_char == pytest.approx(-sum(expected) / math.log(2) / len(text), rel=1e-6)
    ranks = [int((logp[a] > logp[a, b]).sum()) + 1 for a, b in zip(ids, ids[1:])]
    assert [t.rank for t in result.tokens] == ranks


def test_windows_score_every_token_once(bigram, char_tokenizer):
    long_ctx = bigram(char_tokenizer.vocab_size)
    short_ctx = bigram(char_tokenizer.vocab_size, context_length=7)
    ids = char_tokenizer.encode("abcdefghijklmnopqrstuvwxyz" * 3)
    a, ra = score_ids(long_ctx, ids)
    b, rb = score_ids(short_ctx, ids)
    assert len(b) == len(ids) - 1
    assert torch.allclose(a, b) and torch.equal(ra, rb)  # a bigram model needs one token of context


def test_empty_text_is_an_error(bigram, char_tokenizer):
    with pytest.raises(LMError):
        score(bigram(char_tokenizer.vocab_size), char_tokenizer, "")


def test_distinct_n():
    assert distinct_n("abab", 2) == pytest.approx(2 / 3)
    assert distinct_n([1, 1, 1], 1) == pytest.approx(1 / 3)
    assert distinct_n("a", 2) == 0.0
    assert distinct_n_words("to be or not to be", 1) == pytest.approx(4 / 6)


def _brute_force_span(text, corpus):
    best = ""
    for i in range(len(text)):
        for j in range(i + 1, len(text) + 1):
            if text[i:j] in corpus and j - i > len(best):
                best = text[i:j]
    return best


@given(st.text("abc", max_size=20), st.text("abc", max_size=40))
def test_longest_copied_span_matches_brute_force(text, corpus):
    span = longest_copied_span(text, corpus)
    assert span.length == len(_brute_force_span(text, corpus))
    assert span.text in corpus and text[span.start:span.start + span.length] == span.text
