""""Why this token?": one call that explains a model's log-probability of one token of a text.

`explain(loaded, text, position, ablation)` tokenizes the text as the inspection pages do, switches off what
`ablation` names (`lm.inspect.ablation`) and returns an `Explanation`: the token and its log-probability
under the (ablated) model, occlusion attribution for every family and integrated gradients for the neural
ones (`lm.inspect.attribution`), and for a Transformer the logit lens (`lm.inspect.lens`). `to_json()` is what
`python -m lm explain --json` prints:

    from lm.store.registry import load_model
    from lm.inspect.explain import explain
    e = explain(load_model("shakespeare-char-lstm"), "ROMEO:\\nBut soft, what light")
    e.occlusion            # one value per context token, oldest first; the last is the token just before
    e.integrated.completeness_error

The other figures' data come from the modules' own functions: `occlusion_matrix` (every position at once),
`transformer_steps`, `embedding_projection`, `nearest_neighbours`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from lm.inspect.ablation import Ablation, check_ablation
from lm.inspect.attribution import (DEFAULT_STEPS, IntegratedGradients, check_position, integrated_gradients,
                                    neutral_token, occlusion, target_logprob)
from lm.inspect.lens import LogitLens, logit_lens
from lm.inspect.text import inspect_text, trace_cap

MAX_EXPLAIN_TOKENS = 256  # occlusion runs T texts of T tokens: the cost grows with the square of the length


def explain_cap(model) -> int:
    """How many tokens of a text `explain` reads for `model`."""
    return min(trace_cap(model), MAX_EXPLAIN_TOKENS)


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


@dataclasses.dataclass
class Explanation:
    """Why `model` gave the token at `position` the log-probability it did (see the module)."""

    model: str
    family: str
    tokens: list[str]  # display text of each token
    ids: list[int]
    position: int  # index of the explained token (its context is tokens[:position])
    logprob: float  # log p(token | context), nats, under the ablated model
    neutral: str  # display text of the token occlusion puts in
    ablation: Ablation
    occlusion: np.ndarray  # [position] nats, oldest first
    integrated: IntegratedGradients | None  # neural families
    lens: LogitLens | None  # Transformers
    note: str = ""  # where the text was cut, if it was
    vocabulary: list[str] = dataclasses.field(default_factory=list, repr=False)  # display text of every id

    @property
    def target(self) -> str:
        return self.tokens[self.position]

    def piece(self, token_id: int) -> str:
        """Display text of a token id (a padded GPT-2 row has none: shown by its number)."""
        return self.vocabulary[token_id] if 0 <= token_id < len(self.vocabulary) else f"<{token_id}>"

    def to_json(self) -> dict[str, Any]:
        """What `python -m lm explain --json` prints (an infinite change, an MLE n-gram's, is null: JSON has no
        infinity)."""
        attribution: dict[str, Any] = {"occlusion": [_finite(v) for v in self.occlusion]}
        if self.integrated is not None:
            attribution["integrated_gradients"] = [_finite(v) for v in self.integrated.attribution]
            attribution["completeness_error"] = _finite(self.integrated.completeness_error)
            attribution["baseline_logprob"] = _finite(self.integrated.baseline_logprob)
            attribution["steps"] = self.integrated.steps
        data = {"model": self.model, "family": self.family, "tokens": self.tokens, "ids": self.ids,
                "position": self.position, "target": self.target, "logprob": _finite(self.logprob),
                "neutral_token": self.neutral, "ablation": self.ablation.to_json(), "attribution": attribution,
                "note": self.note}
        if self.lens is not None:
            data["logit_lens"] = {
                "layers": self.lens.layers,
                "top": [[[{"token": self.piece(int(i)), "prob": float(p)} for i, p in zip(ids, probs)]
                         for ids, probs in zip(layer_ids, layer_probs)]
                        for layer_ids, layer_probs in zip(self.lens.top_ids, self.lens.top_probs)],
                "target_prob": [_finite(p) for p in self.lens.probs[:, self.position - 1]],
            }
        return data

    def describe(self) -> str:
        """The explanation as a few lines of text (the CLI without --json)."""
        off = f", switched off: {self.ablation.describe()}" if self.ablation else ""
        lines = [f"{self.model}: why {self.target!r} at position {self.position} "
                 f"(log p = {self.logprob:.3f} nats{off})"]
        order = np.argsort(-np.abs(self.occlusion), kind="stable")[:8]
        lines.append(f"occlusion (nats lost when a token becomes {self.neutral!r}), strongest first:")
        lines += [f"  {j:4d} {self.tokens[j]!r:>12} {self.occlusion[j]:+.3f}" for j in order]
        if self.integrated is not None:
            ig = self.integrated
            lines.append(f"integrated gradients: completeness error {ig.completeness_error:.1%} "
                         f"after {ig.steps} steps (baseline log p = {ig.baseline_logprob:.3f})")
            lines += [f"  {j:4d} {self.tokens[j]!r:>12} {ig.attribution[j]:+.3f}"
                      for j in np.argsort(-np.abs(ig.attribution), kind="stable")[:8]]
        if self.lens is not None:
            at = self.position - 1
            lines.append(f"logit lens at position {at} (top prediction after each layer):")
            lines += [f"  {name:>10}: {self.piece(int(self.lens.top_ids[d, at, 0]))!r} "
                      f"{self.lens.top_probs[d, at, 0]:.0%}" for d, name in enumerate(self.lens.layers)]
        if self.note:
            lines.append(f"note: {self.note}")
        return "\n".join(lines)


def explain(loaded, text: str, position: int | None = None, ablation: Ablation | None = None,
            steps: int = DEFAULT_STEPS) -> Explanation:
    """Explain the token at `position` (default: the last) of `text` under `loaded` (a `LoadedModel`)."""
    model, tokenizer = loaded.model, loaded.tokenizer
    ablation = ablation or Ablation()
    check_ablation(model, ablation)
    found = inspect_text(loaded, text, max_tokens=explain_cap(model))
    ids = found.ids
    position = check_position(ids, position)
    neutral = neutral_token(tokenizer)
    integrated = None
    if model.family in ("rnn", "transformer"):
        integrated = integrated_gradients(model, ids, position, neutral, ablation, steps=steps)
    lens = logit_lens(model, ids, ablation) if model.family == "transformer" else None
    return Explanation(
        model=loaded.name, family=model.family, tokens=found.tokens, ids=ids, position=position,
        logprob=target_logprob(model, ids, position, ablation), neutral=tokenizer.token_strings([neutral])[0],
        ablation=ablation, occlusion=occlusion(model, ids, position, neutral, ablation), integrated=integrated,
        lens=lens, note=found.note,
        vocabulary=tokenizer.token_strings(list(range(min(model.vocab_size, tokenizer.vocab_size)))))


__all__ = ["Explanation", "MAX_EXPLAIN_TOKENS", "explain", "explain_cap"]
