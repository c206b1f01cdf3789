"""Scoring a text under a model, and the metrics the app compares models by.

Bits per character is the unit every comparison uses: a character model and a BPE model split the same text
into different numbers of tokens, so per-token perplexities cannot be compared, but the total information
the model assigns to the text, divided by its length in characters, can.

A text is scored after a start-of-line context (`START_TEXT`), so every character of it is predicted.
Texts longer than a model's context are scored with overlapping windows: every token is predicted once,
with at least half a window of context.
"""

from __future__ import annotations

import dataclasses
import math
import re
import threading
from typing import Callable, Sequence

import numpy as np
import torch

from lm.errors import LMError
from lm.run.generate import MAX_PROMPT_CHARS, START_TEXT
from lm.models.base import LanguageModel

MAX_SCORE_CHARS = 2_000_000
CHECK_CHARS = 2_000  # held-out characters a test re-scores to check a shipped model's recorded metrics
_UNBOUNDED_WINDOW = 4096  # window for models without a context limit (RNN, n-gram): bounds memory only


@dataclasses.dataclass
class TokenScore:
    token_id: int
    piece: str  # display text of the token
    logprob: float  # natural log of p(token | everything before it)
    rank: int  # 1 = the model's top choice

    @property
    def surprisal_bits(self) -> float:
        return -self.logprob / math.log(2)


class TokenScores(Sequence):
    """The scored tokens of a text as a read-only sequence of `TokenScore`, kept as arrays: the objects are made
    (all at once, once) when the sequence is first indexed or iterated, the display pieces and, for n-gram
    models, the ranks only then, so a caller that needs only the totals (bits per character) never pays for
    them. Pickles and copies as a plain list."""

    def __init__(self, ids: np.ndarray, logprobs: np.ndarray, ranks: np.ndarray | Callable[[], np.ndarray],
                 pieces: Callable[[], list[str]]):
        self.ids, self.logprobs = ids, logprobs  # logprobs: float32, as the models return them
        self._ranks, self._pieces = ranks, pieces
        self._items: list[TokenScore] | None = None
        self._lock = threading.Lock()

    def _list(self) -> list[TokenScore]:
        if self._items is None:
            with self._lock:
                if self._items is None:
                    ranks = self._ranks() if callable(self._ranks) else self._ranks
                    self._items = [TokenScore(i, p, lp, r) for i, p, lp, r in zip(
                        self.ids.tolist(), self._pieces(), self.logprobs.tolist(), ranks.tolist())]
        return self._items

    def __len__(self) -> int:
        return int(self.ids.size)

    def __getitem__(self, index):
        return self._list()[index]

    def __iter__(self):
        return iter(self._list())

    def __eq__(self, other) -> bool:
        return list(self) == list(other) if isinstance(other, (list, TokenScores)) else NotImplemented

    def __reduce__(self):
        return list, (self._list(),)

    def __repr__(self) -> str:
        return f"TokenScores({len(self)} tokens)"

    def total_nats(self) -> float:
        """-sum of the log-probs, summed left to right in float64 like `sum()` over the tokens."""
        return -float(np.cumsum(self.logprobs, dtype=np.float64)[-1]) if self.ids.size else 0.0


@dataclasses.dataclass
class ScoreResult:
    tokens: Sequence[TokenScore]  # a `TokenScores` from `score`
    characters: int  # characters of text the scored tokens cover
    replaced: list[str]  # characters the tokenizer did not know
    ids: list[int] = dataclasses.field(default_factory=list)  # every id, the unscored first one included

    @property
    def total_nats(self) -> float:
        if isinstance(self.tokens, TokenScores):
            return self.tokens.total_nats()
        return -sum(t.logprob for t in self.tokens)

    @property
    def total_bits(self) -> float:
        return self.total_nats / math.log(2)

    @property
    def nats_per_token(self) -> float:
        return self.total_nats / max(1, len(self.tokens))

    @property
    def perplexity(self) -> float:
        """Per-token perplexity (infinite when some token had probability zero)."""
        value = self.nats_per_token
        return math.exp(value) if value < 700 else math.inf

    @property
    def bits_per_char(self) -> float:
        return self.total_bits / max(1, self.characters)

    @property
    def nats_per_char(self) -> float:
        return self.total_nats / max(1, self.characters)

    def to_json(self) -> dict:
        return {
            "tokens": [{"id": t.token_id, "piece": t.piece, "logprob": t.logprob, "rank": t.rank} for t in self.tokens],
            "characters": self.characters,
            "total_nats": self.total_nats,
            "bits_per_char": self.bits_per_char,
            "perplexity": self.perplexity,
            "replaced": self.replaced,
        }


