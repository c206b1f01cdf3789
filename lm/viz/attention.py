"""A Transformer's attention: one head as a heatmap, every head as small multiples, per-head summaries, and
one token's attention painted on the text.

Heatmaps put the first token at the top-left, like reading the text. Their words are in the current language
(`lm.i18n`), a title included (`_()` leaves a caller's own text as it is).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lm.i18n import N_, _
from lm.inspect import painted_by
from lm.viz.style import GRID_TEMPLATE, _arr, _style, token_labels
from lm.viz.tokens import tokens_html

MAX_GRID_CELLS = 60_000  # heat-map cells drawn in the all-heads grid; larger maps are block-averaged


def attention_heatmap(weights, tokens: Sequence[str], query_tokens: Sequence[str] | None = None,
                      title: str | None = N_("Attention")) -> go.Figure:
    """One head: rows are queries (the token doing the looking), columns are keys (the tokens looked at).

    `weights` is [queries, keys]; `tokens` labels the keys and, unless `query_tokens` is given, the queries.
    """
    title = _(title) if title else title
    w = _arr(weights)
    keys = token_labels(tokens)
    queries = token_labels(query_tokens if query_tokens is not None else tokens)
    if w.shape != (len(queries), len(keys)):
        raise ValueError(f"weights {w.shape} do not match {len(queries)} query and {len(keys)} key tokens")
    fig = go.Figure(go.Heatmap(
        z=w, x=keys, y=queries, zmin=0.0, zmax=1.0, colorscale="Oranges", colorbar=dict(title=_("weight")),
        hovertemplate="<br>".join([_("query {token}").format(token="%{y}"), _("key {token}").format(token="%{x}"),
                                   _("weight {weight}").format(weight="%{z:.3f}")]) + "<extra></extra>",
        xgap=0, ygap=0,
    ))
    side = max(420, min(900, 22 * len(queries) + 160))
    fig.update_xaxes(title=_("key (attended to)"), tickangle=-60, side="top", type="category")
    fig.update_yaxes(title=_("query (attending)"), autorange="reversed", type="category")
    _style(fig, side, title)
    # the keys' labels and axis title sit above the map: the figure title goes on its own line above them
    return fig.update_layout(margin_t=120, title=dict(yref="container", y=0.995, yanchor="top")) if title else fig


def pool_square(matrix: np.ndarray, side: int) -> np.ndarray:
    """Block-average the last two axes of [..., T, T] down to [..., side, side] (no-op when T <= side)."""
    m = _arr(matrix)
    T = m.shape[-1]
    if T <= side:
        return m
    edges = np.linspace(0, T, side + 1).round().astype(int)
    starts = edges[:-1]
    counts = np.diff(edges).astype(np.float32)
    m = np.add.reduceat(m, starts, axis=-1) / counts
    return np.add.reduceat(m, starts, axis=-2) / counts[:, None]


def attention_grid(attention, selected: tuple[int, int] | None = None, max_cells: int = MAX_GRID_CELLS) -> go.Figure:
    """All heads of all layers as small multiples (rows: layers, columns: heads), one colour scale.

    Long texts are block-averaged so the grid stays light; `selected` (layer, head) gets a frame.
    """
    a = _arr(attention)
    if a.ndim != 4:
        raise ValueError(f"expected attention [layers, heads, T, T], got shape {a.shape}")
    layers, heads, T = a.shape[:3]
    side = max(8, int(math.sqrt(max_cells / (layers * heads))))
    pooled = pool_square(a, side)
    fig = make_subplots(rows=layers, cols=heads, horizontal_spacing=0.01 if heads > 8 else 0.02,
                        vertical_spacing=0.01 if layers > 8 else 0.03,
                        column_titles=[_("head {head}").format(head=h) for h in range(heads)],
                        row_titles=[_("layer {layer}").format(layer=l) for l in range(layers)])
    cells = [(layer, head) for layer in range(layers) for head in range(heads)]
    where, weight = _("layer {layer}, head {head}"), _("weight {weight}").format(weight="%{z:.2f}")
    fig.add_traces([go.Heatmap(z=pooled[l, h], coloraxis="coloraxis",
                               hovertemplate=f"{where.format(layer=l, head=h)}<br>{weight}<extra></extra>")
                    for l, h in cells], rows=[l + 1 for l, _h in cells], cols=[h + 1 for _l, h in cells])
    fig.update_layout(coloraxis=dict(colorscale="Oranges", cmin=0, cmax=1, colorbar=dict(title=_("weight"))))
    if selected is not None:
        layer, head = selected
        if 0 <= layer < layers and 0 <= head < heads:
            n = layer * heads + head + 1
            suffix = "" if n == 1 else str(n)
            fig.add_shape(type="rect", xref=f"x{suffix} domain", yref=f"y{suffix} domain", x0=0, x1=1, y0=0, y1=1,
                          line=dict(color="#1c7ed6", width=3))
    side = pooled.shape[-1]
    title = (_("Every head, {count} tokens (averaged into {side}×{side} blocks)") if side < T else
             _("Every head, {count} tokens")).format(count=T, side=side)
    cell = 110 if heads <= 8 else 70
    return _style(fig, max(300, min(1400, cell * layers + 80)), title, template=GRID_TEMPLATE)


def head_summary_figure(entropy, distance, max_entropy: float | None = None,
                        title: str | None = N_("Per-head summary")) -> go.Figure:
    """Two [layers, heads] heat maps side by side: mean attention entropy and mean attention distance.

    Each colour bar lies flat under its own map, so neither covers the other map's layer labels.
    """
    title = _(title) if title else title
    e, d = _arr(entropy), _arr(distance)
    layers, heads = e.shape
    spacing = 0.12
    fig = make_subplots(rows=1, cols=2, subplot_titles=(_("Entropy (nats): low = focused"),
                                                        _("Mean distance (tokens)")), horizontal_spacing=spacing)
    x = [_("head {head}").format(head=h) for h in range(heads)]
    y = [_("layer {layer}").format(layer=l) for l in range(layers)]
    width = (1 - spacing) / 2
    bar = dict(orientation="h", len=width * 0.9, yref="container", y=0.02, yanchor="bottom", thickness=14,
               title_side="right")
    fig.add_trace(go.Heatmap(z=e, x=x, y=y, colorscale="Blues", zmin=0, zmax=max_entropy, texttemplate="%{z:.2f}",
                             colorbar=dict(bar, x=width / 2, title_text=_("nats")),
                             hovertemplate="%{y}, %{x}<br>" + _("entropy {nats} nats").format(nats="%{z:.2f}")
                             + "<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Heatmap(z=d, x=x, y=y, colorscale="Greens", zmin=0, texttemplate="%{z:.1f}",
                             colorbar=dict(bar, x=1 - width / 2, title_text=_("tokens")),
                             hovertemplate="%{y}, %{x}<br>" + _("distance {count} tokens").format(count="%{z:.1f}")
                             + "<extra></extra>"), row=1, col=2)
    fig.update_yaxes(autorange="reversed")
    _style(fig, max(300, 45 * layers + 190), title)
    return fig.update_layout(margin_b=110)  # the head labels, then the colour bars under them


def attention_on_text(pieces: Sequence[str], weights, chosen: int) -> str:
    """The attention FROM token `chosen` painted on the text (HTML, every piece escaped).

    A character that a byte-level BPE split over several tokens is painted once, with the summed weight of
    its tokens (the attention the character got), and framed when `chosen` is one of them; its hover text
    names the tokens. Alpha = weight relative to the largest.
    """
    w = _arr(weights)
    owner = painted_by(pieces)
    painted = np.zeros(len(pieces), dtype=np.float32)
    np.add.at(painted, owner, w)
    first = {}
    for t, o in enumerate(owner):
        first.setdefault(o, t)
    one, many = _("token {token}: weight {weight:.3f}"), _("tokens {first}-{last} (one character): weight {weight:.3f}")
    titles = [one.format(token=t, weight=painted[t]) if first.get(t, t) == t else
              many.format(first=first[t], last=t, weight=painted[t]) for t in range(len(pieces))]
    vmax = float(painted.max()) if len(painted) and painted.max() > 0 else 1.0
    return tokens_html(pieces, painted, "sequential", vmax=vmax, highlight=owner[chosen] if 0 <= chosen < len(owner)
                       else None, titles=titles)
