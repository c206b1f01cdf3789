"""A corpus as documents, and the by-document split: whole documents are held out, so a validation score
measures text the model never saw (not neighbouring lines of the same scene)."""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any

from lm.errors import LMError

DEFAULT_VALID_EVERY = 10


@dataclasses.dataclass(frozen=True)
class Document:
    """One unit of a corpus (a play, a name, a source file, a chunk of user text); never split for validation."""

    title: str
    text: str
    source: str = ""  # where it came from (a file path relative to its package), for display only


@dataclasses.dataclass(frozen=True)
class Corpus:
    """Named, ordered documents. `text` joins them with `separator`; `len(corpus)` is `len(corpus.text)`."""

    name: str
    documents: tuple[Document, ...]
    separator: str = "\n\n"
    description: str = ""

    def __post_init__(self) -> None:
        docs = tuple(self.documents)
        if not docs:
            raise LMError(f"corpus '{self.name}' has no documents")
        if not all(isinstance(d, Document) for d in docs):
            raise TypeError("Corpus documents must be Document instances")
        object.__setattr__(self, "documents", docs)  # frozen: lists become tuples so corpora can be shared

    @functools.cached_property
    def text(self) -> str:
        return self.separator.join(d.text for d in self.documents)

    def __len__(self) -> int:
        return len(self.text)

    @property
    def num_documents(self) -> int:
        return len(self.documents)

    def split(self, valid_every: int = DEFAULT_VALID_EVERY) -> "CorpusSplit":
        """Deterministic train/validation split by document; validation is never empty.

        With at least `valid_every` documents, document i (counting from 0) is held out when
        ``i % valid_every == valid_every - 1``. With fewer, the text is cut once near 90% at a paragraph
        boundary (else a line break, a space, a character) and the tail validates. `info` records the rule,
        the held-out titles and sizes, to be stored in model metadata.
        """
        if isinstance(valid_every, bool) or not isinstance(valid_every, int) or valid_every < 2:
            raise LMError(f"valid_every must be a whole number of at least 2, got {valid_every!r}")
        held = [d for i, d in enumerate(self.documents) if i % valid_every == valid_every - 1]
        kept = [d for i, d in enumerate(self.documents) if i % valid_every != valid_every - 1]
        if held and self.separator.join(d.text for d in held).strip():
            train = Corpus(f"{self.name} (train)", tuple(kept), self.separator, self.description)
            valid = Corpus(f"{self.name} (valid)", tuple(held), self.separator, self.description)
            info = {
                "corpus": self.name,
                "method": "by_document",
                "rule": (f"document i (0-based, in corpus order) is held out for validation when "
                         f"i % {valid_every} == {valid_every - 1}"),
                "valid_every": valid_every,
                "documents": len(self.documents),
                "train_documents": len(kept),
                "valid_documents": [d.title for d in held],
                "train_chars": len(train.text),
                "valid_chars": len(valid.text),
            }
            return CorpusSplit(train, valid, info)
        return self._split_by_cut(valid_every)

    def _split_by_cut(self, valid_every: int) -> "CorpusSplit":
        text = self.text
        cut, resume, boundary = _find_cut(text, 0.9)
        train_text, valid_text = text[:cut], text[resume:]
        if not train_text.strip() or not valid_text.strip():
            raise LMError(f"corpus '{self.name}' is too short to split into training and validation text")
        title = self.documents[0].title if len(self.documents) == 1 else self.name
        train = Corpus(f"{self.name} (train)", (Document(f"{title} (first part)", train_text),),
                       self.separator, self.description)
        valid = Corpus(f"{self.name} (valid)", (Document(f"{title} (last part)", valid_text),),
                       self.separator, self.description)
        why = "a single document" if len(self.documents) == 1 else f"fewer than {valid_every} documents"
        info = {
            "corpus": self.name,
            "method": "text_cut",
            "rule": (f"{why}: the text is cut once near 90% at a {boundary} boundary; "
                     f"the part before trains, the part after validates"),
            "valid_every": valid_every,
            "documents": len(self.documents),
            "train_documents": 1,
            "valid_documents": [],
            "cut_at_char": cut,
            "cut_boundary": boundary,
            "train_chars": len(train_text),
            "valid_chars": len(valid_text),
        }
        return CorpusSplit(train, valid, info)


@dataclasses.dataclass(frozen=True)
class CorpusSplit:
    train: Corpus
    valid: Corpus
    info: dict[str, Any]


def _find_cut(text: str, fraction: float) -> tuple[int, int, str]:
    """(end of train part, start of valid part, boundary kind) for a cut near `fraction` of `text`."""
    n = len(text)
    target = int(n * fraction)
    lo, hi = int(n * 0.5), max(int(n * 0.98), 1)
    for boundary, pattern in (("paragraph", r"\n[ \t]*\n\s*"), ("line", r"\n+"), ("space", r"\s+")):
        best = None
        for m in re.finditer(pattern, text[lo:hi]):
            start = lo + m.start()
            if best is None or abs(start - target) < abs(best[0] - target):
                best = (start, lo + m.end())
            if start > target:
                break
        if best is not None and best[0] > 0 and best[1] < n:
            return best[0], best[1], boundary
    cut = min(max(target, 1), n - 1) if n >= 2 else n
    return cut, cut, "character"


# -- locating package data without importing the package ------------------------------------------
