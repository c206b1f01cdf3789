"""The Train page's live views: one run (status, pause / go on / step, the loss curves in bits per character,
train / validation / test numbers, what the model wrote at each evaluation, and a fine-tuned model's before and
after) and a race (2-4 runs' curves overlaid on a switchable time axis, their sample timelines side by side).

Everything is read from the job records `lm.app.jobs.JobManager` keeps and drawn by `lm.viz`; the controls go
through the manager with `by` (ui/session.py), so only a run's owner or the teacher can change it. What
students typed (names, samples, values, errors) reaches the page escaped (`md_literal`, `lm.viz`'s HTML).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import streamlit as st

from lm import viz
from lm.app.jobs import ACTIVE, progress_fraction
from lm.app.races import race_records
from lm.errors import LMError
from lm.models import VARIANTS, spec_for_variant, variant_label
from lm.viz.train import RACE_AXES, RACE_CURVES
from ui.classroom import delete_button, status_label
from ui.i18n import N_, _, option_labels
from ui.widgets import md_literal, show_error

STATUS_ICONS = {"queued": ":material/hourglass_empty:", "running": ":material/directions_run:",
                "finished": ":material/check_circle:", "cancelled": ":material/stop_circle:",
                "failed": ":material/error:", "interrupted": ":material/warning:"}
UNIT = N_("bits per character (lower is better; 8 would be random bytes)")
SAMPLES_CSS = ("<style>.lm-sample code{white-space:pre-wrap;overflow-wrap:anywhere}"
               ".lm-sample{margin-bottom:0.35rem}</style>")  # long samples wrap inside the panel
SAMPLES_HEIGHT = 190  # pixels: a timeline scrolls inside the panel, the chart stays in view at 1280 x 800


def _number(value, default=0):
    """A number from a job record (read from disk: a damaged one may hold anything), else `default`."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        else default


def name_md(name: str) -> str:
    """A model name inside a line of Markdown, shown as typed; hyphens stay unescaped (inside a line they
    start nothing, and the page's source stays readable: "names-char-lstm")."""
    return md_literal(name).replace("\\-", "-")


# -- one run ---------------------------------------------------------------------------------------------
def curves(rec: dict) -> tuple[list, list]:
    """(training, held-out) curves in bits per character. Held-out points carry their own; training losses are
    nats per token, converted with the held-out text's tokens per character: exactly 1 for character tokens,
    for BPE known from the first evaluation (until then there is no training curve to show)."""
    valid = [(p[0], p[2]) for p in rec["history"]["valid"] if len(p) > 2 and _number(p[2], None) is not None]
    ratio = None
    if rec["settings"].get("tokenizer", "char") == "char":
        ratio = 1 / math.log(2)
    else:
        ratio = next((p[2] / p[1] for p in reversed(rec["history"]["valid"])
                      if len(p) > 2 and _number(p[1]) > 0 and _number(p[2], None) is not None), None)
    train = [(p[0], p[1] * ratio) for p in rec["history"]["train"] if ratio and p[1] is not None]
    return train, valid


def status_text(rec: dict) -> str:
    """What the run is doing now, from its phase (the message of an earlier phase, such as "tokenizing",
    stays in the record while steps advance, so it is shown only while that phase lasts)."""
    p, status = rec["progress"], rec["status"]
    step, total = int(_number(p.get("step"))), int(_number(p.get("total")))
    steps = _("step {step:,} of {total:,}").format(step=step, total=total) if total else \
        _("step {step:,}").format(step=step)
    since = time.time() - _number(rec.get("started"), time.time())
    message = str(rec.get("message") or "")  # the worker's own words: translated when the catalog has them
    if status == "queued":
        return _("waiting to start")
    if status != "running":
        seconds = _number((rec.get("result") or {}).get("seconds"), None)
        limit = _(" (the time limit)") if status == "finished" and total and step < total else ""
        trained = _(" · {seconds:.0f} s of training").format(seconds=seconds) if seconds else ""
        return f"{_(message) or status_label(status)} · {steps}{limit}{trained}"
    if rec.get("paused"):
        return _("paused · {steps}").format(steps=steps)
    phase = p.get("phase")
    if phase == "train":
        return _("training · {steps} · {speed:,.0f} tokens/s · {since:.0f} s").format(
            steps=steps, speed=_number(p.get("tokens_per_second")), since=since)
    if phase == "eval":
        doing = _("scoring the held-out text") if rec.get("message") == "scoring the held-out text" else \
            _("measuring the held-out loss")
        return f"{doing} · {steps} · " + _("{since:.0f} s").format(since=since)
    if phase in ("save", "done"):
        doing = _("saving") if phase == "save" else _("saving the model")
        return f"{doing} · {steps} · " + _("{since:.0f} s").format(since=since)
    # setup: loading, tokenizing, counting
    doing = _(message) or _("starting")
    return f"{doing} · " + _("{since:.0f} s").format(since=since)


