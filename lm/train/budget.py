"""How much memory and time a training run will take, estimated before it starts, and the budget it must fit.

A classroom server is shared: one student's "large" Transformer once took all 24 GB of the machine (the
activations of 8 layers at batch 64 x context 512 in float32: ~20 GB) and the kernel killed the server with
every session in it. So every run is estimated first and refused, in one line, when it would not fit the
budget (`LM_TRAIN_MEMORY_MB`, default a quarter of the machine's memory, at most 8 GB); the app's worker
process is also watched and stopped if it outgrows the budget anyway (lm/app/worker.py).

The estimates are deliberately simple and on the safe side:
- parameters P (float32), their gradients, AdamW's two moments and the best copy kept for the checkpoint:
  about 5 x 4 P bytes;
- activations kept for the backward pass, per step (float32): a Transformer layer keeps about
  T B d (34 + 5 H T / d) values (Korthikanti et al., 2022, for a GPT layer with dropout; the H T^2 term is the
  attention matrices that the CPU's math attention materialises), an RNN layer about 2 (gates + 2) T B h, and
  the head's logits, softmax and gradient 3 T B V;
- the token ids (int64, plus the tokenizer's Python list while encoding) and a fixed interpreter + torch base;
- an n-gram: about 100 bytes per training token and order (measured on random-letter text, the worst case:
  every context new).

How long a run takes (`estimate_seconds`, shown on the Train page before Start) comes from throughput
measured on the project's 2-core CPU machine (one torch thread, as the app trains): training tokens per second
of each variant x size at its preset's batch and context, and held-out scoring speed. A busy server is
slower (a class generating text took up to half the speed away), so the figure is "on an idle server".
"""

from __future__ import annotations

import dataclasses
import math
import os

from lm.data.corpus import load_corpus
from lm.data.tokenizer import DEFAULT_BPE_VOCAB
from lm.errors import LMError
from lm.models import FAMILIES

BASE_BYTES = 450 * 2**20  # a Python process with torch, NumPy and tokenizers imported, measured here
NGRAM_BYTES_PER_TOKEN_ORDER = 100
DEFAULT_BUDGET_CAP = 8 * 2**30
MEMORY_ENV = "LM_TRAIN_MEMORY_MB"


@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
    parameters: int
    weights_bytes: int  # weights, gradients, optimizer state, the best copy
    activation_bytes: int
    data_bytes: int
    base_bytes: int = BASE_BYTES

    @property
    def total(self) -> int:
        return self.weights_bytes + self.activation_bytes + self.data_bytes + self.base_bytes


def _gb(n: int) -> str:
    return f"{n / 2**30:.1f} GB"


def _transformer(args: dict, vocab: int, batch: int) -> tuple[int, int]:
    d, layers, heads, context = args["d_model"], args["n_layers"], args["n_heads"], args["context_length"]
    params = vocab * d + context * d + layers * (12 * d * d + 13 * d) + 2 * d
    per_layer = context * batch * d * (34 + 5 * heads * context / d)
    return params, int(4 * (layers * per_layer + 3 * context * batch * vocab))


def _rnn(args: dict, vocab: int, batch: int, context: int) -> tuple[int, int]:
    gates = {"rnn": 1, "gru": 3, "lstm": 4}[args["cell"]]
    e, h, layers = args["d_embed"], args["d_hidden"], args["n_layers"]
    params = vocab * e + sum(gates * h * ((e if k == 0 else h) + h + 2) for k in range(layers)) + h * vocab + vocab
    per_layer = 2 * (gates + 2) * context * batch * h
    return params, int(4 * (layers * per_layer + context * batch * e + 3 * context * batch * vocab))


def estimate_memory(plan, vocab_size: int, train_tokens: int) -> MemoryEstimate:
    """Peak memory of training `plan` (an `lm.train.settings._Plan`) on `train_tokens` tokens."""
    args = plan.model_args
    data = 16 * train_tokens  # int64 ids + the encoder's list of ints
    if plan.family == "ngram":
        return MemoryEstimate(0, 0, 0, data + NGRAM_BYTES_PER_TOKEN_ORDER * train_tokens * args["order"])
    if plan.family == "transformer":
        params, activations = _transformer(args, vocab_size, plan.batch_size)
    else:
        params, activations = _rnn(args, vocab_size, plan.batch_size, plan.context)
    return MemoryEstimate(params, 5 * 4 * params, activations, data)


