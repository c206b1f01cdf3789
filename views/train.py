"""Train: pick a text (built in, uploaded or pasted), a family and a size, or every knob the CLI has; see how long
it will take and how much memory it needs; press Start and watch the loss fall and the samples improve, live, in
one unit (bits per character). Three modes: one model; a race of 2-4 runs that differ in one setting (SGD
against Adam on the same tiny model, their curves overlaid); fine-tuning a trained model on new text, with what
it gained and what it forgot.

The default is a run a class can watch: a tiny LSTM on Shakespeare, 11,000 steps (about 20 s of training on an
idle 2-core server, lm/train/budget.py's measured throughput), capped at 0.4 minutes so a busy server ends it
in time too; its loss falls from about 6 to under 3 bits per character.

On a class server a run belongs to the browser that started it (ui/session.py): everyone sees it and the model
it makes, only its owner or the teacher gets Pause, Cancel, Resume and Delete. What students type or upload
(names, descriptions, file names, pasted text, job messages and errors echoing them) is shown escaped.
The live panels are ui/train_panel.py; the advanced knobs, built from lm.train.knobs, ui/train_knobs.py.
"""

import dataclasses

import streamlit as st

from lm.app.jobs import get_manager, save_upload, suggest_name, upload_max_bytes
from lm.app.races import RACE_EXAMPLES, RACE_SETTINGS, parse_race_values, start_race
from lm.data.corpus import BUILTIN_CORPORA, corpus_from_bytes, corpus_title, load_corpus
from lm.data.textio import format_size
from lm.data.tokenizer import TOKENIZER_KINDS
from lm.errors import LMError
from lm.models import VARIANTS, spec_for_variant, variant_label
from lm.train.budget import CorpusSize, check_memory, estimate_memory, estimate_time
from lm.train.knobs import HELP, settings_from
from lm.train.settings import PRESET_CHOICES, TrainSettings, resolve_settings
from ui.classroom import my_work, teacher_panel
from ui.i18n import N_, _, option_labels
from ui.loaders import available_models
from ui.session import acting_as, owner_token
from ui.state import init_from_query, write_query
from ui.train_knobs import init_knobs, knob_panels, knob_values, unset_inapplicable, write_knobs_to_query
from ui.train_panel import job_panel, jobs_table, race_panel
from ui.widgets import clamp_state, md_literal, show_error

SOURCES = (N_("Built-in corpus"), N_("Upload a .txt"), N_("Paste text"))  # URL values, translated where shown
MODES = (N_("One model"), N_("Race"), N_("Fine-tune"))
DEFAULTS = {"tr_mode": MODES[0], "tr_source": SOURCES[0], "tr_corpus": "shakespeare", "tr_tokenizer": "char",
            "tr_vocab": 512, "tr_family": "lstm", "tr_preset": "tiny", "tr_steps": 11_000, "tr_minutes": 0.4,
            "tr_max_chars": 0, "tr_name": "", "tr_description": "", "tr_race_setting": "optimizer",
            "tr_race_values": RACE_EXAMPLES["optimizer"], "tr_base": "shakespeare-char-lstm",
            "tr_race_axis": "steps", "tr_race_curve": "valid"}
URL_KEYS = ["tr_mode", "tr_source", "tr_corpus", "tr_tokenizer", "tr_vocab", "tr_family", "tr_preset", "tr_steps",
            "tr_minutes", "tr_max_chars", "tr_race_setting", "tr_race_values", "tr_base", "job", "race"]
TOKENIZER_LABELS = {"char": N_("characters"), "bpe": N_("BPE pieces"), "word": N_("words")}
PASTE_NAME = "pasted.txt"
PASTE_LIMIT = 2_000_000  # characters: a pasted text is saved as an upload, under the same quotas


class Pasted:
    """Pasted text, shaped like an uploaded file (name, getvalue), so both take one path to a saved corpus."""

    def __init__(self, text: str):
        self.name, self._data = PASTE_NAME, text.encode("utf-8")

    def getvalue(self) -> bytes:
        return self._data


def _duration(seconds: float) -> str:
    if seconds < 90:
        return _("{n:.0f} s").format(n=seconds)
    return _("{n:.0f} min").format(n=seconds / 60) if seconds < 90 * 60 else _("{n:.1f} h").format(n=seconds / 3600)


def mode() -> int:
    return MODES.index(st.session_state["tr_mode"])