def _scored_chars(rec: dict) -> int | None:
    """How many held-out characters the finished model's final bits/char was measured on (its config.json)."""
    path = (rec.get("result") or {}).get("path")
    try:
        metrics = json.loads((Path(path) / "config.json").read_text(encoding="utf-8")).get("metrics", {})
        return int(metrics["valid_chars_scored"])
    except (TypeError, OSError, ValueError, KeyError, AttributeError):
        return None


def metrics_row(rec: dict, train: list, valid: list) -> None:
    """Train, validation and test numbers in one unit, and what each was measured on."""
    result = rec.get("result") or {}
    final, test = _number(result.get("valid_bits_per_char"), None), _number(result.get("test_bits_per_char"), None)
    settings = rec["settings"]
    cols = st.columns(4)
    cols[0].metric(_("Training batches"), f"{train[-1][1]:.3f}" if train else "—")
    cols[1].metric(_("Held-out sample"), f"{valid[-1][1]:.3f}" if valid else "—")
    cols[2].metric(_("Validation text"), f"{final:.3f}" if final is not None else "—")
    cols[3].metric(_("Test text"), f"{test:.3f}" if test is not None else "—")
    at_train = _(", at step {step:,}").format(step=train[-1][0]) if train else ""
    at_valid = _(", at step {step:,}").format(step=valid[-1][0]) if valid else ""
    chars = _scored_chars(rec)
    scored = _("the first {chars:,} characters of the validation text").format(chars=chars) if chars else \
        _("the validation text")
    every = _number(settings.get("test_every"), 0)
    parts = [_("All in {unit}.").format(unit=_(UNIT)),
             _("Training batches: the mean over the last {steps} steps' batches{at}.").format(
                 steps=_number(settings.get("log_every"), 10), at=at_train),
             _("Held-out sample: {windows} fixed windows of validation text, the same at every evaluation{at}."
               ).format(windows=_number(settings.get("eval_windows"), 64), at=at_valid),
             _("Validation text: {scored}, scored with the best weights when the run ends.").format(scored=scored),
             _("Test text: every {n}th document of the training part, never trained on nor used to pick the "
               "weights, scored once at the end.").format(n=int(every)) if every else
             _("Test text: none (this run keeps no test split).")]
    st.caption(" ".join(parts))


def run_controls(manager, rec: dict, job_id: str, by: str) -> None:
    """Pause / go on / step to the next evaluation / cancel for a running run; nothing for others' runs."""
    if not manager.may_control(rec, by):
        st.caption(_("Started by another student: only they (or the teacher) can stop, resume or delete it."))
        return
    if rec["status"] not in ACTIVE:
        return
    running = rec["status"] == "running"
    buttons = st.columns(4)
    actions = [(_("Go on") if rec.get("paused") else _("Pause"), "tr_pause",
                manager.unpause if rec.get("paused") else manager.pause, ":material/play_arrow:" if rec.get("paused")
                else ":material/pause:"),
               (_("Step"), "tr_step", manager.step_eval, ":material/skip_next:"),
               (_("Cancel"), "tr_cancel", manager.cancel, ":material/stop:")]
    helps = {"tr_step": _("Train up to the next evaluation (and its sample), then pause there.")}
    for column, (label, key, action, icon) in zip(buttons, actions):
        disabled = not running and key != "tr_cancel"
        if column.button(label, key=key, icon=icon, disabled=disabled, help=helps.get(key)):
            try:
                action(rec["id"], by=by)
            except LMError as exc:
                show_error(exc)


def finished_controls(manager, rec: dict, job_id: str, by: str) -> None:
    path = (rec.get("result") or {}).get("path")
    if rec["status"] not in ACTIVE and rec["status"] != "failed" and path and Path(path).is_dir():
        st.success(_("**{name}** is ready and listed in every model picker.").format(name=name_md(rec["name"])))
        st.page_link("views/playground.py", label=_("Try {name} in the Playground").format(name=rec["name"]),
                     icon=":material/edit_note:", query_params={"model": rec["name"]})
        if manager.may_control(rec, by):
            delete_button("model", rec["name"], lambda: manager.delete_model(rec["name"], by=by), where="panel")
    if rec.get("resumable") and manager.may_control(rec, by):
        if st.button(_("Resume training"), key="tr_resume"):
            try:
                manager.resume(job_id, by=by)
            except LMError as exc:
                show_error(exc)
            else:
                st.rerun()


