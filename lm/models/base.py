"""The one contract every model family implements (n-gram, RNN family, Transformer).

A model maps token ids to next-token logits. It offers two paths over the same parameters:

- the incremental path used by generation: `start(batch_size)` gives a fresh state, `step(tokens[B], state)`
  returns `(logits[B, V], new_state)` in O(1) per token for n-gram and RNN models (a KV cache for the
  Transformer). `prefill(ids[B, T], state)` feeds a whole prompt at once (default: one `step` per token);
- the full-sequence path used by scoring and training: `logits(ids[B, T]) -> [B, T, V]`, where position t
  predicts token t + 1.

`trace(ids[T])` is the opt-in inspection path: it returns a plain dataclass of internals (attention
probabilities, gate activations, n-gram back-off rows) computed by re-running the same weights explicitly.

Models are shared read-only across threads and sessions: no method may mutate the model, store activations
on it, register hooks or touch a global RNG. State objects belong to the caller.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch


@dataclasses.dataclass
class ModelConfig:
    """Hyper-parameters of one family; serialised into `config.json` with `family` as discriminator."""

    family: ClassVar[str] = ""
    vocab_size: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def describe(self) -> str:
        """The model's shape in a few words, for model lists ("LSTM 2x256")."""
        return self.family


class LanguageModel(ABC):
    """Next-token prediction over a fixed vocabulary, with incremental state and an inspection path."""

    config: ModelConfig

    @property
    def family(self) -> str:
        return self.config.family

    @property
    def vocab_size(self) -> int:
        return self.config.vocab_size

    @property
    def context_length(self) -> int | None:
        """Tokens of history the model can see (None: unbounded, as for an RNN's state)."""
        return None

    @property
    def state_capacity(self) -> int | None:
        """Tokens the incremental state can hold before generation must rebuild it from a shorter window
        (a Transformer's KV cache). None: the state never fills (an RNN's (h, c), an n-gram's last n-1 ids)."""
        return None

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    # -- incremental path -------------------------------------------------------------------------
    @abstractmethod
    def start(self, batch_size: int) -> Any:
        """A fresh state for `batch_size` parallel sequences (nothing seen yet)."""

    @abstractmethod
    def step(self, tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """Feed one token per row (`tokens`: LongTensor[B]); return float logits[B, V] and the new state."""

    def prefill(self, ids: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """Feed `ids[B, T]` (T >= 1) and return the logits after the last one, and the new state."""
        logits = None
        for t in range(ids.shape[1]):
            logits, state = self.step(ids[:, t], state)
        return logits, state

    # -- full-sequence path -----------------------------------------------------------------------
    @abstractmethod
    def logits(self, ids: torch.Tensor) -> torch.Tensor:
        """logits[B, T, V] for `ids[B, T]`: row t is the distribution of the token after ids[:, t]."""

    def target_logprobs(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For `ids[B, T]`: (log p(ids[:, t+1] | ids[:, :t+1]) as [B, T-1], rank of that token [B, T-1]).

        Rank 1 means the model's top choice. Families may override with something faster than full logits.
        """
        logprobs = torch.log_softmax(self.logits(ids[:, :-1]).float(), dim=-1)  # [B, T-1, V]
        target = ids[:, 1:].unsqueeze(-1)  # [B, T-1, 1]
        chosen = logprobs.gather(-1, target)  # [B, T-1, 1]
        rank = (logprobs > chosen).sum(-1) + 1  # [B, T-1]
        return chosen.squeeze(-1), rank

    # -- inspection path --------------------------------------------------------------------------
    @abstractmethod
    def trace(self, ids: torch.Tensor) -> Any:
        """Internals for one sequence `ids[T]` (a family-specific dataclass, see `lm.inspect.text`)."""

    # -- persistence ------------------------------------------------------------------------------
    @abstractmethod
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Every tensor needed to rebuild the model from its config (saved as model.safetensors)."""

    @classmethod
    @abstractmethod
    def from_state(cls, config: ModelConfig, tensors: dict[str, torch.Tensor]) -> "LanguageModel":
        """Rebuild a model from its config and `state_tensors()`; raise LMError on mismatched shapes."""

    def num_parameters(self) -> int:
        return sum(int(t.numel()) for t in self.state_tensors().values())
