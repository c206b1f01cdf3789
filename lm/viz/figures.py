"""Plotly figures and small HTML views of what `lm.inspect.text` computes: pure functions, no Streamlit.

Every view of the app's internals pages is built here from plain arrays and token strings, so a notebook
can draw the same picture (`fig.show()`), and tests can check the figures without a browser.

Conventions:
- token labels make whitespace visible (␣ space, ↵ line break, ⇥ tab) and are cut to a readable length;
  labels that repeat ("e", "␣") are made distinct with invisible zero-width spaces, so a categorical axis
  keeps one row/column per position (Plotly merges equal category names);
- heatmaps put the first token at the top-left, like reading the text;
- HTML views escape every piece of text (`html.escape`), so a token like "<script>" is shown, never run;
- sizes and fonts suit a classroom projector.

pandas is imported here on purpose: Plotly's validators look pandas up in `sys.modules` without importing it,
so in a server where another thread is still importing pandas they would find a half-initialised module
and fail ("partially initialized module 'pandas' has no attribute 'Series'"). Importing it at the top makes
this thread wait for the import to finish.
"""

from __future__ import annotations

import html
import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas  # noqa: F401  Plotly peeks at sys.modules["pandas"]: import it fully first (see below)
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lm.inspect import SIGMOID_STATES, TANH_STATES

FONT = dict(size=15)
MAX_LABEL_CHARS = 12
MAX_GRID_CELLS = 60_000  # heat-map cells drawn in the all-heads grid; larger maps are block-averaged
PASTELS = ("#ffd8a8", "#b2f2bb", "#a5d8ff", "#eebefa", "#ffec99", "#c3fae8", "#ffc9c9", "#d0bfff")
POSITIVE_RGB = (230, 80, 50)  # diverging views: positive values red ...
NEGATIVE_RGB = (40, 110, 220)  # ... negative values blue
SEQUENTIAL_RGB = (250, 140, 20)  # attention weights, probabilities: orange
SMOOTHING_LABELS = {"mle": "MLE (no smoothing)", "addk": "add-k", "kneser_ney": "Kneser-Ney",
                    "stupid_backoff": "stupid back-off", "interpolated": "interpolated", "backoff": "back-off"}
STATE_LABELS = {"input": "input gate (i)", "forget": "forget gate (f)", "cell_candidate": "candidate (g)",
                "output": "output gate (o)", "cell": "cell state (c)", "hidden": "hidden state (h)",
                "reset": "reset gate (r)", "update": "update gate (z)", "candidate": "candidate (n)"}
_VISIBLE = str.maketrans({" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍"})


def _arr(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def visible(token: str, max_chars: int = MAX_LABEL_CHARS) -> str:
    """A token as an axis label: whitespace made visible, long tokens cut with an ellipsis."""
    label = token.translate(_VISIBLE) or "∅"
    return label if len(label) <= max_chars else label[: max_chars - 1] + "…"


def token_labels(tokens: Sequence[str], max_chars: int = MAX_LABEL_CHARS) -> list[str]:
    """Visible labels, one distinct category per position (repeats get trailing zero-width spaces)."""
    seen: dict[str, int] = {}
    out = []
    for token in tokens:
        label = visible(token, max_chars)
        n = seen.get(label, 0)
        seen[label] = n + 1
        out.append(label + "\u200b" * n)
    return out


_AXIS = dict(gridcolor="#e9ecef", zerolinecolor="#ced4da", linecolor="#adb5bd", automargin=True)
# A small template of our own: assigning a named one ("plotly_white") deep-copies it, ~0.1 s per figure.
TEMPLATE = go.layout.Template(layout=dict(
    font=FONT, paper_bgcolor="white", plot_bgcolor="white", xaxis=_AXIS, yaxis=_AXIS, hoverlabel=dict(font_size=15),
    colorway=["#1c7ed6", "#e8590c", "#2f9e44", "#ae3ec9", "#f59f00", "#0ca678"]))


_BARE_AXIS = dict(showticklabels=False, showgrid=False, zeroline=False, ticks="")
# Small multiples: hiding the ticks of every subplot through the template costs nothing, per axis it is slow.
GRID_TEMPLATE = go.layout.Template(layout=dict(
    font=FONT, paper_bgcolor="white", plot_bgcolor="white", xaxis=_BARE_AXIS,
    yaxis=dict(_BARE_AXIS, autorange="reversed"), hoverlabel=dict(font_size=15)))  # first token at the top


def _style(fig: go.Figure, height: int, title: str | None = None, template=TEMPLATE) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=60 if title else 30, b=10), template=template)
    if title:
        fig.update_layout(title=dict(text=title, x=0, xanchor="left"))
    return fig