def samples_timeline(rec: dict, key: str) -> None:
    """What the model wrote at each evaluation, from a fixed prompt and seed: the lesson of char-rnn."""
    samples = [s for s in rec["history"].get("samples", []) if isinstance(s, (list, tuple)) and len(s) == 2]
    if not samples:
        if spec_gradient(rec):
            st.caption(_("What the model writes appears here at every evaluation."))
        return
    st.markdown(_("**What it writes as it learns**"))
    with st.container(height=SAMPLES_HEIGHT, key=key):
        st.html(SAMPLES_CSS + viz.samples_html(list(reversed(samples))))


def spec_gradient(rec: dict) -> bool:
    """Whether the run's family learns by gradient steps (and so writes samples as it goes)."""
    family = str(rec["settings"].get("family", ""))
    return family in VARIANTS and spec_for_variant(family).gradient


def adaptation(rec: dict) -> None:
    """A fine-tuned model's before and after: on the new text (what it gained) and the old (what it forgot)."""
    report = (rec.get("result") or {}).get("adaptation")
    if not isinstance(report, dict) or not report.get("new_text"):
        return
    st.markdown(_("**Before and after fine-tuning** ({unit})").format(unit=_("bits per character, lower is better")))
    st.plotly_chart(viz.adaptation_figure(report), key="tr_adapt_chart", width="stretch")
    gained, forgot = _number(report.get("gained_bits_per_char"), None), _number(report.get("forgot_bits_per_char"), None)
    lines = []
    if gained is not None:
        lines.append(_("On the new text's held-out part it improved by {gained:.3f} bits per character.").format(
            gained=gained))
    if forgot is not None:
        lines.append(_("On its original corpus it got worse by {forgot:.3f} bits per character: what it forgot."
                       ).format(forgot=forgot) if forgot > 0 else
                     _("On its original corpus it did not get worse ({forgot:+.3f})." ).format(forgot=forgot))
    st.caption(" ".join(lines))


def job_panel(manager, job_id: str, by: str) -> None:
    """Live view of one job: status, progress, controls, loss curves, samples. Polls while it is active."""
    record = manager.get(job_id)
    if record is None:
        st.info(_("No such training job."))
        return
    active = record["status"] in ACTIVE

    @st.fragment(run_every=1 if active else None)
    def panel() -> None:
        rec = manager.get(job_id)
        st.markdown(f"### {STATUS_ICONS.get(rec['status'], '')} {name_md(rec['name'])} — "
                    f"{status_label(rec['status'])}")
        if rec["settings"].get("description"):
            st.caption(md_literal(rec["settings"]["description"]))
        if rec["settings"].get("init_from"):
            st.caption(_("Fine-tuning {base}, keeping its tokenizer and shape.").format(
                base=name_md(str(rec["settings"]["init_from"]))))
        st.progress(progress_fraction(rec), text=md_literal(status_text(rec)[:160]))
        if rec["status"] == "failed":
            show_error(rec.get("error") or _("training failed"))
        run_controls(manager, rec, job_id, by)
        train, valid = curves(rec)
        if train or valid:
            figure = viz.loss_figure(train, valid)
            figure.update_yaxes(title=_("bits per character"))
            st.plotly_chart(figure, key="tr_loss_chart", width="stretch")
        metrics_row(rec, train, valid)
        samples_timeline(rec, "tr_samples")
        adaptation(rec)
        finished_controls(manager, rec, job_id, by)
        if active and rec["status"] not in ACTIVE:
            st.rerun()  # the run ended: redraw the page once so pickers and this panel stop polling

    panel()


# -- a race ----------------------------------------------------------------------------------------------
def race_table(records: list[dict]) -> None:
    def row(rec: dict) -> dict:
        result = rec.get("result") or {}
        valid = [p for p in rec["history"]["valid"] if len(p) > 2 and _number(p[2], None) is not None]
        best = min((p[2] for p in valid), default=None)
        return {columns["Run"]: viz.run_label(rec), columns["Status"]: status_label(rec["status"]),
                columns["Step"]: f"{int(_number(rec['progress'].get('step'))):,}",
                columns["Best held-out"]: "—" if best is None else f"{best:.3f}",
                columns["Test"]: "—" if _number(result.get("test_bits_per_char"), None) is None
                else f"{result['test_bits_per_char']:.3f}"}

    columns = {name: _(name) for name in (N_("Run"), N_("Status"), N_("Step"), N_("Best held-out"), N_("Test"))}
    st.dataframe([row(r) for r in records], hide_index=True, width="stretch", key="tr_race_table")


