"""Computations behind the Compare page: the same prompt through several models, side by side.

Everything here is plain Python over the `lm` API (no UI): the page only draws what these functions return.

- `generate_column`: one model's continuation of a prompt with its speed and diversity numbers, stopped at a
  number of characters (`token_budget`: the tokens that takes), so every column writes as much text;
- `cross_score`: bits per character of every text under every model (a character model and a BPE model are
  comparable only per character, see `lm.run.metrics`);
- `surprisal_by_char`: one text's per-token surprisal laid out on character positions, so models with
  different tokenizers line up on one x axis;
- `memorisation` / `CorpusIndex`: the longest span of a text copied verbatim from a model's training text;
  `copied_words`: the copied span with the most words in it, so that speaker names, scene headings,
  punctuation and line breaks copied between two speeches ("ain.↵↵TITUS ANDRONICUS:↵") do not count;
- `default_lineup`: which models to compare when the page opens.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np

from lm.store.checkpoint import LoadedModel
from lm.app.quotas import request_time_budget
from lm.errors import LMError
from lm.models import FAMILIES
from lm.run.generate import MAX_PROMPT_CHARS, GeneratedToken, collect, encode_prompt, generate
from lm.run.metrics import CopiedSpan, ScoreResult, distinct_n_words, longest_copied_span, score
from lm.run.sampling import MAX_NEW_TOKENS, SamplingSettings
from lm.store.provenance import corpus_source, load_source  # noqa: F401  corpus_source: the page's name for it
from lm.app.playground import per_second


# -- one model's column on the Compare page ---------------------------------------------------------
@dataclasses.dataclass
class ColumnResult:
    name: str
    text: str
    tokens: list[GeneratedToken]
    seconds: float
    replaced: list[str]  # prompt characters this model's tokenizer did not know

    @property
    def tokens_per_second(self) -> float | None:
        """None when the time was too short to measure (never an infinite rate)."""
        return per_second(len(self.tokens), self.seconds)

    @property
    def distinct_1(self) -> float:
        return distinct_n_words(self.text, 1)

    @property
    def distinct_2(self) -> float:
        return distinct_n_words(self.text, 2)


BYTES_PER_CHAR = 4  # UTF-8: a byte-level BPE token may hold a quarter of a character, never less


def token_budget(tokenizer, chars: int) -> int:
    """Tokens enough for a model with `tokenizer` to write `chars` characters: one per character for a character
    tokenizer; for byte-level BPE enough for a text of 4-byte characters (generation stops at `chars`
    characters long before, at about one token per 3-4 characters of English)."""
    per_char = 1 if tokenizer.kind == "char" else BYTES_PER_CHAR
    return max(1, min(int(chars) * per_char, MAX_NEW_TOKENS))


def until_chars(stream: Iterable[GeneratedToken], chars: int) -> Iterator[GeneratedToken]:
    """The tokens of a one-sample stream until their text reaches `chars` characters; the last one is cut to fit
    and marked finished, and the stream is closed (no token is generated past it)."""
    written = 0
    try:
        for token in stream:
            room = chars - written
            if len(token.text) >= room:
                yield dataclasses.replace(token, text=token.text[:room], finished=True)
                return
            written += len(token.text)
            yield token
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()


def generate_column(loaded: LoadedModel, prompt: str, settings: SamplingSettings, on_token=None,
                    chars: int | None = None) -> ColumnResult:
    """One sample of `loaded`'s continuation; `on_token(text_so_far, token)` is called as tokens arrive.

    With `chars`, the column writes exactly that many characters (fewer only if the model's token budget,
    `token_budget`, runs out first): settings.max_new_tokens is replaced by that budget.
    """
    settings = settings.replace(samples=1)
    if chars is not None:
        settings = settings.replace(max_new_tokens=token_budget(loaded.tokenizer, chars))
    replaced = encode_prompt(loaded.tokenizer, prompt).replaced
    stream = generate(loaded.model, loaded.tokenizer, prompt, settings, settings.generator())
    if chars is not None:
        stream = until_chars(stream, chars)
    done = collect(stream, on_token=None if on_token is None else
                   lambda token, tokens: on_token("".join(t.text for t in tokens[0]), token),
                   time_budget=request_time_budget())
    return ColumnResult(loaded.name, done.texts[0], done.tokens[0], done.seconds, replaced)


def memorisation(text: str, corpus: str | CorpusIndex | None) -> CopiedSpan | None:
    """The longest span of `text` copied verbatim from the training text (None when that text is unknown)."""
    if corpus is None or not text:
        return None
    if isinstance(corpus, CorpusIndex):
        return corpus.longest_copied_span(text)
    return longest_copied_span(text, corpus)


# Lines of a play's layout, as the Shakespeare corpus writes them: a speaker's name ("ROMEO:", "First Citizen:",
# capitalised words, so that a verse line ending in a colon, "Speak to me:", is not one),
# a heading ("ACT II", "SCENE III. A street.") or an entrance or exit ("Exeunt", "Enter ROMEO").
LAYOUT_LINE = re.compile(r"(?m)^(?:[A-Z][\w'.&-]*(?: (?:[A-Z][\w'.&-]*|of|and|de|la|le|du|the)){0,3}:[ \t]*"
                         r"|(?:ACT|SCENE) [IVXLC]+\b[^\n]*|(?:Exeunt|Exit|Enter|Re-enter)\b[^\n]*)$")


def word_mask(text: str) -> list[bool]:
    """Which characters of `text` are words: letters, digits and the spaces after them, outside the play's layout
    lines (`LAYOUT_LINE`). Punctuation, line breaks, speaker names and scene headings are what any model of the
    corpus writes between speeches; copying them is not memorising."""
    mask = [ch.isalnum() or (ch == " " and i > 0 and text[i - 1].isalnum()) for i, ch in enumerate(text)]
    for match in LAYOUT_LINE.finditer(text):
        mask[match.start():match.end()] = [False] * (match.end() - match.start())
    return mask


@dataclasses.dataclass
class CopiedWords:
    span: CopiedSpan  # the copied span with the most words in it
    words: int  # how many of its characters are words (`word_mask`); the rest is names, punctuation, breaks


def copied_words(text: str, corpus: str | CorpusIndex | None) -> CopiedWords | None:
    """The span of `text` found verbatim in the training text that holds the most word characters (None when the
    training text is unknown). For every start the longest copied span is found (the ends never move back, so
    the corpus is searched at most 2 x len(text) times, as in `longest_copied_span`)."""
    if corpus is None or not text:
        return None
    index = corpus if isinstance(corpus, CorpusIndex) else None
    text = text[:MAX_PROMPT_CHARS]
    plain = corpus.text if index else corpus
    occurs = index.occurs_in(text) if index else (lambda start, length: text[start:start + length] in plain)
    prefix = np.concatenate([[0], np.cumsum(word_mask(text), dtype=np.int64)])
    best_start, best_end, best_words, end = 0, 0, 0, 0
    for start in range(len(text)):
        end = max(end, start)
        while end < len(text) and occurs(start, end - start + 1):
            end += 1
        words = int(prefix[end] - prefix[start])
        if words > best_words:
            best_start, best_end, best_words = start, end, words
        if end == len(text):
            break
    span = text[best_start:best_end]
    return CopiedWords(CopiedSpan(span, best_start, plain.find(span) if span else -1), best_words)


_HASH_BASE = np.uint64(0x100000001B3)  # any odd 64-bit multiplier; arithmetic wraps modulo 2**64


def _window_hashes(codes: np.ndarray, k: int) -> np.ndarray:
    """A 64-bit polynomial hash of every window of `k` code points (equal windows, equal hashes)."""
    n = len(codes) - k + 1
    out = np.zeros(max(0, n), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(k):
            out = out * _HASH_BASE + codes[j:j + n]
    return out


def _codes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.uint64)


class CorpusIndex:
    """A training text with every k-gram's positions, sorted by hash, for a fast memorisation meter.

    `lm.run.metrics.longest_copied_span` searches the whole corpus each time a candidate span is *not* in it,
    which on a multi-megabyte corpus costs a millisecond or more per generated character. Here a span of k or
    more characters is looked up through its rarest k-gram: the positions where that k-gram occurs are the
    only places the span can start from, so checking them (a few, usually) replaces the scan. Spans shorter
    than k, and spans made only of very common k-grams, are still searched directly. The walk over the text is
    `longest_copied_span`'s own, so is the answer. Building the index reads the corpus once (about a second for Shakespeare).
    """

    MAX_CANDIDATES = 2000  # beyond this many places to check, one direct search of the corpus is cheaper

    def __init__(self, text: str, k: int = 8):
        self.text, self.k = text, k
        hashes = _window_hashes(_codes(text), k) if len(text) >= k else np.zeros(0, dtype=np.uint64)
        order = np.argsort(hashes, kind="stable")
        self.hashes = hashes[order]  # sorted k-gram hashes
        self.positions = order.astype(np.int64)  # where each of them starts in the corpus

    def longest_copied_span(self, text: str) -> CopiedSpan:
        text = text[:MAX_PROMPT_CHARS]
        return longest_copied_span(text, self.text, occurs=self.occurs_in(text))

    def occurs_in(self, text: str) -> Callable[[int, int], bool]:
        """`occurs(start, length)`: is text[start:start + length] in the corpus? (through the index)"""
        m, k, corpus = len(text), self.k, self.text
        if m >= k and self.hashes.size:
            windows = _window_hashes(_codes(text), k)  # [m - k + 1]
            lows = np.searchsorted(self.hashes, windows, side="left")
            counts = np.searchsorted(self.hashes, windows, side="right") - lows  # occurrences of each k-gram
        else:
            lows = counts = None

        def occurs(start: int, length: int) -> bool:
            needle = text[start:start + length]
            if counts is None or length < k:
                return needle in corpus
            span_counts = counts[start:start + length - k + 1]
            rarest = int(np.argmin(span_counts))
            n = int(span_counts[rarest])
            if n == 0:
                return False  # one of its k-grams never occurs in the corpus
            if n > self.MAX_CANDIDATES:
                return needle in corpus
            low = int(lows[start + rarest])
            for position in self.positions[low:low + n].tolist():
                begin = position - rarest
                if begin >= 0 and corpus.startswith(needle, begin):
                    return True
            return False

        return occurs


def training_text(name: str, path: str | None = None, max_chars: int | None = None) -> str:
    """The training part of a corpus (built-in name, or a user corpus file at `path`), as the model saw it."""
    return load_source(name, path, max_chars).split().train.text


# -- cross-scoring ----------------------------------------------------------------------------------
def cross_score(models: Sequence[LoadedModel], texts: Sequence[str]) -> list[list[float | None]]:
    """matrix[i][j] = bits per character of texts[i] under models[j] (None if the text cannot be scored)."""
    matrix: list[list[float | None]] = []
    for text in texts:
        row: list[float | None] = []
        for loaded in models:
            try:
                row.append(score(loaded.model, loaded.tokenizer, text).bits_per_char if text else None)
            except LMError:
                row.append(None)
        matrix.append(row)
    return matrix


@dataclasses.dataclass
class CharSurprisal:
    """One token's surprisal spread over the characters it covers."""

    start: int  # first character of the token in the text
    end: int  # one past its last character (start == end for a token that completes no character)
    piece: str
    bits: float  # surprisal of the whole token

    @property
    def bits_per_char(self) -> float:
        return self.bits / max(1, self.end - self.start)