def memory_budget(share: float = 0.25, cap: int | None = DEFAULT_BUDGET_CAP) -> int:
    """Bytes one training may use: $LM_TRAIN_MEMORY_MB, else `share` of this machine's memory, at most `cap`
    (the app: a quarter, at most 8 GB, leaving the rest to the class; the CLI: 80 %, no cap)."""
    raw = os.environ.get(MEMORY_ENV, "").strip()
    if raw:
        try:
            value = float(raw)
        except ValueError:
            raise LMError("{env} must be a number of megabytes, not {value!r}", env=MEMORY_ENV, value=raw) from None
        if value <= 0:
            raise LMError("{env} must be a positive number of megabytes, not {value!r}", env=MEMORY_ENV, value=raw)
        return int(value * 2**20)
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return DEFAULT_BUDGET_CAP
    return int(total * share) if cap is None else min(cap, int(total * share))


def check_memory(estimate: MemoryEstimate, budget: int | None) -> None:
    """Raise a one-line LMError when `estimate` does not fit `budget` (None: no budget). Three whole sentences,
    one per biggest part, so a translation never has to glue a phrase into another."""
    if budget is None or estimate.total <= budget:
        return
    fields = dict(need=_gb(estimate.total), budget=_gb(budget), env=MEMORY_ENV)
    if estimate.activation_bytes >= max(estimate.weights_bytes, estimate.data_bytes):
        raise LMError("this run would need about {need} of memory, over the training budget of {budget} ({env}); "
                      "most of it is activations (try a smaller batch size or context)", **fields)
    if estimate.weights_bytes >= estimate.data_bytes:
        raise LMError("this run would need about {need} of memory, over the training budget of {budget} ({env}); "
                      "most of it is weights and optimizer state (try a smaller size)", **fields)
    raise LMError("this run would need about {need} of memory, over the training budget of {budget} ({env}); "
                  "most of it is the training text (use fewer characters or a lower order)", **fields)


@dataclasses.dataclass(frozen=True)
class CorpusSize:
    """What the estimates need to know of a corpus: its training and held-out parts in characters (an upper
    bound on their tokens) and its alphabet."""

    train_chars: int
    valid_chars: int
    alphabet: int

    @classmethod
    def of(cls, corpus) -> "CorpusSize":
        split = corpus.split()
        return cls(len(split.train.text), len(split.valid.text), len(set(corpus.text)))

    def vocab(self, tokenizer: str, vocab_size: int | None) -> int:
        """The vocabulary a tokenizer of this corpus will have (its alphabet + unknown, or the BPE size)."""
        return self.alphabet + 1 if tokenizer == "char" else vocab_size or DEFAULT_BPE_VOCAB


def estimate_run(settings, plan, size: CorpusSize | None = None) -> MemoryEstimate:
    """`estimate_memory` for a run before its tokenizer exists (`size`: of its corpus, else loaded)."""
    size = size or CorpusSize.of(load_corpus(settings.corpus, max_chars=settings.max_chars))
    return estimate_memory(plan, size.vocab(settings.tokenizer, settings.vocab_size), size.train_chars)


# -- time ---------------------------------------------------------------------------------------------------
# Training tokens per second at each preset's batch and context, one thread, on the 2-core machine: the median
# over a run's progress windows, the faster of two runs (the machine was shared; a busy one only slows down).
# Sizes not listed (the large ones, custom shapes) are scaled from the nearest listed size by work per token.
TRAIN_TOKENS_PER_SECOND = {
    ("lstm", "tiny"): 283_000, ("lstm", "small"): 15_900, ("lstm", "medium"): 2_800, ("lstm", "large"): 1_050,
    ("gru", "tiny"): 73_000, ("gru", "small"): 11_000, ("gru", "medium"): 3_000,
    ("rnn", "tiny"): 169_000, ("rnn", "small"): 19_900, ("rnn", "medium"): 6_300,
    ("transformer", "tiny"): 69_500, ("transformer", "small"): 6_300, ("transformer", "medium"): 1_640,
}
# Held-out scoring (one long text, the final metrics) in characters per second, char tokens, same machine.
SCORE_CHARS_PER_SECOND = {
    ("rnn", "tiny"): 70_800, ("rnn", "small"): 8_900, ("rnn", "medium"): 3_140,
    ("transformer", "tiny"): 32_300, ("transformer", "small"): 9_300, ("transformer", "medium"): 3_970,
}
NGRAM_SCORE_CHARS_PER_SECOND = 140_000  # order 8 (lower orders are faster)
NGRAM_COUNT_TOKEN_ORDERS_PER_SECOND = 16_000_000  # counting: tokens x order per second (order 8, the slowest)
ENCODE_CHARS_PER_SECOND = 10_000_000  # building the character tokenizer and encoding the corpus
BPE_CHARS_PER_SECOND = 800_000  # learning a byte-level BPE (2048 pieces) and encoding with it
STARTUP_SECONDS = 4.0  # the worker process: Python, torch, the corpus (measured 3-6 s)
VALID_SHARE = 0.1  # a corpus's held-out part is about a tenth of its training part (names 11 %, Shakespeare 8 %)