def _diverging_range(values: np.ndarray, bound: float | None) -> float:
    if bound is not None:
        return bound
    m = float(np.nanmax(np.abs(values))) if values.size else 1.0
    return m if m > 0 else 1.0


# -- attention ----------------------------------------------------------------------------------------------


def attention_heatmap(weights, tokens: Sequence[str], query_tokens: Sequence[str] | None = None,
                      title: str = "Attention") -> go.Figure:
    """One head: rows are queries (the token doing the looking), columns are keys (the tokens looked at).

    `weights` is [queries, keys]; `tokens` labels the keys and, unless `query_tokens` is given, the queries.
    """
    w = _arr(weights)
    keys = token_labels(tokens)
    queries = token_labels(query_tokens if query_tokens is not None else tokens)
    if w.shape != (len(queries), len(keys)):
        raise ValueError(f"weights {w.shape} do not match {len(queries)} query and {len(keys)} key tokens")
    fig = go.Figure(go.Heatmap(
        z=w, x=keys, y=queries, zmin=0.0, zmax=1.0, colorscale="Oranges", colorbar=dict(title="weight"),
        hovertemplate="query %{y}<br>key %{x}<br>weight %{z:.3f}<extra></extra>", xgap=0, ygap=0,
    ))
    side = max(420, min(900, 22 * len(queries) + 160))
    fig.update_xaxes(title="key (attended to)", tickangle=-60, side="top", type="category")
    fig.update_yaxes(title="query (attending)", autorange="reversed", type="category")
    return _style(fig, side, title)


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
    layers, heads, T, _ = a.shape
    side = max(8, int(math.sqrt(max_cells / (layers * heads))))
    pooled = pool_square(a, side)
    fig = make_subplots(rows=layers, cols=heads, horizontal_spacing=0.01 if heads > 8 else 0.02,
                        vertical_spacing=0.01 if layers > 8 else 0.03,
                        column_titles=[f"head {h}" for h in range(heads)],
                        row_titles=[f"layer {l}" for l in range(layers)])
    cells = [(layer, head) for layer in range(layers) for head in range(heads)]
    fig.add_traces([go.Heatmap(z=pooled[l, h], coloraxis="coloraxis",
                               hovertemplate=f"layer {l}, head {h}<br>weight %{{z:.2f}}<extra></extra>")
                    for l, h in cells], rows=[l + 1 for l, _ in cells], cols=[h + 1 for _, h in cells])
    fig.update_layout(coloraxis=dict(colorscale="Oranges", cmin=0, cmax=1, colorbar=dict(title="weight")))
    if selected is not None:
        layer, head = selected
        if 0 <= layer < layers and 0 <= head < heads:
            n = layer * heads + head + 1
            suffix = "" if n == 1 else str(n)
            fig.add_shape(type="rect", xref=f"x{suffix} domain", yref=f"y{suffix} domain", x0=0, x1=1, y0=0, y1=1,
                          line=dict(color="#1c7ed6", width=3))
    pooled_note = f" (averaged into {pooled.shape[-1]}×{pooled.shape[-1]} blocks)" if pooled.shape[-1] < T else ""
    cell = 110 if heads <= 8 else 70
    return _style(fig, max(300, min(1400, cell * layers + 80)), f"Every head, {T} tokens{pooled_note}",
                  template=GRID_TEMPLATE)


