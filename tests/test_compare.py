"""lm.app.compare and lm.app.playground: the computations behind the Compare page and the Playground's step mode."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))

from app_fixtures import TINY_CHAR_TRIO, app_home  # noqa: E402,F401
from lm.app.compare import (CorpusIndex, corpus_source, cross_score, default_lineup, generate_column,  # noqa: E402
                            memorisation, surprisal_by_char, training_text)
from lm.app.playground import knob_stages  # noqa: E402
from lm.run.generate import next_token_stages  # noqa: E402
from lm.run.metrics import longest_copied_span  # noqa: E402
from lm.store.registry import ModelInfo, list_models, load_model  # noqa: E402
from lm.run.sampling import SamplingSettings  # noqa: E402

CORPUS = "the cat sat on the mat. the dog sat on the log. a cat and a dog met on a mat by the log.\n" * 3


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet="the catsdogmlo.\nxz", max_size=80), st.integers(1, 6))
def test_the_indexed_meter_agrees_with_the_plain_one(text, k):
    fast = CorpusIndex(CORPUS, k=k).longest_copied_span(text)
    slow = longest_copied_span(text, CORPUS)
    assert (fast.text, fast.start, fast.corpus_offset) == (slow.text, slow.start, slow.corpus_offset)


def test_memorisation_accepts_text_or_index_and_unknown_corpus():
    text = "zz the dog sat on the log zz"
    assert memorisation(text, CORPUS).text == " the dog sat on the log"
    assert memorisation(text, CorpusIndex(CORPUS)).text == " the dog sat on the log"
    assert memorisation(text, None) is None and memorisation("", CORPUS) is None


def test_corpus_source_reads_builtin_recipe_and_user_corpora():
    assert corpus_source({"corpus": {"name": "names"}}) == ("names", None, None)
    meta = {"corpus": {"name": "poems-1234.txt"},
            "training": {"settings": {"corpus": "/home/u/corpora/poems-1234.txt", "max_chars": 5000}}}
    assert corpus_source(meta) == ("poems-1234.txt", "/home/u/corpora/poems-1234.txt", 5000)
    assert corpus_source({"corpus": {"name": "shakespeare"}, "recipe": {"corpus": "shakespeare"}}) == \
        ("shakespeare", None, None)
    assert corpus_source({}) is None


def test_training_text_is_the_training_split(tmp_path):
    names = training_text("names")
    assert "\n" in names and len(names) < 36_121
    path = tmp_path / "mine.txt"
    path.write_text("\n\n".join(f"paragraph {i} " * 30 for i in range(20)), encoding="utf-8")
    assert "paragraph 0" in training_text("mine.txt", str(path))
    with pytest.raises(Exception, match="no longer"):
        training_text("gone.txt", str(tmp_path / "gone.txt"))


def info(name, family, corpus="shakespeare", tokenizer="char", kind=None, source="zoo", bpc=None):
    return ModelInfo(name, source, Path(name), family, kind or family, tokenizer, corpus, 1, bpc, "")


def test_default_lineup_prefers_a_full_char_shakespeare_trio():
    infos = [info("names-lstm", "rnn", "names", kind="lstm"), info("names-gpt", "transformer", "names"),
             info("names-ng", "ngram", "names"),
             info("sh-bpe-ng", "ngram", tokenizer="bpe"), info("sh-ng", "ngram"), info("sh-gru", "rnn", kind="gru"),
             info("sh-lstm", "rnn", kind="lstm"), info("sh-gpt", "transformer"),
             info("sh-gpt-mine", "transformer", source="user", bpc=0.1)]
    assert default_lineup(infos) == ["sh-ng", "sh-lstm", "sh-gpt"]
    assert default_lineup(infos[:3]) == ["names-ng", "names-lstm", "names-gpt"]
    assert default_lineup([]) == []


def test_knob_stages_marks_what_each_knob_cut():
    pieces = list("abcdef")
    probs = torch.tensor([0.4, 0.3, 0.15, 0.1, 0.05, 0.0])
    cut = torch.tensor([0.5, 0.5, 0.0, 0.0, 0.0, 0.0])
    view = knob_stages(pieces, [("model", probs), ("top-k", cut)], top_n=4)
    assert view.pieces == ["a", "b", "c", "d"] and view.stages == ["model", "top-k"]
    assert view.kept == [[True] * 4, [True, True, False, False]]
    assert view.kept_total == [5, 2] and view.entropy_bits[1] == pytest.approx(1.0)


def test_columns_cross_scores_and_character_alignment(app_home):
    models = [load_model(n) for n in TINY_CHAR_TRIO]
    settings_ = SamplingSettings(max_new_tokens=30, seed=3)
    seen = []
    start = time.perf_counter()
    column = generate_column(models[1], "em", settings_, on_token=lambda text, tok: seen.append(text))
    wall = time.perf_counter() - start
    assert column.text == seen[-1] and len(column.tokens) == 30
    assert 0 < column.seconds <= wall  # measured: the rate below is finite, and no faster than it really was
    assert column.tokens_per_second == pytest.approx(30 / column.seconds) and column.tokens_per_second >= 30 / wall
    assert generate_column(models[1], "em", settings_).text == column.text  # same seed, same text
    assert 0 < column.distinct_1 <= 1
    matrix = cross_score(models, [column.text, "", "anna"])
    assert len(matrix) == 3 and all(len(row) == 3 for row in matrix)
    assert all(v > 0 for v in matrix[0]) and matrix[1] == [None, None, None]
    text = "emma\noliver"
    for name in ("tiny-char-ngram", "tiny-bpe-ngram"):
        spans = surprisal_by_char(load_model(name), text)
        assert spans[0].start == 0 and spans[-1].end == len(text)
        assert all(a.end == b.start for a, b in zip(spans, spans[1:]))  # contiguous, no gaps or overlaps
        assert sum(s.bits for s in spans) > 0
    pieces, stages = next_token_stages(models[2].model, models[2].tokenizer, "ma",
                                       SamplingSettings(top_k=3, top_p=0.9))
    view = knob_stages(pieces, stages, top_n=10)
    assert view.stages[:3] == ["model", "temperature", "top-k"] and sum(view.kept[2]) == 3
    assert {m.name for m in list_models()} >= set(TINY_CHAR_TRIO)