@dataclasses.dataclass(frozen=True)
class TimeEstimate:
    seconds: float  # start to finish: start-up, tokenizing, training, evaluations, the final scoring
    train_seconds: float
    steps: int | None  # steps that fit (fewer than planned when the time limit ends the run first)
    tokens_per_second: float | None
    limited_by: str  # "steps" | "minutes" | "counting"


def _work(family: str, args: dict, context: int) -> float:
    """Multiply-adds per token of a model shape (weights only, plus attention's context term): what scales
    throughput between shapes of one family."""
    if family == "transformer":
        return args["n_layers"] * (12 * args["d_model"] ** 2 + 2 * context * args["d_model"])
    gates = {"rnn": 1, "gru": 3, "lstm": 4}[args["cell"]]
    e, h = args["d_embed"], args["d_hidden"]
    return sum(gates * h * ((e if k == 0 else h) + h) for k in range(args["n_layers"]))


def _nearest(table: dict, key_variant: str, plan) -> tuple[float, float]:
    """(measured figure, work ratio plan / that size's) of the listed size nearest to `plan`'s shape."""
    spec = FAMILIES[plan.family]
    work = _work(plan.family, plan.model_args, plan.context)
    best = None
    for size, preset in spec.presets.items():
        if (key_variant, size) not in table:
            continue
        args = spec.config_args(plan.variant, {option: preset[option] for option in spec.options})
        ratio = work / _work(plan.family, args, preset["context"])
        if best is None or abs(math.log(ratio)) < abs(math.log(best[1])):
            best = (table[(key_variant, size)], ratio)
    assert best is not None, plan.variant
    return best


def estimate_time(plan, train_tokens: int, *, tokenizer: str = "char", valid_chars: int | None = None,
                  score_chars: int = 200_000, eval_windows: int = 64) -> TimeEstimate:
    """How long training `plan` on `train_tokens` tokens takes on an idle server, part by part."""
    valid = min(score_chars, int(train_tokens * VALID_SHARE) if valid_chars is None else valid_chars)
    setup = train_tokens / (BPE_CHARS_PER_SECOND if tokenizer == "bpe" else ENCODE_CHARS_PER_SECOND)
    if not FAMILIES[plan.family].gradient:
        counting = train_tokens * plan.model_args["order"] / NGRAM_COUNT_TOKEN_ORDERS_PER_SECOND
        return TimeEstimate(STARTUP_SECONDS + setup + counting + valid / NGRAM_SCORE_CHARS_PER_SECOND, counting,
                            None, None, "counting")
    tps, ratio = _nearest(TRAIN_TOKENS_PER_SECOND, plan.variant, plan)
    tps /= ratio
    score_rate, score_ratio = _nearest(SCORE_CHARS_PER_SECOND, plan.family, plan)
    score_rate /= score_ratio
    # a full batch (batch gradient descent) passes over the whole training text in every step
    step_seconds = (train_tokens if plan.full_batch else plan.batch_size * plan.context) / tps
    by_steps = plan.steps * step_seconds if plan.steps else math.inf
    by_minutes = plan.minutes * 60.0 if plan.minutes else math.inf
    train = min(by_steps, by_minutes)
    steps = plan.steps if by_steps <= by_minutes else int(train / step_seconds)
    evaluations = (steps // plan.eval_every + 1) * eval_windows * plan.context / score_rate
    return TimeEstimate(STARTUP_SECONDS + setup + train + evaluations + valid / score_rate, train, steps, tps,
                        "steps" if by_steps <= by_minutes else "minutes")


def estimate_seconds(plan, train_tokens: int, **kwargs) -> float:
    """Seconds from Start to a finished model for `plan` on `train_tokens` tokens, on an idle server
    (`estimate_time`'s keywords: tokenizer, valid_chars, score_chars, eval_windows)."""
    return estimate_time(plan, train_tokens, **kwargs).seconds