def char_spans(tokenizer, text: str, result: ScoreResult) -> list[tuple[int, int]]:
    """(start, end) in `text` of every token `score` scored in it, contiguous from the first scored character.

    A byte-level BPE token that ends inside a multi-byte character covers no character of its own; the
    character is credited to the token that completes it.
    """
    offset = len(text) - result.characters  # characters before the first scored token (merged start)
    ids = [t.token_id for t in result.tokens]
    out: list[tuple[int, int]] = []
    position = offset
    for k in range(len(ids)):
        if tokenizer.kind == "char":
            end = position + 1
        else:
            decoded = tokenizer.decode(ids[:k + 1])
            end = position if decoded.endswith("\ufffd") and k + 1 < len(ids) else offset + len(decoded)
        end = min(max(end, position), len(text))
        out.append((position, end))
        position = end
    return out


def surprisal_by_char(loaded: LoadedModel, text: str) -> list[CharSurprisal]:
    """Per-token surprisal of `text` with each token's character span, so char and BPE models align."""
    result = score(loaded.model, loaded.tokenizer, text)
    return [CharSurprisal(start, end, tok.piece, tok.surprisal_bits)
            for (start, end), tok in zip(char_spans(loaded.tokenizer, text, result), result.tokens)]


# -- which models to compare by default -------------------------------------------------------------
LINEUP_FAMILIES = tuple(FAMILIES)  # one of each family, in the specs' order


