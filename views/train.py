"""Train: pick a corpus (or upload one), a tokenizer, a family and a size; see how long it will take and how much
memory it needs; press Start and watch the loss fall, live, in one unit (bits per character) throughout.

The default is a run a class can watch: a tiny LSTM on Shakespeare, 11,000 steps (about 20 s of training on an
idle 2-core server, lm/train/budget.py's measured throughput), capped at 0.4 minutes so a busy server ends it
in time too; its loss falls from about 6 to under 3 bits per character.

On a class server a run belongs to the browser that started it (ui/session.py): everyone sees it and the model
it makes, only its owner or the teacher gets Cancel, Resume and Delete. What students type or upload (names,
descriptions, file names, job messages and errors echoing them) is shown through `md_text` (ui/classroom.py).
"""

import dataclasses
import json
import math
import time
from pathlib import Path

import streamlit as st

from lm import viz
from lm.app.jobs import ACTIVE, get_manager, progress_fraction, save_upload, suggest_name, upload_max_bytes
from lm.data.corpus import BUILTIN_CORPORA, corpus_from_bytes, corpus_title, load_corpus
from lm.data.textio import format_size
from lm.data.tokenizer import TOKENIZER_KINDS
from lm.errors import LMError
from lm.models import VARIANTS, spec_for_variant, variant_label
from lm.train.budget import CorpusSize, check_memory, estimate_memory, estimate_time
from lm.train.settings import PRESET_CHOICES, TrainSettings, resolve_settings
from ui.classroom import delete_button, my_work, status_label, teacher_panel
from ui.i18n import N_, _, option_labels
from ui.widgets import clamp_state, md_literal, show_error
from ui.session import acting_as, owner_token
from ui.state import init_from_query, write_query

SOURCES = (N_("Built-in corpus"), N_("Upload a .txt"))  # URL values, translated where shown
DEFAULTS = {"tr_source": SOURCES[0], "tr_corpus": "shakespeare", "tr_tokenizer": "char", "tr_vocab": 512,
            "tr_family": "lstm", "tr_preset": "tiny", "tr_steps": 11_000, "tr_minutes": 0.4, "tr_max_chars": 0,
            "tr_name": "", "tr_description": ""}
STATUS_ICONS = {"queued": ":material/hourglass_empty:", "running": ":material/directions_run:",
                "finished": ":material/check_circle:", "cancelled": ":material/stop_circle:",
                "failed": ":material/error:", "interrupted": ":material/warning:"}
TOKENIZER_LABELS = {"char": N_("characters"), "bpe": N_("BPE pieces"), "word": N_("words")}
UNIT = N_("bits per character (lower is better; 8 would be random bytes)")


