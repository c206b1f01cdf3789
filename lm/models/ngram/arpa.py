"""ARPA back-off files and the n-gram tables: a counted model as ARPA n-grams (export), an ARPA text as n-grams.

The ARPA format (SRILM's, KenLM's) lists, per order, every n-gram with its log10 probability and, for those
that can be a context, a log10 back-off weight. p(w | h) is the listed probability of the longest suffix s of
h with `s w` listed, times the back-off weights of the listed contexts of h longer than s.

Export (`export_orders`)
------------------------
Interpolated Kneser-Ney is a back-off model once every listed n-gram carries its *interpolated* probability:
for a w never seen after a context, p(w | ctx) = gamma(ctx) * p(w | shorter ctx), so the back-off weight is
gamma(ctx). Two things are specific to this project's models:

- raw counts at the top order, continuation counts below (Chen & Goodman): regular n-grams of order j < K
  carry the continuation-count probability (what a longer context backs off to); order K carries raw counts.
- the start of a text: a history shorter than K-1 tokens is predicted with raw counts at its own top order
  (`lm.models.ngram.model`). KenLM starts a text with `<s>`, so the project's "history h at the start of a
  text" is ARPA's context `<s> h`: every n-gram `h w` below the top order is also written as `<s> h w` with
  the raw-count probability, and `<s> h` backs off with gamma_raw(h) / gamma_cont(h), which turns the
  continuation-count back-off of `h` into the raw-count one for every w not listed after it.

MLE and add-k use raw counts at every order and need no `<s>` n-grams. MLE's zero probabilities (and its
back-off weight zero after a context that was followed by something) are written as LOG10_ZERO. Add-k gives
every token the same k / (c(ctx .) + kV) after a seen context, which no back-off weight reproduces, so it
lists every token after every such context (V times the contexts: refused past `max_entries`). Stupid
back-off scores are not probabilities (they do not sum to one): refused.

Word ids: 0..V-1 the model's tokens, V `<s>`, V+1 `</s>` (never predicted: LOG10_ZERO), V+2 `<unk>` when no
token is the unknown token. `lm.store.arpa` names the words and writes the file.

Parse (`parse_arpa`)
--------------------
Word ids follow the unigram section, `<unk>` first (id 0, added with KenLM's -100 if the file has none).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from lm.errors import LMError

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
LOG10_ZERO = -99.0  # how ARPA files write log10(0)
MISSING_UNK_LOG10 = -100.0  # KenLM's probability for an <unk> a file does not list
MAX_EXPORT_ENTRIES = 20_000_000  # n-grams an export may write (about 1 GB of text)


@dataclasses.dataclass
class ArpaOrder:
    """The n-grams of one order: word ids [n, order], log10 p [n], log10 back-off [n] (None: no column)."""

    words: np.ndarray
    logp: np.ndarray
    backoff: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.logp.size)


def _log10(p: np.ndarray) -> np.ndarray:
    out = np.full(p.shape, LOG10_ZERO)
    np.log10(p, out=out, where=p > 0)
    return out


# ---------------------------------------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------------------------------------
class _Export:
    """The arrays of one n-gram view that every order of the export reads."""

    def __init__(self, model):
        self.t, self.s = model._t, model._s  # noqa: SLF001 - the conversion reads the count tables directly
        self.K, self.V = model.config.order, model.vocab_size
        self.sm = model.config.smoothing
        self._suffix: dict[int, np.ndarray] = {}
        self.ctx = [None] + [self.t.levels[j].keys // self.V for j in range(1, self.K + 1)]
        self.dense = self._dense_ids()

    def words_of(self, m: int, ids: np.ndarray) -> np.ndarray:
        """Words [n, m] of dense m-gram ids (context{m}.keys = suffix id * V + first word)."""
        out = np.empty((ids.size, m), dtype=np.int64)
        d = ids
        for col, order in enumerate(range(m, 0, -1)):
            key = self.t.context_keys[order][d]
            out[:, col] = key % self.V
            d = key // self.V
        return out

    def entry_words(self, j: int) -> np.ndarray:
        level = self.t.levels[j]
        return np.concatenate([self.words_of(j - 1, self.ctx[j]), level.tok[:, None]], axis=1)

    def suffix_rows(self, j: int) -> np.ndarray:
        """Row in level j-1 of each level-j entry's suffix (drop the first word); j >= 2."""
        if j in self._suffix:
            return self._suffix[j]
        rows, found = self.t.levels[j - 1].find(self.t.suffix(j, self.ctx[j]), self.t.levels[j].tok)
        if not bool(found.all()):  # every suffix of a counted n-gram was counted
            raise LMError("n-gram tables are inconsistent: an n-gram's suffix was never counted")
        self._suffix[j] = rows
        return rows

    def _dense_ids(self) -> list[np.ndarray | None]:
        """Dense (context-table) id of every level-j entry, for the orders that are contexts (j < K)."""
        dense: list[np.ndarray | None] = [None, np.arange(len(self.t.levels[1].keys), dtype=np.int64)]
        for j in range(2, self.K):
            first = self.t.context_keys[j - 1][self.ctx[j]] % self.V
            key = dense[j - 1][self.suffix_rows(j)] * self.V + first
            dense.append(np.searchsorted(self.t.context_keys[j], key))
        return dense

    def context_stats(self, j: int):
        """The statistics a context of order j-1 uses at order j: raw counts at the top, else continuations."""
        level = self.t.levels[j]
        return level.raw if (j == self.K or self.sm != "kneser_ney") else level.cont

    def gamma(self, j: int, ids: np.ndarray, stats=None) -> np.ndarray:
        """Weight passed to the order below by contexts `ids` at order j (1 where they were followed by nothing)."""
        stats = self.context_stats(j) if stats is None else stats
        return np.where(stats.total[ids] > 0, stats.gamma[ids], 1.0)


