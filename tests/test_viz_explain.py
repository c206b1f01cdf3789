""""Why this token?" figures: built from small hand-made results; each test checks what the figure shows."""

from __future__ import annotations

import re

import numpy as np
import pytest

from lm import viz
from lm.inspect.embeddings import EmbeddingProjection
from lm.inspect.lens import LogitLens, transformer_steps
from lm.viz.style import NEGATIVE_RGB, POSITIVE_RGB
from test_transformer import make, random_ids


def backgrounds(html: str) -> list[str]:
    return re.findall(r"background:([^;]+);", html)


def test_attribution_is_painted_red_for_help_blue_for_harm_and_escaped():
    pieces = ["<script>", "a", "b", "&", "c", "d"]
    html = viz.attribution_html(pieces, [2.0, -1.0, 0.0, np.inf], 4)
    assert "<script>" not in html and "&lt;script&gt;" in html and "&amp;" in html
    bg = backgrounds(html)
    assert bg[0].startswith(f"rgba({POSITIVE_RGB[0]},{POSITIVE_RGB[1]},{POSITIVE_RGB[2]},")
    assert bg[1].startswith(f"rgba({NEGATIVE_RGB[0]},{NEGATIVE_RGB[1]},{NEGATIVE_RGB[2]},")
    alpha = [float(b.rsplit(",", 1)[1].rstrip(")")) for b in bg]
    assert alpha[0] == pytest.approx(0.9) and alpha[1] == pytest.approx(0.45) and alpha[2] == 0.0
    assert alpha[3] == pytest.approx(0.9)  # an infinite change paints at full strength, not off the scale
    assert alpha[4] == alpha[5] == 0.0  # the explained token and what follows are not painted
    assert html.count("outline:2px") == 1 and 'title="the explained token"' in html
    assert 'title="token 1: -1.000 nats"' in html
    with pytest.raises(ValueError):
        viz.attribution_html(pieces, [1.0, 2.0], 4)


def test_attribution_bars_group_the_methods_over_the_last_tokens():
    tokens = [f"t{i}" for i in range(50)] + ["<b>"]
    occ, ig = np.arange(51.0), -np.arange(51.0)
    fig = viz.attribution_bars(tokens, {"occlusion": occ, "integrated gradients": ig}, last=10)
    assert [t.name for t in fig.data] == ["occlusion", "integrated gradients"]
    np.testing.assert_array_equal(fig.data[0].y, occ[-10:])
    np.testing.assert_array_equal(fig.data[1].y, ig[-10:])
    assert list(fig.data[0].customdata) == list(range(41, 51)) and fig.data[0].x[-1] == "&lt;b&gt;"
    assert fig.layout.barmode == "group"


def test_the_distribution_change_shows_both_top_lists():
    vocab = ["a", "b", "c", "d", "<i>"]
    before, after = np.array([0.5, 0.3, 0.1, 0.05, 0.05]), np.array([0.05, 0.05, 0.1, 0.2, 0.6])
    fig = viz.distribution_change(vocab, before, after, k=2)
    assert list(fig.data[0].x) == ["a", "b", "&lt;i&gt;", "d"]  # the union of both top-2, by the model's order
    np.testing.assert_allclose(fig.data[0].y, [0.5, 0.3, 0.05, 0.05])
    np.testing.assert_allclose(fig.data[1].y, [0.05, 0.05, 0.6, 0.2])


def test_the_logit_lens_table_has_one_row_per_depth_and_the_top_token_as_text():
    vocab = ["a", "<b>", " ", "d"]
    ids = np.array([[[0, 1]] * 3, [[1, 0]] * 3, [[2, 3]] * 3])  # [3 depths, 3 positions, k=2]
    probs = np.array([[[0.5, 0.2]] * 3, [[0.7, 0.1]] * 3, [[0.9, 0.05]] * 3])
    lens = LogitLens(["embeddings", "layer 0", "layer 1"], ids, probs, np.zeros((3, 3)))
    fig = viz.logit_lens_figure(lens, vocab, ["x", "y", "z"], start=1)
    (heat,) = fig.data
    assert list(heat.y) == ["embeddings", "layer 0", "layer 1"] and len(heat.x) == 2
    assert [row[0] for row in heat.text] == ["a", "&lt;b&gt;", "␣"]
    np.testing.assert_allclose(np.array(heat.z)[:, 0], [0.5, 0.7, 0.9])
    assert "&lt;b&gt; 70%" in heat.customdata[1][0]


def test_the_step_by_step_figures_follow_the_computation():
    model = make(0)
    x = random_ids(9).tolist()
    steps = transformer_steps(model, x, 5, 1, 1, top_units=4)
    tokens = [f"<{i}>" for i in x]
    vocab = [f"v{i}" for i in range(model.vocab_size)]
    figs = viz.steps_figures(steps, tokens, vocab, k=3)
    assert list(figs) == ["embedding", "qkv", "scores", "weighted", "mlp", "residual", "probabilities"]
    scaled, weights = figs["scores"].data
    np.testing.assert_allclose(scaled.y, steps.scores[:6])
    np.testing.assert_allclose(weights.y, steps.weights[:6])
    assert len(scaled.x) == 6 and "&lt;" in scaled.x[0]  # the query and the tokens before it, escaped
    assert np.array(figs["qkv"].data[0].z).shape == (1 + 2 * 6, model.config.d_model // model.config.n_heads)
    window = viz.steps_figures(steps, tokens, vocab, window=4)["qkv"].data[0]
    assert list(window.y)[1:5] == [f"K of {t}" for t in viz.token_labels(tokens)[2:6]]
    assert list(figs["mlp"].data[0].y) == [a for _, a in steps.top_units]
    assert len(figs["residual"].data[0].x) == 1 + 2 * model.config.n_layers
    top = np.argsort(-steps.probs)[:3]
    assert list(figs["probabilities"].data[0].x) == [vocab[i] for i in top]


def test_the_embedding_map_colours_by_class_or_by_frequency():
    pieces = ["a", "b", "C", "1", ",", " ", "<s>"]
    classes = ["vowel", "consonant", "capital", "digit", "punctuation", "whitespace", "punctuation"]
    xy = np.arange(14.0).reshape(7, 2)
    small = EmbeddingProjection(pieces, classes, xy, (0.6, 0.3), None)
    fig = viz.embedding_figure(small, chosen=1, neighbours=[(0, 0.9)])
    names = [t.name for t in fig.data]
    assert names == ["vowel", "consonant", "capital", "digit", "punctuation", "whitespace", "chosen and neighbours"]
    punct = fig.data[names.index("punctuation")]
    assert list(punct.x) == [8.0, 12.0] and list(punct.text) == [",", "&lt;s&gt;"]
    assert list(fig.data[-1].x) == [2.0, 0.0]
    assert fig.layout.xaxis.title.text == "PC 1 (60% of the variance)"
    big = EmbeddingProjection([f"t{i}" for i in range(300)], ["other"] * 300, np.zeros((300, 2)), (0.2, 0.1),
                              np.arange(300))
    fig = viz.embedding_figure(big, labels=5)
    markers, words = fig.data
    assert len(markers.x) == 300 and list(words.text) == [f"t{i}" for i in range(295, 300)]  # the most frequent
    np.testing.assert_allclose(markers.marker.color, np.log10(np.arange(300) + 1))
