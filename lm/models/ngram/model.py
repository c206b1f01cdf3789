"""N-gram language models: counted once with vectorised numpy, smoothed on the fly.

Counting
--------
`NgramModel.build` counts every n-gram of the training ids once, with vectorised numpy, into sorted per-order
tables (`lm.models.ngram.counts` describes them); the saved tensors are only the counts. One build at order n
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
Scoring (`target_logprobs`) works on arrays: one history walk over a run of positions gives the context ids
of every position and, shifted by one, the ids of the n-grams ending at every target, so a target costs one
array read per order (dense key -> id tables for the orders whose key range is small, hash indexes
(`lm.models.ngram.keyindex`) for the others, one hashed lookup at the counted order). `logprob_of_targets`
(log-probs only, what `lm.run.metrics.score` needs) takes the whole-text path of `lm.models.ngram.textscore`,
a few array passes per order over the whole text with no masks. The full rows needed for ranks are built
order by order over the *distinct* contexts only. The incremental path (`step`) keeps
LRU caches of finished rows per history and of rows per (order, context), so sampling mostly costs a
dictionary lookup. One function per path implements each smoothing rule with the same float operations in
the same order, so the step, logits and scoring paths agree bit for bit.

Files: this one is the counted model (build, views, counts, persistence); `scoring.HistoryModel` the
`LanguageModel` paths it shares with the ARPA model (input checks, state, shapes); `smoothing.Smoother`
computes the probabilities and owns the caches, the only mutable parts of a model (each behind a lock, so
one model can serve many threads); `counts` builds the count tables; `storage` saves and checks them (the
compact checkpoint format, and the one before it); `backoff` is the inspection path;
`arpa` and `arpa_model` are the ARPA export and the read-only model of an ARPA file.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from lm.errors import LMError
from lm.models import FAMILIES
from lm.models.base import ModelConfig
from lm.models.ngram.counts import MAX_ORDER, _count, _Tables, kn_discounts
from lm.models.ngram.smoothing import Smoother
from lm.models.ngram.backoff import backoff_trace
from lm.models.ngram.scoring import HistoryModel
from lm.models.ngram.storage import checkpoint_tensors, tables_from_tensors
from lm.models.trace import NgramTrace

SMOOTHINGS = FAMILIES["ngram"].choices["smoothing"]
DEFAULT_K = 0.01
DEFAULT_ALPHA = 0.4


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

    def describe(self) -> str:
        return f"order-{self.order} n-gram ({self.smoothing})"


# ---------------------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------------------
class NgramModel(HistoryModel):
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
        self._s = Smoother(config, tables)  # the probabilities, and the only mutable state (caches)

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
    def max_order(self) -> int:
        """The highest order counted (every view of these counts can use any order up to it)."""
        return self._t.max_order

    @property
    def num_tokens(self) -> int:
        """Training tokens counted."""
        return self._t.num_tokens

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
        cid = self._s.lookup_context(context)
        empty = (np.zeros(0, np.int64), np.zeros(0, np.int64))
        if cid < 0:
            return empty
        level = self._t.levels[len(context) + 1]
        a, b = level.offsets[cid], level.offsets[cid + 1]
        return level.tok[a:b].copy(), level.raw.counts[a:b].copy()

    # -- persistence ----------------------------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The count tensors of the orders this view uses (a view of order k saves orders 1..k), in the
        compact format of `lm.models.ngram.storage` (the n-gram tables only, narrow integer types)."""
        return checkpoint_tensors(self._t.primary, self.config.order)

    @classmethod
    def from_state(cls, config: ModelConfig, tensors: dict[str, torch.Tensor]) -> NgramModel:
        if not isinstance(config, NgramConfig):
            raise LMError("an n-gram model needs an NgramConfig")
        return cls(config, tables_from_tensors(config.vocab_size, tensors))

    # -- inspection path ------------------------------------------------------------------------------
    def trace(self, ids: torch.Tensor, token_strings: Sequence[str] | None = None) -> NgramTrace:
        """The back-off path behind every prediction of ids[T] (optionally `token_strings[v]` for notes)."""
        if isinstance(ids, torch.Tensor) and ids.dim() == 2 and ids.shape[0] == 1:
            ids = ids[0]
        x = self._check_ids(ids, 1, "trace ids")
        if x.size < 1:
            raise LMError("trace needs at least one token")
        if token_strings is not None and len(token_strings) != self.vocab_size:
            raise LMError(f"token_strings must have one entry per vocabulary id ({self.vocab_size})")
        return backoff_trace(self._s, x, token_strings)


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
