"""lm.viz: every figure and HTML view, built from synthetic arrays (no model, no browser)."""

from __future__ import annotations

import math
import re

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from lm import viz
from lm.app.playground import StageView
from lm.inspect import OrderScore
from lm.run.sampling import SamplingSettings


def causal_uniform(layers: int, heads: int, T: int) -> torch.Tensor:
    """Attention where every query spreads its weight evenly over itself and all earlier keys."""
    mask = torch.tril(torch.ones(T, T))
    return (mask / mask.sum(-1, keepdim=True)).expand(layers, heads, T, T).clone()


# -- labels -------------------------------------------------------------------------------------------------


def test_visible_shows_whitespace_and_cuts_long_tokens():
    assert viz.visible(" the\n") == "␣the↵"
    assert viz.visible("\t") == "⇥"
    assert viz.visible("") == "∅"
    long = viz.visible("x" * 40, 12)
    assert len(long) == 12 and long.endswith("…")
    assert viz.visible("x" * 40 + "\r\n", None) == "x" * 40 + "␍↵"  # no limit: never cut


def test_token_labels_keep_one_category_per_position():
    labels = viz.token_labels(["a", " ", "a", " ", "a"])
    assert len(set(labels)) == 5  # Plotly would merge equal category names
    assert [label.replace("\u200b", "") for label in labels] == ["a", "␣", "a", "␣", "a"]


# -- attention ----------------------------------------------------------------------------------------------


def test_attention_heatmap_has_token_axes():
    tokens = list("hello")
    fig = viz.attention_heatmap(causal_uniform(1, 1, 5)[0, 0], tokens, title="Layer 0, head 0")
    assert isinstance(fig, go.Figure)
    (trace,) = fig.data
    assert isinstance(trace, go.Heatmap)
    assert np.asarray(trace.z).shape == (5, 5)
    assert len(trace.x) == len(trace.y) == 5
    assert trace.x[2].replace("\u200b", "") == "l" and trace.x[3].replace("\u200b", "") == "l"
    assert "key" in fig.layout.xaxis.title.text and "query" in fig.layout.yaxis.title.text
    assert fig.layout.yaxis.autorange == "reversed"  # first token at the top, like reading
    assert fig.layout.title.text == "Layer 0, head 0"


def test_attention_heatmap_rejects_mismatched_tokens():
    with pytest.raises(ValueError):
        viz.attention_heatmap(np.zeros((3, 3)), ["a", "b"])


def test_attention_grid_has_one_heatmap_per_head_and_frames_the_selection():
    fig = viz.attention_grid(causal_uniform(2, 3, 6), selected=(1, 2))
    heatmaps = [t for t in fig.data if isinstance(t, go.Heatmap)]
    assert len(heatmaps) == 6
    assert all(np.asarray(t.z).shape == (6, 6) for t in heatmaps)
    assert all(t.coloraxis == "coloraxis" for t in heatmaps)  # one shared colour scale
    assert len(fig.layout.shapes) == 1 and fig.layout.shapes[0].xref == "x6 domain"
    titles = {a.text for a in fig.layout.annotations}
    assert {"head 0", "head 2", "layer 0", "layer 1"} <= titles


def test_attention_grid_block_averages_long_texts():
    fig = viz.attention_grid(causal_uniform(4, 4, 200), max_cells=16 * 50 * 50)
    z = np.asarray(fig.data[0].z)
    assert z.shape == (50, 50)
    assert "averaged" in fig.layout.title.text


def test_pool_square_keeps_the_mean():
    a = np.random.default_rng(0).random((2, 8, 8)).astype(np.float32)
    pooled = viz.pool_square(a, 4)
    assert pooled.shape == (2, 4, 4)
    assert np.allclose(pooled.mean(axis=(-1, -2)), a.mean(axis=(-1, -2)), atol=1e-6)
    assert np.allclose(pooled[0, 0, 0], a[0, :2, :2].mean())
    assert viz.pool_square(a, 16).shape == (2, 8, 8)  # never upsamples