def score_windows(length: int, window: int) -> list[tuple[int, int, int]]:
    """(start, end, first scored position) covering positions 1..length-1 of a sequence."""
    if length <= window:
        return [(0, length, 1)]
    stride = max(1, window // 2)
    out, scored = [], 1
    start = 0
    while scored < length:
        end = min(length, start + window)
        out.append((start, end, scored))
        scored = end
        start = end - (window - stride)
    return out


@torch.inference_mode()
def score_ids(model: LanguageModel, ids: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """log p and rank of ids[1:] given what precedes each, as two 1-D tensors of len(ids) - 1."""
    ids_t = torch.as_tensor(list(ids), dtype=torch.long, device=model.device)
    window = model.context_length + 1 if model.context_length else _UNBOUNDED_WINDOW
    if model.family == "ngram":  # an n-gram model only ever looks back order-1 tokens: no windows needed
        window = max(window, len(ids_t))
    logprobs, ranks = [], []
    for start, end, first in score_windows(len(ids_t), window):
        lp, rk = model.target_logprobs(ids_t[start:end].unsqueeze(0))  # [1, end-start-1]
        keep = slice(first - start - 1, None)
        logprobs.append(lp[0, keep].float().cpu())
        ranks.append(rk[0, keep].cpu())
    return torch.cat(logprobs), torch.cat(ranks)


def _ngram_scores(model: LanguageModel, ids: np.ndarray) -> tuple[np.ndarray, Callable[[], np.ndarray]]:
    """An n-gram model's (log p float32, ranks later): `logprob_of_targets` is its whole-text path (the same
    log-probs as `target_logprobs`, bit for bit), and the ranks, which need every next-token distribution,
    are computed only when asked for."""
    x = torch.from_numpy(ids)[None]
    logprobs = model.logprob_of_targets(x)[0].numpy().astype(np.float32)
    return logprobs, lambda: model.target_logprobs(x)[1][0].numpy()


def score(model: LanguageModel, tokenizer, text: str) -> ScoreResult:
    """Per-token log-probabilities and ranks of `text`, predicted from the start of a line."""
    if not isinstance(text, str) or not text:
        raise LMError("there is no text to score")
    if len(text) > MAX_SCORE_CHARS:
        raise LMError(f"the text has {len(text):,} characters; scoring is limited to {MAX_SCORE_CHARS:,}")
    ids, replaced = tokenizer.encode_report(START_TEXT + text)
    characters = len(text)
    if tokenizer.decode(ids[:1]) != START_TEXT:  # the start merged into the first token: score from there
        ids, replaced = tokenizer.encode_report(text)
        characters = len(text) - len(tokenizer.decode(ids[:1]))
    if len(ids) < 2:
        raise LMError("the text is too short to score (it needs at least one predicted token)")
    array = np.asarray(ids, dtype=np.int64)
    if model.family == "ngram" and hasattr(model, "logprob_of_targets"):
        logprobs, ranks = _ngram_scores(model, array)
    else:
        lp, rk = score_ids(model, ids)
        logprobs, ranks = lp.numpy(), rk.numpy()
    scored = array[1:]
    tokens = TokenScores(scored, logprobs, ranks, lambda: tokenizer.token_strings(scored))
    return ScoreResult(tokens, max(1, characters), list(replaced), array.tolist())


# -- properties of generated text -------------------------------------------------------------------
_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def distinct_n(units: Sequence, n: int) -> float:
    """Distinct n-grams / all n-grams of a sequence (characters of a str, or any items); 0 if none."""
    if n < 1:
        raise LMError("n must be at least 1")
    grams = [tuple(units[i:i + n]) for i in range(len(units) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def distinct_n_words(text: str, n: int) -> float:
    """distinct-n over words and punctuation marks (the usual definition for generated text)."""
    return distinct_n(_WORD.findall(text.lower()), n)


@dataclasses.dataclass
class CopiedSpan:
    text: str  # the longest span of the generated text found verbatim in the corpus
    start: int  # where it starts in the generated text
    corpus_offset: int  # where it occurs in the corpus (-1 if empty)

    @property
    def length(self) -> int:
        return len(self.text)


def longest_copied_span(text: str, corpus_text: str, max_text_chars: int = MAX_PROMPT_CHARS,
                        occurs: Callable[[int, int], bool] | None = None) -> CopiedSpan:
    """The memorisation meter: the longest substring of `text` that occurs verbatim in `corpus_text`.

    Two pointers over `text`: a span of length best+1 is tried at each start, so the corpus is searched at
    most 2 x len(text) times (each search is CPython's fast substring search). `occurs(start, length)`, when
    given, answers "is text[start:start + length] in the corpus?" faster (positions in the text cut to
    `max_text_chars`), e.g. through an index (`lm.app.compare.CorpusIndex`); the walk is the same.
    """
    text = text[:max_text_chars]
    if occurs is None:
        def occurs(start: int, length: int) -> bool:
            return text[start:start + length] in corpus_text

    best, best_start = 0, 0
    for start in range(len(text)):
        while start + best < len(text) and occurs(start, best + 1):
            best, best_start = best + 1, start
        if start + best >= len(text):
            break
    span = text[best_start:best_start + best]
    return CopiedSpan(span, best_start if best else 0, corpus_text.find(span) if best else -1)


def held_out_metrics(model: LanguageModel, tokenizer, valid_text: str, max_chars: int) -> dict[str, float]:
    """Bits and nats per character of (the start of) the held-out text, as a checkpoint records them.

    `check_bits_per_char` scores only the first CHECK_CHARS characters: cheap enough for a test to recompute
    exactly, so a shipped checkpoint can be checked against what its config.json claims.
    """
    result = score(model, tokenizer, valid_text[:max_chars])
    check = score(model, tokenizer, valid_text[:CHECK_CHARS])
    return {
        "valid_bits_per_char": round(result.bits_per_char, 4),
        "valid_nats_per_char": round(result.nats_per_char, 4),
        "valid_chars_scored": result.characters,
        "check_bits_per_char": round(check.bits_per_char, 4),
        "check_chars": CHECK_CHARS,
    }