def head_summary_figure(entropy, distance, max_entropy: float | None = None,
                        title: str | None = "Per-head summary") -> go.Figure:
    """Two [layers, heads] heat maps side by side: mean attention entropy and mean attention distance."""
    e, d = _arr(entropy), _arr(distance)
    layers, heads = e.shape
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Entropy (nats): low = focused", "Mean distance (tokens)"),
                        horizontal_spacing=0.12)
    x = [f"head {h}" for h in range(heads)]
    y = [f"layer {l}" for l in range(layers)]
    fig.add_trace(go.Heatmap(z=e, x=x, y=y, colorscale="Blues", zmin=0, zmax=max_entropy, texttemplate="%{z:.2f}",
                             colorbar=dict(x=0.44, title="nats"),
                             hovertemplate="%{y}, %{x}<br>entropy %{z:.2f} nats<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Heatmap(z=d, x=x, y=y, colorscale="Greens", zmin=0, texttemplate="%{z:.1f}",
                             colorbar=dict(title="tokens"),
                             hovertemplate="%{y}, %{x}<br>distance %{z:.1f} tokens<extra></extra>"), row=1, col=2)
    fig.update_yaxes(autorange="reversed")
    return _style(fig, max(260, 45 * layers + 120), title)


# -- recurrent ----------------------------------------------------------------------------------------------


def state_colors(name: str, values: np.ndarray) -> dict[str, Any]:
    """Colour scale for one recurrent state: sequential 0..1 for gates, diverging around 0 otherwise."""
    if name in SIGMOID_STATES:
        return dict(colorscale="Viridis", zmin=0.0, zmax=1.0)
    bound = 1.0 if name in TANH_STATES else _diverging_range(values, None)
    return dict(colorscale="RdBu", reversescale=True, zmid=0.0, zmin=-bound, zmax=bound)


def state_heatmap(values, tokens: Sequence[str], name: str, title: str | None = None,
                  highlight_unit: int | None = None) -> go.Figure:
    """A recurrent state over time: values [T, units] drawn with time (tokens) across and units down."""
    v = _arr(values)
    if v.ndim != 2 or v.shape[0] != len(tokens):
        raise ValueError(f"expected values [T={len(tokens)}, units], got shape {v.shape}")
    units = v.shape[1]
    fig = go.Figure(go.Heatmap(
        z=v.T, x=token_labels(tokens), y=list(range(units)), colorbar=dict(title=name),
        hovertemplate="token %{x}<br>unit %{y}<br>value %{z:.3f}<extra></extra>", **state_colors(name, v),
    ))
    fig.update_xaxes(title="time (token read)", tickangle=-60, type="category")
    fig.update_yaxes(title="unit", autorange="reversed")
    if highlight_unit is not None and 0 <= highlight_unit < units:
        fig.add_hline(y=highlight_unit, line=dict(color="#f03e3e", width=1, dash="dot"))
    return _style(fig, max(360, min(900, 3 * units + 220)), title or f"{STATE_LABELS.get(name, name)} over time")


def unit_line(values, tokens: Sequence[str], unit: int, name: str) -> go.Figure:
    """One unit's activation over the text, as a line with token labels."""
    v = _arr(values)
    fig = go.Figure(go.Scatter(x=token_labels(tokens), y=v, mode="lines+markers", line=dict(color="#e8590c"),
                               hovertemplate="token %{x}<br>value %{y:.3f}<extra></extra>"))
    fig.update_xaxes(title="time (token read)", tickangle=-60, type="category")
    fig.update_yaxes(title=f"{name}[{unit}]", zeroline=True)
    return _style(fig, 300, f"Unit {unit} of the {STATE_LABELS.get(name, name)}")