def race_controls(manager, records: list[dict], by: str) -> None:
    """One set of buttons for the whole race: pause, go on, step every run to its next evaluation, cancel."""
    mine = [r for r in records if manager.may_control(r, by) and r["status"] in ACTIVE]
    if not mine:
        return
    running = [r for r in mine if r["status"] == "running"]
    paused = any(r.get("paused") for r in running)
    buttons = st.columns(4)
    actions = [(_("Go on") if paused else _("Pause"), "tr_race_pause", "unpause" if paused else "pause"),
               (_("Step"), "tr_race_step", "step_eval"), (_("Cancel race"), "tr_race_cancel", "cancel")]
    for column, (label, key, method) in zip(buttons, actions):
        targets = mine if method == "cancel" else running
        if column.button(label, key=key, disabled=not targets):
            for rec in targets:
                try:
                    getattr(manager, method)(rec["id"], by=by)
                except LMError as exc:
                    show_error(exc)


def race_panel(manager, race_id: str, by: str) -> None:
    """Live view of a race: its runs' curves overlaid, the time axis switchable, each run's samples."""
    records = race_records(manager, race_id)
    if not records:
        st.info(_("No such race."))
        return
    active = any(r["status"] in ACTIVE for r in records)

    @st.fragment(run_every=1 if active else None)
    def panel() -> None:
        recs = race_records(manager, race_id)
        setting = str(recs[0]["race"].get("setting", ""))
        st.markdown(_("### Race: {setting}").format(setting=md_literal(setting)) + " — " +
                    " · ".join(md_literal(str(r["race"].get("value"))) for r in recs))
        queued = sum(r["status"] == "queued" for r in recs)
        if queued:
            st.caption(_("{n} of the runs wait for a free training slot; the server trains {cap} at a time, so "
                         "compare them by steps or tokens (seconds then count each run's own training time)."
                         ).format(n=queued, cap=manager.max_concurrent))
        race_controls(manager, recs, by)
        a, b = st.columns(2)
        a.radio(_("Time axis"), list(RACE_AXES), key="tr_race_axis", horizontal=True,
                format_func=option_labels(RACE_AXES, lambda k: _(RACE_AXES[k])))
        b.radio(_("Curve"), list(RACE_CURVES), key="tr_race_curve", horizontal=True,
                format_func=option_labels(RACE_CURVES, lambda k: _(RACE_CURVES[k])))
        figure = viz.race_figure(recs, st.session_state["tr_race_axis"], st.session_state["tr_race_curve"])
        st.plotly_chart(figure, key="tr_race_chart", width="stretch")
        race_table(recs)
        tabs = st.tabs([viz.run_label(r) for r in recs])
        for i, (tab, rec) in enumerate(zip(tabs, recs)):
            with tab:
                samples_timeline(rec, f"tr_race_samples_{i}")
        if active and not any(r["status"] in ACTIVE for r in recs):
            st.rerun()

    panel()


# -- every run -------------------------------------------------------------------------------------------
def jobs_table(manager, me: str) -> None:
    jobs = manager.list()
    if not jobs:
        return
    st.subheader(_("Recent trainings"))

    def row(j: dict) -> dict:
        result, settings = j.get("result") or {}, j["settings"]
        family = str(settings.get("family", ""))
        counted = family in VARIANTS and not spec_for_variant(family).gradient
        steps = result.get("steps") if _number(result.get("steps"), None) is not None else j["progress"].get("step")
        bpc = _number(result.get("valid_bits_per_char"), None)
        return {columns["Model"]: j["name"], columns["Status"]: status_label(j["status"]),
                columns["Kind"]: f"{_(variant_label(family))} {settings.get('preset', '')}".strip(),
                columns["Corpus"]: str(settings.get("corpus", "")).rsplit("/", 1)[-1],
                columns["Steps"]: "—" if counted else f"{int(_number(steps)):,}",
                columns["Bits/char"]: "—" if bpc is None else f"{bpc:.3f}",
                columns["Started by"]: _("you") if j.get("owner_token") == me else "—" if not j.get("owner_token")
                else _("another student")}

    columns = {name: _(name) for name in (N_("Model"), N_("Status"), N_("Kind"), N_("Corpus"), N_("Steps"),
                                          N_("Bits/char"), N_("Started by"))}
    text = st.column_config.TextColumn  # widths that fit 1280 pixels with nothing cut (names up to ~30 letters)
    widths = {"Model": 200, "Status": 90, "Kind": 110, "Corpus": 120, "Steps": 70, "Started by": 120}
    config = {columns[name]: text(width=width) for name, width in widths.items()}
    config[columns["Bits/char"]] = text(width=80, help=_("Held-out bits per character of the finished model (— while "
                                                         "it trains)"))
    st.dataframe([row(j) for j in jobs[:20]], hide_index=True, width="stretch", key="tr_jobs_table",
                 column_config=config)
