"""Looking inside a model: tokenize a text and run the model's `trace` (`inspect_text` -> `Inspection`), the
next-token distribution of a context and its top tokens, and token counts under several tokenizers.

The other views' summaries are beside this module (attention, recurrent, ngram); `lm.inspect` gathers them."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import numpy as np
import torch

from lm.errors import LMError
from lm.data.corpus import load_corpus


MAX_TRACE_TOKENS = 512  # cap for models without a context limit (RNN, n-gram): traces loop in Python
MAX_ATTENTION_CELLS = 10_000_000  # layers x heads x T x T floats kept per trace (40 MB): caps GPT-2 small at 263


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
    text: str  # the text the traced tokens cover (decoded: the input, cut where the cap cut it)
    spans: list[tuple[int, int]]  # [start, end) of each token in `text` (empty for a partial UTF-8 byte)
    truncated: bool = False
    note: str = ""  # one line saying why/where the text was cut ('' when it was not)

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


def inspect_text(loaded, text: str, max_tokens: int | None = None) -> Inspection:
    """Tokenize `text` with the model's tokenizer, keep at most the model's cap of tokens, and trace them.

    `loaded` is an `lm.store.checkpoint.LoadedModel`. The cap is the model's context (Transformer) or
    `MAX_TRACE_TOKENS` (RNN, n-gram); `max_tokens` lowers it further. A longer text keeps its beginning, and
    `note` says so.
    """
    if not isinstance(text, str) or not text.strip():
        raise LMError("type some text to inspect")
    model, tokenizer = loaded.model, loaded.tokenizer
    ids = list(tokenizer.encode(text))
    if not ids:
        raise LMError("the text could not be turned into any tokens")
    cap = trace_cap(model)
    if max_tokens is not None:
        cap = max(1, min(cap, int(max_tokens)))
    truncated = len(ids) > cap
    note = ""
    if truncated:
        why = "its context length" if model.family == "transformer" and model.context_length == cap \
            else "the inspection limit"
        note = f"The text has {len(ids):,} tokens; only the first {cap:,} are shown ({why})."
        ids = ids[:cap]
    ids_t = torch.tensor(ids, dtype=torch.long, device=model.device)
    if model.family == "ngram":  # readable notes ("'th' never followed ...") instead of id lists
        trace = model.trace(ids_t, token_strings=tokenizer.token_strings(list(range(tokenizer.vocab_size))))
    else:
        trace = model.trace(ids_t)
    decoded, spans = token_spans(tokenizer, ids)
    return Inspection(tokenizer.token_strings(ids), ids, trace, decoded, spans, truncated, note)


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