def saturation_figure(shares: Mapping[str, tuple[Any, Any]], high: float = 0.9, low: float = 0.1,
                      title: str | None = "Gate saturation: how often each unit is (almost) fully open or shut"
                      ) -> go.Figure:
    """Per gate, histograms over units of the share of steps the gate spent above `high` and below `low`.

    Mass near 0 means units that rarely saturate; mass near 1 means a gate that is stuck open (or shut).
    """
    names = list(shares)
    fig = make_subplots(rows=1, cols=max(1, len(names)), subplot_titles=[STATE_LABELS.get(n, n) for n in names],
                        shared_yaxes=True, horizontal_spacing=0.04)
    bins = dict(start=0.0, end=1.0 + 1e-9, size=0.05)
    for i, name in enumerate(names):
        above, below = (_arr(s) for s in shares[name])
        fig.add_trace(go.Histogram(x=above, xbins=bins, name=f"> {high}", marker_color="#e8590c", opacity=0.75,
                                   legendgroup="high", showlegend=i == 0,
                                   hovertemplate=f"{name}: %{{y}} units spend %{{x}} of steps > {high}<extra></extra>"),
                      row=1, col=i + 1)
        fig.add_trace(go.Histogram(x=below, xbins=bins, name=f"< {low}", marker_color="#1c7ed6", opacity=0.75,
                                   legendgroup="low", showlegend=i == 0,
                                   hovertemplate=f"{name}: %{{y}} units spend %{{x}} of steps < {low}<extra></extra>"),
                      row=1, col=i + 1)
    fig.update_xaxes(title="share of steps", range=[0, 1])
    fig.update_yaxes(title="units", col=1)
    _style(fig, 400, title)
    return fig.update_layout(barmode="overlay", margin_t=110 if title else 80,
                             legend=dict(orientation="h", x=0, y=1.12, yanchor="bottom", title_text="steps "))


# -- n-gram -------------------------------------------------------------------------------------------------


def smoothing_bars(comparison: Mapping[str, Sequence[tuple[int, str, float]]]) -> go.Figure:
    """Side-by-side horizontal bar charts of the top next tokens under each smoothing method."""
    names = list(comparison)
    titles = [SMOOTHING_LABELS.get(n, n) for n in names]
    fig = make_subplots(rows=1, cols=max(1, len(names)), subplot_titles=titles, horizontal_spacing=0.08)
    top = 0.0
    for i, name in enumerate(names):
        rows = list(comparison[name])
        labels = token_labels([s for _, s, _ in rows], 16)
        probs = [p for _, _, p in rows]
        top = max([top, *probs])
        fig.add_trace(go.Bar(x=probs, y=labels, orientation="h", name=titles[i], showlegend=False,
                             marker_color=PASTELS[i % len(PASTELS)], marker_line=dict(color="#495057", width=1),
                             text=[f"{p:.2f}" for p in probs], textposition="auto",
                             hovertemplate="%{y}: p = %{x:.4f}<extra></extra>"), row=1, col=i + 1)
        fig.update_yaxes(autorange="reversed", type="category", row=1, col=i + 1)
    fig.update_xaxes(title="probability", range=[0, max(0.05, min(1.0, top * 1.1))])
    n = max((len(v) for v in comparison.values()), default=5)
    return _style(fig, max(300, 30 * n + 140), "Next-token distribution under each smoothing method")


