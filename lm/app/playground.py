"""Computations behind the Playground: first prompts per corpus, the bounds of one request, a redraw throttle,
and what each sampling knob does in step mode.

Plain Python over the `lm` API (no UI): the Playground page only draws what these return (the Compare page
uses the prompts, bounds and throttle too).

- `DEFAULT_PROMPTS` / `SAMPLE_TEXTS`: a good first prompt, and a text worth colouring or scoring, for a model of
  each built-in corpus; `follow_corpus` swaps an untouched default when the model's corpus changes;
- `check_request`: what one click may cost on a shared server (prompt length, tokens x samples x models),
  whatever the URL or a crafted websocket message says;
- `Throttle`: streaming redraws at a bounded rate, so their cost does not grow with the tokens;
- `per_second` / `short_number`: speeds that fit a narrow column ("–" for an unmeasurable time);
- `knob_stages`: the next-token distribution after each sampling knob, restricted to the tokens worth
  drawing, with which tokens each knob cut.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence

import torch

from lm.errors import LMError

DEFAULT_PROMPTS = {"shakespeare": "ROMEO:\n", "names": "", "python": "def "}  # by corpus; others start empty
SAMPLE_TEXTS = {  # by corpus: a text to colour or score (the names one ends on a name no one is called)
    "shakespeare": "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer",
    "names": "emma\noliver\nzqxjw\nsophia",
    "python": "for i in range(10):\n    print(i * i)\n",
}
PAGE_PROMPT_CHARS = 10_000  # a prompt or text on a page: a model reads at most a few hundred tokens of it anyway
MAX_REQUEST_TOKENS = 16_000  # tokens x samples x models of one click: the Playground's 1000 x 8, Compare's columns
REDRAW_SECONDS = 0.25  # streaming redraws at most this often


def default_prompt(corpus: str) -> str:
    """The first prompt for a model trained on `corpus` ("" — a new line — for corpora without one)."""
    return DEFAULT_PROMPTS.get(corpus, "")


def sample_text(corpus: str) -> str:
    """A text to colour or score with a model of `corpus` (Shakespeare's for corpora without one)."""
    return SAMPLE_TEXTS.get(corpus, SAMPLE_TEXTS["shakespeare"])


def follow_sample_text(text: str, new_corpus: str) -> str:
    """`follow_corpus` for the sample texts."""
    return follow_corpus(text, new_corpus, SAMPLE_TEXTS, SAMPLE_TEXTS["shakespeare"])


def follow_corpus(text: str, new_corpus: str, defaults: dict[str, str] = DEFAULT_PROMPTS, fallback: str = "") -> str:
    """`text` once the model's corpus becomes `new_corpus`: an untouched default (any corpus's entry in
    `defaults`) becomes the new corpus's (else `fallback`); what the user wrote stays as it is."""
    if text in defaults.values() or text == fallback:
        return defaults.get(new_corpus, fallback)
    return text


def check_request(prompt: str, max_new_tokens: int = 0, samples: int = 1, models: int = 1,
                  limit: int = PAGE_PROMPT_CHARS) -> None:
    """Refuse, in one line, a click that would cost a shared server more than a page offers."""
    if not isinstance(prompt, str):
        raise LMError("the prompt must be text")
    if len(prompt) > limit:
        raise LMError("the text has {chars:,} characters; the limit on this page is {limit:,}", chars=len(prompt),
                      limit=limit)
    work = int(max_new_tokens) * int(samples) * int(models)
    if work > MAX_REQUEST_TOKENS:
        raise LMError("{tokens:,} tokens x {samples} samples x {models} models is {work:,} tokens; the limit is "
                      "{limit:,} per click", tokens=max_new_tokens, samples=samples, models=models, work=work,
                      limit=MAX_REQUEST_TOKENS)


class Throttle:
    """Says when a streaming view should redraw: at most every `seconds`, and always on the last token.

    With `wait_first` the first redraw also waits `seconds` (from the throttle's creation) rather than coming at
    the first token: a generation that ends sooner is drawn once, finished, instead of once per first token.
    """

    def __init__(self, seconds: float = REDRAW_SECONDS, clock=time.perf_counter, wait_first: bool = False):
        self.seconds, self.clock = seconds, clock
        self.last = clock() if wait_first else -math.inf
        self.draws = 0

    def due(self, final: bool = False) -> bool:
        now = self.clock()
        if final or now - self.last >= self.seconds:
            self.last = now
            self.draws += 1
            return True
        return False


def per_second(count: int, seconds: float) -> float | None:
    """count / seconds, or None when the time is too short (or odd) to divide by."""
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds <= 1e-6:
        return None
    return count / seconds


def short_number(value: float | None) -> str:
    """A rate for a narrow box: 950, 9.5k, 95k, 1.2M; "–" when unknown or not finite."""
    if value is None or not math.isfinite(value):
        return "–"
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            shown = value / scale
            return f"{shown:.1f}{suffix}" if abs(shown) < 10 else f"{shown:.0f}{suffix}"
    return f"{value:.0f}"


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
        entropies.append(max(0.0, float(-(nz * nz.log2()).sum())))  # one token left: 0, not -0.00
    return StageView(order, [pieces[i] for i in order], names, probs, kept, totals, entropies)
