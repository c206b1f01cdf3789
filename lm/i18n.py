"""The language of the text `lm` writes for people: chart titles and axes, the sentences the pages show, and the
messages of `LMError` — English (the source text) or Simplified Chinese, through the gettext catalog in locale/.

`lm` translates its own strings with `_()` / `ngettext()` (and marks table entries with `N_()`), reading the
compiled catalog with Python's `gettext`: the same catalog, one domain, as the pages (`python tools/i18n.py`
extracts every `_()` call in lm/ with the pages' ones; see its docstring). Nothing here imports Streamlit.

The current language is a `contextvars.ContextVar`, so it belongs to a thread (or a task), never to the process:
- `set_language("zh")` sets it for the rest of this thread's work (ui/i18n.py does, at the start of every script
  run: Streamlit runs each session's script in its own thread); `using("zh")` sets it for a `with` block;
- where nothing set it (a new thread, say the one Streamlit starts for a fragment's rerun), the answer comes from
  the fallback the app registered (`set_fallback`: ui/i18n.py asks the session), else English. The CLI, the
  worker processes and every background thread therefore write English.

Strings with numbers or names use named placeholders (`_("{count:,} tokens").format(count=n)`), so a
translation can put them in its own order. Model output and what a user typed are values, never messages.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import gettext
from pathlib import Path
from typing import Callable, Iterator, Mapping

DOMAIN = "lm_playground"
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
CATALOGS = {"zh": "zh_CN"}  # language code -> the catalog's locale folder; English is the source text itself
DEFAULT = "en"
LANGUAGE: contextvars.ContextVar[str | None] = contextvars.ContextVar("lm_language", default=None)
_fallback: Callable[[], str] | None = None


@functools.cache
def translations(lang: str) -> gettext.NullTranslations:
    """The translation object of `lang` (read once per process, shared read-only by every thread); English, or a
    checkout without a compiled catalog, gets the source text back."""
    if lang not in CATALOGS:
        return gettext.NullTranslations()
    try:
        return gettext.translation(DOMAIN, LOCALE_DIR, languages=[CATALOGS[lang]])
    except OSError:  # no .mo (run python tools/i18n.py): the library still works, in English
        return gettext.NullTranslations()


def language() -> str:
    """The current language: this context's, else the registered fallback's, else English."""
    lang = LANGUAGE.get()
    if lang is None and _fallback is not None:
        lang = _fallback()
    return lang if lang in CATALOGS else DEFAULT


def set_language(lang: str | None) -> contextvars.Token:
    """Make `lang` the current language of this context (None: back to the fallback); returns the token that
    `LANGUAGE.reset` takes."""
    return LANGUAGE.set(lang)


@contextlib.contextmanager
def using(lang: str | None) -> Iterator[None]:
    """The current language is `lang` inside the block, what it was before after it."""
    token = LANGUAGE.set(lang)
    try:
        yield
    finally:
        LANGUAGE.reset(token)


def set_fallback(func: Callable[[], str] | None) -> Callable[[], str] | None:
    """The language of a context nobody set one in (the app registers the session's choice); returns the
    previous fallback."""
    global _fallback
    previous, _fallback = _fallback, func
    return previous


def _(message: str) -> str:
    """`message` in the current language (unchanged when the catalog does not hold it)."""
    return translations(language()).gettext(message) if message else message


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural of a message about `n` things, in the current language."""
    return translations(language()).ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Marks `message` for the catalog without translating it (a table entry, translated where it is shown)."""
    return message


def render(message: str, fields: Mapping[str, object]) -> str:
    """`message` translated, its `{placeholders}` filled from `fields`; the English text if the translation
    does not take the same fields (a broken catalog entry never hides the message)."""
    if not fields:
        return _(message)
    try:
        return _(message).format(**fields)
    except (KeyError, IndexError, ValueError):
        return message.format(**fields)
