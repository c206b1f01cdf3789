"""Computations behind the app's comparison views: models side by side, and a distribution before/after knobs.

Everything here is plain Python over the `lm` API (no UI): the Compare page and the Playground's step mode
only draw what these functions return.

- `generate_column`: one model's continuation of a prompt with its speed and diversity numbers;
- `cross_score`: bits per character of every text under every model (a character model and a BPE model are
  comparable only per character, see `lm.run.metrics`);
- `surprisal_by_char`: one text's per-token surprisal laid out on character positions, so models with
  different tokenizers line up on one x axis;
- `knob_stages`: the next-token distribution after each sampling knob, restricted to the tokens worth
  drawing, with which tokens each knob cut.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence

import numpy as np
import torch

from lm.store.checkpoint import LoadedModel
from lm.errors import LMError
from lm.models import FAMILIES
from lm.run.generate import MAX_PROMPT_CHARS, GeneratedToken, encode_prompt, generate
from lm.run.metrics import CopiedSpan, distinct_n_words, longest_copied_span, score
from lm.run.sampling import SamplingSettings
from lm.data.corpus import BUILTIN_CORPORA, load_corpus


# -- one model's column on the Compare page ---------------------------------------------------------
@dataclasses.dataclass
class ColumnResult:
    name: str
    text: str
    tokens: list[GeneratedToken]
    seconds: float
    replaced: list[str]  # prompt characters this model's tokenizer did not know

    @property
    def tokens_per_second(self) -> float:
        return len(self.tokens) / self.seconds if self.seconds > 0 else math.inf

    @property
    def distinct_1(self) -> float:
        return distinct_n_words(self.text, 1)

    @property
    def distinct_2(self) -> float:
        return distinct_n_words(self.text, 2)


def generate_column(loaded: LoadedModel, prompt: str, settings: SamplingSettings, on_token=None) -> ColumnResult:
    """One sample of `loaded`'s continuation; `on_token(text_so_far, token)` is called as tokens arrive."""
    settings = settings.replace(samples=1)
    replaced = encode_prompt(loaded.tokenizer, prompt).replaced
    tokens: list[GeneratedToken] = []
    pieces: list[str] = []
    start = time.perf_counter()
    for token in generate(loaded.model, loaded.tokenizer, prompt, settings, settings.generator()):
        tokens.append(token)
        pieces.append(token.text)
        if on_token is not None:
            on_token("".join(pieces), token)
    seconds = time.perf_counter() - start
    return ColumnResult(loaded.name, "".join(pieces), tokens, seconds, replaced)


def memorisation(text: str, corpus: str | CorpusIndex | None) -> CopiedSpan | None:
    """The longest span of `text` copied verbatim from the training text (None when that text is unknown)."""
    if corpus is None or not text:
        return None
    if isinstance(corpus, CorpusIndex):
        return corpus.longest_copied_span(text)
    return longest_copied_span(text, corpus)


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
    than k, and spans made only of very common k-grams, are still searched directly. The answer is the same
    as `longest_copied_span`'s. Building the index reads the corpus once (about a second for Shakespeare).
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

        best, best_start = 0, 0
        for start in range(m):  # the same two-pointer walk as lm.run.metrics.longest_copied_span
            while start + best < m and occurs(start, best + 1):
                best, best_start = best + 1, start
            if start + best >= m:
                break
        span = text[best_start:best_start + best]
        return CopiedSpan(span, best_start if best else 0, corpus.find(span) if best else -1)