def test_head_summary_figure_shows_two_layer_by_head_maps():
    fig = viz.head_summary_figure(np.ones((3, 4)), np.full((3, 4), 2.0), max_entropy=math.log(10))
    assert [type(t) for t in fig.data] == [go.Heatmap, go.Heatmap]
    assert all(np.asarray(t.z).shape == (3, 4) for t in fig.data)
    assert list(fig.data[0].x) == ["head 0", "head 1", "head 2", "head 3"]
    assert list(fig.data[0].y) == ["layer 0", "layer 1", "layer 2"]


# -- recurrent ----------------------------------------------------------------------------------------------


def test_state_heatmap_is_units_by_time_with_the_right_colour_scale():
    values = np.linspace(0, 1, 5 * 7).reshape(5, 7)  # [T=5, units=7]
    gate = viz.state_heatmap(values, list("abcde"), "forget", highlight_unit=3)
    (trace,) = gate.data
    assert np.asarray(trace.z).shape == (7, 5)
    assert (trace.zmin, trace.zmax) == (0.0, 1.0)
    assert "time" in gate.layout.xaxis.title.text and gate.layout.yaxis.title.text == "unit"
    assert len(gate.layout.shapes) == 1  # the chosen unit is marked
    hidden = viz.state_heatmap(values * 2 - 1, list("abcde"), "hidden")
    assert hidden.data[0].zmid == 0.0 and (hidden.data[0].zmin, hidden.data[0].zmax) == (-1.0, 1.0)
    cell = viz.state_heatmap(values * 6 - 3, list("abcde"), "cell")
    assert cell.data[0].zmax == pytest.approx(3.0)  # unbounded state: symmetric around its largest value


def test_unit_line_plots_one_value_per_token():
    fig = viz.unit_line(np.array([0.1, -0.2, 0.3]), list("abc"), unit=4, name="cell")
    assert isinstance(fig.data[0], go.Scatter) and len(fig.data[0].y) == 3
    assert "Unit 4" in fig.layout.title.text


def test_saturation_figure_has_two_histograms_per_gate():
    shares = {g: (np.array([0.0, 0.5, 1.0]), np.array([0.2, 0.2, 0.0])) for g in ("input", "forget")}
    fig = viz.saturation_figure(shares)
    assert [type(t) for t in fig.data] == [go.Histogram] * 4
    assert {a.text for a in fig.layout.annotations} >= {"input gate (i)", "forget gate (f)"}
    assert fig.layout.xaxis.title.text == "share of steps"


# -- n-gram -------------------------------------------------------------------------------------------------


def test_smoothing_bars_one_chart_per_method():
    comparison = {"mle": [(1, "a", 0.7), (2, " ", 0.3)], "kneser_ney": [(1, "a", 0.5), (2, " ", 0.2), (3, "b", 0.1)]}
    fig = viz.smoothing_bars(comparison)
    bars = [t for t in fig.data if isinstance(t, go.Bar)]
    assert len(bars) == 2
    assert list(bars[0].x) == [0.7, 0.3] and bars[0].orientation == "h"
    assert bars[1].y[1] == "␣"
    assert {a.text for a in fig.layout.annotations} >= {"MLE (no smoothing)", "Kneser-Ney"}


def test_order_chart_draws_infinite_scores_on_a_ceiling():
    scores = [OrderScore(n, s, (math.inf if s == "mle" and n > 1 else 5.0 - n * 0.5), 1.0)
              for n in (1, 2, 3) for s in ("mle", "addk", "kneser_ney")]
    fig = viz.order_chart(scores)
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert [t.name for t in lines] == ["MLE (no smoothing)", "add-k", "Kneser-Ney"]
    assert list(lines[0].y) == [4.5, None, None]  # a line cannot go to infinity ...
    infinite = [t for t in fig.data if t.mode == "markers+text"]
    assert len(infinite) == 1 and list(infinite[0].x) == [2, 3] and set(infinite[0].text) == {"∞"}
    assert min(infinite[0].y) > 4.5  # ... so infinite points sit above every finite one
    assert "bits per character" in fig.layout.yaxis.title.text


