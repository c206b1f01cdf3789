"""Looking inside a model: tokenize a text and run the model's `trace` (`inspect_text` -> `Inspection`), the
next-token distribution of a context and its top tokens, and token counts under several tokenizers.

The other views' summaries are beside this module (attention, recurrent, ngram); `lm.inspect` gathers them.

The sentences for the pages (`Inspection.note`, `unknown_note`) are built when they are read, in the current
language (`lm.i18n`), from numbers the inspection keeps: a page's cache may hand one inspection to sessions
reading different languages."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import numpy as np
import torch

from lm.errors import LMError
from lm.data.corpus import load_corpus
from lm.i18n import _, ngettext


MAX_TRACE_TOKENS = 512  # cap for models without a context limit (RNN, n-gram): traces loop in Python
MAX_ATTENTION_CELLS = 10_000_000  # layers x heads x T x T floats kept per trace (40 MB): caps GPT-2 small at 263
MAX_CHARS_PER_TOKEN = 32  # only cap x this many characters are tokenized: a 5 MB text costs no more than a page
MAX_TEXT_CHARS = 2_000  # the longest text an inspection page takes (every model's trace is shorter)


def as_array(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


# -- tokens and traces --------------------------------------------------------------------------------------


@dataclasses.dataclass
class Inspection:
    """One text as a model sees it, and what the model did with it."""

    tokens: list[str]  # display text of each token (tokenizer.token_strings)
    ids: list[int]
    trace: Any  # AttentionTrace | RecurrentTrace | NgramTrace
    text: str  # the text the traced tokens cover (the input as typed, cut where the cap cut it)
    spans: list[tuple[int, int]]  # [start, end) of each token in `text` (empty for a partial UTF-8 byte)
    truncated: bool = False
    cut: tuple[int, int, bool, bool] | None = None  # the text was cut: (its tokens, tokens kept, every character
    # of it tokenized, kept = the model's context length); None when it was not (see `cut_note`)
    unknown: list[str] = dataclasses.field(default_factory=list)  # characters a char tokenizer never saw
    unknown_count: int = 0  # how many positions of `text` hold one of them

    @property
    def note(self) -> str:
        """One line saying why/where the text was cut ('' when it was not)."""
        return cut_note(self.cut)

    @property
    def unknown_note(self) -> str:
        """One line for a character model that met characters it never saw ('' when it knew them all)."""
        return unknown_note(self.unknown, self.unknown_count)

    @property
    def pieces(self) -> list[str]:
        """The exact text of each token (what the HTML views paint); '' where a token is half a character."""
        return [self.text[s:e] for s, e in self.spans]


def trace_cap(model) -> int:
    """How many tokens `inspect_text` traces for `model` (its context, bounded for speed and memory)."""
    cap = MAX_TRACE_TOKENS
    if model.family != "transformer":  # an n-gram's context_length is its history, not a limit on the text
        return cap
    if model.context_length:
        cap = min(cap, int(model.context_length))
    layers, heads = getattr(model.config, "n_layers", None), getattr(model.config, "n_heads", None)
    if layers and heads:
        cap = min(cap, max(16, int(math.sqrt(MAX_ATTENTION_CELLS / (layers * heads)))))
    return cap


def token_spans(tokenizer, ids: Sequence[int]) -> tuple[str, list[tuple[int, int]]]:
    """(decoded text, [start, end) of every token in it).

    Decoding token by token is exact for character tokenizers and for BPE tokens that hold whole
    characters; when a BPE token holds part of a multi-byte character, prefixes are decoded instead and the
    partial token gets an empty span (its bytes show up with the token that completes the character).
    """
    ids = list(ids)
    text = tokenizer.decode(ids)
    pieces = [tokenizer.decode([i]) for i in ids]
    if "".join(pieces) == text:
        spans, pos = [], 0
        for piece in pieces:
            spans.append((pos, pos + len(piece)))
            pos += len(piece)
        return text, spans
    spans, prev = [], 0
    for k in range(1, len(ids) + 1):
        prefix = tokenizer.decode(ids[:k])
        end = len(prefix.rstrip("\ufffd")) if k < len(ids) else len(text)
        end = min(max(end, prev), len(text))
        spans.append((prev, end))
        prev = end
    return text, spans


def painted_by(pieces: Sequence[str]) -> list[int]:
    """For every token, the token whose piece paints it: itself, or for the bytes of a character split over
    several BPE tokens (empty pieces), the token that completes the character (a cut-off tail paints itself)."""
    out = list(range(len(pieces)))
    owner = None
    for t in range(len(pieces) - 1, -1, -1):
        if pieces[t]:
            owner = t
        elif owner is not None:
            out[t] = owner
    return out


def cut_note(cut: tuple[int, int, bool, bool] | None) -> str:
    """'The text has 600 tokens; only the first 128 are shown (its context length).' for an `Inspection.cut`."""
    if cut is None:
        return ""
    count, kept, whole, by_context = cut
    why = _("its context length") if by_context else _("the inspection limit")
    line = (_("The text has {count:,} tokens; only the first {kept:,} are shown ({why}).") if whole else
            _("The text has over {count:,} tokens; only the first {kept:,} are shown ({why})."))
    return line.format(count=count, kept=kept, why=why)


def unknown_note(unknown: Sequence[str], count: int, most: int = 24) -> str:
    """'3 characters of this text are not in this model's alphabet (…)': '' when `unknown` is empty."""
    if not unknown:
        return ""
    shown = " ".join(unknown[:most]) + (" …" if len(unknown) > most else "")
    return ngettext("{count:,} character of this text never occurred in this model's training text ({chars}): "
                    "it reads each as its one unknown token.",
                    "{count:,} characters of this text never occurred in this model's training text ({chars}): "
                    "it reads each as its one unknown token.", count).format(count=count, chars=shown)


