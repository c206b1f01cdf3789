"""Producing models: counting n-gram tables now; gradient training of the neural families joins here.

Every way of making a model returns (model, tokenizer, meta) where `meta` is the part of config.json that
says how the model was made: corpus and split, tokenizer, settings, held-out metrics.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from lm.corpus import load_corpus
from lm.errors import LMError
from lm.metrics import score
from lm.tokenizer import Tokenizer

VALID_SCORE_CHARS = 200_000  # held-out text scored for the recorded metrics (enough for 2-3 decimals)


def make_tokenizer(kind: str, corpus_text: str, train_text: str, vocab_size: int | None = None) -> Tokenizer:
    """A character tokenizer over the whole corpus's alphabet, or a byte-level BPE trained on train text."""
    if kind == "char":
        return Tokenizer.char(corpus_text)
    if kind == "bpe":
        return Tokenizer.bpe(train_text, vocab_size or 2048)
    raise LMError(f"unknown tokenizer {kind!r} (use 'char' or 'bpe')")


def held_out_metrics(model, tokenizer, valid_text: str, max_chars: int = VALID_SCORE_CHARS) -> dict[str, float]:
    """Bits and nats per character of (the start of) the held-out text."""
    result = score(model, tokenizer, valid_text[:max_chars])
    return {
        "valid_bits_per_char": round(result.bits_per_char, 4),
        "valid_nats_per_char": round(result.bits_per_char * math.log(2), 4),
        "valid_chars_scored": result.characters,
    }


def build_ngram(recipe: dict[str, Any], tokenizer_path: Path | None = None):
    """Count an n-gram model as `recipe` says: corpus, tokenizer, vocab_size, order, smoothing."""
    from lm.models.ngram import NgramModel

    started = time.perf_counter()
    corpus = load_corpus(recipe.get("corpus", "shakespeare"))
    split = corpus.split()
    if tokenizer_path is not None:
        tokenizer = Tokenizer.load(tokenizer_path)
    else:
        tokenizer = make_tokenizer(recipe.get("tokenizer", "char"), corpus.text, split.train.text,
                                   recipe.get("vocab_size"))
    ids = tokenizer.encode(split.train.text)
    model = NgramModel.build(ids, tokenizer.vocab_size, order=int(recipe.get("order", 5)),
                             smoothing=recipe.get("smoothing", "kneser_ney"))
    seconds = time.perf_counter() - started
    meta = {
        "corpus": {"name": corpus.name, "split": split.info},
        "training": {"method": "counting", "seconds": round(seconds, 2), "tokens": len(ids)},
        "metrics": held_out_metrics(model, tokenizer, split.valid.text),
    }
    return model, tokenizer, meta
