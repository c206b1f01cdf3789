"""The one generation loop, shared by every model family.

`generate` streams `GeneratedToken`s as they are produced: N samples advance together as one batch, each
token carries the probability and rank the model gave it and the top alternatives (for GLTR-style colouring),
and text is released incrementally — never half a UTF-8 character, never the beginning of a stop string
that might still complete. A prompt longer than the model's context slides: only the last window is fed.
The same model, prompt, settings and seed always give the same text, because the only randomness is a
`torch.Generator` seeded from the settings.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Iterator, Sequence

import numpy as np
import torch

from lm.errors import LMError
from lm.models.base import LanguageModel
from lm.sampling import SamplingSettings, explain, sample

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


@dataclasses.dataclass
class PromptEncoding:
    ids: list[int]
    replaced: list[str]  # characters the tokenizer did not know (mapped to <unk>)
    started_empty: bool  # the prompt was empty, so the model starts from START_TEXT


@dataclasses.dataclass
class GenerationResult:
    texts: list[str]
    tokens: list[list[GeneratedToken]]
    prompt: PromptEncoding
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        count = sum(len(t) for t in self.tokens)
        return count / self.seconds if self.seconds > 0 else float("inf")


def encode_prompt(tokenizer, prompt: str) -> PromptEncoding:
    """Token ids of a prompt, with the characters the tokenizer had to replace."""
    if not isinstance(prompt, str):
        raise LMError("the prompt must be text")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise LMError(f"the prompt has {len(prompt):,} characters; the limit is {MAX_PROMPT_CHARS:,}")
    started_empty = prompt == ""
    ids, replaced = tokenizer.encode_report(START_TEXT if started_empty else prompt)
    if not ids:
        raise LMError("the prompt could not be turned into any tokens")
    return PromptEncoding(list(ids), list(replaced), started_empty)


class _Detokenizer:
    """Releases the text of a growing id sequence incrementally (after HF's TextStreamer offsets)."""

    def __init__(self, tokenizer, stop: Sequence[str], pieces: Sequence[str] | None = None):
        self.tokenizer, self.stop = tokenizer, tuple(stop)
        # A character token is exactly its text, so it needs no decoding (the per-token hot path).
        self.pieces = pieces if pieces is not None and getattr(tokenizer, "kind", "") == "char" else None
        self.ids: list[int] = []
        self.prefix_offset = self.read_offset = 0
        self.text = ""  # everything decoded so far
        self.released = 0  # characters of `text` handed out
        self.stopped = False

    def push(self, token_id: int) -> str:
        if self.pieces is not None:
            self.text += self.pieces[token_id]
            return self._release(final=False)
        self.ids.append(token_id)
        prefix = self.tokenizer.decode(self.ids[self.prefix_offset:self.read_offset])
        full = self.tokenizer.decode(self.ids[self.prefix_offset:])
        if len(full) > len(prefix) and not full.endswith("\ufffd"):  # no half character pending
            self.text += full[len(prefix):]
            self.prefix_offset, self.read_offset = self.read_offset, len(self.ids)
        return self._release(final=False)

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
        end = max(end, self.released)
        out, self.released = self.text[self.released:end], end
        return out

    def flush(self) -> str:
        if self.read_offset < len(self.ids):  # trailing bytes that never completed a character
            self.text += self.tokenizer.decode(self.ids[self.prefix_offset:])[
                len(self.tokenizer.decode(self.ids[self.prefix_offset:self.read_offset])):]
            self.prefix_offset = self.read_offset = len(self.ids)
        return self._release(final=True)


def _feed(model: LanguageModel, history: torch.Tensor):
    """Fresh state fed with the last window of `history[B, T]` that fits the model's context."""
    window = history
    if model.context_length is not None and history.shape[1] > model.context_length:
        window = history[:, -model.context_length:]
    logits, state = model.prefill(window, model.start(history.shape[0]))
    return logits, state, window.shape[1]


@torch.inference_mode()
def generate(model: LanguageModel, tokenizer, prompt: str, settings: SamplingSettings,
             generator: torch.Generator | None = None, *, alternatives: int = 5) -> Iterator[GeneratedToken]:
    """Stream the tokens of `settings.samples` continuations of `prompt`, in order of generation."""
    encoded = encode_prompt(tokenizer, prompt)
    generator = generator if generator is not None else settings.generator()
    batch, device, capacity = settings.samples, model.device, model.state_capacity
    display = tokenizer.token_strings(list(range(model.vocab_size)))  # every token's display text, once
    prompt_ids = torch.tensor(encoded.ids, dtype=torch.long, device=device)
    # One preallocated history buffer [B, prompt + budget]: no per-token concatenation.
    history = torch.empty(batch, len(encoded.ids) + settings.max_new_tokens, dtype=torch.long, device=device)
    history[:, :len(encoded.ids)] = prompt_ids
    length = len(encoded.ids)
    logits, state, fed = _feed(model, history[:, :length])
    detok = [_Detokenizer(tokenizer, settings.stop, display) for _ in range(batch)]
    done = [False] * batch
    top_n = min(alternatives, model.vocab_size)
    rows_index = np.arange(batch)[:, None]  # [B, 1], for picking per-row entries
    # The repetition penalty looks at a bounded recent window, so its cost stays flat per token.
    penalty_window = 256

    for index in range(settings.max_new_tokens):
        recent = history[:, max(0, length - penalty_window):length] if settings.repetition_penalty != 1.0 else None
        chosen = sample(logits, settings, generator, recent).to(device)  # [B]
        # What the model thought of each choice, in NumPy (cheaper than small torch kernels per token).
        raw = logits.detach().to("cpu", torch.float64).numpy()  # [B, V]
        logprobs = raw - raw.max(-1, keepdims=True)
        logprobs -= np.log(np.exp(logprobs).sum(-1, keepdims=True))  # log-softmax
        chosen_list = chosen.tolist()
        chosen_lp = logprobs[rows_index[:, 0], chosen_list]  # [B]
        ranks = ((logprobs > chosen_lp[:, None]).sum(-1) + 1).tolist()
        if logprobs.shape[-1] > 512:  # large vocabularies: partition first, then sort only the few
            top_ids = np.argpartition(-logprobs, top_n - 1, axis=-1)[:, :top_n]  # [B, top_n], unordered
            top_ids = top_ids[rows_index, np.argsort(-logprobs[rows_index, top_ids], axis=-1)]
        else:
            top_ids = np.argsort(-logprobs, axis=-1)[:, :top_n]  # [B, top_n]
        probs = np.exp(chosen_lp).tolist()
        top_ids_list, top_probs = top_ids.tolist(), np.exp(logprobs[rows_index, top_ids]).tolist()
        last = index == settings.max_new_tokens - 1
        for row in range(batch):
            if done[row]:
                continue
            token_id = chosen_list[row]
            text = detok[row].push(token_id)
            finished = last or detok[row].stopped
            if finished and not detok[row].stopped:
                text += detok[row].flush()
            done[row] = finished
            yield GeneratedToken(
                sample=row, index=index, token_id=token_id, text=text, piece=display[token_id],
                prob=probs[row], rank=int(ranks[row]),
                top=[(display[i], p) for i, p in zip(top_ids_list[row], top_probs[row])], finished=finished,
            )
        if all(done):
            return
        history[:, length] = chosen
        length += 1
        if capacity is not None and fed >= capacity:  # the state is full: slide by re-reading a suffix
            keep = max(1, (capacity * 3) // 4)
            logits, state = model.prefill(history[:, length - keep:length], model.start(batch))
            fed = keep
        else:
            logits, state = model.step(chosen, state)
            fed += 1


def generate_all(model: LanguageModel, tokenizer, prompt: str, settings: SamplingSettings,
                 generator: torch.Generator | None = None) -> GenerationResult:
    """Run `generate` to the end and collect the texts (prompt not included) and tokens per sample."""
    start = time.perf_counter()
    tokens: list[list[GeneratedToken]] = [[] for _ in range(settings.samples)]
    for token in generate(model, tokenizer, prompt, settings, generator):
        tokens[token.sample].append(token)
    seconds = time.perf_counter() - start
    texts = ["".join(t.text for t in row) for row in tokens]
    return GenerationResult(texts, tokens, encode_prompt(tokenizer, prompt), seconds)


@torch.inference_mode()
def next_token_stages(model: LanguageModel, tokenizer, prompt: str, settings: SamplingSettings,
                      history_window: int = 256) -> tuple[list[str], list[tuple[str, torch.Tensor]]]:
    """Step mode: the next-token distribution after `prompt`, before and after each knob.

    Returns (the display text of every vocabulary id, [(stage, probabilities[V])]).
    """
    encoded = encode_prompt(tokenizer, prompt)
    history = torch.tensor(encoded.ids, dtype=torch.long, device=model.device).unsqueeze(0)  # [1, T]
    logits, _, _ = _feed(model, history)
    stages = explain(logits, settings, history[:, -history_window:])
    pieces = tokenizer.token_strings(list(range(model.vocab_size)))
    return pieces, [(name, probs[0].cpu()) for name, probs in stages]