def _char_display(text: str) -> str:
    """The text as typed, a lone surrogate (invalid in UTF-8, so unsendable to a page) shown as U+FFFD."""
    return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)


def inspect_text(loaded, text: str, max_tokens: int | None = None) -> Inspection:
    """Tokenize `text` with the model's tokenizer, keep at most the model's cap of tokens, and trace them.

    `loaded` is an `lm.store.checkpoint.LoadedModel`. The cap is the model's context (Transformer) or
    `MAX_TRACE_TOKENS` (RNN, n-gram); `max_tokens` lowers it further. A longer text keeps its beginning, and
    `note` says so; only its first cap x `MAX_CHARS_PER_TOKEN` characters are ever tokenized. A character
    model keeps the text as typed (`text`, `pieces`): a character it never saw is painted as itself, and
    `unknown` / `unknown_note` say which ones it read as its unknown token.
    """
    if not isinstance(text, str) or not text.strip():
        raise LMError("type some text to inspect")
    model, tokenizer = loaded.model, loaded.tokenizer
    cap = trace_cap(model)
    if max_tokens is not None:
        cap = max(1, min(cap, int(max_tokens)))
    head = text[:cap * MAX_CHARS_PER_TOKEN]
    ids = list(tokenizer.encode(head))
    if not ids:
        raise LMError("the text could not be turned into any tokens")
    truncated = len(ids) > cap or len(head) < len(text)
    cut = None
    if truncated:
        cut = (len(ids), min(cap, len(ids)), len(head) == len(text),
               model.family == "transformer" and model.context_length == cap)
        ids = ids[:cap]
    ids_t = torch.tensor(ids, dtype=torch.long, device=model.device)
    if model.family == "ngram":  # readable notes ("'th' never followed ...") instead of id lists
        trace = model.trace(ids_t, token_strings=tokenizer.token_strings(list(range(tokenizer.vocab_size))))
    else:
        trace = model.trace(ids_t)
    unknown, count = [], 0
    if tokenizer.kind == "char":  # one token per code point: the typed text lines up with the ids
        shown = head[:len(ids)]
        never_seen = sorted(tokenizer.encode_report(shown)[1], key=shown.index)  # in reading order
        count = sum(shown.count(c) for c in never_seen)
        unknown = list(dict.fromkeys(_char_display(c) for c in never_seen))
        decoded, spans = _char_display(shown), [(i, i + 1) for i in range(len(ids))]
    else:
        decoded, spans = token_spans(tokenizer, ids)
    return Inspection(tokenizer.token_strings(ids), ids, trace, decoded, spans, truncated, cut, unknown, count)


def next_token_distribution(model, ids: Sequence[int]) -> np.ndarray:
    """p(next token | ids) as a [V] array (zeros where MLE has no counts; uniform if the context is empty)."""
    if not len(ids):
        raise LMError("the context has no tokens")
    ids_t = torch.tensor([list(ids)], dtype=torch.long, device=model.device)
    with torch.inference_mode():
        logits = model.logits(ids_t)[0, -1].float().cpu()
    if not torch.isfinite(logits).any():
        return np.full(logits.shape[0], 1.0 / logits.shape[0], dtype=np.float32)
    return torch.softmax(logits, -1).numpy()


def top_tokens(probs, tokenizer, k: int = 10) -> list[tuple[int, str, float]]:
    """(id, display text, probability) of the `k` most likely tokens, most likely first (p > 0 only)."""
    p = as_array(probs)
    k = min(k, int((p > 0).sum()) or 1)
    idx = np.argsort(-p, kind="stable")[:k]
    strings = tokenizer.token_strings([int(i) for i in idx])
    return [(int(i), s, float(p[i])) for i, s in zip(idx, strings)]


# -- tokenizers ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class TokenCount:
    label: str
    kind: str
    vocab_size: int
    tokens: int
    chars_per_token: float


def token_counts(text: str, tokenizers: dict[str, Any]) -> list[TokenCount]:
    """How many tokens `text` becomes under each labelled tokenizer."""
    out = []
    for label, tok in tokenizers.items():
        n = len(tok.encode(text))
        out.append(TokenCount(label, tok.kind, tok.vocab_size, n, len(text) / n if n else 0.0))
    return out


def bpe_training_text(corpus: str, max_chars: int = 400_000) -> str:
    """The start of a built-in corpus's training split: enough to learn a few thousand merges in seconds."""
    return load_corpus(corpus).split().train.text[:max_chars]
