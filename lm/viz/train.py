"""Figures of the training lab: a race's curves overlaid on one time axis (steps, tokens seen or seconds of
training), the timeline of what a run wrote at each evaluation, and a fine-tuned model's before/after bars.

They read job records as `lm.app.jobs.JobManager` keeps them (or anything shaped alike: "name", "history"
with "train" [step, loss], "valid" [step, nats/token, bits/char], "clock" [step, tokens, seconds] and
"samples" [step, text], and optionally "race" {"value"}). Run names, race values and samples come from
students: labels go through `_label` (Plotly reads HTML in labels), the timeline through `html.escape`. The
figures' own words are in the current language (`lm.i18n`); the names and samples are never translated.
"""

from __future__ import annotations

import html
from typing import Any, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from lm.i18n import N_, _
from lm.viz.charts import MODEL_COLOURS, _label
from lm.viz.style import visible

RACE_AXES = {"steps": N_("step"), "tokens": N_("tokens seen"), "seconds": N_("seconds of training")}
RACE_CURVES = {"valid": N_("held-out bits per character"), "train": N_("training loss (nats per token)")}


def _x(points: Sequence[Sequence[float]], clock: Sequence[Sequence[float]], axis: str) -> list[float]:
    """The x of each (step, ...) point on `axis`: the step itself, or tokens / seconds read off the run's
    clock (interpolated between its recorded steps; no clock: nothing to draw on that axis)."""
    steps = [float(p[0]) for p in points]
    if axis == "steps":
        return steps
    column = 1 if axis == "tokens" else 2
    if not clock:
        return []
    known = np.array([c[0] for c in clock], dtype=float)
    values = np.array([c[column] for c in clock], dtype=float)
    return np.interp(steps, known, values).tolist()


def run_label(record: Mapping[str, Any]) -> str:
    """How a run is named in a race's legend: its race value (setting = value), else its model name."""
    race = record.get("race") or {}
    if "value" in race:
        return f"{race.get('setting', '')} = {race['value']}"
    return str(record.get("name", "run"))


def race_figure(records: Sequence[Mapping[str, Any]], axis: str = "steps", curve: str = "valid") -> go.Figure:
    """The runs' `curve` ("valid": held-out bits per character, comparable across tokenizers; "train": the
    training loss as logged) against `axis` ("steps", "tokens", "seconds"), one colour per run."""
    if axis not in RACE_AXES:
        raise ValueError(f"axis must be one of {', '.join(RACE_AXES)}, not {axis!r}")
    if curve not in RACE_CURVES:
        raise ValueError(f"curve must be one of {', '.join(RACE_CURVES)}, not {curve!r}")
    fig = go.Figure()
    for i, record in enumerate(records):
        history = record.get("history") or {}
        points = [p for p in history.get(curve, []) if (p[2] if curve == "valid" else p[1]) is not None]
        xs = _x(points, history.get("clock") or [], axis)
        if not xs:
            continue
        ys = [p[2] if curve == "valid" else p[1] for p in points]
        name = _label(run_label(record))
        fig.add_trace(go.Scatter(x=xs, y=ys, name=name, mode="lines+markers" if curve == "valid" else "lines",
                                 line=dict(color=MODEL_COLOURS[i % len(MODEL_COLOURS)], width=3),
                                 hovertemplate=f"{name}<br>%{{x:,.4~g}}: %{{y:.3f}}<extra></extra>"))
    fig.update_xaxes(title=_(RACE_AXES[axis]), rangemode="tozero")
    fig.update_yaxes(title=_(RACE_CURVES[curve]))
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=30, b=10), legend_orientation="h", legend_y=1.14)
    return fig


def samples_html(samples: Sequence[Sequence[Any]], max_chars: int = 120) -> str:
    """A run's samples as a timeline, one line per evaluation ("step 500: ROMEO: I will…"), escaped HTML
    with line breaks shown as ↵."""
    rows, at = [], _("step {step:,}")
    for step, text in samples:
        shown = visible(str(text), max_chars)
        rows.append(f"<div class='lm-sample'><b>{html.escape(at.format(step=int(step)))}</b>: "
                    f"<code>{html.escape(shown)}</code></div>")
    return "\n".join(rows)


def adaptation_figure(report: Mapping[str, Any]) -> go.Figure:
    """Bits per character before and after fine-tuning, on the new text and on the base corpus (lower is
    better; the second pair shows how much the model forgot)."""
    base_corpus = report.get("base_corpus") or _("original corpus")
    groups = [(_("new text"), report.get("new_text")),
              (_("{corpus} (forgetting)").format(corpus=base_corpus), report.get("original_text"))]
    groups = [(label, pair) for label, pair in groups if pair]
    fig = go.Figure()
    for when, name, colour in (("before", _("before fine-tuning"), "#adb5bd"),
                               ("after", _("after fine-tuning"), "#1c7ed6")):
        ys = [pair.get(when) for _name, pair in groups]
        fig.add_trace(go.Bar(x=[_label(label) for label, _pair in groups], y=ys, name=name,
                             marker_color=colour, text=[("-" if y is None else f"{y:.2f}") for y in ys],
                             textposition="outside"))
    fig.update_yaxes(title=_(RACE_CURVES["valid"]), rangemode="tozero")
    fig.update_layout(barmode="group", height=340, margin=dict(l=10, r=10, t=30, b=10), legend_orientation="h",
                      legend_y=1.14)
    return fig
