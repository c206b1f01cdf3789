"""A neural model's input embedding table in two dimensions, tokens classed by what they are, and neighbours.

- `embedding_projection`: PCA of the table (NumPy's SVD of the centred rows; no extra library), one point per
  token, with its class (`token_class`: vowel, consonant, capital, digit, punctuation, whitespace, other) and,
  when the model's training corpus is known, its frequency there (the colouring that makes sense for BPE,
  where most tokens are pieces of words). The explained share of variance says how much of the table two
  axes can show.
- `nearest_neighbours`: the tokens whose embeddings point the most the same way (cosine similarity in the
  full space, not the projection).
"""

from __future__ import annotations

import dataclasses
import string
import unicodedata

import numpy as np
import torch

from lm.errors import LMError
from lm.inspect.ablation import family_label
from lm.store.provenance import model_corpus

TOKEN_CLASSES = ("vowel", "consonant", "capital", "digit", "punctuation", "whitespace", "other")
VOWELS = frozenset("aeiouyàáâäèéêëìíîïòóôöùúûü")
FREQUENCY_CHARS = 200_000  # training characters counted for the token frequencies


def token_class(piece: str) -> str:
    """The class of a token's text (its first non-space character decides for BPE pieces like ' the';
    a piece of nothing but whitespace is whitespace)."""
    text = piece.strip() or piece
    if not text:
        return "other"
    ch = text[0]
    if ch.isspace():
        return "whitespace"
    if ch.isdigit():
        return "digit"
    if ch.isalpha():
        if ch.isupper():
            return "capital"
        return "vowel" if ch.lower() in VOWELS else "consonant"
    if unicodedata.category(ch).startswith(("P", "S")) or ch in string.punctuation:
        return "punctuation"
    return "other"


def embedding_table(model) -> torch.Tensor:
    """The input embedding table [V, E] of a neural model (a Transformer's wte, an RNN's embed)."""
    if model.family == "transformer":
        return model.wte.weight
    if model.family == "rnn":
        return model.embed.weight
    raise LMError(f"{family_label(model)} models have no embedding table (they count, they do not embed)")


@dataclasses.dataclass
class EmbeddingProjection:
    """Every token of the vocabulary as a point of the table's first two principal components."""

    pieces: list[str]  # display text of each token id
    classes: list[str]  # token_class of each
    xy: np.ndarray  # [V, 2]
    explained: tuple[float, float]  # share of the table's variance along each axis
    frequency: np.ndarray | None  # [V] count in (the start of) the training text, when it is known


def _pca(table: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    centred = table - table.mean(0, keepdims=True)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    var = s ** 2
    total = float(var.sum()) or 1.0
    comps = vt[:2]
    xy = centred @ comps.T
    for i in range(comps.shape[0]):  # a sign convention, so a table projects the same way every time
        if xy[np.argmax(np.abs(xy[:, i])), i] < 0:
            xy[:, i] = -xy[:, i]
    if xy.shape[1] < 2:
        xy = np.pad(xy, ((0, 0), (0, 2 - xy.shape[1])))
    shares = (var[:2] / total).tolist() + [0.0, 0.0]
    return xy, (shares[0], shares[1])


def token_frequencies(loaded, max_chars: int = FREQUENCY_CHARS) -> np.ndarray | None:
    """How often each token occurs in the start of the model's training text (None if the corpus is unknown)."""
    try:
        text = model_corpus(loaded.meta, loaded.name).split().train.text[:max_chars]
    except LMError:  # GPT-2, a corpus file gone: no frequencies, the classes still colour
        return None
    ids = np.asarray(loaded.tokenizer.encode(text), dtype=np.int64)
    return np.bincount(ids, minlength=loaded.model.vocab_size)[:loaded.model.vocab_size]


def embedding_projection(loaded, frequencies: bool = True) -> EmbeddingProjection:
    """The PCA projection of `loaded.model`'s input embeddings (a `LoadedModel`), tokens labelled and classed."""
    table = embedding_table(loaded.model).detach().double().cpu().numpy()
    vocab = min(table.shape[0], loaded.tokenizer.vocab_size)  # a padded GPT-2 table has rows without a token
    pieces = loaded.tokenizer.token_strings(list(range(vocab)))
    xy, explained = _pca(table[:vocab])
    freq = token_frequencies(loaded) if frequencies else None
    return EmbeddingProjection(pieces, [token_class(p) for p in pieces], xy, explained,
                               None if freq is None else freq[:vocab])


def nearest_neighbours(model, token: int, k: int = 8) -> list[tuple[int, float]]:
    """The `k` tokens whose embeddings have the highest cosine similarity with `token`'s (itself left out)."""
    table = embedding_table(model).detach().double().cpu().numpy()
    if isinstance(token, bool) or not isinstance(token, (int, np.integer)) or not 0 <= token < table.shape[0]:
        raise LMError(f"token id must be from 0 to {table.shape[0] - 1}, not {token!r}")
    unit = table / np.maximum(np.linalg.norm(table, axis=1, keepdims=True), 1e-12)
    cosine = unit @ unit[int(token)]
    cosine[int(token)] = -np.inf
    order = np.argsort(-cosine, kind="stable")[:k]
    return [(int(i), float(cosine[i])) for i in order]


__all__ = ["EmbeddingProjection", "FREQUENCY_CHARS", "TOKEN_CLASSES", "VOWELS", "embedding_projection",
           "embedding_table", "nearest_neighbours", "token_class", "token_frequencies"]