def order_chart(scores: Iterable[Any], per: str = "character") -> go.Figure:
    """Held-out bits per character against n-gram order, one line per smoothing method.

    `scores` are `lm.inspect.text.OrderScore`s. Infinite scores (MLE meets an unseen n-gram) are drawn as ✕ on a
    dashed "∞" line above the finite ones.
    """
    scores = list(scores)
    finite = [s.bits_per_char for s in scores if math.isfinite(s.bits_per_char)]
    ceiling = (max(finite) * 1.15 if finite else 10.0)
    fig = go.Figure()
    for i, smoothing in enumerate(dict.fromkeys(s.smoothing for s in scores)):
        rows = [s for s in scores if s.smoothing == smoothing]
        orders = [s.order for s in rows]
        ys = [s.bits_per_char if math.isfinite(s.bits_per_char) else None for s in rows]
        label = SMOOTHING_LABELS.get(smoothing, smoothing)
        color = ("#e8590c", "#1c7ed6", "#2f9e44", "#ae3ec9")[i % 4]
        fig.add_trace(go.Scatter(x=orders, y=ys, mode="lines+markers", name=label, line=dict(color=color, width=3),
                                 marker=dict(size=9), hovertemplate=f"{label}<br>order %{{x}}: %{{y:.3f}} bits/{per}"
                                                                   "<extra></extra>"))
        inf_orders = [s.order for s in rows if not math.isfinite(s.bits_per_char)]
        if inf_orders:
            fig.add_trace(go.Scatter(x=inf_orders, y=[ceiling] * len(inf_orders), mode="markers+text",
                                     name=f"{label}: infinite", marker=dict(symbol="x", size=13, color=color),
                                     text=["∞"] * len(inf_orders), textposition="top center",
                                     hovertemplate=f"{label}<br>order %{{x}}: infinite (an unseen n-gram got p = 0)"
                                                   "<extra></extra>"))
    if any(not math.isfinite(s.bits_per_char) for s in scores):
        fig.add_hline(y=ceiling, line=dict(color="#868e96", dash="dash"), annotation_text="∞",
                      annotation_position="right")
    fig.update_xaxes(title="order n (tokens of context + 1)", dtick=1)
    fig.update_yaxes(title=f"held-out bits per {per} (lower is better)", rangemode="tozero")
    return _style(fig, 420, "Held-out score against n-gram order")


# -- HTML views of text ---------------------------------------------------------------------------------------


def _rgba(rgb: tuple[int, int, int], alpha: float) -> str:
    return f"rgba({rgb[0]},{rgb[1]},{rgb[2]},{max(0.0, min(1.0, alpha)):.3f})"


def _piece_html(piece: str) -> str:
    """Escaped text of one token on one HTML line: a line break shows as ↵ then <br>, '$' is not maths.

    The HTML must never contain a raw blank line: Streamlit's markdown would end the HTML block there and
    render the rest as markdown.
    """
    out = html.escape(piece, quote=True).replace("$", "&#36;").replace("\r", "")
    return out.replace("\n", '<span style="opacity:.45">↵</span><br>')


def _attr(text: str) -> str:
    return html.escape(text, quote=True).replace("\n", "&#10;").replace("\r", "").replace("$", "&#36;")


def tokens_html(pieces: Sequence[str], values: Sequence[float] | None = None, mode: str = "sequential",
                vmax: float | None = None, highlight: int | None = None, titles: Sequence[str] | None = None) -> str:
    """The text as coloured token spans (an HTML string; every piece is escaped).

    mode "sequential": background alpha = value / vmax (attention weights, probabilities);
    "diverging": red for positive, blue for negative, alpha = |value| / vmax (tanh states);
    "alternate": alternating pastel backgrounds that show token boundaries (values ignored).
    `highlight` frames one token; `titles` become hover tooltips.
    """
    if mode not in ("sequential", "diverging", "alternate"):
        raise ValueError(f"unknown mode {mode!r}")
    vals = None if values is None or mode == "alternate" else _arr(values)
    if vals is not None and len(vals) != len(pieces):
        raise ValueError(f"{len(pieces)} tokens but {len(vals)} values")
    if vals is not None and vmax is None:
        vmax = float(np.nanmax(np.abs(vals))) if len(vals) else 1.0
    vmax = vmax or 1.0
    parts = []
    shown = 0
    for t, piece in enumerate(pieces):
        if not piece:
            continue  # part of a multi-byte character: its text is drawn with the token that completes it
        if mode == "alternate":
            bg = PASTELS[shown % 2 * 2]  # two alternating pastels read best as boundaries
        elif vals is None:
            bg = "transparent"
        else:
            v = float(vals[t])
            rgb = SEQUENTIAL_RGB if mode == "sequential" else (POSITIVE_RGB if v >= 0 else NEGATIVE_RGB)
            bg = _rgba(rgb, abs(v) / vmax * 0.9)
        style = f"background:{bg};border-radius:3px;padding:1px 0"
        if t == highlight:
            style += ";outline:2px solid #1c7ed6;outline-offset:1px"
        title = f' title="{_attr(titles[t])}"' if titles is not None else ""
        parts.append(f'<span style="{style}"{title}>{_piece_html(piece)}</span>')
        shown += 1
    body = "".join(parts)
    return ('<div class="lm-tokens" style="font-family:ui-monospace,SFMono-Regular,Menlo,monospace;'
            f'font-size:1.15rem;line-height:1.9;white-space:pre-wrap;word-break:break-word">{body}</div>')