def _number(value, default=0):
    """A number from a job record (read from disk: a damaged one may hold anything), else `default`."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        else default


def name_md(name: str) -> str:
    """A model name inside a line of Markdown, shown as typed; hyphens stay unescaped (inside a line they
    start nothing, and the page's source stays readable: "names-char-lstm")."""
    return md_literal(name).replace("\\-", "-")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return _("{n:.0f} s").format(n=seconds)
    return _("{n:.0f} min").format(n=seconds / 60) if seconds < 90 * 60 else _("{n:.1f} h").format(n=seconds / 3600)


# -- what to train ----------------------------------------------------------------------------------------
@st.cache_data(max_entries=16, show_spinner=False)
def builtin_size(name: str, max_chars: int | None) -> CorpusSize:
    return CorpusSize.of(load_corpus(name, max_chars=max_chars))


@st.cache_data(max_entries=4, show_spinner=False)
def upload_size(data: bytes, filename: str, max_chars: int | None) -> CorpusSize:
    """Validates the upload too (binary, not UTF-8, too big: a one-line LMError), before anything is written."""
    return CorpusSize.of(corpus_from_bytes(data, filename, max_bytes=upload_max_bytes(), max_chars=max_chars))


def current_settings(upload, suggested: str) -> TrainSettings:
    """The form's values as TrainSettings; an upload's corpus is its file name until it is saved."""
    s = st.session_state
    neural = spec_for_variant(s["tr_family"]).gradient
    corpus = s["tr_corpus"] if s["tr_source"] == SOURCES[0] else (upload.name if upload is not None else "upload.txt")
    return TrainSettings(
        family=s["tr_family"], corpus=corpus, tokenizer=s["tr_tokenizer"],
        vocab_size=s["tr_vocab"] if s["tr_tokenizer"] == "bpe" else None,
        name=s["tr_name"].strip() or suggested, preset=s["tr_preset"], description=s["tr_description"].strip(),
        max_chars=s["tr_max_chars"] or None, steps=s["tr_steps"] if neural else None,
        minutes=s["tr_minutes"] if neural else None, device="cpu",
        save_minutes=0.5)  # a server crash costs at most half a minute of a class's training


def corpus_size(upload) -> CorpusSize | None:
    max_chars = st.session_state["tr_max_chars"] or None
    if st.session_state["tr_source"] == SOURCES[0]:
        return builtin_size(st.session_state["tr_corpus"], max_chars)
    return None if upload is None else upload_size(upload.getvalue(), upload.name, max_chars)


def show_estimate(settings: TrainSettings, size: CorpusSize | None, budget: int) -> None:
    """How long the run will take (measured throughput, lm/train/budget.py) and how much memory it needs."""
    if size is None:
        return
    plan = resolve_settings(dataclasses.replace(settings, name="estimate"))  # any name: this only sizes the run
    memory = estimate_memory(plan, size.vocab(settings.tokenizer, settings.vocab_size), size.train_chars)
    t = estimate_time(plan, size.train_chars, tokenizer=settings.tokenizer, valid_chars=size.valid_chars,
                      score_chars=settings.score_chars)
    what = f"{_(variant_label(settings.family))} {settings.preset}"
    if t.limited_by == "counting":
        how = _("counting the n-grams of {chars:,} characters, then scoring the held-out text").format(
            chars=size.train_chars)
    elif t.limited_by == "minutes":
        how = _("the {minutes:g}-minute limit stops it near step {step:,} of {steps:,} ({what} trains about "
                "{speed:,.0f} tokens/s here)").format(minutes=settings.minutes, step=t.steps, steps=plan.steps,
                                                      what=what, speed=t.tokens_per_second)
    else:
        how = _("{steps:,} steps ({what} trains about {speed:,.0f} tokens/s here)").format(
            steps=t.steps, what=what, speed=t.tokens_per_second)
    st.caption(_(":material/timer: **About {duration}** on an idle server, start-up and the final scoring included: "
                 "{how}. :material/memory: Memory: about {memory:.1f} GB (this server allows {budget:.1f} GB per "
                 "training).").format(duration=_duration(t.seconds), how=how, memory=memory.total / 2**30,
                                      budget=budget / 2**30))
    try:
        check_memory(memory, budget)
    except LMError as exc:
        st.warning(md_literal(exc))


def settings_form(manager):
    """The left column: what to train. Returns TrainSettings to submit (an upload already saved) or None."""
    st.radio(_("Corpus"), SOURCES, key="tr_source", horizontal=True, format_func=option_labels(SOURCES))
    upload = None
    if st.session_state["tr_source"] == SOURCES[0]:
        st.selectbox(_("Built-in corpus"), BUILTIN_CORPORA, key="tr_corpus",
                     format_func=option_labels(BUILTIN_CORPORA, lambda c: _(corpus_title(c))))
    else:
        upload = st.file_uploader(_("Your text (.txt, UTF-8, up to {size})").format(
            size=format_size(upload_max_bytes())), type=["txt"], key="tr_upload")
    a, b = st.columns(2)
    a.selectbox(_("Model family"), list(VARIANTS), key="tr_family",
                format_func=option_labels(VARIANTS, lambda v: _(variant_label(v))))
    b.selectbox(_("Size"), PRESET_CHOICES, key="tr_preset")
    a, b = st.columns(2)
    a.selectbox(_("Tokens"), TOKENIZER_KINDS, key="tr_tokenizer",
                format_func=option_labels(TOKENIZER_KINDS, lambda t: _(TOKENIZER_LABELS.get(t, t))))
    if st.session_state["tr_tokenizer"] == "bpe":
        b.number_input(_("BPE vocabulary"), 260, 4096, step=4, key="tr_vocab")
    if spec_for_variant(st.session_state["tr_family"]).gradient:
        a, b = st.columns(2)
        a.number_input(_("Max steps"), 1, 100_000, step=50, key="tr_steps")
        b.number_input(_("Max minutes"), 0.1, 120.0, step=0.1, key="tr_minutes",
                       help=_("Training stops at whichever comes first."))
    with st.expander(_("Train on part of the corpus")):
        st.number_input(_("Use the first N characters of the corpus (0 = all)"), 0, 50_000_000, step=100_000,
                        key="tr_max_chars")
    label = "upload" if st.session_state["tr_source"] == SOURCES[1] else st.session_state["tr_corpus"]
    if upload is not None:
        label = upload.name.rsplit(".", 1)[0]
    suggested = suggest_name(f"{label}-{st.session_state['tr_tokenizer']}-{st.session_state['tr_family']}")
    st.text_input(_("Model name"), key="tr_name", placeholder=suggested,
                  help=_("Lowercase letters, digits, '-', '_', '.'"))
    st.text_input(_("Description (optional)"), key="tr_description", max_chars=200,
                  placeholder=_("What is this model? Everyone in the class can read it."))
    try:
        settings = current_settings(upload, suggested)
        show_estimate(settings, corpus_size(upload), manager.memory_budget)
    except LMError as exc:
        show_error(exc)
        settings = None
    if not st.button(_("Start training"), key="tr_start", type="primary") or settings is None:
        return None
    if st.session_state["tr_source"] == SOURCES[1] and upload is None:
        st.error(_("choose a .txt file to upload first"))
        return None
    try:
        return prepared(settings, upload, manager)
    except LMError as exc:
        show_error(exc)
        return None


def prepared(settings: TrainSettings, upload, manager) -> TrainSettings:
    """Every check that needs no file first (settings, name, memory, training switched off), then the upload
    is saved (it checks its own content and the quotas before writing) and becomes the run's corpus."""
    if upload is None:
        return settings
    plan = resolve_settings(settings)
    size = corpus_size(upload)
    check_memory(estimate_memory(plan, size.vocab(settings.tokenizer, settings.vocab_size), size.train_chars),
                 manager.memory_budget)
    if manager.max_concurrent == 0:
        raise LMError(_("training is switched off on this server; ask your teacher"))
    path = save_upload(upload.getvalue(), upload.name, owner=owner_token())
    return dataclasses.replace(settings, corpus=str(path))


# -- one run, live ----------------------------------------------------------------------------------------
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
    """Three numbers in one unit, and what each was measured on."""
    final = _number((rec.get("result") or {}).get("valid_bits_per_char"), None)
    settings = rec["settings"]
    cols = st.columns(3)
    cols[0].metric(_("Training batches"), f"{train[-1][1]:.3f}" if train else "—")
    cols[1].metric(_("Held-out sample"), f"{valid[-1][1]:.3f}" if valid else "—")
    cols[2].metric(_("Held-out text"), f"{final:.3f}" if final is not None else "—")
    at_train = _(", at step {step:,}").format(step=train[-1][0]) if train else ""
    at_valid = _(", at step {step:,}").format(step=valid[-1][0]) if valid else ""
    chars = _scored_chars(rec)
    scored = _("the first {chars:,} characters of the held-out text").format(chars=chars) if chars else \
        _("the held-out text")
    parts = [_("All in {unit}.").format(unit=_(UNIT)),
             _("Training batches: the mean over the last {steps} steps' batches{at}.").format(
                 steps=_number(settings.get("log_every"), 10), at=at_train),
             _("Held-out sample: {windows} fixed windows of held-out text, the same at every evaluation{at}.").format(
                 windows=_number(settings.get("eval_windows"), 64), at=at_valid),
             _("Held-out text: {scored}, scored with the best weights when the run ends.").format(scored=scored)]
    st.caption(" ".join(parts))


def controls(manager, rec: dict, job_id: str, by: str) -> None:
    if not manager.may_control(rec, by):
        st.caption(_("Started by another student: only they (or the teacher) can stop, resume or delete it."))
    elif rec["status"] in ACTIVE:
        if st.button(_("Cancel"), key="tr_cancel"):
            try:
                manager.cancel(job_id, by=by)
            except LMError as exc:
                show_error(exc)
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


def job_panel(manager, job_id: str, by: str) -> None:
    """Live view of one job: status, progress, loss curves, the owner's controls. Polls while it is active."""
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
        st.progress(progress_fraction(rec), text=md_literal(status_text(rec)[:160]))
        if rec["status"] == "failed":
            show_error(rec.get("error") or _("training failed"))
        train, valid = curves(rec)
        metrics_row(rec, train, valid)
        if train or valid:
            figure = viz.loss_figure(train, valid)
            figure.update_yaxes(title=_("bits per character"))
            st.plotly_chart(figure, key="tr_loss_chart", width="stretch")
        controls(manager, rec, job_id, by)
        if active and rec["status"] not in ACTIVE:
            st.rerun()  # the run ended: redraw the page once so pickers and this panel stop polling

    panel()


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


def main() -> None:
    st.title(_("Train a model"))
    init_from_query(DEFAULTS, allowed={"tr_source": SOURCES, "tr_corpus": BUILTIN_CORPORA,
                                       "tr_tokenizer": TOKENIZER_KINDS, "tr_family": list(VARIANTS),
                                       "tr_preset": PRESET_CHOICES})
    init_from_query({"job": ""})
    clamp_state({"tr_vocab": (260, 4096), "tr_steps": (1, 100_000), "tr_minutes": (0.1, 120.0),
                 "tr_max_chars": (0, 50_000_000)})
    st.caption(_("Pick some text and a model, press start, and watch it learn. The default trains for about half "
                 "a minute; the finished model shows up in every page's model picker."))
    manager, by, me = get_manager(), acting_as(), owner_token()
    left, right = st.columns([2, 3], gap="large")
    with left:
        settings = settings_form(manager)
        if settings is not None:
            try:
                st.session_state["job"] = manager.submit(settings, owner=me)
            except LMError as exc:
                show_error(exc)
        teacher_panel(manager)
    write_query(["tr_source", "tr_corpus", "tr_tokenizer", "tr_vocab", "tr_family", "tr_preset", "tr_steps",
                 "tr_minutes", "tr_max_chars", "job"])
    with right:
        # nothing chosen: show the run in progress, else one of yours the server's restart interrupted (to resume)
        job_id = st.session_state.get("job") or next((j["id"] for j in manager.active()), "") or next(
            (j["id"] for j in manager.list() if j["status"] == "interrupted" and j.get("resumable")
             and manager.may_control(j, by)), "")
        if job_id:
            st.session_state["job"] = job_id  # keep showing this run once it ends (the defaults find only
            job_panel(manager, job_id, by)  # live or interrupted runs, and a finished one would vanish)
        else:
            st.info(_("Nothing training right now. Choose a corpus and a model on the left and press **Start "
                      "training**."))
    jobs_table(manager, me)  # full width: in the right column its nine columns were cut off at 1280 pixels
    my_work(manager, by, me)


main()
