"""What the "Why this token?" page computes, as plain functions (no Streamlit): a text's attribution at every
position, positions matched across tokenizers, the next-token distribution and a continuation with and without
an ablation, and the ablation choices a model offers.

Occlusion is computed once per (model, text, ablation) for every position (`lm.inspect.attribution.
occlusion_matrix`), so the page's position slider only reads a row; integrated gradients are per position.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import torch

from lm.errors import LMError
from lm.inspect.ablation import Ablation, ablated
from lm.inspect.attribution import neutral_token, occlusion_matrix
from lm.inspect.explain import explain_cap
from lm.inspect.text import cut_note, inspect_text
from lm.run.generate import collect, generate
from lm.run.sampling import SamplingSettings
from lm.store.checkpoint import LoadedModel

CONTINUATION_TOKENS = 60  # tokens generated after the explained token, with and without the ablation


@dataclasses.dataclass
class AttributedText:
    """A text as one model reads it, with the occlusion attribution of every position."""

    tokens: list[str]  # display text of each token
    pieces: list[str]  # the exact text each token paints
    ids: list[int]
    spans: list[tuple[int, int]]  # [start, end) characters of each token
    text: str  # the text the tokens cover
    neutral: str  # display text of the neutral token
    occlusion: np.ndarray  # [T, T]: row p, column j < p (see occlusion_matrix)
    cut: tuple[int, int, bool, bool] | None = None  # where the text was cut (`lm.inspect.text.Inspection.cut`)

    @property
    def note(self) -> str:
        """Where the text was cut, in the current language ('' when it was not): the page caches this object."""
        return cut_note(self.cut)


def attribute_text(loaded: LoadedModel, text: str, ablation: Ablation | None = None) -> AttributedText:
    """Tokenize `text` for `loaded` (at most `explain_cap` tokens) and attribute every position by occlusion."""
    found = inspect_text(loaded, text, max_tokens=explain_cap(loaded.model))
    if len(found.ids) < 2:
        raise LMError("explaining a token needs a text of at least two tokens (one to predict from)")
    neutral = neutral_token(loaded.tokenizer)
    matrix = occlusion_matrix(loaded.model, found.ids, neutral, ablation)
    return AttributedText(found.tokens, found.pieces, found.ids, found.spans, found.text,
                          loaded.tokenizer.token_strings([neutral])[0], matrix, found.cut)


def align(spans: Sequence[tuple[int, int]], index: int, other: Sequence[tuple[int, int]]) -> int:
    """The token of `other` (spans of another tokenization of the same text) that holds the first character
    of token `index` of `spans`, so a char and a BPE model explain the same spot; at least 1, so it has context."""
    start = spans[index][0]
    for j, (s, e) in enumerate(other):
        if s <= start < e:
            return max(1, j)
    return max(1, len(other) - 1)  # past the other model's cap: its last token


@torch.inference_mode()
def next_distribution(model, ids: Sequence[int], position: int, ablation: Ablation | None = None) -> np.ndarray:
    """p(next token | ids[:position]) as [V] under `model` with `ablation` switched off."""
    view = ablated(model, ablation)
    batch = torch.tensor([list(ids)[:position]], dtype=torch.long, device=model.device)
    logits, _ = view.prefill(batch, view.start(1))
    return torch.softmax(logits[0].float(), dim=-1).cpu().numpy()


def continuation(loaded: LoadedModel, prompt: str, seed: int, ablation: Ablation | None = None,
                 tokens: int = CONTINUATION_TOKENS) -> str:
    """`tokens` sampled after `prompt` with `seed` (temperature 0.8, as the Playground starts), by the model
    with `ablation` switched off: the same seed gives the same draws, so any difference is the ablation's."""
    settings = SamplingSettings(temperature=0.8, max_new_tokens=tokens, seed=seed)
    view = ablated(loaded.model, ablation)
    return collect(generate(view, loaded.tokenizer, prompt, settings)).texts[0]


def ablation_choices(model) -> list[str]:
    """What the page offers to switch off, in `parse_ablation`'s spelling: every head "L.H" and every layer's
    whole attention "L.attn" and MLP "L.mlp" of a Transformer; nothing for other families (an RNN's units are
    typed, there are hundreds)."""
    if model.family != "transformer":
        return []
    c = model.config
    return [f"{layer}.{part}" for layer in range(c.n_layers)
            for part in [*map(str, range(c.n_heads)), "attn", "mlp"]]


__all__ = ["AttributedText", "CONTINUATION_TOKENS", "ablation_choices", "align", "attribute_text", "continuation",
           "next_distribution"]
