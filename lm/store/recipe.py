"""Zoo recipes: a shipped n-gram is a `recipe.json` (corpus, tokenizer, order, smoothing) counted on first use.

Counting lives here, below training, because the registry builds recipes when a model is first named;
`lm.train.ngram` adds the held-out evaluation on top for models a user trains.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from lm.data.corpus import load_corpus
from lm.data.tokenizer import Tokenizer, make_tokenizer
from lm.models.ngram.model import NgramModel
from lm.store.checkpoint import LoadedModel, load_checkpoint, save_checkpoint
from lm.store.paths import RECIPE_FILE, TOKENIZER_FILE



def count_ngram(recipe: dict[str, Any], tokenizer_path: Path | None = None):
    """Count an n-gram model as `recipe` says (corpus, tokenizer, vocab_size, order, smoothing, max_chars).

    Returns (model, tokenizer, meta, split): meta says how it was made; nothing is scored.
    """
    started = time.perf_counter()
    corpus = load_corpus(recipe.get("corpus", "shakespeare"), max_chars=recipe.get("max_chars"))
    split = corpus.split(test_every=recipe.get("test_every"))  # zoo recipes: two parts, as they were counted
    if tokenizer_path is not None:
        tokenizer = Tokenizer.load(tokenizer_path)
    else:
        tokenizer = make_tokenizer(recipe.get("tokenizer", "char"), corpus.text, split.train.text,
                                   recipe.get("vocab_size"))
    # One stream, separators included: a names model must learn that a name ends with a newline.
    ids = tokenizer.encode_array(split.train.text)
    model = NgramModel.build(ids, tokenizer.vocab_size, order=int(recipe.get("order", 5)),
                             smoothing=recipe.get("smoothing", "kneser_ney"))
    meta = {
        "corpus": {"name": corpus.name, "split": split.info},
        "training": {"method": "counting", "seconds": round(time.perf_counter() - started, 2), "tokens": len(ids)},
        "metrics": {},
    }
    return model, tokenizer, meta, split


def recipe_settings(recipe: dict[str, Any]) -> dict[str, Any]:
    """The flat settings `count_ngram` takes, from a recipe.json (which reads like a config.json)."""
    model, tokenizer = recipe.get("model", {}), recipe.get("tokenizer", {})
    return {"corpus": recipe.get("corpus", {}).get("name", "shakespeare"), "tokenizer": tokenizer.get("kind", "char"),
            "vocab_size": tokenizer.get("vocab_size"), "order": model.get("order", 5),
            "smoothing": model.get("smoothing", "kneser_ney")}


def read_recipe(path: Path) -> dict[str, Any]:
    return json.loads((path / RECIPE_FILE).read_text(encoding="utf-8"))


def build_from_recipe(path: Path, destination: Path) -> LoadedModel:
    """Build the model a zoo recipe describes and save it at `destination`."""
    recipe = read_recipe(path)
    tokenizer_path = path / TOKENIZER_FILE if (path / TOKENIZER_FILE).is_file() else None
    model, tokenizer, meta, _ = count_ngram(recipe_settings(recipe), tokenizer_path=tokenizer_path)
    meta.update({"recipe": recipe, "description": recipe.get("description", ""), "metrics": recipe.get("metrics", {})})
    save_checkpoint(destination, model, tokenizer, meta)
    return load_checkpoint(destination, name=path.name)
