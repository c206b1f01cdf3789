"""The one generation loop, shared by every model family.

`generate` streams `GeneratedToken`s as they are produced: N samples advance together as one batch, each
token carries the probability and rank the model gave it and the top alternatives (for GLTR-style colouring),
and text is released incrementally — never half a UTF-8 character, never the beginning of a stop string
that might still complete. A prompt longer than the model's context slides: only the last window is fed.

Byte-level text (`lm.data.utf8`): the bytes of a character split over several tokens are held until it is
complete, and those tokens share a `group` (the index of the first), so a view can colour the character as
one; bytes that can never form a character are written as markers like ``<0xE5>`` (never U+FFFD), and
`marks` says where they are in the token's text. With `SamplingSettings.valid_utf8` (the default) such
bytes are never drawn at all: the "valid UTF-8" stage cuts every token that cannot continue the bytes written
so far, and near the end of the budget every token that would leave a character unfinished by then.

The same model, prompt, settings and seed always give the same text, because the only randomness is a
`torch.Generator` seeded from the settings.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch

from lm.data.utf8 import EMPTY, Utf8Decoder
from lm.errors import LMError
from lm.models.base import LanguageModel
from lm.run.sampling import SamplingSettings, as_rows, draw_one, explain, process_rows

MAX_PROMPT_CHARS = 100_000
START_TEXT = "\n"  # an empty prompt means "the start of a new line", which every built-in corpus has


@dataclasses.dataclass
class GeneratedToken:
    """One sampled token of one sample, with what the model thought of it."""

    sample: int  # which of the `settings.samples` sequences
    index: int  # 0 for the first generated token
    token_id: int
    text: str  # text released with this token ('' while a character or stop string is incomplete)
    piece: str  # display text of the token itself
    prob: float  # p(token) under the model, before any knob
    rank: int  # 1 = the model's top choice
    top: list[tuple[str, float]]  # the model's top alternatives: (piece, probability)
    finished: bool = False  # True on the last token of this sample (budget or stop string reached)
    group: int | None = None  # index of the first token whose bytes share a character with this one (a
    # character split over byte-level tokens: they all have the first one's index); None: this token's own
    marks: tuple[tuple[int, int], ...] = ()  # (start, end) in `text` of byte markers like "<0xE5>": bytes
    # that form no valid character, shown, not decoded

    def segments(self) -> list[tuple[str, bool]]:
        """`text` in runs: (characters, False) and (byte markers, True), in order, for a view to style."""
        out, at = [], 0
        for start, end in self.marks:
            start, end = max(start, at), min(end, len(self.text))  # clipped: a caller may have cut `text`
            if start >= end:
                continue
            if start > at:
                out.append((self.text[at:start], False))
            out.append((self.text[start:end], True))
            at = end
        if at < len(self.text):
            out.append((self.text[at:], False))
        return out


@dataclasses.dataclass
class PromptEncoding:
    ids: list[int]
    replaced: list[str]  # characters the tokenizer did not know (mapped to <unk>)
    started_empty: bool  # the prompt was empty, so the model starts from START_TEXT


def encode_prompt(tokenizer, prompt: str) -> PromptEncoding:
    """Token ids of a prompt, with the characters the tokenizer had to replace."""
    if not isinstance(prompt, str):
        raise LMError("the prompt must be text")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise LMError("the prompt has {chars:,} characters; the limit is {limit:,}", chars=len(prompt),
                      limit=MAX_PROMPT_CHARS)
    started_empty = prompt == ""
    ids, replaced = tokenizer.encode_report(START_TEXT if started_empty else prompt)
    if not ids:
        raise LMError("the prompt could not be turned into any tokens")
    return PromptEncoding(list(ids), list(replaced), started_empty)


class _Detokenizer:
    """Releases the text of a growing id sequence incrementally: whole characters only (byte-level tokens go
    through a `Utf8Decoder`, other tokens are their display text), and never the start of a stop string."""

    def __init__(self, tokenizer, stop: Sequence[str], pieces: Sequence[str] | None = None):
        self.stop = tuple(stop)
        token_bytes = getattr(tokenizer, "token_bytes", lambda: None)()
        self.bytes = token_bytes  # None: every token is whole characters, its display text
        self.pieces = None if token_bytes is not None else (
            pieces if pieces is not None else tokenizer.token_strings(list(range(tokenizer.vocab_size))))
        self.utf8 = Utf8Decoder() if token_bytes is not None else None
        self.text = ""  # everything decoded so far
        self.marks: list[tuple[int, int]] = []  # byte markers in `text`
        self.released = 0  # characters of `text` handed out
        self.released_marks: tuple[tuple[int, int], ...] = ()  # the markers in what the last call released
        self.stopped = False
        self.pushed = 0  # tokens pushed
        self.group = 0  # the first token of the character group the last pushed token belongs to

    @property
    def state(self) -> tuple[int, int, int]:
        """The UTF-8 decoder state (`lm.data.utf8.EMPTY` when no character is incomplete)."""
        return self.utf8.state if self.utf8 is not None else EMPTY

    def push(self, token_id: int) -> str:
        if self.state == EMPTY:
            self.group = self.pushed
        self.pushed += 1
        if self.utf8 is None:
            self.text += self.pieces[token_id]
        else:
            self._append(*self.utf8.feed(self.bytes[token_id]))
        return self._release(final=False)

    def _append(self, text: str, marks: list[tuple[int, int]]) -> None:
        base = len(self.text)
        self.text += text
        self.marks.extend((base + start, base + end) for start, end in marks)

    def _release(self, final: bool) -> str:
        end = len(self.text)
        if self.stop:
            window_start = max(0, self.released - max(len(s) for s in self.stop))
            hits = [i for i in (self.text.find(s, window_start) for s in self.stop) if i >= 0]
            if hits:
                end, self.stopped = min(hits), True
            elif not final:  # hold back a tail that could still become a stop string
                for hold in range(min(len(self.text), max(len(s) for s in self.stop) - 1), 0, -1):
                    if any(s.startswith(self.text[-hold:]) for s in self.stop):
                        end -= hold
                        break
        start = self.released
        end = max(end, start)
        self.released = end
        self.released_marks = tuple((max(a, start) - start, min(b, end) - start)
                                    for a, b in self.marks if a < end and b > start)
        return self.text[start:end]

    def flush(self) -> str:
        """The end of the stream: bytes of a character that never completed become markers."""
        if self.utf8 is not None:
            self._append(*self.utf8.flush())
        return self._release(final=True)


def _utf8_mask(tokenizer, settings: SamplingSettings):
    """The tokenizer's `lm.data.utf8.Utf8Mask` when the UTF-8 stage applies (byte-level, `valid_utf8` on)."""
    if not settings.valid_utf8:
        return None
    return getattr(tokenizer, "utf8_mask", lambda: None)()


