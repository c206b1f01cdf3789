"""Looking inside a model: tokenize a text, run the model's `trace`, and summarise what comes back.

Everything the app's internals pages compute lives here (the pages only slice and plot), so every view can be
reproduced from a notebook:

    from lm.registry import load_model
    from lm.inspect import inspect_text, head_summary
    ins = inspect_text(load_model("shakespeare-char-transformer"), "ROMEO:\\nBut soft!")
    head_summary(ins.trace.attention).entropy          # [layers, heads]

- `inspect_text` -> `Inspection` (display tokens, ids, character spans and the family's trace dataclass);
- attention: per-head entropy, mean attention distance and simple pattern shares (previous token, first
  token, self), computed from `AttentionTrace.attention` [layers, heads, T, T];
- recurrent: gate saturation (share of steps above 0.9 / below 0.1 per unit) and the correlation of every
  unit with simple, human-readable text features (inside quotes, line ends, after a speaker name, ...);
- n-gram: held-out bits per character against the order for each smoothing method, and the next-token
  distribution of one context under each smoothing method;
- tokenizers: token counts of one text under several tokenizers.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from lm.errors import LMError

MAX_TRACE_TOKENS = 512  # cap for models without a context limit (RNN, n-gram): traces loop in Python
MAX_ATTENTION_CELLS = 10_000_000  # layers x heads x T x T floats kept per trace (40 MB): caps GPT-2 small at 263
SIGMOID_STATES = frozenset({"input", "forget", "output", "reset", "update"})  # gates, values in (0, 1)
TANH_STATES = frozenset({"cell_candidate", "candidate", "hidden"})  # values in (-1, 1)
SATURATION_HIGH, SATURATION_LOW = 0.9, 0.1
NGRAM_SMOOTHINGS = ("mle", "addk", "kneser_ney")  # the over-fitting chart (lm.models.ngram.SMOOTHINGS has more)
NGRAM_SCORE_CHARS = 20_000  # held-out characters scored per (order, smoothing) point of the over-fitting chart


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

    `loaded` is an `lm.checkpoint.LoadedModel`. The cap is the model's context (Transformer) or
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


# -- attention summaries ------------------------------------------------------------------------------------


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def attention_entropy(attention) -> np.ndarray:
    """Mean entropy (nats) of each head's attention rows: [..., T, T] -> [...].

    A head that spreads its weight evenly over n keys has entropy log n; one that looks at a single key has 0.
    Row 0 of a causal model can only see itself (entropy 0) and is included like every other row.
    """
    a = _np(attention)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(a > 0, -a * np.log(np.where(a > 0, a, 1.0)), 0.0)
    return terms.sum(-1).mean(-1)


def mean_attention_distance(attention) -> np.ndarray:
    """Mean |query - key| distance in tokens, weighted by attention: [..., T, T] -> [...].

    A previous-token head scores about 1, a head that looks back to the start of the text scores about T/2.
    """
    a = _np(attention)
    T = a.shape[-1]
    pos = np.arange(T)
    dist = np.abs(pos[:, None] - pos[None, :]).astype(np.float32)  # [T, T]
    return (a * dist).sum(-1).mean(-1)


@dataclasses.dataclass
class HeadSummary:
    """One number per head ([layers, heads] each) to find heads worth a closer look."""

    entropy: np.ndarray  # mean row entropy, nats
    distance: np.ndarray  # mean attention distance, tokens
    previous: np.ndarray  # mean weight on the previous token (rows 1..T-1)
    first: np.ndarray  # mean weight on the first token (rows 1..T-1): "attention sink" heads
    self_: np.ndarray  # mean weight on the query token itself
    output_norm: np.ndarray | None  # mean L2 norm of the head's output (how much it writes), if traced

    def rows(self) -> list[dict[str, float]]:
        """One dict per head, for a table."""
        out = []
        layers, heads = self.entropy.shape
        for layer in range(layers):
            for head in range(heads):
                row = {"layer": layer, "head": head, "entropy": float(self.entropy[layer, head]),
                       "distance": float(self.distance[layer, head]),
                       "previous token": float(self.previous[layer, head]),
                       "first token": float(self.first[layer, head]), "self": float(self.self_[layer, head])}
                if self.output_norm is not None:
                    row["output norm"] = float(self.output_norm[layer, head])
                out.append(row)
        return out


def head_summary(attention, head_output_norm=None) -> HeadSummary:
    """Summaries of attention [layers, heads, T, T] (and optionally head_output_norm [layers, heads, T])."""
    a = _np(attention)
    if a.ndim != 4 or a.shape[-1] != a.shape[-2]:
        raise LMError(f"expected attention [layers, heads, T, T], got shape {tuple(a.shape)}")
    T = a.shape[-1]
    diag = np.diagonal(a, axis1=-2, axis2=-1)  # [L, H, T]
    if T > 1:
        previous = np.diagonal(a, offset=-1, axis1=-2, axis2=-1).mean(-1)  # a[q, q-1] for q >= 1
        first = a[..., 1:, 0].mean(-1)
    else:
        previous = np.zeros(a.shape[:2], dtype=np.float32)
        first = np.ones(a.shape[:2], dtype=np.float32)
    norm = None if head_output_norm is None else _np(head_output_norm).mean(-1)
    return HeadSummary(attention_entropy(a), mean_attention_distance(a), previous, first, diag.mean(-1), norm)


# -- recurrent summaries ------------------------------------------------------------------------------------


def gate_saturation(values, high: float = SATURATION_HIGH, low: float = SATURATION_LOW) -> tuple[np.ndarray, np.ndarray]:
    """(share of steps above `high`, share of steps below `low`) per unit, for values [..., T, units].

    For a sigmoid gate, a unit that is almost always > 0.9 (or < 0.1) acts like a switch that is stuck open
    (or shut), as in Karpathy et al.'s "Visualizing and Understanding Recurrent Networks".
    """
    v = _np(values)
    if v.ndim < 2 or v.shape[-2] == 0:
        raise LMError("gate saturation needs values shaped [..., steps, units] with at least one step")
    return (v > high).mean(-2), (v < low).mean(-2)


FEATURES = {
    "inside quotes": "the text so far has an open double quote",
    "line end": "the token contains a line break",
    "position in line": "characters since the last line break",
    "after a speaker name": "on the line after a speaker line like 'HAMLET:'",
    "uppercase": "the token's letters are all capitals",
}
_SPEAKER_LINE = re.compile(r"^[A-Z][A-Za-z' .&-]{0,40}:[ \t]*$", re.M)


def char_features(text: str) -> dict[str, np.ndarray]:
    """Each feature of `FEATURES` as a value per character of `text` (the state after reading it)."""
    n = len(text)
    quotes = np.zeros(n, dtype=np.float32)
    inside = False
    for i, ch in enumerate(text):
        if ch == '"':
            inside = not inside
        elif ch == "\u201c":
            inside = True
        elif ch == "\u201d":
            inside = False
        quotes[i] = inside
    chars = np.array(list(text)) if n else np.array([], dtype="<U1")
    newline = (chars == "\n").astype(np.float32)
    position = np.zeros(n, dtype=np.float32)
    col = 0
    for i, ch in enumerate(text):
        col = 0 if ch == "\n" else col + 1
        position[i] = col
    speaker = np.zeros(n, dtype=np.float32)
    for m in _SPEAKER_LINE.finditer(text):
        start = m.end() + 1  # the character after the speaker line's line break
        if start <= n:
            stop = text.find("\n", start)
            speaker[start:n if stop < 0 else stop + 1] = 1.0
    upper = np.array([c.isupper() for c in text], dtype=np.float32)
    lower = np.array([c.islower() for c in text], dtype=np.float32)
    return {"inside quotes": quotes, "line end": newline, "position in line": position,
            "after a speaker name": speaker, "_upper": upper, "_lower": lower}


def token_features(text: str, spans: Sequence[tuple[int, int]]) -> dict[str, np.ndarray]:
    """`FEATURES` per token: the value at the token's last character (uppercase: over its letters)."""
    chars = char_features(text)
    out = {name: np.zeros(len(spans), dtype=np.float32) for name in FEATURES}
    last = {name: 0.0 for name in FEATURES}
    for t, (s, e) in enumerate(spans):
        if e > s:
            last = {name: float(chars[name][e - 1]) for name in ("inside quotes", "position in line",
                                                                 "after a speaker name")}
            last["line end"] = float(chars["line end"][s:e].max())
            up, low = chars["_upper"][s:e].sum(), chars["_lower"][s:e].sum()
            last["uppercase"] = float(up > 0 and low == 0)
        for name in FEATURES:
            out[name][t] = last.get(name, 0.0)
    return out