# -- what to train ----------------------------------------------------------------------------------------
@st.cache_data(max_entries=16, show_spinner=False)
def builtin_size(name: str, max_chars: int | None) -> CorpusSize:
    return CorpusSize.of(load_corpus(name, max_chars=max_chars))


@st.cache_data(max_entries=4, show_spinner=False)
def upload_size(data: bytes, filename: str, max_chars: int | None) -> CorpusSize:
    """Validates the upload too (binary, not UTF-8, too big: a one-line LMError), before anything is written."""
    return CorpusSize.of(corpus_from_bytes(data, filename, max_bytes=upload_max_bytes(), max_chars=max_chars))


def current_settings(upload, suggested: str) -> TrainSettings:
    """The form's values and the advanced knobs as TrainSettings (an upload's corpus is its file name until it
    is saved); fine-tuning takes the family, tokenizer and shape from the base model."""
    s = st.session_state
    corpus = s["tr_corpus"] if s["tr_source"] == SOURCES[0] else (upload.name if upload is not None else "upload.txt")
    values = {**knob_values(), "corpus": corpus, "name": s["tr_name"].strip() or suggested,
              "description": s["tr_description"].strip(), "max_chars": s["tr_max_chars"] or None,
              "device": "cpu", "save_minutes": 0.5}  # a server crash costs at most half a minute of training
    if mode() == 2:
        values["init_from"] = s["tr_base"]
    else:
        values.update(family=s["tr_family"], tokenizer=s["tr_tokenizer"], preset=s["tr_preset"],
                      vocab_size=s["tr_vocab"] if s["tr_tokenizer"] == "bpe" else None)
    if spec_for_variant(family_of(values)).gradient:
        values.update(steps=s["tr_steps"], minutes=s["tr_minutes"])
    return settings_from(values)


def family_of(values: dict) -> str:
    """The family a run will have: the form's, or (fine-tuning) the base model's."""
    if values.get("init_from"):
        from lm.train.base import read_base  # reads the base's config.json only

        return read_base(values["init_from"]).variant
    return values["family"]


def corpus_size(upload) -> CorpusSize | None:
    max_chars = st.session_state["tr_max_chars"] or None
    if st.session_state["tr_source"] == SOURCES[0]:
        return builtin_size(st.session_state["tr_corpus"], max_chars)
    return None if upload is None else upload_size(upload.getvalue(), upload.name, max_chars)


def show_estimate(settings: TrainSettings, size: CorpusSize | None, budget: int, runs: int = 1,
                  at_once: int = 1) -> None:
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
    each = "" if runs == 1 else _(" each; the server trains {n} at a time, the others wait their turn").format(
        n=at_once) if runs > at_once else _(" each, all at once (sharing the CPU)")
    st.caption(_(":material/timer: **About {duration}**{each} on an idle server, start-up and the final scoring "
                 "included: {how}. :material/memory: Memory: about {memory:.1f} GB (this server allows {budget:.1f} "
                 "GB per training).").format(duration=_duration(t.seconds), each=each, how=how,
                                             memory=memory.total / 2**30, budget=budget / 2**30))
    try:
        check_memory(memory, budget)
    except LMError as exc:
        st.warning(md_literal(exc))


def text_source():
    """The corpus widgets; returns the upload or pasted text (None for a built-in corpus or nothing yet)."""
    st.radio(_("Text"), SOURCES, key="tr_source", horizontal=True, format_func=option_labels(SOURCES))
    source = SOURCES.index(st.session_state["tr_source"])
    if source == 0:
        st.selectbox(_("Built-in corpus"), BUILTIN_CORPORA, key="tr_corpus",
                     format_func=option_labels(BUILTIN_CORPORA, lambda c: _(corpus_title(c))))
        return None
    if source == 1:
        return st.file_uploader(_("Your text (.txt, UTF-8, up to {size})").format(
            size=format_size(upload_max_bytes())), type=["txt"], key="tr_upload")
    text = st.text_area(_("Your text (at least 200 characters: poems, a story, any language)"), key="tr_paste",
                        height=120, max_chars=PASTE_LIMIT)
    return Pasted(text) if text.strip() else None


