"""A first text for an inspection page that the chosen model can read and that fits what it traces.

A page offers one prepared text per built-in corpus (chosen to show something: a repeated name, speaker
lines, quotes). `sample_for` picks the one for the model's corpus; if the model's alphabet cannot read it
(a character model of another corpus, or a user's corpus), it takes the start of the held-out part of the
model's own corpus instead, found by its recorded path (`lm.store.provenance`). `fit_to_tokens` then cuts
the text at the last line break (else word break) that keeps it within the model's context, so the view
never stops in the middle of the point it was chosen to make, and the returned note says it was cut (in the
current language, `lm.i18n`).
"""

from __future__ import annotations

import re
from typing import Mapping

from lm.errors import LMError
from lm.i18n import _
from lm.inspect.text import trace_cap
from lm.store.provenance import model_corpus

SAMPLE_CHARS = 400  # characters of a corpus's held-out text offered as a sample


def fit_to_tokens(tokenizer, text: str, cap: int) -> str:
    """The longest start of `text` with at most `cap` tokens, cut after a line (or, failing that, a word).

    A line cut is taken when it keeps at least half of what a word cut would; a text with no usable break
    is cut at `cap` tokens.
    """
    if len(tokenizer.encode(text)) <= cap:
        return text
    lines = [m.end() for m in re.finditer(r"\n", text)]
    words = [m.start() for m in re.finditer(r"(?<=\S)\s", text)]

    def best(cuts: list[int]) -> int:
        fitting = 0
        low, high = 0, len(cuts) - 1
        while low <= high:  # token counts grow with the cut: binary search the last one that fits
            mid = (low + high) // 2
            if len(tokenizer.encode(text[:cuts[mid]])) <= cap:
                fitting, low = cuts[mid], mid + 1
            else:
                high = mid - 1
        return fitting

    by_line, by_word = best(lines), best(words)
    cut = by_line if by_line and by_line * 2 >= by_word else by_word
    if cut:
        return text[:cut]
    return tokenizer.decode(tokenizer.encode(text)[:cap])


def corpus_sample(loaded, max_chars: int = SAMPLE_CHARS) -> str:
    """The start of the held-out part of the model's corpus, cut at a line (else word) break."""
    corpus = model_corpus(loaded.meta, loaded.name)
    split = corpus.split()
    text = (split.valid.text or split.train.text)[:max_chars * 2].lstrip()
    if not text.strip():
        raise LMError("{model}: its corpus has no text to show", model=loaded.name)
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    line, space = head.rfind("\n"), head.rfind(" ")
    cut = line + 1 if line >= max_chars // 2 else (space if space > 0 else max_chars)
    return head[:cut]


def readable(tokenizer, text: str) -> bool:
    """True when the tokenizer knows every character of `text` (a byte-level BPE always does)."""
    return not tokenizer.encode_report(text)[1]


def sample_for(loaded, samples: Mapping[str, str], corpus: str, max_chars: int = SAMPLE_CHARS) -> tuple[str, str]:
    """(text, note): the sample of `corpus` (the model's), or of the model's own held-out text when its
    alphabet cannot read that, fitted to what the page traces; the note says when it had to be cut."""
    tokenizer = loaded.tokenizer
    text = samples.get(corpus)
    if text is None or not readable(tokenizer, text):
        try:
            text = corpus_sample(loaded, max_chars)
        except LMError:  # GPT-2, a corpus file gone: the first sample (a BPE reads anything)
            text = text or next(iter(samples.values()))
    cap = trace_cap(loaded.model)
    fitted = fit_to_tokens(tokenizer, text, cap)
    note = "" if fitted == text else _("The sample text is cut at a line or word break to fit this model's context "
                                       "of {count} tokens.").format(count=cap)
    return fitted, note
