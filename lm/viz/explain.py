""""Why this token?" figures: attribution on the text and as bars, the next-token distribution before and after
an ablation, the logit lens table, the Transformer's attention step by step, and the embedding projection.

Every token or model string reaches Plotly's labels escaped (`token_labels` escapes, `_label` the rest), titles
included (a title is plain text: the functions escape it), and the painted text goes through `tokens_html`,
which escapes every piece.
Attribution colours: red where a token made the explained token more likely, blue where it made it less
likely, the explained token framed. Titles, axes, legends and hover text are in the current language
(`lm.i18n`); the names of the lens's rows stay English in the data (`lm.inspect.lens`) and are translated here.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lm.i18n import N_, _
from lm.viz.charts import MODEL_COLOURS, _label
from lm.viz.style import _style, token_labels, visible
from lm.viz.tokens import tokens_html

CLASS_COLOURS = {N_("vowel"): "#e8590c", N_("consonant"): "#1c7ed6", N_("capital"): "#2f9e44", N_("digit"): "#ae3ec9",
                 N_("punctuation"): "#f59f00", N_("whitespace"): "#868e96", N_("other"): "#0ca678"}  # legend: _(key)
POINT_LABELS = 120  # embedding points that get a text label (the most frequent, or all of a small vocabulary)


def _title(title: str | None) -> str | None:
    return None if title is None else _label(title)


def _row_name(name: str) -> str:
    """A lens or residual-stream row ("embeddings", "layer 2", "layer 2 attention", "layer 2 MLP") in the current
    language; any other name as it is."""
    if name == "embeddings":
        return _("embeddings")
    word, _sep, rest = name.partition(" ")
    number, _sep, part = rest.partition(" ")
    templates = {"": N_("layer {layer}"), "attention": N_("layer {layer} attention"), "MLP": N_("layer {layer} MLP")}
    if word == "layer" and number.isdigit() and part in templates:
        return _(templates[part]).format(layer=int(number))
    return name


def _finite_scale(values: np.ndarray) -> float:
    finite = np.abs(values[np.isfinite(values)])
    return float(finite.max()) if finite.size and finite.max() > 0 else 1.0


def attribution_html(pieces: Sequence[str], values, position: int, unit: str = N_("nats")) -> str:
    """The text with each context token painted by its attribution (one value per token before `position`);
    the explained token framed, later tokens plain. Infinite values (an MLE n-gram) paint at full strength."""
    v = np.asarray(values, dtype=np.float64)
    if v.shape != (position,):
        raise ValueError(f"{position} context tokens but {v.shape} values")
    scale = _finite_scale(v)
    painted = np.zeros(len(pieces))
    painted[:position] = np.clip(v, -scale, scale)
    before, after = _("token {token}: {value:+.3f} {unit}"), _("token {token}: after the explained token")
    unit = _(unit)
    titles = [before.format(token=t, value=v[t], unit=unit) if t < position else
              (_("the explained token") if t == position else after.format(token=t))
              for t in range(len(pieces))]
    return tokens_html(pieces, painted, "diverging", vmax=scale, highlight=position, titles=titles)


def attribution_bars(tokens: Sequence[str], methods: Mapping[str, Sequence[float]], title: str | None = None,
                     last: int = 40) -> go.Figure:
    """Each method's attribution of the last `last` context tokens as grouped bars (nats, oldest left)."""
    fig = go.Figure()
    count = len(tokens)
    start = max(0, count - last)
    labels = token_labels(tokens)[start:]
    hover = (_("token {index}: {token}").format(index="%{customdata}", token="%{x}") + "<br>"
             + _("{value} nats").format(value="%{y:+.3f}"))
    for i, (name, values) in enumerate(methods.items()):
        v = np.asarray(values, dtype=np.float64)[start:]
        fig.add_trace(go.Bar(x=labels, y=np.where(np.isfinite(v), v, np.nan), name=_label(name),
                             marker_color=MODEL_COLOURS[i % len(MODEL_COLOURS)],
                             customdata=list(range(start, count)),
                             hovertemplate=hover + "<extra>" + _label(name) + "</extra>"))
    fig.update_xaxes(type="category", tickangle=0 if len(labels) <= 30 else -60)
    fig.update_yaxes(title=_("nats (+ made it more likely)"), zeroline=True)
    fig.update_layout(barmode="group", legend_orientation="h", legend_y=1.15)
    return _style(fig, 320, _title(title))


