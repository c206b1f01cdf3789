"""Charts of the generating and training pages: the knobs' effect on the next-token distribution and a coloured
text's rank and probability histograms (Playground), who is surprised by whom and surprisal along a text
(Compare), the loss curves (Train), and tokens needed against vocabulary size (Tokenizers).

Token and model names reach Plotly's labels HTML-escaped (`_label`): Plotly reads `<b>`, `<br>` and `<a href>` in
any label as markup, and a token of a model trained on a student's text may be exactly that.

The Playground, Compare and Train charts keep Streamlit's theme (the pages draw them without `theme=None`),
so they set only their size and margins, not `TEMPLATE`.

Titles, axes, legends and hover text are written in the current language (`lm.i18n`); Plotly's own placeholders
(`%{y}`) go into a translated text as the values of its named ones, so a translation can move them.
"""

from __future__ import annotations

import html
from typing import Any, Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lm.i18n import N_, _, ngettext
from lm.viz.style import _style, visible
from lm.viz.tokens import RankBin, rank_bin

STAGE_TITLES = {"model": N_("the model's distribution"), "valid UTF-8": N_("valid UTF-8"),
                "repetition penalty": N_("after the repetition penalty"),
                "temperature": N_("after temperature"), "top-k": N_("after top-k"), "top-p": N_("after top-p"),
                "min-p": N_("after min-p")}
STAGE_COLOURS = {"model": "#4C78A8", "repetition penalty": "#9D755D", "temperature": "#F58518",
                 "top-k": "#54A24B", "top-p": "#B279A2", "min-p": "#E45756"}
CUT_COLOUR = "#D3D3D3"  # a token a knob cut off: drawn at its height before the cut, in grey
MODEL_COLOURS = ("#4C78A8", "#F58518", "#54A24B", "#B279A2")  # one per compared model, in order
LOSS_COLOURS = {"train": "#4C78A8", "valid": "#F58518"}


def _label(text: str) -> str:
    """Text for a Plotly label or hover: shown as written, never read as Plotly's HTML subset."""
    return html.escape(text, quote=False)


def stage_figure(view, settings) -> go.Figure:
    """One bar chart per stage of the sampling pipeline, over the same tokens, stacked top to bottom.

    `view` is an `lm.app.playground.StageView` (stages, pieces, probs, kept, kept_total, entropy_bits);
    `settings` the `SamplingSettings` whose knob values go into the titles. Every stage shares one y-axis, so a
    knob that flattens the distribution (a high temperature) looks flatter than the model's own.
    """
    knob = {"temperature": f" (T = {settings.temperature:g})", "top-k": f" (k = {settings.top_k})",
            "top-p": f" (p = {settings.top_p:g})", "min-p": f" (min-p = {settings.min_p:g})",
            "repetition penalty": f" ({settings.repetition_penalty:g})"}
    titles = [ngettext("{stage}{knob} — {count:,} token left, {bits:.2f} bits of entropy",
                       "{stage}{knob} — {count:,} tokens left, {bits:.2f} bits of entropy", n).format(
        stage=_(STAGE_TITLES.get(s, s)), knob=knob.get(s, ""), count=n, bits=max(0.0, h))
        for s, n, h in zip(view.stages, view.kept_total, view.entropy_bits)]
    fig = make_subplots(rows=len(view.stages), cols=1, shared_xaxes=True, subplot_titles=titles,
                        vertical_spacing=0.22 / len(view.stages))
    x = list(range(len(view.pieces)))
    labels = [_label(visible(p, None)) for p in view.pieces]
    top = 0.0
    for row, stage in enumerate(view.stages):
        before = view.probs[row - 1] if row else view.probs[0]
        heights = [p if keep else b for p, b, keep in zip(view.probs[row], before, view.kept[row])]
        top = max([top, *heights])
        colours = [STAGE_COLOURS.get(stage, "#4C78A8") if keep else CUT_COLOUR for keep in view.kept[row]]
        cut = _(" — cut by {stage}").format(stage=stage)
        hover = [f"'{label}': {q:.2%}" + ("" if keep else cut)
                 for label, q, keep in zip(labels, view.probs[row], view.kept[row])]
        fig.add_trace(go.Bar(x=x, y=heights, marker_color=colours, hovertext=hover, hoverinfo="text",
                             name=stage, showlegend=False), row=row + 1, col=1)
    fig.update_yaxes(tickformat=".0%", range=[0, min(1.0, top * 1.08) or 1.0])  # one scale for every stage
    fig.update_xaxes(tickmode="array", tickvals=x, ticktext=labels, tickfont_size=16)
    fig.update_layout(height=170 * len(view.stages) + 60, margin=dict(l=10, r=10, t=40, b=10), bargap=0.15)
    return fig


