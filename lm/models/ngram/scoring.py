"""The `LanguageModel` paths every n-gram model shares: input checks, the history state, step/prefill, logits
and scoring. A subclass supplies `self._s`, a scorer over its tables:

- `windows(x, flat)`: the histories [P, order-1] ending at flat positions of x[B, T] (-1 = no token);
- `log_rows(win)`: natural-log rows [P, V] (log-probabilities; stupid back-off: log-scores);
- `score_targets(x, flat, target, ranks)`: (log p(target) [P] float64 for the targets after the histories
  ending at flat positions (t < T-1), if `ranks` rows [P, V] in any scale that keeps their order, else None);
- `history_row(history)`: the cached float32 log row after one history tuple (the step path);
- optionally `text_logprobs(x)`: log p of every next token of x[B, T] at once ([B, T-1] float64, or None where
  the scorer has no such path), which `logprob_of_targets` prefers.

`NgramModel` (counted, `lm.models.ngram.model`) and `ArpaModel` (read from an ARPA file,
`lm.models.ngram.arpa_model`) are the two subclasses; `start_token` is what a fresh history ends with
(-1: nothing; an ARPA model's `<s>`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from lm.errors import LMError
from lm.models.base import LanguageModel

_CHUNK_FLOATS = 1 << 21  # rows built at once on the batched paths


def history_windows(x: np.ndarray, flat: np.ndarray, width: int, start_token: int = -1) -> np.ndarray:
    """Histories [len(flat), width] ending at flat positions (b * T + t) of x[B, T]; positions before the text
    are -1, except the one just before it, which is `start_token`. (A view when the positions are one run
    of one row, as when scoring a text.)"""
    B, T = x.shape
    if width == 0 or flat.size == 0:
        return np.zeros((flat.size, width), dtype=np.int64)
    padded = np.full((B, T + width), -1, dtype=np.int64)
    padded[:, width:] = x
    padded[:, width - 1] = start_token if start_token >= 0 else -1
    view = np.lib.stride_tricks.sliding_window_view(padded, width, axis=1)  # [B, T+1, width]: view[b, t+1] ends at t
    first, last = int(flat[0]), int(flat[-1])
    if first // T == last // T and last - first + 1 == flat.size and bool(np.all(np.diff(flat) == 1)):
        return view[first // T, first % T + 1:last % T + 2]
    return view[flat // T, flat % T + 1]


class HistoryModel(LanguageModel):
    """A model whose state is the last order-1 token ids: everything but the probabilities themselves."""

    start_token = -1

    @property
    def order(self) -> int:
        return self.config.order

    @property
    def context_length(self) -> int | None:
        return self.config.order - 1

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
        state = torch.full((int(batch_size), self.config.order - 1), -1, dtype=torch.long)
        if self.start_token >= 0 and state.shape[1]:
            state[:, -1] = self.start_token
        return state

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
            out[s:s + flat.size] = self._s.log_rows(self._s.windows(x, flat))
        return torch.from_numpy(out).reshape(B, T, self.vocab_size)

    def _score(self, x: np.ndarray, ranks: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """(log p(x[:, t+1] | history) [B, T-1] float64, ranks [B, T-1] int64 or None)."""
        if not ranks:  # the whole-text path, where the scorer has one
            whole = getattr(self._s, "text_logprobs", None)
            lp = whole(x) if whole is not None else None
            if lp is not None:
                return lp, None
        B, T = x.shape
        n = max(T - 1, 0)
        lp = np.empty(B * n, dtype=np.float64)
        rk = np.empty(B * n, dtype=np.int64) if ranks else None
        if n == 0:
            return lp.reshape(B, 0), (rk.reshape(B, 0) if ranks else None)
        # without ranks no row is built: larger chunks amortise the per-order array calls
        step = self._chunk() if ranks else max(self._chunk(), 1 << 16)
        for s in range(0, B * n, step):
            q = np.arange(s, min(B * n, s + step), dtype=np.int64)  # flat index over [B, T-1]
            b, t = q // n, q % n
            target = x[b, t + 1]
            sl = slice(s, s + q.size)
            lp[sl], rows = self._s.score_targets(x, b * T + t, target, ranks)
            if ranks:
                chosen = rows[np.arange(q.size), target]
                rk[sl] = (rows > chosen[:, None]).sum(axis=1) + 1
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


__all__ = ["HistoryModel", "history_windows"]