def distribution_change(vocabulary: Sequence[str], before, after, k: int = 12, title: str | None = None) -> go.Figure:
    """The top next tokens before and after an ablation, side by side (the union of both top-k, by `before`)."""
    p, q = np.asarray(before, dtype=np.float64), np.asarray(after, dtype=np.float64)
    top = list(dict.fromkeys([*np.argsort(-p, kind="stable")[:k], *np.argsort(-q, kind="stable")[:k]]))[:2 * k]
    top.sort(key=lambda i: -p[i])
    labels = token_labels([vocabulary[i] for i in top])
    model, off = _("the model"), _("switched off")
    fig = go.Figure([go.Bar(x=labels, y=p[top], name=model, marker_color=MODEL_COLOURS[0],
                            hovertemplate=f"%{{x}}: %{{y:.2%}}<extra>{model}</extra>"),
                     go.Bar(x=labels, y=q[top], name=off, marker_color=MODEL_COLOURS[1],
                            hovertemplate=f"%{{x}}: %{{y:.2%}}<extra>{off}</extra>")])
    fig.update_xaxes(type="category")
    fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    fig.update_layout(barmode="group", legend_orientation="h", legend_y=1.15)
    return _style(fig, 300, _title(title))


def logit_lens_figure(lens, vocabulary: Sequence[str], tokens: Sequence[str], start: int = 0,
                      stop: int | None = None, title: str | None = None) -> go.Figure:
    """Layers x positions: each cell the top prediction after that layer (text) and its probability (colour);
    `start`/`stop` choose the positions shown (a long text is shown in a window)."""
    stop = lens.top_ids.shape[1] if stop is None else stop
    ids, probs = lens.top_ids[:, start:stop], lens.top_probs[:, start:stop]
    text = [[_label(visible(vocabulary[int(i)], 6)) for i in row[:, 0]] for row in ids]
    hover = [[_label("  ".join(f"{visible(vocabulary[int(i)], 12)} {p:.0%}" for i, p in zip(cell_ids, cell_probs)))
              for cell_ids, cell_probs in zip(row_ids, row_probs)] for row_ids, row_probs in zip(ids, probs)]
    columns = token_labels(tokens)[start:stop]
    fig = go.Figure(go.Heatmap(z=probs[:, :, 0], x=columns, y=[_row_name(n) for n in lens.layers], text=text,
                               customdata=hover, texttemplate="%{text}", textfont_size=13, zmin=0.0, zmax=1.0,
                               colorscale="Oranges", colorbar=dict(title="p(top)"),
                               hovertemplate=_("{layer}, after {token}").format(layer="%{y}", token="%{x}")
                               + "<br>%{customdata}<extra></extra>"))
    fig.update_xaxes(type="category", side="top", title=_("after this token"))
    fig.update_yaxes(type="category", autorange="reversed")
    return _style(fig, 120 + 42 * len(lens.layers), _title(title))


def _strip(z, y: Sequence[str], x=None, title: str | None = None, zmid: float | None = 0.0) -> go.Figure:
    z = np.atleast_2d(np.asarray(z, dtype=np.float64))
    bound = _finite_scale(z)
    fig = go.Figure(go.Heatmap(z=z, x=x, y=list(y), colorscale="RdBu", reversescale=True, zmid=zmid,
                               zmin=-bound, zmax=bound, hovertemplate="%{y}, %{x}: %{z:.3f}<extra></extra>"))
    fig.update_yaxes(type="category", autorange="reversed")
    return _style(fig, 110 + 26 * z.shape[0], title)


