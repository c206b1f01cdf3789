"""The probabilities of a counted n-gram model: the back-off walk and every smoothing rule.

`NgramModel` (lm/models/ngram/model.py) is the `LanguageModel` contract around a `Smoother`: it checks input, keeps
state and shapes the results; the `Smoother` answers "what is p(. | history)" from the count tables
(`lm.models.ngram.counts`) under one configuration. The rules themselves are described in model.py's
docstring.

One function per path implements each rule with the same float operations in the same order
(`compute_level` rows for many contexts at once, `compute_one` one row for the cached step path,
`target_probs` single entries for scoring), so the step, logits and scoring paths agree bit for bit. The LRU
caches of rows are the only mutable state, each guarded by its own lock, so one model serves many threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from lm.models.ngram.counts import _Tables
from lm.models.ngram.scoring import history_windows
from lm.models.ngram.textscore import text_logprobs

_CACHE_FLOATS = 1 << 22  # per cache: bounds memory whatever the vocabulary size (32 MiB of float64)


class _LRU:
    """A small thread-safe LRU (the only mutable state of a model)."""

    def __init__(self, maxsize: int):
        self.maxsize = max(16, int(maxsize))
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key, value) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


def _expand(rows: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flatten ranges: (row of each element, index of each element) for ranges [starts, starts+lengths)."""
    total = int(lengths.sum())
    rr = np.repeat(rows, lengths)
    first = np.cumsum(lengths) - lengths
    ee = np.arange(total, dtype=np.int64) + np.repeat(starts - first, lengths)
    return rr, ee


