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
"""

from __future__ import annotations

import dataclasses
import os

from lm.data.corpus import load_corpus
from lm.data.tokenizer import DEFAULT_BPE_VOCAB
from lm.errors import LMError

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
            raise LMError(f"{MEMORY_ENV} must be a number of megabytes, not {raw!r}") from None
        if value <= 0:
            raise LMError(f"{MEMORY_ENV} must be a positive number of megabytes, not {raw!r}")
        return int(value * 2**20)
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return DEFAULT_BUDGET_CAP
    return int(total * share) if cap is None else min(cap, int(total * share))


def check_memory(estimate: MemoryEstimate, budget: int | None) -> None:
    """Raise a one-line LMError when `estimate` does not fit `budget` (None: no budget)."""
    if budget is None or estimate.total <= budget:
        return
    biggest = "activations (try a smaller batch size or context)" if estimate.activation_bytes >= max(
        estimate.weights_bytes, estimate.data_bytes) else "weights and optimizer state (try a smaller size)" \
        if estimate.weights_bytes >= estimate.data_bytes else "the training text (use fewer characters or a lower order)"
    raise LMError(f"this run would need about {_gb(estimate.total)} of memory, over the training budget of "
                  f"{_gb(budget)} ({MEMORY_ENV}); most of it is {biggest}")


def estimate_run(settings, plan) -> MemoryEstimate:
    """`estimate_memory` for a run before its tokenizer exists: the corpus's training part in characters (an
    upper bound on its tokens) and the vocabulary it will have (its alphabet, or the BPE size)."""
    corpus = load_corpus(settings.corpus, max_chars=settings.max_chars)
    train_chars = len(corpus.split().train.text)
    vocab = len(set(corpus.text)) + 1 if settings.tokenizer == "char" else settings.vocab_size or DEFAULT_BPE_VOCAB
    return estimate_memory(plan, vocab, train_chars)
