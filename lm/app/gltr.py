"""Colour any text by the rank a model gives each of its tokens (GLTR, Gehrmann et al., 2019), for every family.

Plain Python over the `lm` API (no UI): the Playground's "Colour any text" view draws what these return.

- `colour_text`: score a text (`lm.run.metrics.score`), lay its tokens out on the text's characters (so a BPE
  token shows the characters it covers) with each token's rank, probability and bin (`lm.viz.tokens.rank_bins`
  of the model's vocabulary), and count the tokens per bin;
- `alternatives_at`: the model's top guesses at one position of that text, computed on demand (one forward
  pass) when a token is pinned, in the same window `score` predicted it from, so the pinned rank is the colour's.
"""

from __future__ import annotations

import dataclasses
import math

from lm.app.compare import char_spans
from lm.inspect.text import next_token_distribution, top_tokens
from lm.run.metrics import score, score_windows  # the scoring windows: a pinned rank matches its colour
from lm.store.checkpoint import LoadedModel
from lm.viz.tokens import RankBin, rank_bin, rank_bins

MAX_COLOUR_CHARS = 2_000  # characters coloured at once: the view is read, not scrolled through


@dataclasses.dataclass
class ColouredToken:
    """One scored token of the text, shaped like a generated one for `lm.viz.tokens.gltr_html`."""

    text: str  # the characters of the text it covers ('' for a byte that completes no character)
    piece: str  # its display text
    rank: int  # 1 = the model's first choice at this position
    prob: float  # the probability the model gave it (its alternatives: `alternatives_at`, on demand)


@dataclasses.dataclass
class ColouredText:
    text: str  # the text coloured (cut to MAX_COLOUR_CHARS)
    head: str  # characters before the first scored token (a BPE start merged with the line start)
    tokens: list[ColouredToken]
    ids: list[int]  # every token id, the unscored first one included (`lm.run.metrics.ScoreResult.ids`)
    bins: tuple[RankBin, ...]
    vocab_size: int
    bits_per_char: float
    cut: int  # characters of the input left out

    @property
    def bin_counts(self) -> list[int]:
        counts = [0] * len(self.bins)
        for token in self.tokens:
            counts[rank_bin(token.rank, self.bins)] += 1
        return counts


def colour_text(loaded: LoadedModel, text: str) -> ColouredText:
    """Every token of `text` (its first MAX_COLOUR_CHARS characters) with the rank and probability `loaded` gave it."""
    shown = text[:MAX_COLOUR_CHARS]
    result = score(loaded.model, loaded.tokenizer, shown)
    spans = char_spans(loaded.tokenizer, shown, result)
    tokens = [ColouredToken(shown[start:end], tok.piece, tok.rank, math.exp(tok.logprob))
              for (start, end), tok in zip(spans, result.tokens)]
    head = shown[:spans[0][0]] if spans else shown
    vocab = loaded.tokenizer.vocab_size
    return ColouredText(shown, head, tokens, list(result.ids), rank_bins(vocab), vocab, result.bits_per_char,
                        len(text) - len(shown))


def alternatives_at(loaded: LoadedModel, coloured: ColouredText, index: int,
                    k: int = 10) -> list[tuple[str, float, bool]]:
    """(display text, probability, is the token the text has) of the model's `k` likeliest tokens where token
    `index` of `coloured` stands, predicted from the context `score` used (the window it was scored in)."""
    ids, model = coloured.ids, loaded.model
    position = index + 1  # ids[0] is the unscored start
    window = model.context_length + 1 if model.context_length else len(ids)  # as score_ids (texts this short)
    start = next(s for s, end, first in score_windows(len(ids), window) if first <= position < end)
    probs = next_token_distribution(model, ids[start:position])
    return [(piece, p, i == ids[position]) for i, piece, p in top_tokens(probs, loaded.tokenizer, k)]