def test_order_chart_without_infinite_scores_has_no_ceiling():
    fig = viz.order_chart([OrderScore(n, "kneser_ney", 3.0 / n, 2.0) for n in (1, 2, 3)])
    assert len(fig.data) == 1 and not fig.layout.shapes


# -- HTML ---------------------------------------------------------------------------------------------------


def test_tokens_html_escapes_token_text():
    out = viz.tokens_html(["<script>", "alert(1)", "</script>", " & $x$"], [1, 0.5, 0.2, 0.1])
    assert "<script>" not in out and "</script>" not in out
    assert "&lt;script&gt;" in out and "&amp;" in out
    assert "$" not in out  # '$' would start maths in Streamlit's markdown


def test_tokens_html_titles_are_escaped_too():
    out = viz.tokens_html(["a"], [1.0], titles=['x" onmouseover="alert(1)'])
    assert 'onmouseover="' not in out and "&quot;" in out


def test_tokens_html_keeps_line_breaks_without_blank_lines():
    out = viz.tokens_html(["a", "\n", "\n", "b"], mode="alternate")
    assert "\n" not in out  # a blank line would end Streamlit's HTML block
    assert out.count("<br>") == 2 and out.count("↵") == 2


def test_tokens_html_colours():
    seq = viz.tokens_html(["a", "b"], [1.0, 0.5], "sequential")
    alphas = [float(a) for a in re.findall(r"rgba\(\d+,\d+,\d+,([0-9.]+)\)", seq)]
    assert alphas[0] == pytest.approx(0.9) and alphas[1] == pytest.approx(0.45)
    div = viz.tokens_html(["a", "b"], [0.8, -0.8], "diverging")
    assert "rgba(%d,%d,%d" % viz.POSITIVE_RGB in div and "rgba(%d,%d,%d" % viz.NEGATIVE_RGB in div
    alt = viz.tokens_html(["a", "b", "c"], mode="alternate")
    assert alt.count(viz.PASTELS[0]) == 2 and alt.count(viz.PASTELS[2]) == 1
    assert "outline" in viz.tokens_html(["a", "b"], [1, 1], highlight=1)
    assert viz.tokens_html(["a", "", "b"], [1, 1, 1]).count("<span style=\"background") == 2  # half a char: skipped
    with pytest.raises(ValueError):
        viz.tokens_html(["a"], [1, 2])


def test_attention_and_unit_text_views():
    att = viz.attention_text_html(["x", "<y>", "z"], np.array([0.25, 0.5, 0.0]), chosen=1)
    assert "&lt;y&gt;" in att and "weight 0.500" in att and "outline" in att
    unit = viz.unit_text_html(["a", "b"], np.array([0.5, -1.0]), "hidden", 3)
    assert "hidden[3] = -1.000" in unit and "rgba(%d,%d,%d" % viz.NEGATIVE_RGB in unit
    gate = viz.unit_text_html(["a", "b"], np.array([0.5, 1.0]), "forget", 3)
    assert "rgba(%d,%d,%d" % viz.SEQUENTIAL_RGB in gate


def test_token_boundaries_and_vocab_chart():
    html = viz.token_boundaries_html(["<b>", "ok"], [7, 8])
    assert "&lt;b&gt;" in html and 'title="id 7"' in html
    fig = viz.vocab_length_chart([(256, 90), (512, 60), (1024, 45)], char_tokens=100)
    assert list(fig.data[0].x) == [256, 512, 1024] and list(fig.data[0].y) == [90, 60, 45]
    assert fig.layout.xaxis.type == "log" and len(fig.layout.shapes) == 1


# -- the generating and training pages ----------------------------------------------------------------------


