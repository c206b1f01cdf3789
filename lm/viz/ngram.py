"""An n-gram model's numbers: the next-token distribution under each smoothing, held-out score against order; for
a model read from an ARPA file (which lists probabilities, not counts), the n-grams it lists per order and the
back-off path of one prediction."""

from __future__ import annotations

import html
import math
from typing import Any, Iterable, Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lm.i18n import N_, _
from lm.viz.style import PASTELS, SMOOTHING_LABELS, _style, token_labels, visible


def smoothing_bars(comparison: Mapping[str, Sequence[tuple[int, str, float]]],
                   title: str = N_("Next-token distribution under each smoothing method")) -> go.Figure:
    """Side-by-side horizontal bar charts of the top next tokens under each smoothing method."""
    names = list(comparison)
    titles = [_(SMOOTHING_LABELS.get(n, n)) for n in names]
    fig = make_subplots(rows=1, cols=max(1, len(names)), subplot_titles=titles, horizontal_spacing=0.08)
    top = 0.0
    for i, name in enumerate(names):
        rows = list(comparison[name])
        labels = token_labels([row[1] for row in rows], 16)
        probs = [row[2] for row in rows]
        top = max([top, *probs])
        fig.add_trace(go.Bar(x=probs, y=labels, orientation="h", name=titles[i], showlegend=False,
                             marker_color=PASTELS[i % len(PASTELS)], marker_line=dict(color="#495057", width=1),
                             text=[f"{p:.2f}" for p in probs], textposition="auto",
                             hovertemplate="%{y}: p = %{x:.4f}<extra></extra>"), row=1, col=i + 1)
        fig.update_yaxes(autorange="reversed", type="category", row=1, col=i + 1)
    fig.update_xaxes(title=_("probability"), range=[0, max(0.05, min(1.0, top * 1.1))])
    n = max((len(v) for v in comparison.values()), default=5)
    return _style(fig, max(300, 30 * n + 140), _(title))


def order_chart(scores: Iterable[Any], per: str = N_("character")) -> go.Figure:
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
        label = _(SMOOTHING_LABELS.get(smoothing, smoothing))
        color = ("#e8590c", "#1c7ed6", "#2f9e44", "#ae3ec9")[i % 4]
        fig.add_trace(go.Scatter(x=orders, y=ys, mode="lines+markers", name=label, line=dict(color=color, width=3),
                                 marker=dict(size=9), hovertemplate=f"{label}<br>" + _(
                                     "order {order}: {value} bits/{per}").format(order="%{x}", value="%{y:.3f}",
                                                                                 per=_(per)) + "<extra></extra>"))
        inf_orders = [s.order for s in rows if not math.isfinite(s.bits_per_char)]
        if inf_orders:
            fig.add_trace(go.Scatter(x=inf_orders, y=[ceiling] * len(inf_orders), mode="markers+text",
                                     name=_("{label}: infinite").format(label=label), marker=dict(symbol="x", size=13, color=color),
                                     text=["∞"] * len(inf_orders), textposition="top center",
                                     hovertemplate=f"{label}<br>" + _(
                                         "order {order}: infinite (an unseen n-gram got p = 0)").format(order="%{x}")
                                     + "<extra></extra>"))
    if any(not math.isfinite(s.bits_per_char) for s in scores):
        fig.add_hline(y=ceiling, line=dict(color="#868e96", dash="dash"), annotation_text="∞",
                      annotation_position="right")
    fig.update_xaxes(title=_("order n (tokens of context + 1)"), dtick=1)
    fig.update_yaxes(title=_("held-out bits per {per} (lower is better)").format(per=_(per)), rangemode="tozero")
    return _style(fig, 420, _("Held-out score against n-gram order"))


def listed_orders_chart(per_order: Sequence[int], after_context: Sequence[int]) -> go.Figure:
    """Bars per order of an ARPA file: the n-grams it lists, and how many of them continue the chosen context
    (`after_context[j-1]`: the listed continuations of its order-j context, 0 where that context is not listed).
    Log scale: a file lists thousands of times more n-grams than follow any one context."""
    orders = list(range(1, len(per_order) + 1))
    fig = go.Figure()
    fig.add_trace(go.Bar(x=orders, y=list(per_order), name=_("n-grams in the file"), marker_color=PASTELS[0],
                         marker_line=dict(color="#495057", width=1), text=[f"{n:,}" for n in per_order],
                         textposition="outside", hovertemplate=_("order {order}: {n} n-grams listed").format(order="%{x}", n="%{y:,}") + "<extra></extra>"))
    fig.add_trace(go.Bar(x=orders, y=[n or None for n in after_context], name=_("listed after the context"),
                         marker_color=PASTELS[1], marker_line=dict(color="#495057", width=1),
                         text=[f"{n:,}" if n else "" for n in after_context], textposition="outside",
                         hovertemplate=_("order {order}: {n} continuations of the context").format(
                             order="%{x}", n="%{y:,}") + "<extra></extra>"))
    fig.update_xaxes(title=_("order n"), dtick=1)
    fig.update_yaxes(title=_("n-grams (log scale)"), type="log")
    fig.update_layout(barmode="group")
    return _style(fig, 360, _("N-grams the ARPA file lists, per order"))


def backoff_path_chart(rows: Sequence[Any], target: str) -> go.Figure:
    """p(target) at each order of a back-off path (`NgramOrderRow`s, any order): a filled marker where the
    n-gram ending in the target is listed, an open one where the order backed off, each labelled with the
    back-off weight that multiplied the order below. Log scale: probabilities span orders of magnitude.
    `target` is the token's text (shown escaped: Plotly renders a few HTML tags in titles)."""
    target = html.escape(visible(target, 20), quote=False)
    rows = sorted(rows, key=lambda r: r.order)
    orders = [r.order for r in rows]
    listed = [r.target_count > 0 for r in rows]
    labels = [(_("listed") if hit else _("backed off × {weight}").format(weight=f"{r.weight:.3g}")) for r, hit in zip(rows, listed)]
    fig = go.Figure(go.Scatter(
        x=orders, y=[r.probability for r in rows], mode="lines+markers+text", text=labels,
        textposition="top center", line=dict(color="#1c7ed6", width=3), name=f"p({target} | context)",
        marker=dict(size=13, color=["#1c7ed6" if hit else "white" for hit in listed],
                    line=dict(color="#1c7ed6", width=2), symbol="circle"),
        hovertemplate=_("order {order}: p = {p}").format(order="%{x}", p="%{y:.4g}") + "<extra></extra>"))
    fig.update_xaxes(title=_("order n (tokens of context + 1)"), dtick=1)
    fig.update_yaxes(title=_("probability (log scale)"), type="log")
    return _style(fig, 360, _("The probability of {target} order by order").format(target=target))
