"""The n-gram inspection path: for every position of a text, the back-off path behind its prediction.

Per position and per order: the context, how often it was seen, how often the actual next token followed it,
the probability that order gives and the weight passed down to the order below (Kneser-Ney's gamma, stupid
back-off's alpha, or all-or-nothing back-off for MLE and add-k); plus plain-language notes where a context was
never seen or MLE gives probability zero. Computed from the same `Smoother` the model predicts with.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from lm.models.ngram.smoothing import Smoother
from lm.models.trace import NgramOrderRow, NgramTrace

_MAX_NOTES = 200


def backoff_trace(s: Smoother, x: np.ndarray, token_strings: Sequence[str] | None = None) -> NgramTrace:
    """The trace of checked token ids x[T] (T >= 1); `token_strings[v]` makes the notes readable."""
    T, V = x.size, s.vocab_size

    def show(seq: Sequence[int]) -> str:
        if token_strings is not None:
            return repr("".join(token_strings[int(i)] for i in seq))
        return "[" + ", ".join(str(int(i)) for i in seq) + "]"

    sm, order, alpha = s.config.smoothing, s.config.order, s.config.backoff_alpha
    x2 = x.reshape(1, T)
    rows_all, (top_all, _, _, ctx_all) = s.state_rows(s.windows(x2, np.arange(T)))
    if sm == "stupid_backoff":
        probabilities = rows_all / rows_all.sum(axis=1, keepdims=True)
    else:
        probabilities = rows_all
    notes: list[str] = []
    extra = 0
    if sm == "stupid_backoff":
        notes.append("stupid back-off scores are not probabilities: the rows show the raw scores S, "
                     "the probabilities are the scores renormalised at each position")
    if order > 2 and T > 1:
        notes.append(f"the first {min(T, order - 2)} position(s) have fewer than {order - 1} tokens of "
                     f"history, so they are predicted by lower orders")
    # the (context, target) entry of every position at every order, one vectorised lookup per order
    targets = x[1:]
    entry, entry_found = [None], [None]
    for j in range(1, order + 1):
        c = ctx_all[:T - 1, j - 1]
        ok = np.flatnonzero(c >= 0)
        e, f = np.zeros(T - 1, dtype=np.int64), np.zeros(T - 1, dtype=bool)
        e[ok], f[ok] = s.t.levels[j].find(c[ok], targets[ok])
        entry.append(e)
        entry_found.append(f)
    table: list[list[NgramOrderRow]] = []
    for t in range(T - 1):
        target = int(x[t + 1])
        top = int(top_all[t])
        history = [int(v) for v in x[max(0, t - order + 2):t + 1]]
        lower = 1.0 / V
        per_order: list[NgramOrderRow] = []
        for j in range(1, top + 1):
            c = int(ctx_all[t, j - 1])
            context = history[len(history) - (j - 1):] if j > 1 else []
            raw = (j == top) or not s.kn
            level = s.t.levels[j]
            stats = level.raw if raw or level.cont is None else level.cont
            if c >= 0:
                total = float(stats.total[c])
                distinct = int(stats.distinct[c])
                target_count = float(stats.counts[entry[j][t]]) if entry_found[j][t] else 0.0
                prob = float(s.node_row(j, c, raw)[target])
            else:
                total, distinct, target_count = 0.0, 0, 0.0
                prob = lower * alpha if sm == "stupid_backoff" else lower
            if sm == "kneser_ney":
                weight = float(stats.gamma[c]) if total > 0 else 1.0
            elif sm == "stupid_backoff":
                weight = 0.0 if (total > 0 and target_count > 0) else alpha
            else:
                weight = 0.0 if total > 0 else 1.0
            per_order.append(NgramOrderRow(j, context, total, target_count, distinct, prob, weight))
            lower = prob
        rows = per_order[::-1]
        table.append(rows)
        # plain-language notes
        new: list[str] = []
        full_context = history[len(history) - (top - 1):] if top > 1 else []
        seen_orders = [r for r in rows if r.context_count > 0]
        used = seen_orders[0] if seen_orders else None
        if top > 1 and rows[0].context_count == 0:
            shorter = show(used.context) if used is not None and used.context else "no context at all"
            new.append(f"position {t}: the context {show(full_context)} was never followed by anything "
                       f"in training; the prediction falls back to {shorter} "
                       f"(order {used.order if used else 0})")
        if sm == "mle" and rows[0].probability == 0.0:
            if used is not None and used.context:
                new.append(f"position {t}: {show([target])} never followed {show(used.context)} in "
                           f"training, so MLE gives it probability 0 (log-prob -inf)")
            else:
                new.append(f"position {t}: {show([target])} never occurred in training, so MLE gives it "
                           f"probability 0 (log-prob -inf)")
        elif sm == "kneser_ney" and all(r.target_count == 0 for r in rows):
            new.append(f"position {t}: {show([target])} was never seen after any suffix of "
                       f"{show(full_context)}; its probability comes only from the uniform floor 1/V "
                       f"passed down through the interpolation weights")
        for note in new:
            if len(notes) < _MAX_NOTES:
                notes.append(note)
            else:
                extra += 1
    if extra:
        notes.append(f"... and {extra} more notes")
    return NgramTrace(order=order, smoothing=sm, rows=table,
                      probabilities=torch.from_numpy(probabilities.astype(np.float32)), notes=notes)