def test_stage_figure_draws_each_stage_and_greys_what_a_knob_cut():
    view = StageView(token_ids=[4, 1, 7], pieces=[" ", "a", "\n"], stages=["model", "top-k"],
                     probs=[[0.5, 0.3, 0.2], [0.625, 0.375, 0.0]], kept=[[True] * 3, [True, True, False]],
                     kept_total=[9, 2], entropy_bits=[1.49, 0.95])
    fig = viz.stage_figure(view, SamplingSettings(top_k=2))
    model, top_k = fig.data
    assert list(model.y) == [0.5, 0.3, 0.2] and set(model.marker.color) == {viz.STAGE_COLOURS["model"]}
    assert list(top_k.y) == [0.625, 0.375, 0.2]  # a cut token keeps its height from before the cut ...
    assert list(top_k.marker.color) == [viz.STAGE_COLOURS["top-k"]] * 2 + [viz.CUT_COLOUR]  # ... in grey
    assert "cut by top-k" in top_k.hovertext[2] and "cut" not in top_k.hovertext[0]
    assert list(fig.layout.xaxis2.ticktext) == ["␣", "a", "↵"]
    titles = [a.text for a in fig.layout.annotations]
    assert titles[0].startswith("the model's distribution — 9 tokens left, 1.49 bits")
    assert titles[1].startswith("after top-k (k = 2) — 2 tokens left")


def test_cross_score_heatmap_labels_rows_and_columns_and_marks_unscored_texts():
    fig = viz.cross_score_heatmap(["ng", "lstm"], [[1.0, None], [2.5, 1.25]])
    (trace,) = fig.data
    assert list(trace.x) == ["scored by ng", "scored by lstm"] and list(trace.y) == ["text by ng", "text by lstm"]
    assert [list(row) for row in trace.z] == [[1.0, None], [2.5, 1.25]]
    assert [list(row) for row in trace.text] == [["1.00", "—"], ["2.50", "1.25"]]
    assert fig.layout.yaxis.autorange == "reversed"  # the first model's text on top
    assert viz.cross_score_heatmap(["a", "b", "c"], [[1.0] * 3] * 3).layout.height > fig.layout.height


def test_surprisal_figure_spreads_each_token_over_its_characters():
    text = "ab c"
    fig = viz.surprisal_figure(text, {
        "bpe": [{"start": 0, "end": 2, "piece": "ab", "bits": 4.0}, {"start": 2, "end": 2, "piece": "?", "bits": 9.0},
                {"start": 2, "end": 4, "piece": " c", "bits": 1.0}],
        "char": [{"start": i, "end": i + 1, "piece": c, "bits": float(i)} for i, c in enumerate(text)],
    })
    bpe, char = fig.data
    assert (bpe.name, char.name) == ("bpe", "char") and bpe.line.color != char.line.color
    assert list(bpe.x) == [0, 1, 2, 3] and list(bpe.y) == [2.0, 2.0, 0.5, 0.5]  # a token covering no character: no point
    assert list(char.y) == [0.0, 1.0, 2.0, 3.0]
    assert bpe.hovertext[0] == "'a' in token 'ab': 4.00 bits"
    assert list(fig.layout.xaxis.ticktext) == ["a", "b", "␣", "c"]
    assert fig.layout.yaxis.title.text == "surprisal (bits per character)"


def test_loss_figure_draws_the_curves_a_job_has():
    fig = viz.loss_figure([(0, 3.0), (10, 2.0), (20, 1.5)], [(10, 2.2, 3.1)])
    train, valid = fig.data
    assert (train.name, valid.name) == ("training loss", "validation loss")
    assert list(train.x) == [0, 10, 20] and list(train.y) == [3.0, 2.0, 1.5]
    assert list(valid.x) == [10] and list(valid.y) == [2.2] and valid.mode == "lines+markers"
    assert fig.layout.xaxis.title.text == "step" and "loss" in fig.layout.yaxis.title.text
    assert [t.name for t in viz.loss_figure([(0, 3.0)], []).data] == ["training loss"]


def test_token_labels_escape_markup_plotly_would_render():
    labels = viz.token_labels(["<b>x", '<a href="h">', "a&b", "plain"])
    assert labels == ["&lt;b&gt;x", '&lt;a␣href="h"&gt;', "a&amp;b", "plain"]  # ␣: visible spaces
