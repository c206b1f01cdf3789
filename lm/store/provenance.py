"""Which text a model was made from, read from its metadata: the corpus its config.json names, found by the
path it was read from.

A built-in corpus is known by its name. A user corpus (an upload under `$LM_PLAYGROUND_HOME/corpora/`, or a
file given to the CLI) is recorded twice: `corpus.name` is only the file's name (`poems-1234.txt`), while the
training settings (or the recipe) keep the path it was read from. Looking the name up relative to the working
directory finds nothing, so every view that needs the text (the memorisation meter, the held-out score of
the Counting page, a page's sample text) goes through `model_corpus`.
"""

from __future__ import annotations

from pathlib import Path

from lm.data.corpus import BUILTIN_CORPORA, Corpus, load_corpus
from lm.errors import LMError


def corpus_source(meta: dict) -> tuple[str, str | None, int | None] | None:
    """(corpus name, file path or None, max_chars or None) a model was trained on, from its metadata.

    A built-in corpus is known by name; a user corpus by the path its training settings recorded.
    None when the metadata does not say.
    """
    corpus = meta.get("corpus") if isinstance(meta, dict) else None
    if not isinstance(corpus, dict) or not isinstance(corpus.get("name"), str) or not corpus["name"].strip():
        return None
    training = meta.get("training") if isinstance(meta.get("training"), dict) else {}
    settings = training.get("settings") if isinstance(training.get("settings"), dict) else {}
    recipe = meta.get("recipe") if isinstance(meta.get("recipe"), dict) else {}
    source = settings.get("corpus", recipe.get("corpus"))
    max_chars = settings.get("max_chars", recipe.get("max_chars"))
    path = str(source) if isinstance(source, str) and source != corpus["name"] else None
    return corpus["name"], path, max_chars if isinstance(max_chars, int) and max_chars > 0 else None


def load_source(name: str, path: str | None = None, max_chars: int | None = None) -> Corpus:
    """The corpus `corpus_source` describes: a built-in one by name, a user's file by its recorded path."""
    if name in BUILTIN_CORPORA and path is None:
        return load_corpus(name, max_chars=max_chars)
    if path:
        if not Path(path).is_file():
            raise LMError(f"the training text of {name!r} is no longer at {path}")
        return load_corpus(Path(path), max_chars=max_chars)
    raise LMError(f"the training text of corpus {name!r} is not available")


def model_corpus(meta: dict, model_name: str = "the model") -> Corpus:
    """The corpus a model was trained or counted on (as cut for it by `max_chars`), from its config.json."""
    source = corpus_source(meta)
    if source is None:
        raise LMError(f"{model_name}: config.json does not say which corpus the model was made from")
    return load_source(*source)