def attention_text_html(pieces: Sequence[str], weights, chosen: int) -> str:
    """The attention FROM token `chosen` painted on the text (alpha = weight relative to the largest)."""
    w = _arr(weights)
    titles = [f"token {t}: weight {w[t]:.3f}" for t in range(len(pieces))]
    return tokens_html(pieces, w, "sequential", vmax=float(w.max()) if len(w) else 1.0, highlight=chosen,
                       titles=titles)


def unit_text_html(pieces: Sequence[str], values, name: str, unit: int) -> str:
    """One unit's activation as colour on the text: diverging for tanh states, sequential for gates."""
    v = _arr(values)
    titles = [f"{name}[{unit}] = {x:+.3f}" for x in v]
    if name in SIGMOID_STATES:
        return tokens_html(pieces, v, "sequential", vmax=1.0, titles=titles)
    return tokens_html(pieces, v, "diverging", vmax=_diverging_range(v, None), titles=titles)


def token_boundaries_html(pieces: Sequence[str], ids: Sequence[int]) -> str:
    """Token boundaries as alternating pastel backgrounds; hovering a token shows its id."""
    return tokens_html(pieces, mode="alternate", titles=[f"id {i}" for i in ids])


def vocab_length_chart(rows: Sequence[tuple[int, int]], char_tokens: int | None = None) -> go.Figure:
    """Tokens needed for one text against BPE vocabulary size (x on a log2 scale)."""
    xs = [v for v, _ in rows]
    ys = [n for _, n in rows]
    fig = go.Figure(go.Scatter(x=xs, y=ys, mode="lines+markers+text", name="byte-level BPE",
                               text=[str(n) for n in ys], textposition="top right",
                               line=dict(color="#1c7ed6", width=3), marker=dict(size=10),
                               hovertemplate="vocabulary %{x}: %{y} tokens<extra></extra>"))
    if char_tokens is not None:
        fig.add_hline(y=char_tokens, line=dict(color="#e8590c", dash="dash"),
                      annotation_text=f"one token per character: {char_tokens}", annotation_position="top right")
    top = max([*ys, char_tokens or 0, 1])
    fig.update_xaxes(title="BPE vocabulary size", type="log", tickvals=xs, ticktext=[str(x) for x in xs])
    fig.update_yaxes(title="tokens for this text", range=[0, top * 1.2])
    return _style(fig, 380, "Bigger vocabulary, shorter sequences")


__all__ = [
    "STATE_LABELS", "attention_grid", "attention_heatmap", "attention_text_html", "head_summary_figure", "order_chart",
    "pool_square", "saturation_figure", "smoothing_bars", "state_colors", "state_heatmap", "token_boundaries_html",
    "token_labels", "tokens_html", "unit_line", "unit_text_html", "visible", "vocab_length_chart",
]