def export_orders(model, unk_id: int | None = None, max_entries: int = MAX_EXPORT_ENTRIES) -> list[ArpaOrder]:
    """The ARPA n-grams of an `NgramModel` view, orders 1..K (see the module docstring for the word ids).

    `unk_id`: the token that is ARPA's `<unk>` (None: an extra `<unk>` word with probability zero).
    """
    sm = model.config.smoothing
    if sm == "stupid_backoff":
        raise LMError("stupid back-off scores are not probabilities (they do not sum to one), so they have no "
                      "ARPA form; export the same counts with kneser_ney (or mle / addk) instead")
    ex = _Export(model)
    V, K = ex.V, ex.K
    bos, eos, extra_unk = V, V + 1, (V + 2 if unk_id is None else None)
    if sm == "addk":
        orders = _addk_orders(ex, model.config.k, max_entries)
    else:
        orders = _backoff_orders(ex, max_entries)
    # unigrams: every token (seen or not), then <s>, </s> and perhaps <unk>, which the model never predicts
    uni = orders[0]
    stats = ex.context_stats(1)
    if sm == "addk":
        unseen = model.config.k / (stats.total[0] + model.config.k * V) if stats.total[0] > 0 else 1.0 / V
    elif sm == "mle":
        unseen = 0.0 if stats.total[0] > 0 else 1.0 / V
    else:
        unseen = float(ex.gamma(1, np.zeros(1, np.int64))[0]) / V
    logp = np.full(V, math.log10(unseen) if unseen > 0 else LOG10_ZERO)
    backoff = np.zeros(V)
    logp[uni.words[:, 0]] = uni.logp
    if uni.backoff is not None:
        backoff[uni.words[:, 0]] = uni.backoff
    specials = [bos, eos] + ([extra_unk] if extra_unk is not None else [])
    bos_backoff = 0.0
    if sm == "kneser_ney" and K >= 2:  # the start of a text: raw unigram counts instead of continuations
        zero = np.zeros(1, np.int64)
        bos_backoff = math.log10(float(ex.gamma(1, zero, ex.t.levels[1].raw)[0]) / float(ex.gamma(1, zero)[0]))
    orders[0] = ArpaOrder(np.arange(V + len(specials), dtype=np.int64)[:, None],
                          np.concatenate([logp, np.full(len(specials), LOG10_ZERO)]),
                          np.concatenate([backoff, [bos_backoff], np.zeros(len(specials) - 1)]) if K > 1 else None)
    return orders