def corpus_source(meta: dict) -> tuple[str, str | None, int | None] | None:
    """(corpus name, file path or None, max_chars or None) a model was trained on, from its metadata.

    A built-in corpus is known by name; a user corpus by the path its training settings recorded.
    None when the metadata does not say.
    """
    corpus = meta.get("corpus")
    if not isinstance(corpus, dict) or not isinstance(corpus.get("name"), str) or not corpus["name"].strip():
        return None
    training = meta.get("training") if isinstance(meta.get("training"), dict) else {}
    settings = training.get("settings") if isinstance(training.get("settings"), dict) else {}
    recipe = meta.get("recipe") if isinstance(meta.get("recipe"), dict) else {}
    source = settings.get("corpus", recipe.get("corpus"))
    max_chars = settings.get("max_chars", recipe.get("max_chars"))
    path = str(source) if isinstance(source, str) and source != corpus["name"] else None
    return corpus["name"], path, max_chars if isinstance(max_chars, int) and max_chars > 0 else None


def training_text(name: str, path: str | None = None, max_chars: int | None = None) -> str:
    """The training part of a corpus (built-in name, or a user corpus file at `path`), as the model saw it."""
    if name in BUILTIN_CORPORA and path is None:
        corpus = load_corpus(name, max_chars=max_chars)
    elif path:
        from pathlib import Path

        if not Path(path).is_file():
            raise LMError(f"the training text of {name!r} is no longer at {path}")
        corpus = load_corpus(Path(path), max_chars=max_chars)
    else:
        raise LMError(f"the training text of corpus {name!r} is not available")
    return corpus.split().train.text


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


def surprisal_by_char(loaded: LoadedModel, text: str) -> list[CharSurprisal]:
    """Per-token surprisal of `text` with each token's character span, so char and BPE models align.

    A byte-level BPE token that ends inside a multi-byte character covers no character of its own; the
    character is credited to the token that completes it.
    """
    result = score(loaded.model, loaded.tokenizer, text)
    offset = len(text) - result.characters  # characters before the first scored token (merged start)
    ids = [t.token_id for t in result.tokens]
    out: list[CharSurprisal] = []
    position = offset
    for k, tok in enumerate(result.tokens):
        if loaded.tokenizer.kind == "char":
            end = position + 1
        else:
            decoded = loaded.tokenizer.decode(ids[:k + 1])
            end = position if decoded.endswith("\ufffd") and k + 1 < len(ids) else offset + len(decoded)
        end = min(max(end, position), len(text))
        out.append(CharSurprisal(position, end, tok.piece, tok.surprisal_bits))
        position = end
    return out


# -- step mode: what each knob does to the next-token distribution ----------------------------------
@dataclasses.dataclass
class StageView:
    """The tokens worth drawing and their probability after every stage of the sampling pipeline."""

    token_ids: list[int]  # the drawn tokens, most likely first (under the model)
    pieces: list[str]
    stages: list[str]  # "model", "temperature", "top-k", ...
    probs: list[list[float]]  # [stage][token] probability after that stage
    kept: list[list[bool]]  # [stage][token] still sampleable after that stage
    kept_total: list[int]  # [stage] tokens of the whole vocabulary still sampleable
    entropy_bits: list[float]  # [stage] entropy of the whole distribution


def knob_stages(pieces: Sequence[str], stages: Sequence[tuple[str, torch.Tensor]], top_n: int = 20) -> StageView:
    """Restrict `lm.run.generate.next_token_stages` output to the `top_n` most likely tokens under the model.

    A token is "kept" at a stage if it still has non-zero probability; the last stage is what is sampled.
    """
    if not stages:
        raise LMError("no distribution to show")
    model_probs = stages[0][1].double()
    top_n = max(1, min(int(top_n), model_probs.numel()))
    order = torch.argsort(model_probs, descending=True, stable=True)[:top_n].tolist()
    names, probs, kept, totals, entropies = [], [], [], [], []
    for name, p in stages:
        p = p.double()
        names.append(name)
        probs.append([float(p[i]) for i in order])
        kept.append([bool(p[i] > 0) for i in order])
        totals.append(int((p > 0).sum()))
        nz = p[p > 0]
        entropies.append(float(-(nz * nz.log2()).sum()))
    return StageView(order, [pieces[i] for i in order], names, probs, kept, totals, entropies)


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