class Smoother:
    """p(. | history) of one `NgramConfig` over count tables: rows, single entries, and the step path's caches."""

    def __init__(self, config, tables: _Tables):
        self.config = config
        self.t = tables
        self.vocab_size = config.vocab_size
        self.kn = config.smoothing == "kneser_ney"
        self.uniform = np.full(config.vocab_size, 1.0 / config.vocab_size)
        self.uniform.setflags(write=False)
        # (order, context, raw) -> float64 row; (order, context, raw, missing) -> float32 log row;
        # history tuple -> the same float32 log row objects (bounded too: they may outlive log_cache's)
        self.node_cache = _LRU(_CACHE_FLOATS // config.vocab_size)
        self.log_cache = _LRU(2 * _CACHE_FLOATS // config.vocab_size)
        self.row_cache = _LRU(min(1 << 17, 2 * _CACHE_FLOATS // config.vocab_size))

    # -- context lookups ------------------------------------------------------------------------------
    def lookup_context(self, context: Sequence[int]) -> int:
        """Dense id of the len(context)-gram `context`, or -1 if it never occurred."""
        V, cid = self.vocab_size, 0
        for m in range(1, len(context) + 1):
            keys = self.t.context_keys[m]
            query = cid * V + int(context[-m])
            pos = int(keys.searchsorted(query))
            if pos >= keys.size or int(keys[pos]) != query:
                return -1
            cid = pos
        return cid

    def walk(self, win: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """For histories win[P, order-1] (-1 = no token, only on the left):

        top order K [P], deepest order whose context occurred `lev` [P] with that context's id `cid` [P],
        and the context id at every order `ctx` [P, order] (column j-1 for order j; -1 = never occurred).
        """
        P, w = win.shape  # (wider windows, up to the counted order, give the longer n-grams' ids too)
        V = self.vocab_size
        top = (win >= 0).sum(axis=1).astype(np.int64) + 1
        ctx = np.full((P, w + 1), -1, dtype=np.int64)
        ctx[:, 0] = 0
        lev = np.ones(P, dtype=np.int64)
        cid = np.zeros(P, dtype=np.int64)
        alive = np.arange(P, dtype=np.int64)
        cur = np.zeros(P, dtype=np.int64)
        for m in range(1, w + 1):
            tok = win[alive, w - m]
            ok = tok >= 0
            alive, cur, tok = alive[ok], cur[ok], tok[ok]
            keys, dense = self.t.context_keys[m], self.t.dense[m]
            query = cur * V + tok
            if dense is not None:
                pos = dense[query].astype(np.int64)
                found = pos >= 0
            else:
                if keys.size == 0:
                    break
                pos = self.t.context_index(m).find(query)
                found = pos >= 0
            alive, cur = alive[found], pos[found]
            if alive.size == 0:
                break
            ctx[alive, m] = cur
            lev[alive] = m + 1
            cid[alive] = cur
        return top, lev, cid, ctx

    def node_raw(self, lev: np.ndarray, top: np.ndarray) -> np.ndarray:
        # Only Kneser-Ney distinguishes raw counts (top order) from continuation counts (lower orders).
        return (lev == top) if self.kn else np.ones(lev.shape, dtype=bool)

    # -- one order of smoothing -----------------------------------------------------------------------
    def compute_level(self, j: int, c: np.ndarray, raw: np.ndarray, parent: np.ndarray) -> np.ndarray:
        """Rows p_j(. | context c) [R, V] (float64) given the order-(j-1) rows of their suffixes `parent`.

        This is the batched implementation of every smoothing rule; `compute_one` (the cached step path)
        and `target_probs` (scoring) do exactly the same float operations, so all paths agree bit for bit.
        """
        level = self.t.levels[j]
        sm, V = self.config.smoothing, self.vocab_size
        use_cont = self.kn and level.cont is not None and not bool(raw.all())
        total = level.raw.total[c]
        if use_cont:
            total = np.where(raw, total, level.cont.total[c])
        if sm == "stupid_backoff":
            out = parent * self.config.backoff_alpha
        else:
            out = np.array(parent, dtype=np.float64, copy=True)
        seen = np.flatnonzero(total > 0)
        if seen.size == 0:
            return out
        s_c = c[seen]
        starts = level.offsets[s_c]
        rr, ee = _expand(seen, starts, level.offsets[s_c + 1] - starts)
        tt = level.tok[ee]
        if sm == "kneser_ney":
            gamma, share = level.raw.gamma[s_c], level.raw.share[ee]
            if use_cont:
                gamma = np.where(raw[seen], gamma, level.cont.gamma[s_c])
                share = np.where(raw[rr], share, level.cont.share[ee])
            out[seen] = out[seen] * gamma[:, None]
            out[rr, tt] += share
        elif sm == "addk":
            k = self.config.k
            s_total = total[seen]
            out[seen] = (k / (s_total + k * V))[:, None]
            out[rr, tt] = (level.raw.counts[ee] + k) / (total[rr] + k * V)
        else:  # MLE: seen continuations only; stupid back-off: they replace alpha * lower order
            if sm == "mle":
                out[seen] = 0.0
            out[rr, tt] = level.raw.ratio[ee]
        return out

    def compute_one(self, j: int, c: int, raw: bool, parent: np.ndarray) -> np.ndarray:
        """`compute_level` for a single context (the step path's hot spot); may return `parent` itself."""
        level = self.t.levels[j]
        sm = self.config.smoothing
        stats = level.cont if (self.kn and not raw and level.cont is not None) else level.raw
        total = stats.total[c]
        if not total > 0:  # never followed by anything: the lower order decides
            return parent * self.config.backoff_alpha if sm == "stupid_backoff" else parent
        a, b = int(level.offsets[c]), int(level.offsets[c + 1])
        tt = level.tok[a:b]
        if sm == "kneser_ney":
            out = parent * stats.gamma[c]
            out[tt] += stats.share[a:b]
        elif sm == "addk":
            k, V = self.config.k, self.vocab_size
            out = np.full(V, k / (total + k * V))
            out[tt] = (level.raw.counts[a:b] + k) / (total + k * V)
        elif sm == "mle":
            out = np.zeros(self.vocab_size)
            out[tt] = level.raw.ratio[a:b]
        else:
            out = parent * self.config.backoff_alpha
            out[tt] = level.raw.ratio[a:b]
        return out

    def node_row(self, j: int, c: int, raw: bool) -> np.ndarray:
        """Cached p_j(. | context c) as a read-only float64 row (the recursion of `compute_level`)."""
        if j == 0:
            return self.uniform
        # A context of the highest order is never the parent of another: caching its row would only cost
        # (sampling meets a new one at most steps; the history cache keeps its log row anyway).
        shared = j < self.config.order
        key = (j, c, raw)
        if shared:
            row = self.node_cache.get(key)
            if row is not None:
                return row
        parent_c = 0 if j <= 2 else int(self.t.context_keys[j - 1][c]) // self.vocab_size
        parent = self.node_row(j - 1, parent_c, not self.kn)
        row = self.compute_one(j, c, raw, parent)
        row.setflags(write=False)  # (it may be `parent` itself, which is read-only already)
        if shared:
            self.node_cache.put(key, row)
        return row

    def rows_for_nodes(self, lev: np.ndarray, cid: np.ndarray, raw: np.ndarray) -> np.ndarray:
        """Batched `node_row`: rows [R, V] for nodes (order, context, raw), each distinct node once."""
        R, V = lev.size, self.vocab_size
        out = np.empty((R, V), dtype=np.float64)
        if R == 0:
            return out
        top = int(lev.max())
        praw = 0 if self.kn else 1
        node_key = cid * 2 + raw.astype(np.int64)
        needed: list[np.ndarray | None] = [None] * (top + 1)
        carry = np.zeros(0, dtype=np.int64)
        for j in range(top, 0, -1):  # the distinct nodes of each order, and the parents they need
            uniq = np.unique(np.concatenate([node_key[lev == j], carry]))
            needed[j] = uniq
            carry = np.unique(self.t.suffix(j, uniq >> 1)) * 2 + praw
        rows: list[np.ndarray | None] = [None] * (top + 1)
        for j in range(1, top + 1):  # bottom-up: each order from the rows of the order below
            uniq = needed[j]
            uc, ur = uniq >> 1, (uniq & 1).astype(bool)
            if j == 1:
                parent = np.broadcast_to(self.uniform, (uniq.size, V))
            else:
                pidx = np.searchsorted(needed[j - 1], self.t.suffix(j, uc) * 2 + praw)
                parent = rows[j - 1][pidx]
            rows[j] = self.compute_level(j, uc, ur, parent)
        for j in range(1, top + 1):
            sel = np.flatnonzero(lev == j)
            if sel.size:
                out[sel] = rows[j][np.searchsorted(needed[j], node_key[sel])]
        return out

    def state_rows(self, win: np.ndarray) -> tuple[np.ndarray, tuple]:
        """Probability (or stupid back-off score) rows [P, V] float64 after histories win[P, order-1]."""
        top, lev, cid, ctx = self.walk(win)
        rows = self.rows_for_nodes(lev, cid, self.node_raw(lev, top))
        if self.config.smoothing == "stupid_backoff":
            power = top - lev  # orders whose context never occurred: each multiplies by alpha
            for p in np.unique(power[power > 0]):
                sel = power == p
                rows[sel] = rows[sel] * (self.config.backoff_alpha ** int(p))
        return rows, (top, lev, cid, ctx)

    def history_row(self, history: tuple) -> np.ndarray:
        """Cached float32 log row (log-probs; log-scores for stupid back-off) after one history tuple.

        Two caches: history -> row (a hit costs one dictionary lookup) and node -> row, so that the many
        histories whose longest seen context is the same share one row (a hit costs the history walk).
        """
        row = self.row_cache.get(history)
        if row is not None:
            return row
        node = self.history_node(history)
        shared = node[0] < self.config.order  # a full seen context belongs to this one history only
        row = self.log_cache.get(node) if shared else None
        if row is None:
            probs = self.node_probs(*node)
            if self.config.smoothing == "mle":  # the only rule with exact zeros (np.errstate is slow)
                with np.errstate(divide="ignore"):
                    row = np.log(probs).astype(np.float32)
            else:
                row = np.log(probs).astype(np.float32)
            row.setflags(write=False)
            if shared:
                self.log_cache.put(node, row)
        self.row_cache.put(history, row)
        return row

    def history_node(self, history: tuple) -> tuple[int, int, bool, int]:
        """(order, context id, raw counts?, missing orders) of the longest seen suffix of a history tuple.

        Scalar version of `walk`: one binary search per order (ndarray.searchsorted: np.searchsorted's
        wrapper costs several times more on a scalar).
        """
        V = self.vocab_size
        valid = sum(1 for t in history if t >= 0)
        top, lev, cid = valid + 1, 1, 0
        context_keys, dense_tables = self.t.context_keys, self.t.dense
        for m in range(1, valid + 1):
            query = cid * V + history[-m]
            dense = dense_tables[m]
            if dense is not None:
                pos = int(dense[query])
                if pos < 0:
                    break
            else:
                keys = context_keys[m]
                pos = int(keys.searchsorted(query))
                if pos >= keys.size or int(keys[pos]) != query:
                    break
            lev, cid = m + 1, pos
        return lev, cid, (lev == top) or not self.kn, top - lev

    def node_probs(self, lev: int, cid: int, raw: bool, missing: int) -> np.ndarray:
        probs = self.node_row(lev, cid, raw)
        if self.config.smoothing == "stupid_backoff" and missing > 0:
            probs = probs * (self.config.backoff_alpha ** missing)  # each missing order multiplies by alpha
        return probs

    def history_probs(self, history: tuple) -> np.ndarray:
        """float64 probabilities (stupid back-off: scores) after one history tuple (-1 = no token)."""
        return self.node_probs(*self.history_node(history))

    def target_probs(self, ctx: np.ndarray, top: np.ndarray, target: np.ndarray,
                     following: np.ndarray | None = None) -> np.ndarray:
        """p(target) [P] float64 from per-order context ids, without building rows (not stupid back-off).

        `following` [P, >= 1] (optional): the ids of the n-grams that end at each target (what the walk of the
        next position gives, column j for the j-gram); where it has a column for order j, the target's entry
        is read from it instead of looked up.

        Branch-free over all rows: a row with nothing to add at an order is multiplied by 1.0 and gets 0.0
        added, which leaves it bit for bit as it was, so this is the arithmetic of `compute_level`.
        """
        P, V = target.size, self.vocab_size
        sm, kn = self.config.smoothing, self.kn
        prob = np.full(P, 1.0 / V)
        width = 0 if following is None else following.shape[1] - 1
        best_total = np.zeros(P)  # MLE / add-k: the deepest order whose context was followed by something
        best_count = np.zeros(P)
        for j in range(1, self.config.order + 1):
            level = self.t.levels[j]
            c = ctx[:, j - 1]
            occurred = c >= 0
            if not occurred.any():
                break
            c = np.maximum(c, 0)
            # Kneser-Ney: continuation counts below the top order, except where this order is the top
            # (the start of a text); MLE and add-k: raw counts everywhere
            cont = kn and level.cont is not None and j < self.config.order
            stats = level.cont if cont else level.raw
            total = stats.total[c]
            raw_rows = np.flatnonzero(top == j) if cont else np.zeros(0, np.int64)
            if raw_rows.size:
                total[raw_rows] = level.raw.total[c[raw_rows]]
            seen = occurred & (total > 0)
            if j > width:
                e = self.t.level_index(j).find(c * V + target)
            else:
                e = self.t.rows_ext[j][following[:, j]]  # (id -1 reads the -1 at the end)
            found = seen & (e >= 0)
            if kn:  # (e = -1 reads the 0.0 at the end of share_ext)
                gamma, share = stats.gamma[c], stats.share_ext[e]
                if raw_rows.size:
                    gamma[raw_rows] = level.raw.gamma[c[raw_rows]]
                    share[raw_rows] = level.raw.share_ext[e[raw_rows]]
                # parent * gamma, then + share where the target was seen (x * 1.0 and x + 0.0 are x)
                prob = prob * np.where(seen, gamma, 1.0) + np.where(found, share, 0.0)
            else:
                best_total = np.where(seen, total, best_total)
                count = level.raw.counts[np.maximum(e, 0)] if level.raw.counts.size else 0
                best_count = np.where(seen, np.where(found, count, 0), best_count)
        if kn:
            return prob
        has = best_total > 0
        if sm == "mle":
            prob[has] = best_count[has] / best_total[has]
        else:
            kv = self.config.k * V
            prob[has] = (best_count[has] + self.config.k) / (best_total[has] + kv)
        return prob

    def text_logprobs(self, x: np.ndarray) -> np.ndarray | None:
        """log p of every next token of x[B, T] as [B, T-1] float64 (`lm.models.ngram.textscore`; None for
        stupid back-off)."""
        return text_logprobs(self, x)

    def windows(self, x: np.ndarray, flat: np.ndarray) -> np.ndarray:
        """Histories [len(flat), order-1] ending at flat positions (b * T + t) of x[B, T]."""
        return history_windows(x, flat, self.config.order - 1)

    def log_rows(self, win: np.ndarray) -> np.ndarray:
        """Natural-log rows [P, V] after histories win (-inf where MLE gives 0)."""
        rows, _ = self.state_rows(win)
        with np.errstate(divide="ignore"):
            return np.log(rows)

    def score_targets(self, x: np.ndarray, flat: np.ndarray, target: np.ndarray,
                      ranks: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """(log p(target) [P] float64 (stupid back-off: of the renormalised scores), the rows if `ranks`) for the
        targets x.flat[flat + 1] after the histories ending at `flat` (b * T + t with t < T - 1).

        One walk over the positions flat[0] .. flat[-1] + 1 gives both the contexts of every position and the
        n-grams ending at every target (the contexts of the position after it), so a target's entry at each
        order is an array read, not a search (a search only at the counted order, which has no context ids).
        """
        if self.config.smoothing == "stupid_backoff":
            rows, _ = self.state_rows(self.windows(x, flat))
            with np.errstate(divide="ignore"):
                return np.log(rows[np.arange(target.size), target] / rows.sum(axis=1)), (rows if ranks else None)
        K, T = self.config.order, x.shape[1]
        width = min(K, self.t.max_order - 1)
        first = int(flat[0])
        ids = self.walk(history_windows(x, np.arange(first, int(flat[-1]) + 2, dtype=np.int64), width))[3]
        now, following = ids[flat - first, :K], ids[flat + 1 - first]
        top = np.minimum(flat % T + 2, K)
        prob = self.target_probs(now, top, target, following)
        with np.errstate(divide="ignore"):
            return np.log(prob), (self.state_rows(self.windows(x, flat))[0] if ranks else None)
