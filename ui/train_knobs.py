"""The Train page's advanced settings, built from the one table of training knobs (lm.train.knobs.KNOBS), so a
student reads the same one-line help the CLI prints and every knob the CLI has for a page is here too.

Each knob's widget has the key `tr_k_<name>`. A knob left empty is None — "not set": the preset's (or the base
model's) value applies, and the empty box says which value that is (`resolved_value`). The set ones are
mirrored into the URL, so a teacher's link to a race or a recipe opens with the same knobs.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from lm.errors import LMError
from lm.models import spec_for_variant
from lm.train.knobs import KNOBS, Knob
from lm.train.settings import FULL_BATCH, OPTIMIZERS, TrainSettings, resolve_settings
from ui.i18n import N_, _, option_labels

# Chosen on the page's main form (or fixed by it): the advanced panels leave these out.
MAIN_FORM = {"family", "corpus", "tokenizer", "vocab_size", "max_chars", "name", "description", "preset", "steps",
             "minutes", "init_from"}
PANELS = (("model shape", N_("Model shape")), ("optimisation", N_("Optimisation")),
          ("watching", N_("Samples and test split")), ("fine-tuning", N_("Fine-tuning")))
DATA_KNOBS_IN_WATCHING = {"test_every"}  # a data knob shown beside the samples: both say how a run is checked
NGRAM_OPTIMISATION: set[str] = set()  # a counted model has nothing to optimise (its split and counts are fixed)
FULL_KEY = "tr_k_full_batch"
FLOAT_STEPS = {"lr": 0.0001, "momentum": 0.05, "weight_decay": 0.01, "dropout": 0.05, "grad_clip": 0.1}
_DEFAULTS = TrainSettings()
LABELS = {"layers": N_("Layers"), "width": N_("Width"), "embed": N_("Embedding size"), "heads": N_("Heads"),
          "context": N_("Context (tokens)"), "dropout": N_("Dropout"), "order": N_("Order"),
          "smoothing": N_("Smoothing"), "batch_size": N_("Batch size"), "lr": N_("Learning rate"),
          "optimizer": N_("Optimiser"), "momentum": N_("Momentum"), "weight_decay": N_("Weight decay"),
          "warmup": N_("Warm-up steps"), "grad_clip": N_("Gradient clip"), "eval_every": N_("Evaluate every"),
          "seed": N_("Seed"), "sample_tokens": N_("Sample length"), "sample_prompt": N_("Sample prompt"),
          "test_every": N_("Test split: every n-th document"), "adapt_weight": N_("Weight of the new counts")}


def key(name: str) -> str:
    return f"tr_k_{name}"


def page_knobs() -> list[Knob]:
    return [k for k in KNOBS if k.page and k.name not in MAIN_FORM]


def _cast(knob: Knob, raw: str) -> Any:
    if knob.kind == "int" or knob.kind == "batch":
        return int(raw)
    if knob.kind == "float":
        return float(raw)
    if knob.kind == "choice" and raw not in knob.choices:
        raise ValueError(raw)
    return raw


def init_knobs() -> None:
    """Seed every knob's state from the URL (a value that does not fit its kind is ignored), else unset."""
    for knob in page_knobs():
        k = key(knob.name)
        if k in st.session_state:
            continue
        value = None
        if k in st.query_params:
            try:
                value = _cast(knob, st.query_params[k])
            except (TypeError, ValueError):
                value = None
        st.session_state[k] = value
    if FULL_KEY not in st.session_state:
        st.session_state[FULL_KEY] = st.query_params.get(FULL_KEY) == "1"


def knob_values() -> dict[str, Any]:
    """The knobs a student set (None: not set), ready for `lm.train.knobs.settings_from`."""
    values = {knob.name: st.session_state.get(key(knob.name)) for knob in page_knobs()}
    values = {name: (value.strip() if isinstance(value, str) else value) for name, value in values.items()}
    values["sample_prompt"] = values.get("sample_prompt") or None  # empty: the default (a new line)
    if st.session_state.get(FULL_KEY):
        values["batch_size"] = FULL_BATCH
    return values


def write_knobs_to_query() -> None:
    """Only the set knobs travel in the URL (an unset one would read back as a value)."""
    for knob in page_knobs():
        k, value = key(knob.name), st.session_state.get(key(knob.name))
        text = None if value is None or value == "" else str(value)
        if text is None or len(text) > 200:
            st.query_params.pop(k, None)
        elif st.query_params.get(k) != text:
            st.query_params[k] = text
    if st.session_state.get(FULL_KEY):
        st.query_params[FULL_KEY] = "1"
    else:
        st.query_params.pop(FULL_KEY, None)