def correlations(values, feature) -> np.ndarray:
    """Pearson correlation of every unit of values [T, units] with feature [T] (0 where either is constant)."""
    v = _np(values)
    f = _np(feature)
    if v.ndim != 2 or f.shape != (v.shape[0],):
        raise LMError(f"expected values [T, units] and feature [T], got {v.shape} and {f.shape}")
    vc = v - v.mean(0)
    fc = f - f.mean()
    denom = np.sqrt((vc ** 2).sum(0) * (fc ** 2).sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (vc * fc[:, None]).sum(0) / denom
    return np.nan_to_num(np.where(denom > 1e-12, r, 0.0)).astype(np.float32)


@dataclasses.dataclass
class UnitMatch:
    feature: str
    unit: int
    r: float  # Pearson correlation over the text's tokens


def feature_units(inspection: Inspection, state: str = "hidden", layer: int = 0, top: int = 3,
                  features: Iterable[str] | None = None) -> list[UnitMatch]:
    """The `top` units of one state/layer that best (|r|) follow each text feature that varies in the text."""
    states = inspection.trace.states
    if state not in states:
        raise LMError(f"this model has no {state!r} state (it has {', '.join(states)})")
    values = _np(states[state])[layer]  # [T, units]
    feats = token_features(inspection.text, inspection.spans)
    out = []
    for name in features or FEATURES:
        f = feats[name]
        if f.std() == 0:
            continue  # the text never changes this feature: nothing to correlate with
        r = correlations(values, f)
        for unit in np.argsort(-np.abs(r), kind="stable")[:top]:
            out.append(UnitMatch(name, int(unit), float(r[unit])))
    return out


# -- n-gram -------------------------------------------------------------------------------------------------


def _ngram_max_order(model) -> int:
    return int(getattr(model, "max_order", model.config.order))


def ngram_valid_text(loaded, max_chars: int = NGRAM_SCORE_CHARS) -> str:
    """The start of the held-out split of the corpus the n-gram model was counted on."""
    from lm.corpus import load_corpus

    name = (loaded.meta.get("corpus") or {}).get("name")
    if not name:
        raise LMError(f"{loaded.name}: config.json does not say which corpus the model was counted on")
    split = load_corpus(name).split()
    text = split.valid.text[:max_chars]
    if not text.strip():
        raise LMError(f"{loaded.name}: the held-out part of corpus {name!r} is empty")
    return text


@dataclasses.dataclass
class OrderScore:
    order: int
    smoothing: str
    bits_per_char: float  # inf when some held-out character got probability zero (MLE)
    perplexity: float  # per token


def ngram_order_scores(loaded, orders: Iterable[int] = range(1, 8), smoothings: Sequence[str] = NGRAM_SMOOTHINGS,
                       text: str | None = None, max_chars: int = NGRAM_SCORE_CHARS) -> list[OrderScore]:
    """Held-out bits per character for every (order, smoothing): the over-fitting lesson in one table.

    Views of the same counts (`NgramModel.with_settings`) are scored on the held-out text; orders above the
    counted order are skipped. MLE scores are infinite as soon as one held-out n-gram was never counted.
    """
    from lm.metrics import score

    model, tokenizer = loaded.model, loaded.tokenizer
    if model.family != "ngram":
        raise LMError(f"{loaded.name} is a {model.family} model, not an n-gram model")
    text = ngram_valid_text(loaded, max_chars) if text is None else text[:max_chars]
    top = _ngram_max_order(model)
    out = []
    for order in orders:
        if order > top:
            continue
        for smoothing in smoothings:
            view = model.with_settings(order=order, smoothing=smoothing)
            result = score(view, tokenizer, text)
            bpc = result.bits_per_char
            out.append(OrderScore(order, smoothing, bpc if math.isfinite(bpc) else math.inf, result.perplexity))
    return out


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
    p = _np(probs)
    k = min(k, int((p > 0).sum()) or 1)
    idx = np.argsort(-p, kind="stable")[:k]
    strings = tokenizer.token_strings([int(i) for i in idx])
    return [(int(i), s, float(p[i])) for i, s in zip(idx, strings)]


def ngram_smoothing_comparison(loaded, context_ids: Sequence[int], smoothings: Sequence[str] = NGRAM_SMOOTHINGS,
                               order: int | None = None, k: int = 10) -> dict[str, list[tuple[int, str, float]]]:
    """The top-k next tokens after `context_ids` under each smoothing method (same counts, same order)."""
    model = loaded.model
    order = order or _ngram_max_order(model)
    context = list(context_ids)[-max(1, order - 1):]  # all an order-n model ever reads: cheap for long contexts
    return {s: top_tokens(next_token_distribution(model.with_settings(order=order, smoothing=s), context),
                          loaded.tokenizer, k) for s in smoothings}


def ngram_counts(model, context_ids: Sequence[int], order: int, top: int = 15) -> tuple[list[int], list[tuple[int, int]], int]:
    """What followed the context in training: (context used, [(token id, count)] most frequent first, total).

    The context is the last order-1 tokens, shortened from the left until it was seen in training (the
    same suffix MLE and add-k use).
    """
    ctx = list(context_ids)[-(order - 1):] if order > 1 else []
    while True:
        toks, counts = model.counts_after(ctx)
        if len(toks) or not ctx:
            break
        ctx = ctx[1:]
    idx = np.argsort(-counts, kind="stable")[:top]
    return ctx, [(int(toks[i]), int(counts[i])) for i in idx], int(counts.sum())


def ngram_backoff(model, tokenizer, context_ids: Sequence[int], target: int, order: int | None = None,
                  smoothing: str | None = None) -> tuple[list, list[str]]:
    """The back-off path behind p(target | context): (NgramOrderRow list, highest order first; notes).

    Runs the model's own `trace` on the last order-1 context tokens followed by `target`.
    """
    view = model.with_settings(order=order, smoothing=smoothing)
    n = view.config.order
    context = list(context_ids)
    if not context:
        raise LMError("the context has no tokens")
    ids = context[-max(1, n - 1):] + [int(target)]
    strings = tokenizer.token_strings(list(range(tokenizer.vocab_size)))
    trace = view.trace(torch.tensor(ids, dtype=torch.long), token_strings=strings)
    prefix = f"position {len(ids) - 2}: "
    notes = [note[len(prefix):] for note in trace.notes if note.startswith(prefix)]
    notes += [note for note in trace.notes if not note.startswith(("position", "the first "))]  # general notes
    return trace.rows[-1], notes


def backoff_table(rows, tokenizer, show=lambda s: s) -> list[dict[str, Any]]:
    """NgramOrderRow list (highest order first) as table rows; `show` formats context text for display."""
    out = []
    for row in rows:
        out.append({
            "order": row.order,
            "context": show("".join(tokenizer.token_strings(list(row.context)))) if row.context else "(none)",
            "c(context)": row.context_count,
            "c(context, next)": row.target_count,
            "distinct next": row.distinct_continuations,
            "p at this order": row.probability,
            "weight to lower order": row.weight,
        })
    return out


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
    from lm.corpus import load_corpus

    return load_corpus(corpus).split().train.text[:max_chars]


__all__ = [
    "FEATURES", "HeadSummary", "Inspection", "OrderScore", "TokenCount", "UnitMatch", "attention_entropy",
    "backoff_table", "bpe_training_text", "correlations", "feature_units", "gate_saturation", "head_summary",
    "inspect_text", "mean_attention_distance", "next_token_distribution", "ngram_backoff", "ngram_counts",
    "ngram_order_scores",
    "ngram_smoothing_comparison", "ngram_valid_text", "token_counts", "token_features", "token_spans",
    "top_tokens", "trace_cap",
]
