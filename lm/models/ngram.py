"""N-gram language models: counted once with vectorised numpy, smoothed on the fly.

Counting
--------
`NgramModel.build` counts every n-gram of the training ids once, with vectorised numpy, into sorted per-order
tables (`lm.models.ngram_counts` describes them); the saved tensors are only the counts. One build at order n
serves every order <= n and every smoothing: `with_settings(order=, smoothing=)` returns a view sharing the
arrays.

Documents: `build(documents=[...])` counts each document separately, so no n-gram spans two documents.

Histories and the start of a text
---------------------------------
The model predicts the token after a history of at most order-1 tokens. At the start of a text the history is
shorter; the prediction then uses an n-gram model whose highest order is len(history)+1 (its top level uses raw
counts like any top level). There is no begin-of-sequence token.

Smoothing (p_0 = uniform 1/V everywhere)
---------------------------------------
- ``mle``: c(ctx w) / c(ctx .) for the longest suffix of the history that was seen (followed by something) in
  training; probabilities can be 0 (log-prob -inf) and the trace's notes say why.
- ``addk``: Lidstone (c(ctx w) + k) / (c(ctx .) + kV) at the longest seen suffix context, like ``mle``.
- ``kneser_ney``: interpolated modified Kneser-Ney (Chen & Goodman 1998, as KenLM): three discounts D1, D2, D3+
  per order from count-of-counts, raw counts at the top order, continuation counts below, the lowest order
  interpolated with the uniform distribution so unseen tokens keep some mass. A context never seen (or never
  followed by anything) at an order passes all its mass to the order below.
- ``stupid_backoff`` (Brants et al. 2007): S = c(ctx w)/c(ctx .) if c(ctx w) > 0 else alpha * S(lower order),
  bottoming out at alpha/V. Scores are NOT normalised: `step`/`logits` return log-scores; softmax of them (which
  sampling does) renormalises, and `target_logprobs` returns log-probs of that renormalised distribution.

State
-----
`start(B)` returns a LongTensor [B, order-1] of the last order-1 token ids (-1 = no token yet); `step` shifts
it by one token, so its cost does not depend on how long the text is.

Speed
-----
Scoring (`target_logprobs`) works on arrays: the history walk and the target lookups are vectorised (dense
key -> id tables for the orders whose key range is small, `searchsorted` for the others), and the full rows
needed for ranks are built order by order over the *distinct* contexts only. The incremental path (`step`)
keeps LRU caches of finished rows per history and of rows per (order, context), so sampling mostly costs a
dictionary lookup. One function per path implements each smoothing rule with the same float operations in
the same order (`_compute_level` rows, `_compute_one` one row, `_target_probs` one entry), so the step,
logits and scoring paths agree bit for bit. The caches are the only mutable parts of a model and are guarded
by a lock; everything else is read-only after construction, so one model can serve many threads.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from lm.errors import LMError
from lm.models.base import LanguageModel, ModelConfig
from lm.models.ngram_counts import MAX_ORDER, _count, _Tables, kn_discounts
from lm.trace import NgramOrderRow, NgramTrace

SMOOTHINGS = ("mle", "addk", "kneser_ney", "stupid_backoff")
DEFAULT_K = 0.01
DEFAULT_ALPHA = 0.4
_CACHE_FLOATS = 1 << 22  # per cache: bounds memory whatever the vocabulary size (32 MiB of float64)
_CHUNK_FLOATS = 1 << 21  # rows built at once on the batched paths
_MAX_NOTES = 200


# ---------------------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class NgramConfig(ModelConfig):
    """N-gram settings: the order and the smoothing (the counts live in the model's tensors)."""

    family: ClassVar[str] = "ngram"
    order: int = 5
    smoothing: str = "kneser_ney"
    k: float = DEFAULT_K  # add-k (Lidstone) constant
    backoff_alpha: float = DEFAULT_ALPHA  # stupid back-off factor

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        def is_int(value: Any) -> bool:
            return isinstance(value, (int, np.integer)) and not isinstance(value, bool)

        if not is_int(self.vocab_size) or self.vocab_size < 1:
            raise LMError(f"n-gram vocab_size must be a positive integer, not {self.vocab_size!r}")
        if not is_int(self.order) or not 1 <= self.order <= MAX_ORDER:
            raise LMError(f"n-gram order must be an integer from 1 to {MAX_ORDER}, not {self.order!r}")
        if self.smoothing not in SMOOTHINGS:
            raise LMError(f"unknown smoothing {self.smoothing!r} (choose one of {', '.join(SMOOTHINGS)})")
        try:
            k, alpha = float(self.k), float(self.backoff_alpha)
        except (TypeError, ValueError):
            raise LMError("n-gram k and backoff_alpha must be numbers") from None
        if isinstance(self.k, bool) or not (math.isfinite(k) and k > 0):
            raise LMError(f"add-k constant k must be a positive number, not {self.k!r}")
        if isinstance(self.backoff_alpha, bool) or not (math.isfinite(alpha) and 0 < alpha <= 1):
            raise LMError(f"stupid back-off alpha must be in (0, 1], not {self.backoff_alpha!r}")
        self.vocab_size, self.order, self.k, self.backoff_alpha = int(self.vocab_size), int(self.order), k, alpha


# ---------------------------------------------------------------------------------------------------------
# caches
# ---------------------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------------------
class NgramModel(LanguageModel):
    """A counted n-gram model (not an nn.Module): immutable count arrays plus a smoothing rule."""

    def __init__(self, config: NgramConfig, tables: _Tables | None = None):
        if not isinstance(config, NgramConfig):
            raise LMError("an n-gram model needs an NgramConfig")
        config.validate()
        if tables is None:  # an untrained model: no counts at all, every distribution is uniform
            tables = _Tables(_count([], config.vocab_size, config.order))
        if tables.vocab_size != config.vocab_size:
            raise LMError(f"n-gram counts are for a vocabulary of {tables.vocab_size}, "
                          f"the config says {config.vocab_size}")
        if config.order > tables.max_order:
            raise LMError(f"this n-gram model was counted up to order {tables.max_order}; "
                          f"order {config.order} is not available")
        self.config = config
        self._t = tables
        self._kn = config.smoothing == "kneser_ney"
        self._uniform = np.full(config.vocab_size, 1.0 / config.vocab_size)
        self._uniform.setflags(write=False)
        # (order, context, raw) -> float64 row; (order, context, raw, missing) -> float32 log row;
        # history tuple -> the same float32 log row objects (bounded too: they may outlive _log_cache's)
        self._node_cache = _LRU(_CACHE_FLOATS // config.vocab_size)
        self._log_cache = _LRU(2 * _CACHE_FLOATS // config.vocab_size)
        self._row_cache = _LRU(min(1 << 17, 2 * _CACHE_FLOATS // config.vocab_size))

    # -- construction ---------------------------------------------------------------------------------
    @classmethod
    def build(cls, ids: np.ndarray | Sequence[int] | torch.Tensor | None, vocab_size: int, order: int,
              smoothing: str = "kneser_ney", documents: Sequence[Any] | None = None, *,
              k: float = DEFAULT_K, backoff_alpha: float = DEFAULT_ALPHA) -> NgramModel:
        """Count every n-gram up to `order` in `ids` (or in each of `documents`, never across two).

        Pass either `ids` (one token-id sequence) or `documents` (a list of sequences), not both.
        """
        config = NgramConfig(vocab_size=vocab_size, order=order, smoothing=smoothing, k=k,
                             backoff_alpha=backoff_alpha)
        if documents is not None and ids is not None and len(ids) > 0:
            raise LMError("pass either ids or documents to NgramModel.build, not both")
        docs = list(documents) if documents is not None else ([] if ids is None else [ids])
        arrays = [_as_ids(d, config.vocab_size, "training ids") for d in docs]
        return cls(config, _Tables(_count([a for a in arrays if a.size], config.vocab_size, config.order)))

    def with_settings(self, order: int | None = None, smoothing: str | None = None, k: float | None = None,
                      backoff_alpha: float | None = None) -> NgramModel:
        """A cheap view of the same counts with another order (<= the counted one) or smoothing."""
        config = NgramConfig(
            vocab_size=self.config.vocab_size,
            order=self.config.order if order is None else order,
            smoothing=self.config.smoothing if smoothing is None else smoothing,
            k=self.config.k if k is None else k,
            backoff_alpha=self.config.backoff_alpha if backoff_alpha is None else backoff_alpha,
        )
        return NgramModel(config, self._t)

    # -- properties -----------------------------------------------------------------------------------
    @property
    def order(self) -> int:
        return self.config.order

    @property
    def max_order(self) -> int:
        """The highest order counted (every view of these counts can use any order up to it)."""
        return self._t.max_order

    @property
    def num_tokens(self) -> int:
        """Training tokens counted."""
        return self._t.num_tokens

    @property
    def context_length(self) -> int | None:
        return self.config.order - 1

    def num_parameters(self) -> int:
        """Stored n-gram entries of the orders this view uses."""
        return self._t.num_entries(self.config.order)

    def discounts(self) -> dict[int, dict[str, tuple[float, float, float]]]:
        """Kneser-Ney discounts per order: {'raw': (D1, D2, D3+)} and, below the top, {'continuation': ...}."""
        out = {}
        for j in range(1, self.config.order + 1):
            level = self._t.levels[j]
            out[j] = {"raw": level.raw.discounts}
            if j < self.config.order and level.cont is not None:
                out[j]["continuation"] = level.cont.discounts
        return out

    def counts_after(self, context: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(token ids, raw counts) of what followed `context` in training (empty arrays if never seen)."""
        context = [int(t) for t in context]
        if len(context) >= self._t.max_order:
            raise LMError(f"a context of {len(context)} tokens needs order {len(context) + 1}; "
                          f"this model was counted up to order {self._t.max_order}")
        for t in context:
            if not 0 <= t < self.vocab_size:
                raise LMError(f"token id {t} is outside the vocabulary of {self.vocab_size}")
        cid = self._lookup_context(context)
        empty = (np.zeros(0, np.int64), np.zeros(0, np.int64))
        if cid < 0:
            return empty
        level = self._t.levels[len(context) + 1]
        a, b = level.offsets[cid], level.offsets[cid + 1]
        return level.tok[a:b].copy(), level.raw.counts[a:b].copy()

    # -- persistence ----------------------------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The count tensors of the orders this view uses (a view of order k saves orders 1..k)."""
        K = self.config.order
        p = self._t.primary
        out = {"meta": torch.tensor([self.vocab_size, K, self._t.num_tokens], dtype=torch.long)}
        for m in range(1, K):
            out[f"context{m}.keys"] = torch.from_numpy(p[f"context{m}.keys"].copy())
        for j in range(1, K + 1):
            out[f"level{j}.keys"] = torch.from_numpy(p[f"level{j}.keys"].copy())
            out[f"level{j}.counts"] = torch.from_numpy(p[f"level{j}.counts"].copy())
            if j < K:
                out[f"level{j}.cont"] = torch.from_numpy(p[f"level{j}.cont"].copy())
        return out

    @classmethod
    def from_state(cls, config: ModelConfig, tensors: dict[str, torch.Tensor]) -> NgramModel:
        if not isinstance(config, NgramConfig):
            raise LMError("an n-gram model needs an NgramConfig")
        return cls(config, _Tables.from_tensors(config.vocab_size, tensors))

    # -- input checks ---------------------------------------------------------------------------------
    def _check_ids(self, ids: Any, dims: int, what: str) -> np.ndarray:
        if not isinstance(ids, torch.Tensor):
            raise LMError(f"{what} must be a tensor of token ids")
        if ids.dim() != dims:
            raise LMError(f"{what} must have {dims} dimension(s), got shape {tuple(ids.shape)}")
        if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
            raise LMError(f"{what} must hold integer token ids, not {ids.dtype}")
        array = ids.detach().cpu().numpy().astype(np.int64, copy=False)
        if array.size and (array.min() < 0 or array.max() >= self.vocab_size):
            bad = int(array.min()) if array.min() < 0 else int(array.max())
            raise LMError(f"token id {bad} is outside the vocabulary of {self.vocab_size}")
        return array

    def _check_state(self, state: Any, batch: int | None) -> torch.Tensor:
        width = self.config.order - 1
        if not isinstance(state, torch.Tensor) or state.dim() != 2 or state.dtype != torch.long:
            raise LMError("n-gram state must be the LongTensor[B, order-1] made by start()")
        if state.shape[1] != width or (batch is not None and state.shape[0] != batch):
            raise LMError(f"n-gram state has shape {tuple(state.shape)}, expected "
                          f"[{batch if batch is not None else 'B'}, {width}] (made by a model of another order?)")
        return state

    # -- context lookups ------------------------------------------------------------------------------
    def _lookup_context(self, context: Sequence[int]) -> int:
        """Dense id of the len(context)-gram `context`, or -1 if it never occurred."""
        V, cid = self.vocab_size, 0
        for m in range(1, len(context) + 1):
            keys = self._t.context_keys[m]
            query = cid * V + int(context[-m])
            pos = int(keys.searchsorted(query))
            if pos >= keys.size or int(keys[pos]) != query:
                return -1
            cid = pos
        return cid

    def _walk(self, win: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """For histories win[P, order-1] (-1 = no token, only on the left):

        top order K [P], deepest order whose context occurred `lev` [P] with that context's id `cid` [P],
        and the context id at every order `ctx` [P, order] (column j-1 for order j; -1 = never occurred).
        """
        P, w = win.shape
        V, order = self.vocab_size, self.config.order
        top = (win >= 0).sum(axis=1).astype(np.int64) + 1
        ctx = np.full((P, order), -1, dtype=np.int64)
        ctx[:, 0] = 0
        lev = np.ones(P, dtype=np.int64)
        cid = np.zeros(P, dtype=np.int64)
        alive = np.arange(P, dtype=np.int64)
        cur = np.zeros(P, dtype=np.int64)
        for m in range(1, w + 1):
            tok = win[alive, w - m]
            ok = tok >= 0
            alive, cur, tok = alive[ok], cur[ok], tok[ok]
            keys, dense = self._t.context_keys[m], self._t.dense[m]
            query = cur * V + tok
            if dense is not None:
                pos = dense[query].astype(np.int64)
                found = pos >= 0
            else:
                if keys.size == 0:
                    break
                pos = np.searchsorted(keys, query)
                found = (pos < keys.size) & (keys[np.minimum(pos, keys.size - 1)] == query)
            alive, cur = alive[found], pos[found]
            if alive.size == 0:
                break
            ctx[alive, m] = cur
            lev[alive] = m + 1
            cid[alive] = cur
        return top, lev, cid, ctx

    def _node_raw(self, lev: np.ndarray, top: np.ndarray) -> np.ndarray:
        # Only Kneser-Ney distinguishes raw counts (top order) from continuation counts (lower orders).
        return (lev == top) if self._kn else np.ones(lev.shape, dtype=bool)

    # -- one order of smoothing -----------------------------------------------------------------------
    def _compute_level(self, j: int, c: np.ndarray, raw: np.ndarray, parent: np.ndarray) -> np.ndarray:
        """Rows p_j(. | context c) [R, V] (float64) given the order-(j-1) rows of their suffixes `parent`.

        This is the batched implementation of every smoothing rule; `_compute_one` (the cached step path)
        and `_target_probs` (scoring) do exactly the same float operations, so all paths agree bit for bit.
        """
        level = self._t.levels[j]
        sm, V = self.config.smoothing, self.vocab_size
        use_cont = self._kn and level.cont is not None and not bool(raw.all())
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

    def _compute_one(self, j: int, c: int, raw: bool, parent: np.ndarray) -> np.ndarray:
        """`_compute_level` for a single context (the step path's hot spot); may return `parent` itself."""
        level = self._t.levels[j]
        sm = self.config.smoothing
        stats = level.cont if (self._kn and not raw and level.cont is not None) else level.raw
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

    def _node_row(self, j: int, c: int, raw: bool) -> np.ndarray:
        """Cached p_j(. | context c) as a read-only float64 row (the recursion of `_compute_level`)."""
        if j == 0:
            return self._uniform
        # A context of the highest order is never the parent of another: caching its row would only cost
        # (sampling meets a new one at most steps; the history cache keeps its log row anyway).
        shared = j < self.config.order
        key = (j, c, raw)
        if shared:
            row = self._node_cache.get(key)
            if row is not None:
                return row
        parent_c = 0 if j <= 2 else int(self._t.context_keys[j - 1][c]) // self.vocab_size
        parent = self._node_row(j - 1, parent_c, not self._kn)
        row = self._compute_one(j, c, raw, parent)
        row.setflags(write=False)  # (it may be `parent` itself, which is read-only already)
        if shared:
            self._node_cache.put(key, row)
        return row

    def _rows_for_nodes(self, lev: np.ndarray, cid: np.ndarray, raw: np.ndarray) -> np.ndarray:
        """Batched `_node_row`: rows [R, V] for nodes (order, context, raw), each distinct node once."""
        R, V = lev.size, self.vocab_size
        out = np.empty((R, V), dtype=np.float64)
        if R == 0:
            return out
        top = int(lev.max())
        praw = 0 if self._kn else 1
        node_key = cid * 2 + raw.astype(np.int64)
        needed: list[np.ndarray | None] = [None] * (top + 1)
        carry = np.zeros(0, dtype=np.int64)
        for j in range(top, 0, -1):  # the distinct nodes of each order, and the parents they need
            uniq = np.unique(np.concatenate([node_key[lev == j], carry]))
            needed[j] = uniq
            carry = np.unique(self._t.suffix(j, uniq >> 1)) * 2 + praw
        rows: list[np.ndarray | None] = [None] * (top + 1)
        for j in range(1, top + 1):  # bottom-up: each order from the rows of the order below
            uniq = needed[j]
            uc, ur = uniq >> 1, (uniq & 1).astype(bool)
            if j == 1:
                parent = np.broadcast_to(self._uniform, (uniq.size, V))
            else:
                pidx = np.searchsorted(needed[j - 1], self._t.suffix(j, uc) * 2 + praw)
                parent = rows[j - 1][pidx]
            rows[j] = self._compute_level(j, uc, ur, parent)
        for j in range(1, top + 1):
            sel = np.flatnonzero(lev == j)
            if sel.size:
                out[sel] = rows[j][np.searchsorted(needed[j], node_key[sel])]
        return out

    def _state_rows(self, win: np.ndarray) -> tuple[np.ndarray, tuple]:
        """Probability (or stupid back-off score) rows [P, V] float64 after histories win[P, order-1]."""
        top, lev, cid, ctx = self._walk(win)
        rows = self._rows_for_nodes(lev, cid, self._node_raw(lev, top))
        if self.config.smoothing == "stupid_backoff":
            power = top - lev  # orders whose context never occurred: each multiplies by alpha
            for p in np.unique(power[power > 0]):
                sel = power == p
                rows[sel] = rows[sel] * (self.config.backoff_alpha ** int(p))
        return rows, (top, lev, cid, ctx)

    def _history_row(self, history: tuple) -> np.ndarray:
        """Cached float32 log row (log-probs; log-scores for stupid back-off) after one history tuple.

        Two caches: history -> row (a hit costs one dictionary lookup) and node -> row, so that the many
        histories whose longest seen context is the same share one row (a hit costs the history walk).
        """
        row = self._row_cache.get(history)
        if row is not None:
            return row
        node = self._history_node(history)
        shared = node[0] < self.config.order  # a full seen context belongs to this one history only
        row = self._log_cache.get(node) if shared else None
        if row is None:
            probs = self._node_probs(*node)
            if self.config.smoothing == "mle":  # the only rule with exact zeros (np.errstate is slow)
                with np.errstate(divide="ignore"):
                    row = np.log(probs).astype(np.float32)
            else:
                row = np.log(probs).astype(np.float32)
            row.setflags(write=False)
            if shared:
                self._log_cache.put(node, row)
        self._row_cache.put(history, row)
        return row

    def _history_node(self, history: tuple) -> tuple[int, int, bool, int]:
        """(order, context id, raw counts?, missing orders) of the longest seen suffix of a history tuple.

        Scalar version of `_walk`: one binary search per order (ndarray.searchsorted: np.searchsorted's
        wrapper costs several times more on a scalar).
        """
        V = self.vocab_size
        valid = sum(1 for t in history if t >= 0)
        top, lev, cid = valid + 1, 1, 0
        context_keys, dense_tables = self._t.context_keys, self._t.dense
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
        return lev, cid, (lev == top) or not self._kn, top - lev

    def _node_probs(self, lev: int, cid: int, raw: bool, missing: int) -> np.ndarray:
        probs = self._node_row(lev, cid, raw)
        if self.config.smoothing == "stupid_backoff" and missing > 0:
            probs = probs * (self.config.backoff_alpha ** missing)  # each missing order multiplies by alpha
        return probs

    def _history_probs(self, history: tuple) -> np.ndarray:
        """float64 probabilities (stupid back-off: scores) after one history tuple (-1 = no token)."""
        return self._node_probs(*self._history_node(history))

    # -- incremental path -----------------------------------------------------------------------------
    def start(self, batch_size: int) -> torch.Tensor:
        """History of the last order-1 tokens per row; -1 marks 'no token yet'."""
        if int(batch_size) < 0:
            raise LMError("batch size must not be negative")
        return torch.full((int(batch_size), self.config.order - 1), -1, dtype=torch.long)

    def step(self, tokens: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # Kept lean: at batch 1 this is most of the cost of sampling a token (a cache hit is ~10 us).
        if (not isinstance(tokens, torch.Tensor) or tokens.dim() != 1 or tokens.dtype.is_floating_point
                or tokens.dtype == torch.bool):
            raise LMError("step() needs a 1-D LongTensor of integer token ids, one per row")
        w = self.config.order - 1
        if (not isinstance(state, torch.Tensor) or state.dim() != 2 or state.dtype != torch.long
                or state.shape[1] != w or state.shape[0] != tokens.shape[0]):
            self._check_state(state, tokens.shape[0])  # raises with the details
        toks = tokens.tolist()
        V = self.vocab_size
        for t in toks:
            if not 0 <= t < V:
                raise LMError(f"token id {t} is outside the vocabulary of {V}")
        if w == 0:
            histories = [()] * len(toks)
        else:
            histories = [(*h[1:], t) for h, t in zip(state.tolist(), toks)]
        if len(histories) == 1:
            logits = torch.from_numpy(self._history_row(histories[0])[None].copy())
        else:
            logits = self._logits_for_histories(histories)
        new_state = torch.from_numpy(np.array(histories, dtype=np.int64).reshape(len(toks), w))
        return logits, new_state

    def prefill(self, ids: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Feed ids[B, T] at once: only the last order-1 tokens matter, so this is one lookup per row."""
        x = self._check_ids(ids, 2, "prefill ids")
        if x.shape[1] < 1:
            raise LMError("prefill needs at least one token per row")
        self._check_state(state, x.shape[0])
        w = self.config.order - 1
        combined = np.concatenate([state.numpy().astype(np.int64), x], axis=1)
        combined = np.ascontiguousarray(combined[:, combined.shape[1] - w:])  # the last w tokens
        histories = [tuple(h) for h in combined.tolist()]
        new_state = torch.from_numpy(combined).reshape(x.shape[0], w)
        return self._logits_for_histories(histories), new_state

    def _logits_for_histories(self, histories: list[tuple]) -> torch.Tensor:
        out = np.empty((len(histories), self.vocab_size), dtype=np.float32)
        for i, h in enumerate(histories):
            out[i] = self._history_row(h)
        return torch.from_numpy(out)

    # -- full-sequence path ---------------------------------------------------------------------------
    def _windows(self, x: np.ndarray, flat: np.ndarray) -> np.ndarray:
        """Histories [len(flat), order-1] ending at flat positions (b * T + t) of x[B, T]."""
        w = self.config.order - 1
        T = x.shape[1]
        if w == 0:
            return np.zeros((flat.size, 0), dtype=np.int64)
        b, t = flat // T, flat % T
        cols = t[:, None] - (w - 1) + np.arange(w, dtype=np.int64)  # t-w+1 .. t
        win = x[b[:, None], np.maximum(cols, 0)]
        win[cols < 0] = -1
        return win

    def _chunk(self) -> int:
        return max(256, _CHUNK_FLOATS // self.vocab_size)

    def logits(self, ids: torch.Tensor) -> torch.Tensor:
        """Log-probs [B, T, V] float32 (-inf where MLE gives 0; log-scores for stupid back-off)."""
        x = self._check_ids(ids, 2, "ids")
        B, T = x.shape
        out = np.empty((B * T, self.vocab_size), dtype=np.float32)
        step = self._chunk()
        for s in range(0, B * T, step):
            flat = np.arange(s, min(B * T, s + step), dtype=np.int64)
            rows, _ = self._state_rows(self._windows(x, flat))
            with np.errstate(divide="ignore"):
                out[s:s + flat.size] = np.log(rows)
        return torch.from_numpy(out).reshape(B, T, self.vocab_size)

    def _target_probs(self, ctx: np.ndarray, top: np.ndarray, target: np.ndarray) -> np.ndarray:
        """p(target) [P] float64 from per-order context ids, without building rows (not stupid back-off)."""
        P, V = target.size, self.vocab_size
        sm = self.config.smoothing
        prob = np.full(P, 1.0 / V)
        if sm == "kneser_ney":
            for j in range(1, self.config.order + 1):
                act = np.flatnonzero(ctx[:, j - 1] >= 0)
                if act.size == 0:
                    break
                level = self._t.levels[j]
                c = ctx[act, j - 1]
                raw = top[act] == j
                use_cont = level.cont is not None and not bool(raw.all())
                total, gamma = level.raw.total[c], level.raw.gamma[c]
                if use_cont:
                    total = np.where(raw, total, level.cont.total[c])
                    gamma = np.where(raw, gamma, level.cont.gamma[c])
                seen = total > 0
                act, c, raw, gamma = act[seen], c[seen], raw[seen], gamma[seen]
                e, found = level.find(c, target[act])
                share = level.raw.share[e]
                if use_cont:
                    share = np.where(raw, share, level.cont.share[e])
                # same operations as the rows: parent * gamma, then + share where the target was seen
                p = prob[act] * gamma
                p[found] += share[found]
                prob[act] = p
            return prob
        # MLE / add-k: the deepest order whose context was followed by something decides alone
        best_total = np.zeros(P)
        best_count = np.zeros(P)
        for j in range(1, self.config.order + 1):
            act = np.flatnonzero(ctx[:, j - 1] >= 0)
            if act.size == 0:
                break
            level = self._t.levels[j]
            c = ctx[act, j - 1]
            total = level.raw.total[c]
            seen = total > 0
            act, c, total = act[seen], c[seen], total[seen]
            e, found = level.find(c, target[act])
            best_total[act] = total
            best_count[act] = np.where(found, level.raw.counts[e], 0)
        has = best_total > 0
        if sm == "mle":
            prob[has] = best_count[has] / best_total[has]
        else:
            kv = self.config.k * V
            prob[has] = (best_count[has] + self.config.k) / (best_total[has] + kv)
        return prob

    def _score(self, x: np.ndarray, ranks: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """(log p(x[:, t+1] | history) [B, T-1] float64, ranks [B, T-1] int64 or None)."""
        B, T = x.shape
        n = max(T - 1, 0)
        lp = np.empty(B * n, dtype=np.float64)
        rk = np.empty(B * n, dtype=np.int64) if ranks else None
        if n == 0:
            return lp.reshape(B, 0), (rk.reshape(B, 0) if ranks else None)
        step = self._chunk()
        for s in range(0, B * n, step):
            q = np.arange(s, min(B * n, s + step), dtype=np.int64)  # flat index over [B, T-1]
            b, t = q // n, q % n
            flat = b * T + t
            target = x[b, t + 1]
            win = self._windows(x, flat)
            sl = slice(s, s + q.size)
            if ranks or self.config.smoothing == "stupid_backoff":
                rows, (top, _, _, ctx) = self._state_rows(win)
                chosen = rows[np.arange(q.size), target]
                if ranks:
                    rk[sl] = (rows > chosen[:, None]).sum(axis=1) + 1
                if self.config.smoothing == "stupid_backoff":
                    prob = chosen / rows.sum(axis=1)
                else:
                    prob = self._target_probs(ctx, top, target)
            else:
                top, _, _, ctx = self._walk(win)
                prob = self._target_probs(ctx, top, target)
            with np.errstate(divide="ignore"):
                lp[sl] = np.log(prob)
        return lp.reshape(B, n), (rk.reshape(B, n) if ranks else None)

    def target_logprobs(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log p(ids[:, t+1] | ids[:, :t+1]) [B, T-1] float32, rank [B, T-1]); -inf where MLE gives 0.

        For stupid back-off the log-probs are of the renormalised scores (what sampling draws from).
        """
        x = self._check_ids(ids, 2, "ids")
        lp, rk = self._score(x, ranks=True)
        return torch.from_numpy(lp.astype(np.float32)), torch.from_numpy(rk)

    def logprob_of_targets(self, ids: torch.Tensor) -> torch.Tensor:
        """Only the log-probs of `target_logprobs`, as float64 [B, T-1] (faster: no ranks, no rows)."""
        x = self._check_ids(ids, 2, "ids")
        lp, _ = self._score(x, ranks=False)
        return torch.from_numpy(lp)

    # -- inspection path ------------------------------------------------------------------------------
    def trace(self, ids: torch.Tensor, token_strings: Sequence[str] | None = None) -> NgramTrace:
        """The back-off path behind every prediction of ids[T] (optionally `token_strings[v]` for notes)."""
        if isinstance(ids, torch.Tensor) and ids.dim() == 2 and ids.shape[0] == 1:
            ids = ids[0]
        x = self._check_ids(ids, 1, "trace ids")
        T, V = x.size, self.vocab_size
        if T < 1:
            raise LMError("trace needs at least one token")
        if token_strings is not None and len(token_strings) != V:
            raise LMError(f"token_strings must have one entry per vocabulary id ({V})")

        def show(seq: Sequence[int]) -> str:
            if token_strings is not None:
                return repr("".join(token_strings[int(i)] for i in seq))
            return "[" + ", ".join(str(int(i)) for i in seq) + "]"

        sm, order, alpha = self.config.smoothing, self.config.order, self.config.backoff_alpha
        x2 = x.reshape(1, T)
        rows_all, (top_all, _, _, ctx_all) = self._state_rows(self._windows(x2, np.arange(T)))
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
            e[ok], f[ok] = self._t.levels[j].find(c[ok], targets[ok])
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
                raw = (j == top) or not self._kn
                level = self._t.levels[j]
                stats = level.raw if raw or level.cont is None else level.cont
                if c >= 0:
                    total = float(stats.total[c])
                    distinct = int(stats.distinct[c])
                    target_count = float(stats.counts[entry[j][t]]) if entry_found[j][t] else 0.0
                    prob = float(self._node_row(j, c, raw)[target])
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


def _as_ids(ids: Any, vocab_size: int, what: str) -> np.ndarray:
    """A 1-D int64 array of token ids in [0, vocab_size) (LMError otherwise)."""
    if isinstance(ids, torch.Tensor):
        ids = ids.detach().cpu().numpy()
    try:
        array = np.asarray(ids)
    except (TypeError, ValueError):
        raise LMError(f"{what} must be a sequence of integer token ids") from None
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_:
        raise LMError(f"{what} must be a 1-D sequence of integer token ids")
    array = array.astype(np.int64, copy=False)
    lo, hi = int(array.min()), int(array.max())
    if lo < 0 or hi >= vocab_size:
        raise LMError(f"token id {lo if lo < 0 else hi} is outside the vocabulary of {vocab_size}")
    return array


__all__ = ["DEFAULT_K", "MAX_ORDER", "SMOOTHINGS", "NgramConfig", "NgramModel", "kn_discounts"]
