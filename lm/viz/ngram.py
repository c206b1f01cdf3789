"""An n-gram model's numbers: the next-token distribution under each smoothing, held-out score against order."""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lm.viz.style import PASTELS, SMOOTHING_LABELS, _style, token_labels


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
