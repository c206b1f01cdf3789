"""Counting for the n-gram models: vectorised n-gram counts, per-order statistics and lookup tables.

`_count` turns training ids into the primary count arrays; `_Tables` adopts them (or the ones a checkpoint
holds, `lm.models.ngram.storage`) and derives, read-only, everything the smoothing in
`lm.models.ngram.model` reads: a `_Level` table per order with its `_Stats` (totals, N1/N2/N3+ counts, discounts)
and the key -> id lookups of the history walk.

Counting
--------
`NgramModel.build` gives every distinct j-gram of the training ids a dense integer id by *left extension*:
the j-gram ending at position t is the (j-1)-gram ending at t extended by the token at t-j+1, so its key is
`id_{j-1}[t] * V + ids[t-j+1]`. One `np.unique` (or, when the key range is small, a `np.bincount` over the
range, which needs no sort) per order turns keys into dense ids. Dense ids are smaller than the corpus length,
so keys stay in int64 for any vocabulary. Two sorted tables describe each order j:

- the *context keys* `context{j}.keys` (sorted `suffix_id * V + first_token`): looking a history up here,
  one token at a time walking backwards, gives the id of its longest seen suffix at every order in j lookups;
- the *n-gram table* `level{j}.keys` (sorted `context_id * V + next_token`) with raw counts `c(ctx w)` and,
  for every order below the highest, Kneser-Ney continuation counts `N1+(. ctx w)` (the number of distinct
  tokens seen before the j-gram). The continuations of one context form one contiguous run of the table.

Per-context totals, N1/N2/N3+ counts and discounts are derived from these arrays when a model is built or
loaded; the context keys and continuation counts follow from the n-gram tables too (`derive_orders`), so a
checkpoint stores only `level{j}.keys` and `level{j}.counts`.
"""

from __future__ import annotations

import math

import numpy as np

from lm.errors import LMError
from lm.models.ngram.keyindex import KeyIndex, LazyIndexes

MAX_ORDER = 10
# Used when a count-of-counts is zero and the Chen & Goodman estimate is undefined (tiny corpora).
DEFAULT_DISCOUNTS = (0.5, 1.0, 1.5)
# Discounts are kept in [MIN_DISCOUNT, c] so distributions stay proper and every order passes some mass down.
MIN_DISCOUNT = 0.05
_DENSE_LOOKUP_ENTRIES = 1 << 22  # per order: int32 key -> id tables up to 16 MiB


def kn_discounts(n1: int, n2: int, n3: int, n4: int) -> tuple[float, float, float]:
    """Modified Kneser-Ney discounts (D1, D2, D3+) from the numbers of n-grams seen 1, 2, 3 and 4 times.

    Chen & Goodman: Y = n1/(n1+2 n2), D1 = 1-2Y n2/n1, D2 = 2-3Y n3/n2, D3+ = 3-4Y n4/n3. A discount whose
    formula divides by zero takes its DEFAULT_DISCOUNTS value; each D_c is then clipped to [MIN_DISCOUNT, c].
    """
    n1, n2, n3, n4 = (float(v) for v in (n1, n2, n3, n4))
    y = n1 / (n1 + 2 * n2) if n1 + 2 * n2 > 0 else None
    raw = [
        1 - 2 * y * n2 / n1 if (y is not None and n1 > 0) else None,
        2 - 3 * y * n3 / n2 if (y is not None and n2 > 0) else None,
        3 - 4 * y * n4 / n3 if (y is not None and n3 > 0) else None,
    ]
    out = []
    for c, (value, default) in enumerate(zip(raw, DEFAULT_DISCOUNTS), start=1):
        if value is None or not math.isfinite(value):
            value = default
        out.append(float(min(max(value, MIN_DISCOUNT), float(c))))
    return out[0], out[1], out[2]