def model_choice() -> None:
    """Family, size and tokens for a new model; for fine-tuning, the model to start from."""
    if mode() == 2:
        names = [m.name for m in available_models() if m.variant in VARIANTS and m.path.is_dir()]  # not ARPA
        if st.session_state["tr_base"] not in names and names:
            st.session_state["tr_base"] = names[0]
        st.selectbox(_("Start from"), names, key="tr_base", help=_(HELP["init_from"]))
        st.caption(_("Fine-tuning keeps the model's tokenizer and shape; a character it never saw is refused "
                     "with its name."))
        return
    a, b = st.columns(2)
    a.selectbox(_("Model family"), list(VARIANTS), key="tr_family",
                format_func=option_labels(VARIANTS, lambda v: _(variant_label(v))))
    b.selectbox(_("Size"), PRESET_CHOICES, key="tr_preset", help=_(HELP["preset"]))
    a, b = st.columns(2)
    a.selectbox(_("Tokens"), TOKENIZER_KINDS, key="tr_tokenizer",
                format_func=option_labels(TOKENIZER_KINDS, lambda t: _(TOKENIZER_LABELS.get(t, t))))
    if st.session_state["tr_tokenizer"] == "bpe":
        b.number_input(_("BPE vocabulary"), 260, 4096, step=4, key="tr_vocab")


def race_choice() -> None:
    """What the race varies and its 2-4 values (the other settings are the form's, the same for every run)."""
    def new_setting() -> None:
        st.session_state["tr_race_values"] = RACE_EXAMPLES[st.session_state["tr_race_setting"]]

    a, b = st.columns([2, 3])
    a.selectbox(_("Race on"), RACE_SETTINGS, key="tr_race_setting", on_change=new_setting,
                help=_("Every run has the same data, seed and other settings; only this one differs."))
    b.text_input(_("Values (2-4, comma-separated)"), key="tr_race_values", max_chars=200,
                 help=_(HELP[st.session_state["tr_race_setting"]]))


def settings_form(manager):
    """The left column: what to train. Returns (TrainSettings, race values or None) to submit, or None."""
    st.radio(_("Mode"), MODES, key="tr_mode", horizontal=True, format_func=option_labels(MODES))
    upload = text_source()
    model_choice()
    if mode() == 1:
        race_choice()
    fine_tuning = mode() == 2
    try:
        variant = family_of({"init_from": st.session_state["tr_base"]} if fine_tuning
                            else {"family": st.session_state["tr_family"]})
    except LMError as exc:
        show_error(exc)
        return None
    if spec_for_variant(variant).gradient:
        a, b = st.columns(2)
        a.number_input(_("Max steps"), 1, 100_000, step=50, key="tr_steps")
        b.number_input(_("Max minutes"), 0.1, 120.0, step=0.1, key="tr_minutes",
                       help=_("Training stops at whichever comes first."))
    label = {0: st.session_state["tr_corpus"], 1: "upload", 2: "pasted"}[SOURCES.index(st.session_state["tr_source"])]
    if upload is not None and not isinstance(upload, Pasted):
        label = upload.name.rsplit(".", 1)[0]
    kind = f"tuned-{st.session_state['tr_base']}" if fine_tuning else \
        f"{st.session_state['tr_tokenizer']}-{st.session_state['tr_family']}"
    suggested = suggest_name(f"{label}-{kind}" + ("-race" if mode() == 1 else ""))
    unset_inapplicable(variant, fine_tuning)
    settings, error = None, None
    try:
        settings = current_settings(upload, suggested)
    except LMError as exc:
        error = exc
    knob_panels(variant, settings, fine_tuning)
    with st.expander(_("Train on part of the text")):
        st.number_input(_("Use the first N characters of the corpus (0 = all)"), 0, 50_000_000, step=100_000,
                        key="tr_max_chars")
    st.text_input(_("Model name"), key="tr_name", placeholder=suggested,
                  help=_("Lowercase letters, digits, '-', '_', '.'") + (_("; each run adds its value") if mode() == 1
                                                                       else ""))
    st.text_input(_("Description (optional)"), key="tr_description", max_chars=200,
                  placeholder=_("What is this model? Everyone in the class can read it."))
    race_values = None
    try:
        if error is not None:
            raise error
        if mode() == 1:
            race_values = parse_race_values(st.session_state["tr_race_setting"], st.session_state["tr_race_values"])
        show_estimate(settings, corpus_size(upload), manager.memory_budget, len(race_values or [1]),
                      manager.max_concurrent)
    except LMError as exc:
        show_error(exc)
        settings = None
    start = {0: _("Start training"), 1: _("Start the race"), 2: _("Start fine-tuning")}[mode()]
    if not st.button(start, key="tr_start", type="primary") or settings is None:
        return None
    if st.session_state["tr_source"] != SOURCES[0] and upload is None:
        st.error(_("choose a .txt file to upload first") if st.session_state["tr_source"] == SOURCES[1]
                 else _("paste some text first"))
        return None
    try:
        return prepared(settings, upload, manager), race_values
    except LMError as exc:
        show_error(exc)
        return None