def _backoff_orders(ex: _Export, max_entries: int) -> list[ArpaOrder]:
    """MLE and Kneser-Ney: the counted n-grams with their (interpolated) probabilities and back-off weights."""
    K, V, kn = ex.K, ex.V, ex.sm == "kneser_ney"
    total = sum(len(ex.t.levels[j].keys) for j in range(1, K + 1))
    total += sum(len(ex.t.levels[j].keys) for j in range(1, K)) if kn else 0
    if total > max_entries:
        raise LMError(f"this export would write {total:,} n-grams, more than the limit of {max_entries:,}; "
                      f"export a lower order")
    regular: list[ArpaOrder] = []
    starts: list[ArpaOrder] = []  # KN: `<s> h w` for the n-grams below the top order
    lower_cont = None  # continuation-count probability of every entry one order down
    for j in range(1, K + 1):
        level = ex.t.levels[j]
        ctx = ex.ctx[j]
        if kn:
            parent = np.full(len(level.keys), 1.0 / V) if j == 1 else lower_cont[ex.suffix_rows(j)]

        def interpolate(stats) -> np.ndarray:  # the float operations of Smoother.compute_level
            if not kn:
                return stats.ratio.copy()
            p = parent.copy()
            seen = stats.total[ctx] > 0
            p[seen] = parent[seen] * stats.gamma[ctx[seen]] + stats.share[seen]
            return p

        raw = interpolate(level.raw)
        cont = interpolate(level.cont) if (kn and j < K) else None
        words = ex.entry_words(j)
        backoff = None
        if j < K:  # these n-grams are contexts of order j+1
            gamma = ex.gamma(j + 1, ex.dense[j])
            if not kn:  # MLE: a context followed by something gives unseen tokens probability zero
                gamma = np.where(ex.t.levels[j + 1].raw.total[ex.dense[j]] > 0, 0.0, 1.0)
            backoff = _log10(gamma)
        regular.append(ArpaOrder(words, _log10(cont if cont is not None else raw), backoff))
        if kn and j < K:
            start_backoff = None
            if j + 1 < K:
                raw_gamma = ex.gamma(j + 1, ex.dense[j], ex.t.levels[j + 1].raw)
                start_backoff = np.log10(raw_gamma) - np.log10(ex.gamma(j + 1, ex.dense[j]))
            bos_col = np.full((words.shape[0], 1), V, dtype=np.int64)
            starts.append(ArpaOrder(np.concatenate([bos_col, words], axis=1), _log10(raw), start_backoff))
        lower_cont = cont
    if not kn or K == 1:
        return regular
    merged = [regular[0]]
    for j in range(2, K + 1):  # `<s> g` with g of order j-1 is an n-gram of order j
        grams = [regular[j - 1], starts[j - 2]]
        backoff = None
        if j < K:
            backoff = np.concatenate([g.backoff for g in grams])
        merged.append(ArpaOrder(np.concatenate([g.words for g in grams]), np.concatenate([g.logp for g in grams]),
                                backoff))
    return merged


def _addk_orders(ex: _Export, k: float, max_entries: int) -> list[ArpaOrder]:
    """Add-k: every token after every context that was followed by something (the unseen ones included)."""
    K, V = ex.K, ex.V
    contexts = [np.unique(ex.ctx[j]) for j in range(1, K + 1)]
    total = sum(c.size for c in contexts) * V
    if total > max_entries:
        raise LMError(f"add-k has no back-off form short of listing every token after every seen context: "
                      f"{total:,} n-grams, more than the limit of {max_entries:,}; export kneser_ney (or a lower "
                      f"order) instead")
    out = []
    for j in range(1, K + 1):
        level, ctx = ex.t.levels[j], contexts[j - 1]
        c = np.repeat(ctx, V)
        w = np.tile(np.arange(V, dtype=np.int64), ctx.size)
        e, found = level.find(c, w)
        count = np.where(found, level.raw.counts[e], 0)
        p = (count + k) / (level.raw.total[c] + k * V)
        words = np.concatenate([ex.words_of(j - 1, c), w[:, None]], axis=1)
        out.append(ArpaOrder(words, np.log10(p), np.zeros(c.size) if j < K else None))
    return out


def format_arpa(orders: Sequence[ArpaOrder], words: Sequence[str], chunk: int = 1 << 16) -> Iterator[str]:
    """The ARPA text of `orders` (word id -> `words[id]`), in pieces of about `chunk` lines."""
    yield "\\data\\\n" + "".join(f"ngram {j}={len(o)}\n" for j, o in enumerate(orders, start=1)) + "\n"
    names = np.asarray(list(words), dtype=object)
    for j, order in enumerate(orders, start=1):
        yield f"\\{j}-grams:\n"
        for start in range(0, len(order), chunk):
            sl = slice(start, start + chunk)
            grams = names[order.words[sl, 0]]
            for col in range(1, j):
                grams = grams + " " + names[order.words[sl, col]]
            probs = [f"{v:.6f}" for v in order.logp[sl].tolist()]
            if order.backoff is None:
                yield "".join(f"{p}\t{g}\n" for p, g in zip(probs, grams))
            else:
                bos = [f"{v:.6f}" for v in order.backoff[sl].tolist()]
                yield "".join(f"{p}\t{g}\t{b}\n" for p, g, b in zip(probs, grams, bos))
        yield "\n"
    yield "\\end\\\n"