def _unique_inverse(key: np.ndarray, key_range: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sorted distinct keys, inverse, counts) of int64 keys in [0, key_range)."""
    if key_range <= max(1 << 22, 2 * key.size):
        # Dense path: a bincount over the key range needs no sort, which is ~10x faster than np.unique.
        counts = np.bincount(key, minlength=key_range)
        uniq = np.flatnonzero(counts)
        idmap = np.empty(key_range, dtype=np.int64)
        idmap[uniq] = np.arange(uniq.size, dtype=np.int64)
        return uniq.astype(np.int64), idmap[key], counts[uniq]
    uniq, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    return uniq.astype(np.int64), inverse.reshape(-1).astype(np.int64), counts


def _count(documents: list[np.ndarray], vocab_size: int, max_order: int) -> dict[str, np.ndarray]:
    """The primary count tensors (see the module docstring) of `documents` up to `max_order`."""
    V = vocab_size
    lengths = np.array([d.size for d in documents], dtype=np.int64)
    x = np.concatenate(documents).astype(np.int64) if documents else np.zeros(0, np.int64)
    n = x.size
    # position of each token inside its document: a j-gram may end at t only if pos[t] >= j-1
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if lengths.size else np.zeros(0, np.int64)
    pos = np.arange(n, dtype=np.int64) - np.repeat(starts, lengths) if lengths.size > 1 else None
    out: dict[str, np.ndarray] = {"meta": np.array([V, max_order, n], dtype=np.int64)}
    prev_ids = np.zeros(n, dtype=np.int64)  # id of the (j-1)-gram ending at each position (order 0: one id)
    prev_count = 1  # number of distinct (j-1)-grams
    prev_row_of = None  # dense (j-1)-gram id -> row in the order j-1 table
    for j in range(1, max_order + 1):
        if pos is None:
            idx = np.arange(j - 1, n, dtype=np.int64) if n >= j else np.zeros(0, np.int64)
        else:
            idx = np.flatnonzero(pos >= j - 1)
        key = prev_ids[idx] * V + x[idx - (j - 1)]
        uniq, inverse, counts = _unique_inverse(key, prev_count * V)
        m = uniq.size
        rep = np.empty(m, dtype=np.int64)  # one position where each j-gram ends (any one will do)
        rep[inverse] = idx
        context = prev_ids[rep - 1] if j > 1 else np.zeros(m, dtype=np.int64)
        table_key = context * V + x[rep]  # the same j-grams keyed by (context, next token)
        order = np.argsort(table_key, kind="stable")
        row_of = np.empty(m, dtype=np.int64)
        row_of[order] = np.arange(m, dtype=np.int64)
        out[f"level{j}.keys"] = table_key[order]
        out[f"level{j}.counts"] = counts[order].astype(np.int64)
        if j > 1:
            # N1+(. g) of every (j-1)-gram g: how many distinct j-grams have g as their suffix
            cont = np.bincount(uniq // V, minlength=prev_count).astype(np.int64)
            cont_rows = np.empty(prev_count, dtype=np.int64)
            cont_rows[prev_row_of] = cont
            out[f"level{j - 1}.cont"] = cont_rows
        if j < max_order:
            out[f"context{j}.keys"] = uniq
            ids = np.full(n, -1, dtype=np.int64)
            ids[idx] = inverse
            prev_ids = ids
        prev_count, prev_row_of = m, row_of
    return out


class _Stats:
    """Per-context totals and per-entry discounted counts of one order under one kind of count.

    `gamma_ext`, `share_ext` and `total_ext` are `gamma`, `share` and `total` with one more element at the end
    (1.0, 0.0 and 0.0: what "no such context / no such n-gram" contributes), so the whole-text scoring path
    reads id -1 as "absent" without a mask (`lm.models.ngram.textscore`); the plain arrays are views of them.
    """

    def __init__(self, context: np.ndarray, counts: np.ndarray, num_contexts: int):
        self.counts = counts
        coc = np.bincount(np.minimum(counts, 5), minlength=6)
        self.count_of_counts = tuple(int(v) for v in coc[1:5])
        self.discounts = kn_discounts(*self.count_of_counts)
        d1, d2, d3 = self.discounts
        w = {"minlength": num_contexts}
        self.total_ext = np.zeros(num_contexts + 1)
        self.total_ext[:-1] = np.bincount(context, weights=counts, **w)
        self.total = self.total_ext[:-1]
        n1 = np.bincount(context, weights=counts == 1, **w)
        n2 = np.bincount(context, weights=counts == 2, **w)
        n3 = np.bincount(context, weights=counts >= 3, **w)
        self.distinct = (n1 + n2 + n3).astype(np.int64)
        self.gamma_num = d1 * n1 + d2 * n2 + d3 * n3
        discount = np.select([counts == 0, counts == 1, counts == 2], [0.0, d1, d2], d3)
        self.num = np.maximum(counts - discount, 0.0)
        # Ready-made quotients (the same IEEE divisions every path would do): the interpolation weight
        # gamma(ctx) per context, and per entry the discounted share num/c(ctx .) and the ratio c/c(ctx .).
        seen = self.total > 0
        self.gamma_ext = np.ones(num_contexts + 1)
        self.gamma = self.gamma_ext[:-1]
        np.divide(self.gamma_num, self.total, out=self.gamma, where=seen)
        entry_total = self.total[context]
        entry_seen = entry_total > 0  # (continuation totals can be 0: such contexts are skipped anyway)
        self.share_ext = np.zeros(counts.size + 1)
        self.share = self.share_ext[:-1]
        np.divide(self.num, entry_total, out=self.share, where=entry_seen)
        self.ratio = np.zeros(counts.size)
        np.divide(counts, entry_total, out=self.ratio, where=entry_seen)
        for array in (self.total_ext, self.total, self.distinct, self.gamma_num, self.num, self.gamma_ext,
                      self.gamma, self.share_ext, self.share, self.ratio):
            array.setflags(write=False)


class _Level:
    """The order-j table: one entry per distinct j-gram, sorted by (context id, next token)."""

    def __init__(self, order: int, vocab_size: int, num_contexts: int, keys: np.ndarray, counts: np.ndarray,
                 cont: np.ndarray | None):
        self.order = order
        self.vocab_size = vocab_size
        self.num_contexts = num_contexts
        self.keys = keys
        context = keys // vocab_size
        self.tok = keys - context * vocab_size
        self.offsets = np.zeros(num_contexts + 1, dtype=np.int64)
        np.cumsum(np.bincount(context, minlength=num_contexts), out=self.offsets[1:])
        self.raw = _Stats(context, counts, num_contexts)
        self.cont = _Stats(context, cont, num_contexts) if cont is not None else None
        for array in (self.keys, self.tok, self.offsets):
            array.setflags(write=False)

    def find(self, context: np.ndarray, token: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(entry index, found) of the j-grams (context, token); context ids must be >= 0."""
        query = context.astype(np.int64) * self.vocab_size + token
        pos = np.searchsorted(self.keys, query)
        if self.keys.size == 0:
            return pos, np.zeros(pos.shape, dtype=bool)
        clipped = np.minimum(pos, self.keys.size - 1)
        return clipped, (pos < self.keys.size) & (self.keys[clipped] == query)


