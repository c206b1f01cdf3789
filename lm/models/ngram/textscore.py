"""Whole-text scoring of a counted n-gram model: every position's log-probability in a few array passes per order.

`logprob_of_targets` (and so `lm.run.metrics.score`) lands here. Over a run of positions of the flattened
ids, order by order:

1. the dense id of the m-gram ending at every position, by left extension from the (m-1)-gram id:
   `id_m[t] = lookup_m(id_{m-1}[t] * V + x[t-m+1])`, one dense-table read or one hashed lookup
   (`lm.models.ngram.keyindex`) per position and order. "Not seen" is id -1, and -1 * V + token is a negative
   key that every lookup reports as not seen, so no position is masked or compacted on the way;
2. Kneser-Ney: `p = p * gamma(context) + share(n-gram ending at the target)`, order after order from the
   uniform 1/V, where the context of order j at t is id_{j-1}[t] and the n-gram ending at the target is
   id_j[t+1] (its table row through `_Tables.rows_ext`; at the counted order, which has no ids, one hashed
   lookup). The gamma and share arrays carry one more element at the end (1.0 and 0.0), read for id -1, so
   an absent context multiplies by exactly 1.0 and an absent n-gram adds exactly 0.0: the float operations,
   and so the results, are those of `Smoother.target_probs` bit for bit (tests compare them).
   MLE and add-k keep the total and target count of the deepest context followed by something.

Kneser-Ney predicts the first order-2 positions of each row (history shorter than order-1 tokens) with raw
counts at their own top order; those few positions are recomputed by the general path (`Smoother.walk` and `target_probs`).
Stupid back-off has no whole-text path (its log-probs need the whole row to renormalise).
"""

from __future__ import annotations

import numpy as np

from lm.models.ngram.scoring import history_windows

_CHUNK = 1 << 18  # positions per pass (fewer, longer passes measured faster; ~20 MB of temporaries)


def text_logprobs(s, x: np.ndarray) -> np.ndarray | None:
    """log p(x[b, t+1] | x[b, :t+1]) [B, T-1] float64 under Smoother `s` (None for stupid back-off)."""
    sm = s.config.smoothing
    if sm == "stupid_backoff":
        return None
    B, T = x.shape
    n = max(T - 1, 0)
    out = np.empty((B, n), dtype=np.float64)
    if n == 0:
        return out
    K = s.config.order
    flat = np.ascontiguousarray(x, dtype=np.int64).reshape(-1)
    padded = np.concatenate([np.zeros(K, dtype=np.int64), flat])  # x[t - m + 1] for t < m - 1 is masked
    out_flat = out.reshape(-1)
    last = B * T - 1  # history ends run over [0, last): every one has a next token (in its row or the next)
    for a in range(0, last, _CHUNK):
        b = min(last, a + _CHUNK)
        with np.errstate(divide="ignore"):
            lp = np.log(_chunk_probs(s, padded, a, b, T))
        if B == 1:
            out_flat[a:b] = lp
        else:  # drop the positions at the end of a row (their "next token" starts the next row)
            t = np.arange(a, b, dtype=np.int64)
            keep = t % T != T - 1
            out_flat[t[keep] - t[keep] // T] = lp[keep]
    if s.kn and K > 2:  # histories shorter than order-1 tokens: raw counts at their own top order
        short = min(K - 2, n)
        where = (np.arange(B, dtype=np.int64)[:, None] * T + np.arange(short)[None, :]).reshape(-1)
        width = min(K, s.t.max_order - 1)
        ids = s.walk(history_windows(x, np.concatenate([where, where + 1]), width))[3]
        prob = s.target_probs(ids[:where.size, :K], where % T + 2, flat[where + 1], ids[where.size:])
        with np.errstate(divide="ignore"):
            out[:, :short] = np.log(prob).reshape(B, short)
    return out


def _ids(s, padded: np.ndarray, a: int, e: int, T: int, width: int) -> list[np.ndarray]:
    """ids[m][i]: dense id of the m-gram ending at flat position a + i (i < e - a), -1 if never seen or if
    it would reach into the row before; ids[0] is the empty context (id 0)."""
    V, K = s.vocab_size, s.config.order
    tables = s.t
    ids = [np.zeros(e - a, dtype=np.int64)]
    for m in range(1, width + 1):
        tok = padded[K + a - m + 1:K + e - m + 1]
        query = ids[-1] * V + tok if m > 1 else tok
        dense = tables.dense[m]
        if dense is not None:
            found = dense[query].astype(np.int64)
        else:
            found = tables.context_index(m).find(query)
        if m > 1:  # the m-gram ending at column m-2 of a row starts in the row before (or before the text)
            found[(m - 2 - a) % T::T] = -1
        ids.append(found)
    return ids


def _chunk_probs(s, padded: np.ndarray, a: int, b: int, T: int) -> np.ndarray:
    """p(target) of the history ends a..b-1 (flat positions); the short histories are fixed by the caller."""
    V, K = s.vocab_size, s.config.order
    tables = s.t
    width = min(K, tables.max_order - 1)  # orders whose n-grams have dense ids
    ids = _ids(s, padded, a, b + 1, T, width)
    L = b - a
    target = padded[K + a + 1:K + b + 1]
    if s.kn:
        prob = np.full(L, 1.0 / V)
    else:
        best_total, best_count = np.zeros(L), np.zeros(L)
    for j in range(1, K + 1):
        level = tables.levels[j]
        if j <= width:  # the n-gram ending at the target is the j-gram ending at t + 1
            entry = tables.rows_ext[j][ids[j][1:]]
        else:  # the counted order: no ids, one hashed lookup of (context, target)
            entry = tables.level_index(j).find(ids[j - 1][:L] * V + target)
        context = ids[j - 1][:L]
        if s.kn:
            stats = level.raw if j == K else level.cont  # (continuation counts below the top order)
            prob = prob * stats.gamma_ext[context] + stats.share_ext[entry]
        else:
            total = level.raw.total_ext[context]
            seen = total > 0
            best_total = np.where(seen, total, best_total)
            count = level.raw.counts[entry] if level.raw.counts.size else np.zeros(L)  # (-1: masked below)
            best_count = np.where(seen, np.where(entry >= 0, count, 0), best_count)
    if s.kn:
        return prob
    prob = np.full(L, 1.0 / V)
    has = best_total > 0
    if s.config.smoothing == "mle":
        prob[has] = best_count[has] / best_total[has]
    else:
        kv = s.config.k * V
        prob[has] = (best_count[has] + s.config.k) / (best_total[has] + kv)
    return prob


__all__ = ["text_logprobs"]
