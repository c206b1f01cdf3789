"""A recurrent network's memory: gates and states over time × unit, one unit's line, gate saturation.

Titles, axes and hover text are in the current language (`lm.i18n`); a state's internal name (`cell`, `forget`)
stays as it is where it reads as a variable (`cell[12]`)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lm.i18n import N_, _
from lm.inspect import SIGMOID_STATES, TANH_STATES
from lm.viz.style import STATE_LABELS, _arr, _diverging_range, _style, token_labels


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
        hovertemplate="<br>".join([_("token {token}").format(token="%{x}"), _("unit {unit}").format(unit="%{y}"),
                                   _("value {value}").format(value="%{z:.3f}")]) + "<extra></extra>",
        **state_colors(name, v),
    ))
    fig.update_xaxes(title=_("time (token read)"), tickangle=-60, type="category")
    fig.update_yaxes(title=_("unit"), autorange="reversed")
    if highlight_unit is not None and 0 <= highlight_unit < units:
        fig.add_hline(y=highlight_unit, line=dict(color="#f03e3e", width=1, dash="dot"))
    return _style(fig, max(360, min(900, 3 * units + 220)),
                  title or _("{state} over time").format(state=_(STATE_LABELS.get(name, name))))


def unit_line(values, tokens: Sequence[str], unit: int, name: str) -> go.Figure:
    """One unit's activation over the text, as a line with token labels."""
    v = _arr(values)
    fig = go.Figure(go.Scatter(x=token_labels(tokens), y=v, mode="lines+markers", line=dict(color="#e8590c"),
                               hovertemplate=_("token {token}").format(token="%{x}") + "<br>"
                               + _("value {value}").format(value="%{y:.3f}") + "<extra></extra>"))
    fig.update_xaxes(title=_("time (token read)"), tickangle=-60, type="category")
    fig.update_yaxes(title=f"{name}[{unit}]", zeroline=True)
    return _style(fig, 300, _("Unit {unit} of the {state}").format(unit=unit, state=_(STATE_LABELS.get(name, name))))


def saturation_figure(shares: Mapping[str, tuple[Any, Any]], high: float = 0.9, low: float = 0.1,
                      title: str | None = N_("Gate saturation: how often each unit is (almost) fully open or shut")
                      ) -> go.Figure:
    """Per gate, histograms over units of the share of steps the gate spent above `high` and below `low`.

    Mass near 0 means units that rarely saturate; mass near 1 means a gate that is stuck open (or shut).
    """
    names = list(shares)
    title = _(title) if title else title
    fig = make_subplots(rows=1, cols=max(1, len(names)), subplot_titles=[_(STATE_LABELS.get(n, n)) for n in names],
                        shared_yaxes=True, horizontal_spacing=0.04)
    spend = _("{name}: {units} units spend {share} of steps {side} {bound}")
    bins = dict(start=0.0, end=1.0 + 1e-9, size=0.05)
    for i, name in enumerate(names):
        above, below = (_arr(s) for s in shares[name])
        fig.add_trace(go.Histogram(x=above, xbins=bins, name=f"> {high}", marker_color="#e8590c", opacity=0.75,
                                   legendgroup="high", showlegend=i == 0,
                                   hovertemplate=spend.format(name=name, units="%{y}", share="%{x}", side=">",
                                                              bound=high) + "<extra></extra>"),
                      row=1, col=i + 1)
        fig.add_trace(go.Histogram(x=below, xbins=bins, name=f"< {low}", marker_color="#1c7ed6", opacity=0.75,
                                   legendgroup="low", showlegend=i == 0,
                                   hovertemplate=spend.format(name=name, units="%{y}", share="%{x}", side="<",
                                                              bound=low) + "<extra></extra>"),
                      row=1, col=i + 1)
    fig.update_xaxes(title=_("share of steps"), range=[0, 1])
    fig.update_yaxes(title=_("units"), col=1)
    _style(fig, 400, title)
    return fig.update_layout(barmode="overlay", margin_t=110 if title else 80,
                             legend=dict(orientation="h", x=0, y=1.12, yanchor="bottom", title_text=_("steps") + " "))