def derive_orders(V: int, level_keys: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """(context keys, rows, continuation counts) of orders 1..K-1 from the n-gram tables of orders 1..K.

    Everything the count tables of `_count` hold besides `level{j}.keys` and `.counts` follows from the keys:
    the j-gram of row (c, w) of order j drops its first token to become row (suffix(c), w) of order j-1, so its
    left-extension key is dense_{j-1}(that row) * V + first(c) (sorting those keys gives `context{j}.keys`
    and the row of every dense id), and N1+(. g) of a (j-1)-gram g is the number of order-j rows that map to
    it. `level_keys[0]` is unused. LMError where the tables are not closed under suffixes (a corrupt file).
    """
    K = len(level_keys) - 1
    context_keys: list[np.ndarray] = [np.zeros(1, np.int64)]
    rows: list[np.ndarray] = [np.zeros(1, np.int64)]
    cont: list[np.ndarray] = [np.zeros(0, np.int64)]
    if K == 0:
        return context_keys, rows, cont
    context_keys.append(level_keys[1].astype(np.int64))  # one token each: both orders are by token
    rows.append(np.arange(level_keys[1].size, dtype=np.int64))
    dense = rows[1]  # dense id of every row of the order below
    for j in range(2, K + 1):
        keys, below = level_keys[j], level_keys[j - 1]
        c = keys // V
        w = keys - c * V
        lower = context_keys[j - 1][c]  # left-extension key of each row's context
        s = lower // V if j > 2 else np.zeros_like(c)
        query = s * V + w
        r = np.searchsorted(below, query)
        if r.size and (r.max() >= below.size or np.any(below[np.minimum(r, below.size - 1)] != query)):
            raise LMError(f"n-gram order {j} lists an n-gram whose last {j - 1} tokens are not an order-{j - 1} "
                          f"n-gram (the tables are not closed under suffixes)")
        cont.append(np.bincount(r, minlength=below.size).astype(np.int64))
        if j == K:
            break
        left = dense[r] * V + (lower - s * V)
        order = np.argsort(left, kind="stable")
        sorted_left = left[order]
        if sorted_left.size > 1 and np.any(np.diff(sorted_left) <= 0):
            raise LMError(f"n-gram order {j} lists the same n-gram twice")
        context_keys.append(sorted_left)
        rows.append(order)
        dense = np.empty(order.size, dtype=np.int64)
        dense[order] = np.arange(order.size, dtype=np.int64)
    return context_keys, rows, cont


class _Tables:
    """Every array of a built model (shared, read-only, by all views of it).

    `primary` holds the count tables of `_count`; where it has only `level{j}.keys` and `.counts` (a compact
    checkpoint, `lm.models.ngram.storage`), the context keys and continuation counts are derived here.
    """

    def __init__(self, primary: dict[str, np.ndarray]):
        meta = primary["meta"]
        self.vocab_size, self.max_order, self.num_tokens = (int(v) for v in meta[:3])
        V, K = self.vocab_size, self.max_order
        level_keys = [np.zeros(0, np.int64)] + [primary[f"level{j}.keys"] for j in range(1, K + 1)]
        derived_keys, rows, cont = derive_orders(V, level_keys)
        primary = dict(primary)
        for m in range(1, K):
            if f"context{m}.keys" not in primary:
                primary[f"context{m}.keys"] = derived_keys[m]
            elif not np.array_equal(primary[f"context{m}.keys"], derived_keys[m]):
                raise LMError(f"n-gram tensor 'context{m}.keys' does not match the order-{m} table")
            primary.setdefault(f"level{m}.cont", cont[m])
        self.primary = primary
        for array in primary.values():
            array.setflags(write=False)
        # context_keys[m]: sorted keys of the distinct m-grams (index 0 unused: the empty context has id 0)
        self.context_keys: list[np.ndarray] = [np.zeros(1, np.int64)]
        for m in range(1, K):
            self.context_keys.append(primary[f"context{m}.keys"])
        # Where the key range of an order is small, a dense key -> id table (-1 = never seen) replaces the
        # binary search of the history walk by one array read. V more -1 entries at the end: a key
        # -V..-1 ("no context" times V plus a token) reads one of them, i.e. "never seen".
        self.dense: list[np.ndarray | None] = [None]
        for m in range(1, K):
            key_range = self.context_keys[m - 1].size * V if m > 1 else V
            if key_range <= _DENSE_LOOKUP_ENTRIES:
                table = np.full(key_range + V, -1, dtype=np.int32)
                table[self.context_keys[m]] = np.arange(self.context_keys[m].size, dtype=np.int32)
                table.setflags(write=False)
                self.dense.append(table)
            else:
                self.dense.append(None)
        # rows_ext[j]: the row in the order-j table of every dense j-gram id, and -1 after them (id -1 -> -1)
        self.rows_ext: list[np.ndarray] = [np.full(1, -1, dtype=np.int64)]
        for j in range(1, K):
            ext = np.append(rows[j], -1)
            ext.setflags(write=False)
            self.rows_ext.append(ext)
        self._indexes = LazyIndexes()  # hash indexes of the tables the walk cannot read directly
        self.levels: list[_Level | None] = [None]
        for j in range(1, K + 1):
            num_contexts = 1 if j == 1 else self.context_keys[j - 1].size
            self.levels.append(_Level(j, V, num_contexts, primary[f"level{j}.keys"],
                                      primary[f"level{j}.counts"], primary.get(f"level{j}.cont")))

    def context_index(self, m: int) -> KeyIndex:
        """Hash index of context_keys[m] (for the orders without a dense table)."""
        return self._indexes.get(m, self.context_keys[m])

    def level_index(self, j: int) -> KeyIndex:
        """Hash index of the order-j table's keys (context id * V + token)."""
        return self._indexes.get(-j, self.levels[j].keys)

    def rows_of(self, j: int) -> np.ndarray:
        """Row in the order-j table of every dense j-gram id (j < max_order)."""
        return self.rows_ext[j][:-1]

    def dense_ids(self, j: int) -> np.ndarray:
        """Dense j-gram id (position in context_keys[j]) of every row of the order-j table (j < max_order)."""
        rows = self.rows_of(j)
        out = np.empty(rows.size, dtype=np.int64)
        out[rows] = np.arange(rows.size, dtype=np.int64)
        return out

    def suffix(self, j: int, context: np.ndarray) -> np.ndarray:
        """Id of the context of order j-1 (drop the oldest token) for contexts of order j."""
        if j <= 2:
            return np.zeros_like(context)
        return self.context_keys[j - 1][context] // self.vocab_size

    def num_entries(self, order: int) -> int:
        return int(sum(self.levels[j].keys.size for j in range(1, order + 1)))
