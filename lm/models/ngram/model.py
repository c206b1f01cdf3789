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
Scoring (`target_logprobs`) works on arrays: the history walk and the target lookups are vectorised (dense
key -> id tables for the orders whose key range is small, `searchsorted` for the others), and the full rows
needed for ranks are built order by order over the *distinct* contexts only. The incremental path (`step`)
keeps LRU caches of finished rows per history and of rows per (order, context), so sampling mostly costs a
dictionary lookup. One function per path implements each smoothing rule with the same float operations in
the same order, so the step, logits and scoring paths agree bit for bit.

Files: this one is the `LanguageModel` contract (input checks, state, shapes); `ngram_smoothing.Smoother`
computes the probabilities and owns the caches, the only mutable parts of a model (each behind a lock, so
one model can serve many threads); `ngram_counts` builds the count tables; `ngram_trace` is the inspection
path.
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
from lm.models.base import LanguageModel, ModelConfig
from lm.models.ngram.counts import MAX_ORDER, _count, _Tables, kn_discounts
from lm.models.ngram.smoothing import Smoother
from lm.models.ngram.backoff import backoff_trace
from lm.models.trace import NgramTrace

SMOOTHINGS = FAMILIES["ngram"].choices["smoothing"]
DEFAULT_K = 0.01
DEFAULT_ALPHA = 0.4
_CHUNK_FLOATS = 1 << 21  # rows built at once on the batched paths


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
        cid = self._s.lookup_context(context)
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
            logits = torch.from_numpy(self._s.history_row(histories[0])[None].copy())
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
            out[i] = self._s.history_row(h)
        return torch.from_numpy(out)

    # -- full-sequence path ---------------------------------------------------------------------------
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
            rows, _ = self._s.state_rows(self._s.windows(x, flat))
            with np.errstate(divide="ignore"):
                out[s:s + flat.size] = np.log(rows)
        return torch.from_numpy(out).reshape(B, T, self.vocab_size)

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
            win = self._s.windows(x, flat)
            sl = slice(s, s + q.size)
            if ranks or self.config.smoothing == "stupid_backoff":
                rows, (top, _, _, ctx) = self._s.state_rows(win)
                chosen = rows[np.arange(q.size), target]
                if ranks:
                    rk[sl] = (rows > chosen[:, None]).sum(axis=1) + 1
                if self.config.smoothing == "stupid_backoff":
                    prob = chosen / rows.sum(axis=1)
                else:
                    prob = self._s.target_probs(ctx, top, target)
            else:
                top, _, _, ctx = self._s.walk(win)
                prob = self._s.target_probs(ctx, top, target)
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