def default_lineup(infos: Sequence, corpus: str = "shakespeare", tokenizer: str = "char") -> list[str]:
    """Names of an n-gram, a recurrent and a Transformer model trained on one corpus with one tokenizer.

    `infos` are `lm.store.registry.ModelInfo`s. The (corpus, tokenizer) group covering the most families wins;
    ties go to `corpus`/`tokenizer` (char Shakespeare), then to zoo models. Within a family an LSTM is
    preferred, then zoo over user models, then the lowest held-out bits/char.
    """
    groups: dict[tuple[str, str], list] = {}
    for info in infos:
        if info.family in LINEUP_FAMILIES:
            groups.setdefault((info.corpus, info.tokenizer), []).append(info)
    if not groups:
        return [info.name for info in list(infos)[:3]]

    def group_rank(item):
        (corp, tok), members = item
        return (-len({m.family for m in members}), corp != corpus, tok != tokenizer,
                not any(m.source == "zoo" for m in members), corp, tok)

    _, members = min(groups.items(), key=group_rank)
    chosen = []
    for family in LINEUP_FAMILIES:
        candidates = [m for m in members if m.family == family]
        if candidates:
            best = min(candidates, key=lambda m: (m.variant != "lstm", m.source != "zoo",
                                                  m.valid_bits_per_char if m.valid_bits_per_char is not None
                                                  else math.inf, m.name))
            chosen.append(best.name)
    return chosen