def steps_figures(steps, tokens: Sequence[str], vocabulary: Sequence[str], k: int = 10,
                  window: int = 12) -> dict[str, go.Figure]:
    """The step-by-step figures of an `lm.inspect.lens.TransformerSteps`, in the order of the computation:
    embedding, qkv (the keys and values of the last `window` tokens the query sees), scores (scaled, masked,
    softmax), weighted, mlp, residual, probabilities."""
    q = steps.position
    labels = token_labels(tokens)
    me = labels[q]
    out = {"embedding": _strip([steps.token_embedding, steps.position_embedding, steps.layer_input[q]],
                               [_("token {token}").format(token=me), _("position {position}").format(position=q),
                                _("layer input") if steps.layer else _("sum")],
                               title=_("1. Token + position embedding (columns: dimensions)"))}
    seen = slice(max(0, q + 1 - window), q + 1)
    q_of, k_of, v_of = _("Q of {token}"), _("K of {token}"), _("V of {token}")
    out["qkv"] = _strip(np.vstack([steps.query[None], steps.keys[seen], steps.values[seen]]),
                        [q_of.format(token=me)] + [k_of.format(token=t) for t in labels[seen]]
                        + [v_of.format(token=t) for t in labels[seen]],
                        title=_("2. Q of {token}; K and V of the last {count} tokens it sees (head {head})").format(
                            token=me, count=q + 1 - seen.start, head=steps.head))
    shown = labels[:q + 1]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.12,
                        subplot_titles=(_("3. Q·K / √d: scaled dot products (masked: the future, −∞)"),
                                        _("4. softmax: attention weights (they sum to 1)")))
    fig.add_trace(go.Bar(x=shown, y=steps.scores[:q + 1], marker_color=MODEL_COLOURS[0], showlegend=False,
                         hovertemplate="%{x}: %{y:.3f}<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Bar(x=shown, y=steps.weights[:q + 1], marker_color=MODEL_COLOURS[1], showlegend=False,
                         hovertemplate="%{x}: %{y:.1%}<extra></extra>"), row=2, col=1)
    fig.update_xaxes(type="category")
    fig.update_yaxes(tickformat=".0%", row=2, col=1)
    out["scores"] = _style(fig, 420)
    out["weighted"] = _strip([steps.head_output], [_("Σ weight × V")],
                             title=_("5. Head {head}'s output at {token}").format(head=steps.head, token=me))
    units, acts = zip(*steps.top_units) if steps.top_units else ((), ())
    unit = _("unit {unit}")
    fig = go.Figure(go.Bar(x=[unit.format(unit=u) for u in units], y=list(acts), marker_color=MODEL_COLOURS[2],
                           hovertemplate="%{x}: %{y:.3f}<extra></extra>"))
    fig.update_xaxes(type="category")
    out["mlp"] = _style(fig, 280, _("6. The MLP's most active units at {token} (layer {layer})").format(
        token=me, layer=steps.layer))
    names, norms = zip(*steps.residual_norms)
    fig = go.Figure(go.Scatter(x=[_row_name(n) for n in names], y=list(norms), mode="lines+markers",
                               line_color=MODEL_COLOURS[3], hovertemplate="%{x}: %{y:.2f}<extra></extra>"))
    fig.update_xaxes(type="category", tickangle=-30)
    fig.update_yaxes(title=_("L2 norm"), rangemode="tozero")
    out["residual"] = _style(fig, 300, _("7. The residual stream's size at {token} after each sub-layer").format(
        token=me))
    top = np.argsort(-steps.probs, kind="stable")[:k]
    fig = go.Figure(go.Bar(x=token_labels([vocabulary[i] for i in top]),
                           y=steps.probs[top], marker_color=MODEL_COLOURS[0],
                           hovertemplate="%{x}: %{y:.2%}<extra></extra>"))
    fig.update_xaxes(type="category")
    fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    out["probabilities"] = _style(fig, 280, _("8. The next-token probabilities after {token}").format(token=me))
    return out


def embedding_figure(projection, chosen: int | None = None, neighbours: Sequence[tuple[int, float]] = (),
                     title: str | None = None, labels: int = POINT_LABELS) -> go.Figure:
    """The PCA projection of an embedding table: one point per token, coloured by class (or, when frequencies are
    known and the vocabulary is large, by log frequency); `chosen` and its `neighbours` ringed."""
    xy, pieces = projection.xy, projection.pieces
    shown = [_label(visible(p, 8)) for p in pieces]
    fig = go.Figure()
    freq = projection.frequency
    ranked = np.argsort(-freq, kind="stable") if freq is not None else np.arange(len(pieces))
    text_ids = set(ranked[:labels].tolist())
    by_frequency = freq is not None and len(pieces) > 2 * labels
    if by_frequency:
        fig.add_trace(go.Scatter(x=xy[:, 0], y=xy[:, 1], mode="markers", showlegend=False,
                                 marker=dict(color=np.log10(freq + 1), colorscale="Viridis", size=6,
                                             colorbar=dict(title=_("log10 count"))),
                                 text=shown, hovertemplate="%{text}<extra></extra>"))
        idx = sorted(text_ids)
        fig.add_trace(go.Scatter(x=xy[idx, 0], y=xy[idx, 1], mode="text", text=[shown[i] for i in idx],
                                 textposition="top center", showlegend=False, hoverinfo="skip"))
    else:
        for name, colour in CLASS_COLOURS.items():
            idx = [i for i, c in enumerate(projection.classes) if c == name]
            if idx:
                fig.add_trace(go.Scatter(x=xy[idx, 0], y=xy[idx, 1], name=_(name), mode="markers+text",
                                         text=[shown[i] if i in text_ids else "" for i in idx],
                                         textposition="top center", marker=dict(color=colour, size=9),
                                         hovertext=[shown[i] for i in idx], hoverinfo="text+name"))
    if chosen is not None:
        ring = [chosen, *[i for i, _s in neighbours]]
        fig.add_trace(go.Scatter(x=xy[ring, 0], y=xy[ring, 1], mode="markers", name=_("chosen and neighbours"),
                                 marker=dict(size=18, color="rgba(0,0,0,0)", line=dict(color="#c92a2a", width=2)),
                                 hovertext=[shown[i] for i in ring], hoverinfo="text"))
    a, b = projection.explained
    fig.update_xaxes(title=_("PC 1 ({share:.0%} of the variance)").format(share=a))
    fig.update_yaxes(title=_("PC 2 ({share:.0%})").format(share=b))
    fig.update_layout(legend_orientation="h", legend_y=-0.2)
    return _style(fig, 520, _title(title))


__all__ = ["CLASS_COLOURS", "POINT_LABELS", "attribution_bars", "attribution_html", "distribution_change",
           "embedding_figure", "logit_lens_figure", "steps_figures"]
