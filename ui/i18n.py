"""The interface's languages: English (the default) and Simplified Chinese, through gettext catalogs.

Every user-visible string of the pages goes through `_()` (or `ngettext()` for counts); Babel extracts them
into `locale/zh_CN/LC_MESSAGES/lm_playground.po`, and the app reads only the compiled `.mo` with Python's own
`gettext` (`python tools/i18n.py` extracts, merges and compiles: see its docstring).

The language belongs to the session, never to the process: two students on one server may read two languages
at once. So nothing is `install()`ed into builtins; `_()` picks the translation object of the session's choice
(`st.session_state["lang"]`, seeded from the URL's `lang=zh` / `lang=en` and kept there, so a shared link
opens in the sender's language). Outside a script run (a background thread) it answers in English.

- `N_()` (lm's own) marks a string for the catalog where it is defined (a module-level table) and returns it
  unchanged; the page translates it with `_()` where it shows it;
- `option_labels()` is a widget's format_func for options shown translated (computed during the run);
- `lazy_gettext()` is for text Streamlit reads later, in the script's thread: a cache's spinner message is
  fixed when the module is imported, and this str translates itself each time Streamlit turns it into text;
- `_()` of a text that is no message (model output, what the user typed, text `lm` already translated) gives it
  back unchanged.

`lm` translates its own text (chart titles, its sentences, LMError messages) through `lm.i18n`, with the same
catalog: `language_picker` sets lm's context variable at the start of every script run, and lm falls back to
asking this module (`session_language`) in a thread nobody set it in (the one Streamlit starts to rerun a
fragment), so a chart drawn in a fragment reads in the session's language too.
"""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from lm import i18n as lm_i18n
from lm.i18n import CATALOGS, DEFAULT, DOMAIN, LOCALE_DIR, N_, translations  # noqa: F401  one catalog for both
from ui.state import init_from_query, write_query

LANGUAGES = {"en": "English", "zh": "简体中文"}  # URL value -> the language's own name (what the picker shows)
KEY = "lang"  # the session-state key and the URL parameter
PICKER_LABEL = "Language · 语言"  # in both languages: whoever cannot read the current one still finds it


def language() -> str:
    """This session's language ("en" outside a script run, or before the picker has run)."""
    try:
        lang = st.session_state.get(KEY, DEFAULT)
    except Exception:  # noqa: BLE001 — no script run context (a background thread): the source language
        return DEFAULT
    return lang if lang in LANGUAGES else DEFAULT


def _(message: str) -> str:
    """`message` in this session's language (unchanged when the catalog does not hold it)."""
    return translations(language()).gettext(message) if message else message


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural of a message about `n` things, in this session's language."""
    return translations(language()).ngettext(singular, plural, n)


def session_language() -> str:
    """`language()` where a script run is going on, English elsewhere (asked without Streamlit's warning about a
    thread with no script run context): what `lm` answers in where nobody set its language."""
    return language() if get_script_run_ctx(suppress_warning=True) is not None else DEFAULT


lm_i18n.set_fallback(session_language)


def option_labels(options, label=None):
    """A widget's `format_func` showing each option as `label(option)` (its translation by default), worked out
    now, in the session's language: Streamlit may format an option again later, outside this script run (a test
    harness does), where `_()` would answer in English and the option would no longer match its label."""
    label = label or _
    shown = {option: label(option) for option in options}
    return lambda option: shown.get(option, str(option))


class lazy_gettext(str):
    """A str that translates itself when Streamlit converts it to text (`str(...)`), in the session asking."""

    def __str__(self) -> str:
        return _(str.__str__(self))


def language_picker() -> None:
    """The sidebar's language picker (app.py calls it before routing, so every page has it), kept in the URL."""
    init_from_query({KEY: DEFAULT}, allowed={KEY: list(LANGUAGES)})
    if st.session_state[KEY] not in LANGUAGES:  # a crafted widget message
        st.session_state[KEY] = DEFAULT
    st.sidebar.selectbox(PICKER_LABEL, list(LANGUAGES), key=KEY, format_func=LANGUAGES.get)
    write_query([KEY])
    lm_i18n.set_language(st.session_state[KEY])  # lm's text in this run's thread: this session's language