def resolved_value(plan, variant: str, name: str) -> Any:
    """What an unset knob becomes for this run: the preset's or the base model's value, as `resolve_settings`
    fills it in (None where it does not apply)."""
    if plan is None:
        return getattr(_DEFAULTS, name, None)
    options = spec_for_variant(variant).options
    if name in options:
        return plan.model_args.get(options[name])
    if name == "batch_size" and plan.full_batch:
        return FULL_BATCH
    value = getattr(plan, name, None)
    return getattr(_DEFAULTS, name, None) if value is None else value


def applies(knob: Knob, variant: str, fine_tuning: bool) -> bool:
    """Whether `knob` means anything for this family (a Transformer has no embed size, an n-gram no lr)."""
    spec = spec_for_variant(variant)
    if knob.group == "fine-tuning":
        return fine_tuning and not spec.gradient
    if knob.group == "model shape":
        if fine_tuning and spec.gradient:
            return knob.name == "dropout"  # the shape is the base model's; dropout is training's own
        return knob.name in spec.options or (knob.name == "context" and spec.gradient)
    if knob.group == "optimisation":
        return spec.gradient or knob.name in NGRAM_OPTIMISATION
    if knob.group == "watching":
        return spec.gradient
    return knob.name in DATA_KNOBS_IN_WATCHING


def _placeholder(value: Any) -> str:
    if value is None:
        return _("not used")
    if isinstance(value, float):
        return _("default: {value:g}").format(value=value)
    return _("default: {value}").format(value=value)


def _widget(knob: Knob, default: Any) -> None:
    label, help_text = _(LABELS.get(knob.name, knob.name)), _(knob.help)
    k = key(knob.name)
    if knob.kind == "choice":
        options = [None, *knob.choices]
        names = {None: _("default: {value}").format(value=default)}
        if knob.name == "optimizer":
            names.update({name: f"{name} · {_(spec.label)}" for name, spec in OPTIMIZERS.items()})
        st.selectbox(label, options, key=k, help=help_text,
                     format_func=lambda v: names.get(v) or option_labels(knob.choices)(v))
    elif knob.kind == "str":
        st.text_input(label, key=k, help=help_text, placeholder=_placeholder(default), max_chars=200)
    elif knob.kind == "float":
        st.number_input(label, min_value=0.0, step=FLOAT_STEPS.get(knob.name, 0.1), format="%g", key=k,
                        help=help_text, placeholder=_placeholder(default))
    else:  # int, batch
        st.number_input(label, min_value=0, step=1, key=k, help=help_text,
                        placeholder=_placeholder(default), disabled=knob.kind == "batch" and st.session_state[FULL_KEY])
        if knob.kind == "batch":
            st.checkbox(_("Full batch"), key=FULL_KEY,
                        help=_("Batch gradient descent: every window of the text in every step"))


def knob_panels(variant: str, settings: TrainSettings | None, fine_tuning: bool) -> None:
    """The advanced settings in one expander per group, only the knobs that apply, each showing its default."""
    try:
        plan = resolve_settings(settings) if settings is not None else None
    except LMError:
        plan = None  # the main form shows that error; the boxes then show the general defaults
    for group, title in PANELS:
        knobs = [k for k in page_knobs() if (k.group == group or (group == "watching" and k.name in
                                                                    DATA_KNOBS_IN_WATCHING)) and
                 applies(k, variant, fine_tuning)]
        if not knobs:
            continue
        with st.expander(_(title)):
            columns = st.columns(2)
            for i, knob in enumerate(knobs):
                with columns[i % 2]:
                    _widget(knob, resolved_value(plan, variant, knob.name))


def unset_inapplicable(variant: str, fine_tuning: bool) -> None:
    """A knob the current family does not have is not sent (an embed size set for an LSTM, then the family
    switched to a Transformer, would otherwise fail the run)."""
    for knob in page_knobs():
        if not applies(knob, variant, fine_tuning) and knob.name not in DATA_KNOBS_IN_WATCHING:
            st.session_state[key(knob.name)] = None
    if not spec_for_variant(variant).gradient:
        st.session_state[FULL_KEY] = False
