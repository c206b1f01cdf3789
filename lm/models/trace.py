"""What the inspection path returns: one plain dataclass per family, tensors with named axes.

These are the only objects the app's internals pages read. They hold CPU tensors (or numpy arrays) and
nothing that refers back to the model, so a trace can be cached, serialised to JSON (`to_json`) or plotted.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch


def _plain(value: Any) -> Any:
    """Turn tensors/arrays/dataclasses into JSON-friendly lists and dicts."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().tolist()
    if hasattr(value, "tolist"):
        return value.tolist()
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@dataclasses.dataclass
class AttentionTrace:
    """Transformer internals for one sequence of T tokens."""

    attention: torch.Tensor  # [layers, heads, query T, key T], rows sum to 1, zero above the diagonal
    head_output_norm: torch.Tensor | None  # [layers, heads, T]: L2 norm of each head's output
    logits: torch.Tensor  # [T, V]
    kind: str = "attention"

    def to_json(self) -> dict[str, Any]:
        return _plain(self)


@dataclasses.dataclass
class RecurrentTrace:
    """RNN/GRU/LSTM internals for one sequence of T tokens.

    `states` maps a name to a tensor [layers, T, hidden units]. LSTM: input, forget, cell_candidate (g),
    output, cell (c), hidden (h). GRU: reset, update, candidate (n), hidden (h). Elman RNN: hidden.
    """

    cell: str  # "rnn" | "gru" | "lstm"
    states: dict[str, torch.Tensor]
    logits: torch.Tensor  # [T, V]
    kind: str = "recurrent"

    def to_json(self) -> dict[str, Any]:
        return _plain(self)


@dataclasses.dataclass
class NgramOrderRow:
    """How one order k contributed to p(target | context) at one position."""

    order: int  # n-gram order k (context of k-1 tokens)
    context: list[int]  # the k-1 context ids
    context_count: float  # c(context), or continuation total for lower orders under Kneser-Ney
    target_count: float  # c(context, target) (or its continuation count)
    distinct_continuations: int  # N1+(context •)
    probability: float  # p_k(target | context) after smoothing at this order
    weight: float  # interpolation weight / back-off factor applied to the lower order (gamma, alpha)


@dataclasses.dataclass
class NgramTrace:
    """N-gram internals: for every position, the back-off path behind p(next token)."""

    order: int
    smoothing: str
    rows: list[list[NgramOrderRow]]  # [T-1][orders, highest first] for predicting token t+1
    probabilities: torch.Tensor  # [T, V] next-token distribution after each position
    notes: list[str]  # plain-language explanations (e.g. why an MLE probability is zero)
    kind: str = "ngram"

    def to_json(self) -> dict[str, Any]:
        return _plain(self)
