"""A corpus as documents, and the by-document split: whole documents are held out, so a validation score
measures text the model never saw (not neighbouring lines of the same scene).

The split has two parts by default (train / validation, as every shipped model was made) and three with
`test_every` (train / validation / test, as training runs use it): the validation documents are the same
either way, so the zoo's recorded validation scores stay valid; the test documents are carved out of the
training ones (every `test_every`-th of them), scored once at the end of a run and never used to choose
anything."""

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

    def split(self, valid_every: int = DEFAULT_VALID_EVERY, test_every: int | None = None) -> "CorpusSplit":
        """Deterministic train/validation(/test) split by document; validation is never empty.

        With at least `valid_every` documents, document i (counting from 0) is held out when
        ``i % valid_every == valid_every - 1``. With fewer, the text is cut once near 90% at a paragraph
        boundary (else a line break, a space, a character) and the tail validates. `info` records the rule,
        the held-out titles and sizes, to be stored in model metadata.

        `test_every` (None: no test part) then holds out a test part from what would train, leaving the
        validation part exactly as without it: training document j (counting the remaining documents from 0)
        is a test document when ``j % test_every == test_every - 1``; with fewer than `test_every` of them,
        the training text is cut once more, near ``1 - 1/test_every`` of it, and its tail tests.
        """
        if isinstance(valid_every, bool) or not isinstance(valid_every, int) or valid_every < 2:
            raise LMError(f"valid_every must be a whole number of at least 2, got {valid_every!r}")
        if test_every is not None and (isinstance(test_every, bool) or not isinstance(test_every, int)
                                       or test_every < 2):
            raise LMError(f"test_every must be a whole number of at least 2, got {test_every!r}")
        two = self._split_two(valid_every)
        return two if test_every is None else two.with_test(test_every)

    def _split_two(self, valid_every: int) -> "CorpusSplit":
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
    test: Corpus | None = None  # only with `Corpus.split(test_every=...)`; carved out of the training part

    def with_test(self, test_every: int) -> "CorpusSplit":
        """This split with a test part taken out of its training part (validation unchanged)."""
        docs, name, sep = self.train.documents, self.info["corpus"], self.train.separator
        held = [d for j, d in enumerate(docs) if j % test_every == test_every - 1]
        kept = [d for j, d in enumerate(docs) if j % test_every != test_every - 1]
        info = dict(self.info, test_every=test_every)
        if held and kept and sep.join(d.text for d in held).strip():
            info.update(test_method="by_document", test_documents=[d.title for d in held],
                        test_rule=(f"of the documents left for training, document j (0-based, in corpus order) "
                                   f"is held out for testing when j % {test_every} == {test_every - 1}"))
        else:
            text = self.train.text
            cut, resume, boundary = _find_cut(text, 1.0 - 1.0 / test_every)
            if not text[:cut].strip() or not text[resume:].strip():
                raise LMError(f"corpus '{name}' is too short to split into training, validation and test text")
            title = docs[0].title if len(docs) == 1 else name
            kept = [Document(f"{title} (before the test part)", text[:cut])]
            held = [Document(f"{title} (test part)", text[resume:])]
            info.update(test_method="text_cut", test_documents=[], test_cut_at_char=cut, test_cut_boundary=boundary,
                        test_rule=(f"the training text is cut once more near {1 - 1 / test_every:.0%} at a "
                                   f"{boundary} boundary; the part after tests"))
        train = Corpus(f"{name} (train)", tuple(kept), sep, self.train.description)
        test = Corpus(f"{name} (test)", tuple(held), sep, self.train.description)
        info.update(train_documents=len(kept), train_chars=len(train.text), test_chars=len(test.text))
        return CorpusSplit(train, self.valid, info, test)


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