def gltr_histograms(ranks: Sequence[int], probs: Sequence[float], bins: Sequence[RankBin]) -> go.Figure:
    """GLTR's two histograms of a text: how many tokens fall in each rank bin (in the bins' colours), and the
    probabilities the model gave the tokens (a human's text has more low ones than a model's own)."""
    counts = [0] * len(bins)
    for rank in ranks:
        counts[rank_bin(rank, bins)] += 1
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12,
                        subplot_titles=(_("tokens per rank"), _("probability the model gave each token")))
    fig.add_trace(go.Bar(x=[b.label for b in bins], y=counts, marker_color=[b.colour for b in bins],
                         marker_line=dict(color="#868e96", width=1), text=counts, textposition="outside",
                         hovertemplate=_("{bin}: {count} tokens").format(bin="%{x}", count="%{y}") + "<extra></extra>",
                         showlegend=False), row=1, col=1)
    fig.add_trace(go.Histogram(x=list(probs), xbins=dict(start=0.0, end=1.0, size=0.1), marker_color="#4C78A8",
                               hovertemplate=_("p in {range}: {count} tokens").format(range="%{x}", count="%{y}")
                               + "<extra></extra>", showlegend=False), row=1, col=2)
    fig.update_xaxes(title=_("probability"), range=[0, 1], tickformat=".0%", row=1, col=2)
    fig.update_yaxes(title=_("tokens"), rangemode="tozero", row=1, col=1)
    fig.update_yaxes(rangemode="tozero", row=1, col=2)
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=40, b=10), bargap=0.1)
    return fig


def cross_score_heatmap(names: Sequence[str], matrix: Sequence[Sequence[float | None]]) -> go.Figure:
    """matrix[i][j] = bits per character of model i's text under model j (None: could not be scored)."""
    text = [[("—" if v is None else f"{v:.2f}") for v in row] for row in matrix]
    fig = go.Figure(go.Heatmap(
        z=[list(row) for row in matrix], x=[_("scored by {model}").format(model=_label(n)) for n in names],
        y=[_("text by {model}").format(model=_label(n)) for n in names], text=text, texttemplate="%{text}",
        textfont_size=18, colorscale="Viridis", reversescale=True, colorbar_title=_("bits/char"),
        hovertemplate="%{y}<br>%{x}<br>" + _("{bits} bits/char").format(bits="%{z:.3f}") + "<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(height=110 + 90 * len(names), margin=dict(l=10, r=10, t=30, b=10))
    return fig


def surprisal_figure(text: str, surprisal: Mapping[str, Sequence[Mapping[str, Any]]]) -> go.Figure:
    """Per-character surprisal of `text` under each model, one step line per model on character positions.

    `surprisal` maps a model name to its tokens as dicts with the fields of `lm.app.compare.CharSurprisal`
    (start, end, piece, bits): a token's surprisal is spread evenly over the characters it covers.
    """
    fig = go.Figure()
    line = _("{char} in token {piece}: {bits:.2f} bits")
    for i, (name, tokens) in enumerate(surprisal.items()):
        xs, ys, hover = [], [], []
        for tok in tokens:
            for pos in range(tok["start"], tok["end"]):
                xs.append(pos)
                ys.append(tok["bits"] / max(1, tok["end"] - tok["start"]))
                hover.append(_label(line.format(char=repr(text[pos]), piece=repr(tok["piece"]), bits=tok["bits"])))
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line_shape="hv", name=_label(name), line_width=2.5,
                                 line_color=MODEL_COLOURS[i % len(MODEL_COLOURS)], hovertext=hover,
                                 hoverinfo="text+name"))
    fig.update_xaxes(title=_("character position"), tickmode="array", tickvals=list(range(len(text))),
                     ticktext=[_label(visible(c)) for c in text], tickangle=0,
                     tickfont_size=13 if len(text) <= 90 else 8)
    fig.update_yaxes(title=_("surprisal (bits per character)"), rangemode="tozero")
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=30, b=10), legend_orientation="h", legend_y=1.12)
    return fig


def loss_figure(train: Sequence[Sequence[float]], valid: Sequence[Sequence[float]]) -> go.Figure:
    """Training and validation loss against the step; points are (step, loss, ...) as a job's history keeps them."""
    fig = go.Figure()
    if train:
        fig.add_trace(go.Scatter(x=[p[0] for p in train], y=[p[1] for p in train], mode="lines",
                                 name=_("training loss"), line_color=LOSS_COLOURS["train"]))
    if valid:
        fig.add_trace(go.Scatter(x=[p[0] for p in valid], y=[p[1] for p in valid], mode="lines+markers",
                                 name=_("validation loss"), line_color=LOSS_COLOURS["valid"]))
    fig.update_xaxes(title=_("step"), rangemode="tozero")
    fig.update_yaxes(title=_("loss (nats per token)"))
    fig.update_layout(height=360, margin=dict(l=10, r=10, t=30, b=10), legend_orientation="h", legend_y=1.12)
    return fig


def vocab_length_chart(rows: Sequence[tuple[int, int]], char_tokens: int | None = None) -> go.Figure:
    """Tokens needed for one text against BPE vocabulary size (x on a log2 scale)."""
    xs = [v for v, _n in rows]
    ys = [n for _v, n in rows]
    fig = go.Figure(go.Scatter(x=xs, y=ys, mode="lines+markers+text", name=_("byte-level BPE"),
                               text=[str(n) for n in ys], textposition="top right",
                               line=dict(color="#1c7ed6", width=3), marker=dict(size=10),
                               hovertemplate=_("vocabulary {size}: {count} tokens").format(size="%{x}", count="%{y}")
                               + "<extra></extra>"))
    if char_tokens is not None:
        fig.add_hline(y=char_tokens, line=dict(color="#e8590c", dash="dash"),
                      annotation_text=_("one token per character: {count}").format(count=char_tokens),
                      annotation_position="top right")
    top = max([*ys, char_tokens or 0, 1])
    fig.update_xaxes(title=_("BPE vocabulary size"), type="log", tickvals=xs, ticktext=[str(x) for x in xs])
    fig.update_yaxes(title=_("tokens for this text"), range=[0, top * 1.2])
    return _style(fig, 380, _("Bigger vocabulary, shorter sequences"))