def usable_vocab(model: LanguageModel, tokenizer) -> int:
    """How many ids generation may choose from: a GPT-2 checkpoint may pad its embedding past the tokenizer
    (e.g. 50,304 rows for 50,257 tokens), and ids without a token are never drawn or shown. (Scoring keeps
    the model's own distribution over every row: the padded rows' share is part of what it predicts.)"""
    return min(model.vocab_size, tokenizer.vocab_size)


def _feed(model: LanguageModel, history: torch.Tensor):
    """Fresh state fed with the last window of `history[B, T]` that fits the model's context."""
    window = history
    if model.context_length is not None and history.shape[1] > model.context_length:
        window = history[:, -model.context_length:]
    logits, state = model.prefill(window, model.start(history.shape[0]))
    return logits, state, window.shape[1]


class _Picker:
    """Draws one row's token and measures what the model thought of it: probability, rank, alternatives.

    Everything is NumPy on one float64 row of raw logits (at batch 1 a few vector operations on a
    vocabulary-sized row cost far less than small torch kernels). When no knob changed the distribution,
    the draw's weights are the model's own probabilities and serve both.
    """

    def __init__(self, settings: SamplingSettings, vocab_size: int, alternatives: int, masked: bool = False):
        self.settings = settings
        self.top_n = min(alternatives, vocab_size)
        self.partition = vocab_size > 512  # large vocabularies: partition first, then sort only the few
        self.untouched = (not masked and settings.temperature == 1.0 and settings.repetition_penalty == 1.0
                          and settings.min_p == 0.0 and settings.top_p >= 1.0
                          and not 0 < settings.top_k < vocab_size)

    def __call__(self, raw: np.ndarray, final: np.ndarray, u: float | None) -> tuple[int, float, int, list, list]:
        if self.untouched:
            chosen, weights, total = draw_one(raw, u)
        else:
            chosen = int(final.argmax()) if u is None else draw_one(final, u)[0]
            weights = np.exp(raw - raw.max())
            total = float(weights.sum())
        rank = int(np.count_nonzero(raw > raw[chosen])) + 1
        if self.partition:
            top_ids = np.argpartition(-raw, self.top_n - 1)[:self.top_n]  # unordered
            top_ids = top_ids[np.argsort(-raw[top_ids])]
        else:
            top_ids = np.argsort(-raw)[:self.top_n]
        return chosen, float(weights[chosen]) / total, rank, top_ids.tolist(), (weights[top_ids] / total).tolist()


