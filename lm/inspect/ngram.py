"""N-gram views: held-out bits per character against the order for each smoothing method, the next-token
distribution of one context under each smoothing, raw counts and the back-off path of one prediction.

Captions, table headers and the sentences on the over-fitting chart are in the current language (`lm.i18n`)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch

from lm.errors import LMError
from lm.i18n import _
from lm.run.metrics import score
from lm.store.provenance import model_corpus
from lm.inspect.text import next_token_distribution, top_tokens


NGRAM_SMOOTHINGS = ("mle", "addk", "kneser_ney")  # the over-fitting chart (lm.models.ngram.model.SMOOTHINGS has more)
NGRAM_SCORE_CHARS = 20_000  # held-out characters scored per (order, smoothing) point of the over-fitting chart


# -- n-gram -------------------------------------------------------------------------------------------------


def _ngram_max_order(model) -> int:
    return int(getattr(model, "max_order", model.config.order))


def ngram_valid_text(loaded, max_chars: int = NGRAM_SCORE_CHARS) -> str:
    """The start of the held-out split of the corpus the n-gram model was counted on (a user's corpus found
    by the path its training recorded, cut by the same `max_chars`, so the split is the one it was counted on)."""
    corpus = model_corpus(loaded.meta, loaded.name)
    text = corpus.split().valid.text[:max_chars]
    if not text.strip():
        raise LMError("{model}: the held-out part of corpus {corpus} is empty", model=loaded.name,
                      corpus=repr(corpus.name))
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
    model, tokenizer = loaded.model, loaded.tokenizer
    if model.family != "ngram":
        raise LMError("{model} is a {family} model, not an n-gram model", model=loaded.name, family=model.family)
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


def counts_are_continuations(smoothing: str | None, row_index: int) -> bool:
    """Whether row `row_index` (0 = the longest context) of a back-off path holds continuation counts:
    Kneser-Ney counts its lower orders by how many different tokens came before, not by how often."""
    return smoothing == "kneser_ney" and row_index > 0


def backoff_caption(smoothing: str | None) -> str:
    """What the count columns of `backoff_table` mean under `smoothing`."""
    if smoothing == "kneser_ney":
        return _("The longest context is counted as usual: c(context) = how often it occurred, c(context, next) = "
                 "how often the next token followed it. The shorter ones hold Kneser-Ney's continuation counts: "
                 "c(context, next) = how many different tokens came just before 'context next' in training, "
                 "c(context) their sum over every next token. A token that follows many contexts gets a high "
                 "lower-order probability; one that always follows the same word does not.")
    return _("c(context) = how often the context occurred in training; c(context, next) = how often the next "
             "token followed it.")


def backoff_table(rows, tokenizer, show=lambda s: s, smoothing: str | None = None) -> list[dict[str, Any]]:
    """NgramOrderRow list (highest order first) as table rows; `show` formats context text for display.

    With `smoothing` given, a "counts" column says per row what the counts are (see `backoff_caption`). The
    headers and words are in the current language; the context is the model's tokens, never translated.
    """
    out = []
    for i, row in enumerate(rows):
        entry = {
            _("order"): row.order,
            _("context"): show("".join(tokenizer.token_strings(list(row.context)))) if row.context else _("(none)"),
        }
        if smoothing is not None:
            entry[_("counts")] = _("continuations") if counts_are_continuations(smoothing, i) else _("times seen")
        entry.update({
            "c(context)": row.context_count,
            "c(context, next)": row.target_count,
            _("distinct next"): row.distinct_continuations,
            _("p at this order"): row.probability,
            _("weight to lower order"): row.weight,
        })
        out.append(entry)
    return out


def describe_order_scores(scores: Sequence[OrderScore], labels: Mapping[str, str] | None = None) -> str:
    """What the held-out score against order shows, one sentence per smoothing, from the scores themselves (in
    the current language; `labels` name the smoothings, translated when the catalog has them)."""
    labels = labels or {}
    sentences = []
    for smoothing in dict.fromkeys(s.smoothing for s in scores):
        rows = sorted((s for s in scores if s.smoothing == smoothing), key=lambda s: s.order)
        label = _(labels.get(smoothing, smoothing))
        finite = [s for s in rows if math.isfinite(s.bits_per_char)]
        infinite = [s.order for s in rows if not math.isfinite(s.bits_per_char)]
        top = rows[-1].order
        if infinite and (not finite or min(infinite) > max(s.order for s in finite)):
            sentences.append(_("{smoothing} is infinite from order {order} on: one held-out n-gram it never "
                               "counted gets probability 0.").format(smoothing=label, order=min(infinite)))
            continue
        if not finite:
            continue
        best = min(finite, key=lambda s: (s.bits_per_char, s.order))
        if best.order == top:
            falling = all(a.bits_per_char > b.bits_per_char for a, b in zip(finite, finite[1:]))
            line = (_("{smoothing} keeps improving up to order {order} ({bits:.2f} bits/char), the highest shown.")
                    if len(finite) > 1 and falling else
                    _("{smoothing} is best at order {order} ({bits:.2f} bits/char), the highest shown."))
            sentences.append(line.format(smoothing=label, order=top, bits=best.bits_per_char))
        else:
            last = rows[-1]
            worse = f"{last.bits_per_char:.2f}" if math.isfinite(last.bits_per_char) else _("infinite")
            sentences.append(_("{smoothing} is best at order {order} ({bits:.2f} bits/char) and worse above it "
                               "({worse} at order {top}): most longer contexts were seen too rarely to trust their "
                               "counts.").format(smoothing=label, order=best.order, bits=best.bits_per_char,
                                                 worse=worse, top=top))
    return " ".join(sentences)
