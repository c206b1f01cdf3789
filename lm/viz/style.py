"""The look every figure shares: fonts, colours, templates, and token labels that show their whitespace.

Conventions:
- token labels make whitespace visible (␣ space, ↵ line break, ⇥ tab) and are cut to a readable length;
  labels that repeat ("e", "␣") are made distinct with invisible zero-width spaces, so a categorical axis
  keeps one row/column per position (Plotly merges equal category names);
- sizes and fonts suit a classroom projector.

pandas is imported here on purpose: Plotly's validators look pandas up in `sys.modules` without importing it,
so in a server where another thread is still importing pandas they would find a half-initialised module
and fail ("partially initialized module 'pandas' has no attribute 'Series'"). Importing it at the top makes
this thread wait for the import to finish. Every figure module imports this one first.
"""

from __future__ import annotations

import html

from typing import Sequence

import numpy as np
import pandas  # noqa: F401  Plotly peeks at sys.modules["pandas"]: import it fully first (see above)
import plotly.graph_objects as go

FONT = dict(size=15)
MAX_LABEL_CHARS = 12
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


def visible(token: str, max_chars: int | None = MAX_LABEL_CHARS) -> str:
    """A token as a label: whitespace made visible, long tokens cut with an ellipsis (never when None)."""
    label = token.translate(_VISIBLE) or "∅"
    return label if max_chars is None or len(label) <= max_chars else label[: max_chars - 1] + "…"


def token_labels(tokens: Sequence[str], max_chars: int = MAX_LABEL_CHARS) -> list[str]:
    """Visible labels, one distinct category per position (repeats get trailing zero-width spaces). Escaped:
    Plotly renders a few HTML tags (<b>, <a href>) in tick labels, and a BPE vocabulary learned from an upload
    can hold any text."""
    seen: dict[str, int] = {}
    out = []
    for token in tokens:
        label = html.escape(visible(token, max_chars), quote=False)
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