def generate(model: LanguageModel, tokenizer, prompt: str, settings: SamplingSettings,
             generator: torch.Generator | None = None, *, alternatives: int = 5) -> Iterator[GeneratedToken]:
    """Stream the tokens of `settings.samples` continuations of `prompt`, in order of generation.

    The per-token work after the model's step is NumPy on one float64 copy of the logits (`as_rows`): the
    knobs (`process_rows`, tested equal to `lm.run.sampling.process`), the inverse-CDF draw and the details.
    The uniform numbers for the whole budget are drawn from the generator up front, in one call. (No
    inference-mode wrapper here: the models' own step/prefill enter it, and on a generator it would be
    re-entered at every token, ~2 us each.)
    """
    encoded = encode_prompt(tokenizer, prompt)
    generator = generator if generator is not None else settings.generator()
    batch, device, capacity = settings.samples, model.device, model.state_capacity
    vocab = usable_vocab(model, tokenizer)
    display = tokenizer.token_strings(list(range(vocab)))  # every token's display text, once
    budget = settings.max_new_tokens
    # One preallocated history [B, prompt + budget], in NumPy: no per-token concatenation or torch indexing.
    history = np.empty((batch, len(encoded.ids) + budget), dtype=np.int64)
    history[:, :len(encoded.ids)] = encoded.ids
    length = len(encoded.ids)
    logits, state, fed = _feed(model, torch.tensor(history[:, :length], device=device))  # a copy: models
    # may keep what they are fed, and `history` keeps changing
    uniforms = None
    if settings.temperature != 0.0:  # greedy decoding uses no randomness
        uniforms = torch.rand(budget, batch, generator=generator, dtype=torch.float64).numpy()
    detok = [_Detokenizer(tokenizer, settings.stop, display) for _ in range(batch)]
    done = [False] * batch
    utf8 = _utf8_mask(tokenizer, settings)
    pick = _Picker(settings, vocab, alternatives, masked=utf8 is not None)
    trim = vocab < model.vocab_size
    # The repetition penalty looks at a bounded recent window, so its cost stays flat per token.
    penalty_window = 256 if settings.repetition_penalty != 1.0 else 0
    chosen = np.zeros(batch, dtype=np.int64)
    on_cpu = device.type == "cpu"

    for index in range(budget):
        raw = as_rows(logits[:, :vocab] if trim else logits)  # [B, V] float64
        recent = history[:, max(0, length - penalty_window):length] if penalty_window else None
        allowed = None
        if utf8 is not None:  # what each row's pending bytes allow, with the tokens still to come after this
            allowed = np.stack([utf8.allowed(d.state, budget - 1 - index)[:vocab] for d in detok])
        final = raw if pick.untouched else process_rows(raw, settings, recent, allowed)
        last = index == budget - 1
        for row in range(batch):
            if done[row]:  # a finished row keeps being fed (the batch advances together) but yields nothing
                continue
            u = None if uniforms is None else float(uniforms[index, row])
            token_id, prob, rank, top_ids, top_probs = pick(raw[row], final[row], u)
            chosen[row] = token_id
            text = detok[row].push(token_id)
            marks = detok[row].released_marks
            finished = last or detok[row].stopped
            if finished and not detok[row].stopped:
                tail = detok[row].flush()
                marks += tuple((len(text) + a, len(text) + b) for a, b in detok[row].released_marks)
                text += tail
            done[row] = finished
            yield GeneratedToken(
                sample=row, index=index, token_id=token_id, text=text, piece=display[token_id],
                prob=prob, rank=rank, top=[(display[i], p) for i, p in zip(top_ids, top_probs)],
                finished=finished, group=detok[row].group, marks=marks,
            )
        if all(done):
            return
        history[:, length] = chosen
        length += 1
        if capacity is not None and fed >= capacity:  # the state is full: slide by re-reading a suffix
            keep = max(1, (capacity * 3) // 4)
            logits, state = model.prefill(torch.tensor(history[:, length - keep:length], device=device),
                                          model.start(batch))
            fed = keep
        else:
            tokens = torch.from_numpy(chosen.copy())
            logits, state = model.step(tokens if on_cpu else tokens.to(device), state)
            fed += 1


@dataclasses.dataclass
class Collected:
    """A finished stream, per sample: the text (prompt not included) and the tokens; and how long it took."""

    texts: list[str]
    tokens: list[list[GeneratedToken]]
    seconds: float
    timed_out: bool = False  # cut by `time_budget` (what was written so far is kept)


def collect(stream: Iterable[GeneratedToken], samples: int = 1,
            on_token: Callable[[GeneratedToken, list[list[GeneratedToken]]], None] | None = None,
            time_budget: float | None = None) -> Collected:
    """Consume a `generate(...)` stream of `samples` samples into texts and tokens per sample.

    `on_token(token, tokens)`, when given, runs after each token is collected, with every sample's tokens so
    far (`tokens[token.sample]` ends with `token`), so a view can redraw the text as it grows. `seconds` counts
    the whole stream, generation and callbacks. `time_budget` (seconds): stop there, keeping what was written
    (a shared server's bound on one request, whatever its token budget says).
    """
    start = time.perf_counter()
    tokens: list[list[GeneratedToken]] = [[] for _ in range(samples)]
    timed_out = False
    for token in stream:
        tokens[token.sample].append(token)
        if on_token is not None:
            on_token(token, tokens)
        if time_budget is not None and time.perf_counter() - start > time_budget:
            timed_out = True
            break
    seconds = time.perf_counter() - start
    return Collected(["".join(t.text for t in row) for row in tokens], tokens, seconds, timed_out)


@torch.inference_mode()
def next_token_stages(model: LanguageModel, tokenizer, prompt: str, settings: SamplingSettings,
                      history_window: int = 256) -> tuple[list[str], list[tuple[str, torch.Tensor]]]:
    """Step mode: the next-token distribution after `prompt`, before and after each knob.

    A step writes one token onto the prompt, which is text: so the "valid UTF-8" stage (byte-level models)
    keeps only tokens that leave no character unfinished, as sampling does for the last token of a budget.
    Returns (the display text of every vocabulary id, [(stage, probabilities[V])]).
    """
    encoded = encode_prompt(tokenizer, prompt)
    history = torch.tensor(encoded.ids, dtype=torch.long, device=model.device).unsqueeze(0)  # [1, T]
    logits, _, _ = _feed(model, history)
    vocab = usable_vocab(model, tokenizer)
    utf8 = _utf8_mask(tokenizer, settings)
    allowed = None if utf8 is None else utf8.allowed(EMPTY, remaining=0)[None, :vocab]
    stages = explain(logits[:, :vocab], settings, history[:, -history_window:], allowed)
    pieces = tokenizer.token_strings(list(range(vocab)))
    return pieces, [(name, probs[0].cpu()) for name, probs in stages]