def prepared(settings: TrainSettings, upload, manager) -> TrainSettings:
    """Every check that needs no file first (settings, name, memory, training switched off, characters a base
    model never saw), then the upload is saved (it checks its own content and the quotas before writing) and
    becomes the run's corpus."""
    if upload is None:
        return settings
    plan = resolve_settings(settings)
    size = corpus_size(upload)
    check_memory(estimate_memory(plan, size.vocab(settings.tokenizer, settings.vocab_size), size.train_chars),
                 manager.memory_budget)
    if manager.max_concurrent == 0:
        raise LMError(_("training is switched off on this server; ask your teacher"))
    if settings.init_from:
        check_characters(settings.init_from, upload)
    path = save_upload(upload.getvalue(), upload.name, owner=owner_token())
    return dataclasses.replace(settings, corpus=str(path))


def check_characters(base: str, upload) -> None:
    """A character-level base model cannot read characters it never saw: refused here, with their names."""
    from lm.train.data import check_known_characters  # torch-free, but only fine-tuning needs it
    from ui.loaders import get_model

    loaded = get_model(base)
    if loaded is not None:
        check_known_characters(loaded.tokenizer, upload.getvalue().decode("utf-8", "replace"), base)


def submit(manager, settings: TrainSettings, race_values, me: str) -> None:
    """Start the run (or the race's runs, queued within the server's cap) and show it on the right."""
    if race_values is None:
        st.session_state["job"], st.session_state["race"] = manager.submit(settings, owner=me), ""
    else:
        race = start_race(manager, settings, st.session_state["tr_race_setting"], race_values, owner=me)
        st.session_state["race"], st.session_state["job"] = race.id, ""


def main() -> None:
    st.title(_("Train a model"))
    init_from_query(DEFAULTS, allowed={"tr_mode": MODES, "tr_source": SOURCES, "tr_corpus": BUILTIN_CORPORA,
                                       "tr_tokenizer": TOKENIZER_KINDS, "tr_family": list(VARIANTS),
                                       "tr_preset": PRESET_CHOICES, "tr_race_setting": RACE_SETTINGS,
                                       "tr_race_axis": ["steps", "tokens", "seconds"],
                                       "tr_race_curve": ["valid", "train"]})
    init_from_query({"job": "", "race": ""})
    init_knobs()
    clamp_state({"tr_vocab": (260, 4096), "tr_steps": (1, 100_000), "tr_minutes": (0.1, 120.0),
                 "tr_max_chars": (0, 50_000_000)})
    st.caption(_("Pick some text and a model, press start, and watch it learn. The default trains for about half "
                 "a minute; the finished model shows up in every page's model picker. Race runs that differ in "
                 "one setting, or fine-tune a trained model on your own text."))
    manager, by, me = get_manager(), acting_as(), owner_token()
    left, right = st.columns([2, 3], gap="large")
    with left:
        chosen = settings_form(manager)
        if chosen is not None:
            try:
                submit(manager, *chosen, me)
            except LMError as exc:
                show_error(exc)
        teacher_panel(manager)
    write_query(URL_KEYS)
    write_knobs_to_query()
    with right:
        if st.session_state.get("race"):
            race_panel(manager, st.session_state["race"], by)
        else:
            # nothing chosen: the run in progress, else one of yours the server's restart interrupted (to resume)
            job_id = st.session_state.get("job") or next((j["id"] for j in manager.active()), "") or next(
                (j["id"] for j in manager.list() if j["status"] == "interrupted" and j.get("resumable")
                 and manager.may_control(j, by)), "")
            if job_id:
                st.session_state["job"] = job_id  # keep showing this run once it ends (the defaults find only
                job_panel(manager, job_id, by)  # live or interrupted runs, and a finished one would vanish)
            else:
                st.info(_("Nothing training right now. Choose a text and a model on the left and press **Start "
                          "training**."))
    jobs_table(manager, me)  # full width: in the right column its columns were cut off at 1280 pixels
    my_work(manager, by, me)


main()