# ---------------------------------------------------------------------------------------------------------
# parse
# ---------------------------------------------------------------------------------------------------------
def parse_arpa(lines: Iterable[str], source: str = "ARPA file") -> tuple[list[str], list[ArpaOrder]]:
    """(words by id, orders) of an ARPA text; LMError naming the line for anything malformed."""
    it = iter(enumerate(lines, start=1))
    counts: list[int] = []
    for number, line in it:  # header: blank lines, \data\, then "ngram j=count" lines
        text = line.strip()
        if not text:
            continue
        if text != "\\data\\":
            raise LMError(f"{source}: line {number}: expected \\data\\ (this is not an ARPA file)")
        break
    else:
        raise LMError(f"{source}: empty file (not an ARPA file)")
    section = None
    for number, line in it:
        text = line.strip()
        if not text:
            continue
        if text.startswith("ngram "):
            j, _, n = text[6:].partition("=")
            try:
                j, n = int(j), int(n)
            except ValueError:
                raise LMError(f"{source}: line {number}: bad count line {text[:80]!r}") from None
            if j != len(counts) + 1 or n < 0:
                raise LMError(f"{source}: line {number}: counts must be listed for orders 1, 2, ... in turn")
            counts.append(n)
            continue
        section = text
        break
    if not counts:
        raise LMError(f"{source}: the \\data\\ section lists no n-gram counts")
    vocab: dict[str, int] = {UNK: 0}
    unigram_seen = False
    raw: list[tuple[list[list[str]], list[float], list[float]]] = []
    for j in range(1, len(counts) + 1):
        if section != f"\\{j}-grams:":
            raise LMError(f"{source}: expected \\{j}-grams: but found {str(section)[:80]!r}")
        grams: list[list[str]] = []
        logps: list[float] = []
        backoffs: list[float] = []
        section = None
        for number, line in it:
            parts = line.split()
            if not parts:
                continue
            if parts[0].startswith("\\"):
                section = line.strip()
                break
            if len(parts) not in (j + 1, j + 2):
                raise LMError(f"{source}: line {number}: a {j}-gram line needs a probability, {j} word(s) and "
                              f"perhaps a back-off weight")
            try:
                logps.append(float(parts[0]))
                backoffs.append(float(parts[j + 1]) if len(parts) == j + 2 else 0.0)
            except ValueError:
                raise LMError(f"{source}: line {number}: the probability or back-off is not a number") from None
            grams.append(parts[1:j + 1])
        if len(grams) != counts[j - 1]:
            raise LMError(f"{source}: the header says {counts[j - 1]:,} {j}-grams but the file lists "
                          f"{len(grams):,}")
        if j == 1:
            for (word,) in grams:
                if word == UNK:
                    unigram_seen = True
                elif word in vocab:
                    raise LMError(f"{source}: the unigram {word!r} is listed twice")
                else:
                    vocab[word] = len(vocab)
        raw.append((grams, logps, backoffs))
    if section != "\\end\\":
        raise LMError(f"{source}: expected \\end\\ after the {len(counts)}-grams, found {str(section)[:80]!r}")
    orders = []
    for j, (grams, logps, backoffs) in enumerate(raw, start=1):
        try:
            ids = np.array([[vocab[w] for w in g] for g in grams], dtype=np.int64).reshape(len(grams), j)
        except KeyError as exc:
            raise LMError(f"{source}: the {j}-grams use the word {exc.args[0]!r}, which is not a unigram") from None
        logp, backoff = np.array(logps, dtype=np.float64), np.array(backoffs, dtype=np.float64)
        if logp.size and not (np.all(np.isfinite(logp)) and np.all(logp <= 0) and np.all(np.isfinite(backoff))):
            raise LMError(f"{source}: {j}-gram probabilities must be finite log10 values <= 0")
        if j == 1 and not unigram_seen:  # KenLM's convention for a file without <unk>
            ids = np.concatenate([[[0]], ids])
            logp, backoff = np.concatenate([[MISSING_UNK_LOG10], logp]), np.concatenate([[0.0], backoff])
        orders.append(ArpaOrder(ids, logp, backoff))
    return [w for w, _ in sorted(vocab.items(), key=lambda item: item[1])], orders


__all__ = ["BOS", "EOS", "LOG10_ZERO", "MAX_EXPORT_ENTRIES", "UNK", "ArpaOrder", "export_orders", "format_arpa",
           "parse_arpa"]
