"""Texts and choices on the inspection pages (Attention, Memory, Counting, Tokenizers), made safe to share.

- `first_text`, `follow_model`: a page's text starts as the chosen model's sample (one it can read, fitted
  to its context) and follows the model when it changes, unless the user typed their own;
- `bound_text`: whatever the URL or a hand-written websocket message sends, a text is cut to a page's cap
  before anything tokenizes or paints it;
- `keep_valid`, `keep_valid_list`, `pick_model`: a value outside a widget's choices (a crafted message, a
  model deleted meanwhile) falls back to the default instead of raising a KeyError;
- `plain_caption`, `plain_note`: lines that carry user text (typed contexts, token pieces, training text)
  go to the page as escaped HTML text, never through Markdown, so `![t](http://…)`, `:red[…]` or `$…$` show
  as typed.
"""

from __future__ import annotations

import html
from typing import Any, Iterable, Sequence

import streamlit as st

from lm.inspect import SAMPLE_CHARS, sample_for
from ui.i18n import _, language
from ui.loaders import cached_model, get_inspection, get_model
from ui.state import init_from_query
from ui.widgets import model_picker

_CAPTION = "font-size:0.875rem;color:rgba(49,51,63,0.65);white-space:pre-wrap;margin:-0.5rem 0 0.5rem 0"
_NOTE = ("background:rgba(28,131,225,0.1);color:rgb(0,66,128);border-radius:0.5rem;padding:0.75rem 1rem;"
         "white-space:pre-wrap;margin-bottom:0.75rem")


def first_text(model_name: str, samples: dict[str, str], corpus: str, max_chars: int = SAMPLE_CHARS) -> tuple[str, str]:
    """`lm.inspect.sample_for` once per model and language: a user model's sample reads its corpus file."""
    return _first_text(model_name, samples, corpus, max_chars, language())


@st.cache_data(max_entries=64, show_spinner=False)
def _first_text(model_name: str, samples: dict[str, str], corpus: str, max_chars: int, lang: str) -> tuple[str, str]:
    # `lang` is in the key: the note is written in the language of the session that fills the entry
    return sample_for(cached_model(model_name), samples, corpus, max_chars)


def follow_model(key: str, model_name: str, default: str, note: str = "") -> str:
    """Seed `key` from the URL or `default`; when the model changes while the text is still the previous
    model's default (nobody typed their own), switch it to `default`. Returns `note` while the text shown is
    that default ('' once the user has changed it)."""
    memo = f"_{key}_default"
    init_from_query({key: default})
    previous = st.session_state.get(memo)
    if previous is not None and previous[0] != model_name and st.session_state[key] == previous[1]:
        st.session_state[key] = default
    st.session_state[memo] = (model_name, default)
    return note if st.session_state[key] == default else ""


def bound_text(key: str, limit: int, keep: str = "start") -> bool:
    """Cut the text under `key` to `limit` characters (its start, or its end for a context); True if cut."""
    value = st.session_state.get(key, "")
    if not isinstance(value, str):
        value = ""
    cut = len(value) > limit
    if cut:
        value = value[:limit] if keep == "start" else value[-limit:]
    st.session_state[key] = value
    return cut


def keep_valid(key: str, choices: Iterable[Any], default: Any) -> None:
    """Reset `key` to `default` when its value is not one of `choices`."""
    if st.session_state.get(key) not in list(choices):
        st.session_state[key] = default


def keep_valid_list(key: str, choices: Sequence[Any], most: int | None = None) -> None:
    """Drop the values of the list under `key` that are not in `choices` (and any beyond `most`)."""
    value = st.session_state.get(key)
    kept = [v for v in (value if isinstance(value, list) else []) if v in choices]
    st.session_state[key] = list(dict.fromkeys(kept))[:most]


def pick_model(models, key: str, families: Iterable[str] = ("transformer",), empty: str | None = None):
    """`ui.widgets.model_picker`, after dropping a chosen name that is no longer (or never was) a choice."""
    if key in st.session_state and st.session_state[key] not in {m.name for m in models}:
        del st.session_state[key]  # the URL's value, else the preferred model, is taken again
    return model_picker(models, key, families, empty)


def plain_caption(text: str) -> None:
    """A caption-sized line shown exactly as written (escaped, no Markdown)."""
    if text:
        st.html(f'<div class="lm-plain" style="{_CAPTION}">{html.escape(text)}</div>')


def plain_note(text: str) -> None:
    """An information box with text shown exactly as written (escaped, no Markdown)."""
    if text:
        st.html(f'<div class="lm-plain" style="{_NOTE}">{html.escape(text)}</div>')


def model_text_inspection(info, key: str, samples: dict[str, str], intro: str, limit: int):
    """What the internals pages share: load the picked model, a text that follows it (cut to `limit`, said so),
    the text box, and the inspection of that text with its notes. (text, Inspection), or None when a step
    failed and said why."""
    name = info.name
    if get_model(name) is None:
        return None
    note = follow_model(key, name, *first_text(name, samples, info.corpus))
    if bound_text(key, limit):
        st.caption(_("The text was cut to its first {chars:,} characters.").format(chars=limit))
    st.caption(intro)
    st.text_area(_("Text"), key=key, height=120, max_chars=limit)
    text = st.session_state[key]
    ins = get_inspection(name, text)
    if ins is None:
        return None
    plain_caption(ins.unknown_note)
    if note:
        st.caption(note)
    return text, ins
