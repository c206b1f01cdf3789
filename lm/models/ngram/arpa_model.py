"""A read-only n-gram model from an ARPA back-off file: the `LanguageModel` contract over its listed n-grams.

p(w | h) follows the ARPA rule (`lm.models.ngram.arpa`): the listed log10 probability of the longest suffix s
of h with `s w` listed, plus the log10 back-off weights of the listed contexts of h longer than s. Like KenLM,
a history is walked from its last token backwards (left extension), so the file must be closed under prefixes
and suffixes, as every file that lmplz or SRILM writes is.

A text starts with `<s>` (when the file lists it): the state of `start()` ends with it and scoring puts it
before the first token, as KenLM's `full_scores(bos=True)`. Word ids are the file's vocabulary (`<unk>` is 0;
`<s>` and `</s>` are ordinary ids: `<s>` gets the file's probability, normally 10^-99). `with_settings(order=)`
truncates histories; a smoothing cannot be chosen (the file fixes the probabilities; it is ignored). The
trace shows, per order, whether the context and the n-gram are listed (1) or not (0) in the count columns, the
number of listed continuations, the probability at that order and the back-off weight.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch

from lm.errors import LMError
from lm.models.base import ModelConfig
from lm.models.ngram.arpa import ArpaOrder
from lm.models.ngram.scoring import HistoryModel, history_windows
from lm.models.ngram.smoothing import _LRU, _expand
from lm.models.trace import NgramOrderRow, NgramTrace

LN10 = math.log(10.0)
_MAX_NOTES = 200


@dataclasses.dataclass
class ArpaConfig(ModelConfig):
    """An ARPA model's shape: the order used (<= the file's) and the id of `<s>` (-1: the file has none)."""

    family: ClassVar[str] = "ngram"
    order: int = 3
    smoothing: str = "arpa"
    start_id: int = -1

    def describe(self) -> str:
        return f"order-{self.order} n-gram (ARPA file)"


class _Order:
    """The n-grams of one order, sorted by (prefix entry, last word), with a left-extension index."""

    def __init__(self, j: int, V: int, grams: ArpaOrder, lower: _Order | None):
        self.j = j
        if j == 1:
            if not np.array_equal(np.sort(grams.words[:, 0]), np.arange(V)):
                raise LMError("the unigrams of an ARPA file must list every word once")
            order = np.argsort(grams.words[:, 0])
            self.last = np.arange(V, dtype=np.int64)
            self.prefix = np.zeros(V, dtype=np.int64)
        else:
            prefix = lower.find_words(grams.words[:, :-1])
            if (prefix < 0).any():
                bad = grams.words[np.flatnonzero(prefix < 0)[0]]
                raise LMError(f"a {j}-gram's first {j - 1} word(s) are not a listed {j - 1}-gram (word ids "
                              f"{bad.tolist()}); the file is not closed under prefixes")
            key = prefix * V + grams.words[:, -1]
            order = np.argsort(key, kind="stable")
            if np.any(np.diff(key[order]) == 0):
                raise LMError(f"an ARPA file lists a {j}-gram twice")
            self.prefix, self.last = prefix[order], grams.words[order, -1]
        self.logp = grams.logp[order]
        self.backoff = grams.backoff[order] if grams.backoff is not None else np.zeros(order.size)
        n_lower = lower.logp.size if lower is not None else 1
        self.offsets = np.zeros(n_lower + 1, dtype=np.int64)  # children of each lower entry: [a, b)
        np.cumsum(np.bincount(self.prefix, minlength=n_lower) if j > 1 else [V], out=self.offsets[1:])
        self.keys = self.prefix * V + self.last  # sorted: (prefix entry, last word)
        if j > 1:
            words = grams.words[order]
            suffix = lower.find_words(words[:, 1:])
            if (suffix < 0).any():
                raise LMError(f"a {j}-gram's last {j - 1} word(s) are not a listed {j - 1}-gram; the file is "
                              f"not closed under suffixes")
            lkey = suffix * V + words[:, 0]
            self.lperm = np.argsort(lkey, kind="stable")
            self.lkeys = lkey[self.lperm]
        self._lower, self._V = lower, V
        for array in (self.logp, self.backoff, self.offsets, self.keys, self.prefix, self.last):
            array.setflags(write=False)

    def find_words(self, words: np.ndarray) -> np.ndarray:
        """Entry index of each row of words [n, j] (-1 if not listed), through the prefix chain."""
        idx = words[:, 0].astype(np.int64)
        order = self
        chain = [order]
        while order._lower is not None:
            order = order._lower
            chain.append(order)
        for level in reversed(chain[:-1]):  # orders 2..j, each one word longer
            ok = np.flatnonzero(idx >= 0)
            if level.keys.size == 0:
                idx[ok] = -1
                continue
            query = idx[ok] * self._V + words[ok, level.j - 1]
            pos = np.minimum(np.searchsorted(level.keys, query), level.keys.size - 1)
            idx[ok] = np.where(level.keys[pos] == query, pos, -1)
        return idx

    def extend(self, entry: np.ndarray, first: np.ndarray) -> np.ndarray:
        """Entry of `first` + (the (j-1)-gram `entry`) at this order, or -1 (left extension)."""
        if self.lkeys.size == 0:
            return np.full(entry.size, -1, dtype=np.int64)
        query = entry * self._V + first
        pos = np.minimum(np.searchsorted(self.lkeys, query), self.lkeys.size - 1)
        return np.where(self.lkeys[pos] == query, self.lperm[pos], -1)


class _ArpaScorer:
    """p(. | history) by the ARPA rule over the orders of one file (the scorer `HistoryModel` needs)."""

    def __init__(self, config: ArpaConfig, orders: list[_Order]):
        self.config, self.o = config, orders  # orders[j] for j = 1..N (index 0 unused)
        self.V = config.vocab_size
        self.row_cache = _LRU(min(1 << 16, (1 << 23) // max(1, self.V)))

    def windows(self, x: np.ndarray, flat: np.ndarray) -> np.ndarray:
        return history_windows(x, flat, self.config.order - 1, self.config.start_id)

    def contexts(self, win: np.ndarray) -> np.ndarray:
        """Listed context entry of every suffix of each history: ctx [P, order] (column m: the last m tokens;
        column 0 unused; -1 = not listed), found by left extension from the last token."""
        P, w = win.shape
        ctx = np.full((P, w + 1), -1, dtype=np.int64)
        alive = np.arange(P)
        cur = np.zeros(P, dtype=np.int64)
        for m in range(1, w + 1):
            tok = win[alive, w - m]
            ok = tok >= 0
            alive, cur, tok = alive[ok], cur[ok], tok[ok]
            cur = tok if m == 1 else self.o[m].extend(cur, tok)
            found = cur >= 0
            alive, cur = alive[found], cur[found]
            if alive.size == 0:
                break
            ctx[alive, m] = cur
        return ctx

    def target_log10(self, win: np.ndarray, target: np.ndarray, ctx: np.ndarray) -> np.ndarray:
        P, w = win.shape
        best = self.o[1].logp[target].astype(np.float64)
        matched = np.zeros(P, dtype=np.int64)
        alive = np.arange(P)
        cur = target.astype(np.int64)
        for m in range(1, w + 1):  # extend `s w` to the left while it is listed
            tok = win[alive, w - m]
            ok = (tok >= 0) & (ctx[alive, m] >= 0)
            alive, cur, tok = alive[ok], cur[ok], tok[ok]
            cur = self.o[m + 1].extend(cur, tok)
            found = cur >= 0
            alive, cur = alive[found], cur[found]
            if alive.size == 0:
                break
            best[alive] = self.o[m + 1].logp[cur]
            matched[alive] = m
        for m in range(1, w + 1):  # back-off weights of the listed contexts longer than the match
            use = (ctx[:, m] >= 0) & (matched < m)
            best[use] += self.o[m].backoff[ctx[use, m]]
        return best

    def rows_log10(self, ctx: np.ndarray) -> np.ndarray:
        """log10 p(. | history) [P, V] from the listed contexts of each history."""
        P = ctx.shape[0]
        rows = np.tile(self.o[1].logp, (P, 1))
        for m in range(1, ctx.shape[1]):
            act = np.flatnonzero(ctx[:, m] >= 0)
            if act.size == 0:
                break
            c = ctx[act, m]
            rows[act] += self.o[m].backoff[c][:, None]
            children = self.o[m + 1]
            starts = children.offsets[c]
            rr, ee = _expand(act, starts, children.offsets[c + 1] - starts)
            rows[rr, children.last[ee]] = children.logp[ee]
        return rows

    def log_rows(self, win: np.ndarray) -> np.ndarray:
        return self.rows_log10(self.contexts(win)) * LN10

    def score_targets(self, x: np.ndarray, flat: np.ndarray, target: np.ndarray,
                      ranks: bool) -> tuple[np.ndarray, np.ndarray | None]:
        win = self.windows(x, flat)
        ctx = self.contexts(win)
        return self.target_log10(win, target, ctx) * LN10, (self.rows_log10(ctx) if ranks else None)

    def history_row(self, history: tuple) -> np.ndarray:
        row = self.row_cache.get(history)
        if row is None:
            win = np.array([history], dtype=np.int64).reshape(1, len(history))
            row = (self.rows_log10(self.contexts(win))[0] * LN10).astype(np.float32)
            row.setflags(write=False)
            self.row_cache.put(history, row)
        return row


class ArpaModel(HistoryModel):
    """An ARPA back-off model (see the module docstring): read-only, built from parsed `ArpaOrder`s."""

    def __init__(self, config: ArpaConfig, grams: Sequence[ArpaOrder], _orders: list | None = None):
        if not isinstance(config, ArpaConfig):
            raise LMError("an ARPA model needs an ArpaConfig")
        if not grams:
            raise LMError("an ARPA model needs at least its unigrams")
        if not 1 <= config.order <= len(grams):
            raise LMError(f"this ARPA file has orders 1 to {len(grams)}; order {config.order} is not available")
        self.config, self._grams = config, list(grams)
        if _orders is None:
            _orders = [None]
            for j, g in enumerate(self._grams, start=1):
                _orders.append(_Order(j, config.vocab_size, g, _orders[-1]))
        self._orders = _orders
        self.start_token = config.start_id
        self._s = _ArpaScorer(config, _orders[:config.order + 1])

    def with_settings(self, order: int | None = None, smoothing: str | None = None, **_ignored) -> ArpaModel:
        """A view using histories of at most order-1 tokens; `smoothing` is ignored (the file fixes it)."""
        config = dataclasses.replace(self.config, order=self.config.order if order is None else int(order))
        return ArpaModel(config, self._grams, self._orders)

    @property
    def max_order(self) -> int:
        return len(self._grams)

    @property
    def num_tokens(self) -> int:
        return 0  # an ARPA file does not say how much text it was counted on

    def num_parameters(self) -> int:
        return int(sum(len(g) for g in self._grams[:self.config.order]))

    def discounts(self) -> dict:
        return {}

    def counts_after(self, context: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(token ids listed after `context`, zeros): an ARPA file has probabilities, not counts."""
        context = [int(t) for t in context]
        if len(context) >= self.max_order:
            raise LMError(f"a context of {len(context)} tokens needs order {len(context) + 1}; this ARPA file "
                          f"has orders up to {self.max_order}")
        ctx = self._orders[len(context)].find_words(np.array([context])) if context else np.zeros(1, np.int64)
        if ctx[0] < 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        children = self._orders[len(context) + 1]
        a, b = children.offsets[ctx[0]], children.offsets[ctx[0] + 1]
        return children.last[a:b].copy(), np.zeros(b - a, dtype=np.int64)

    def listed_per_order(self) -> list[int]:
        """How many n-grams the file lists at each order 1..max_order (its header's counts)."""
        return [len(g) for g in self._grams]

    def listed_after(self, context: Sequence[int]) -> tuple[list[int], np.ndarray, np.ndarray]:
        """What the file lists after the longest suffix of `context` (at most order-1 tokens) that it lists
        with continuations: (that suffix, word ids, their listed p(w | suffix)); the unigrams after no context.
        A listed p is the model's p(w | context) too: a longer context not listed backs off with weight 1."""
        context = [int(t) for t in context][len(context) - min(len(context), self.config.order - 1):]
        if any(not 0 <= t < self.vocab_size for t in context):
            raise LMError(f"a context token id is outside the vocabulary of {self.vocab_size}")
        while context:
            entry = int(self._orders[len(context)].find_words(np.array([context]))[0])
            children = self._orders[len(context) + 1]
            if entry >= 0 and children.offsets[entry + 1] > children.offsets[entry]:
                a, b = int(children.offsets[entry]), int(children.offsets[entry + 1])
                return context, children.last[a:b].copy(), np.power(10.0, children.logp[a:b])
            context = context[1:]
        return [], np.arange(self.vocab_size, dtype=np.int64), np.power(10.0, self._orders[1].logp)

    # -- persistence ----------------------------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        out = {}
        for j, g in enumerate(self._grams, start=1):
            out[f"order{j}.words"] = torch.from_numpy(g.words.copy())
            out[f"order{j}.logp"] = torch.from_numpy(g.logp.copy())
            out[f"order{j}.backoff"] = torch.from_numpy(g.backoff.copy() if g.backoff is not None
                                                         else np.zeros(len(g)))
        return out

    @classmethod
    def from_state(cls, config: ModelConfig, tensors: dict[str, torch.Tensor]) -> ArpaModel:
        try:
            grams = [ArpaOrder(tensors[f"order{j}.words"].numpy().astype(np.int64),
                               tensors[f"order{j}.logp"].numpy().astype(np.float64),
                               tensors[f"order{j}.backoff"].numpy().astype(np.float64))
                     for j in range(1, sum(1 for k in tensors if k.endswith(".logp")) + 1)]
        except KeyError as exc:
            raise LMError(f"ARPA model tensors lack {exc.args[0]!r}") from None
        return cls(config, grams)

    # -- inspection path ------------------------------------------------------------------------------
    def trace(self, ids: torch.Tensor, token_strings: Sequence[str] | None = None) -> NgramTrace:
        """Per position and order: is the context listed, is the n-gram listed, p at that order, back-off."""
        if isinstance(ids, torch.Tensor) and ids.dim() == 2 and ids.shape[0] == 1:
            ids = ids[0]
        x = self._check_ids(ids, 1, "trace ids")
        if x.size < 1:
            raise LMError("trace needs at least one token")
        s, T = self._s, x.size
        win = s.windows(x.reshape(1, T), np.arange(T))
        ctx = s.contexts(win)
        probs = np.power(10.0, s.rows_log10(ctx))

        def show(seq) -> str:
            if token_strings is not None:
                return repr("".join(token_strings[int(i)] for i in seq))
            return "[" + ", ".join(str(int(i)) for i in seq) + "]"

        notes = ["an ARPA file lists probabilities, not counts: the count columns say whether the context and "
                 "the n-gram are listed (1) or not (0); a listed n-gram gives its probability, otherwise the "
                 "context's back-off weight multiplies the next shorter context's probability"]
        rows = []
        for t in range(T - 1):
            target = int(x[t + 1])
            history = [int(v) for v in win[t] if v >= 0]
            p = float(10.0 ** self._orders[1].logp[target])
            per_order = [NgramOrderRow(1, [], 1.0, 1.0, self.vocab_size, p, 1.0)]
            for j in range(2, len(history) + 2):
                c = int(ctx[t, j - 1])
                context = history[len(history) - (j - 1):]
                listed, distinct, weight = 0.0, 0, 1.0
                if c >= 0:
                    children = self._orders[j]
                    a, b = int(children.offsets[c]), int(children.offsets[c + 1])
                    distinct = b - a
                    weight = float(10.0 ** self._orders[j - 1].backoff[c])
                    k = a + int(np.searchsorted(children.last[a:b], target))
                    listed = float(k < b and int(children.last[k]) == target)
                    p = float(10.0 ** children.logp[k]) if listed else weight * p
                per_order.append(NgramOrderRow(j, context, float(c >= 0), listed, distinct, p, weight))
            rows.append(per_order[::-1])
            deepest = next((r for r in per_order[::-1] if r.target_count > 0), per_order[0])
            if len(notes) < _MAX_NOTES and deepest.order < len(per_order):
                notes.append(f"position {t}: {show([target])} is not listed after {show(per_order[-1].context)}; "
                             f"the longest listed n-gram ending in it has order {deepest.order}")
        return NgramTrace(order=self.config.order, smoothing="arpa", rows=rows,
                          probabilities=torch.from_numpy(probs.astype(np.float32)), notes=notes)


__all__ = ["ArpaConfig", "ArpaModel"]
