"""ARPA files on disk: export a counted n-gram model, load any `.arpa` / `.arpa.gz` file as a read-only model.

Words of a character model
--------------------------
ARPA words are separated by whitespace, so a character model writes one word per character with the
whitespace spelled out: a space is `<sp>`, a newline `<nl>`, a tab `<tab>`, any other whitespace or
unprintable character `<U+XXXX>` (its code point in hex, at least four digits). The unknown token is `<unk>`;
`<s>` starts every text (a KenLM user scores a text as `model.score(" ".join(words), bos=True, eos=False)`)
and `</s>` gets probability zero, since these models have no end token. A BPE model writes its byte-level
pieces, which never contain whitespace (such a file loads back as a word-level model).

Loading
-------
A file whose words are all single characters or spelled-out characters (with `<sp>` or `<nl>` among them)
loads as a character model: text is encoded character by character. Any other file loads as a word-level
model: text is split at whitespace, and words the file does not list become `<unk>`; `</s>` is decoded as a
line end. `<s>` is never predicted; it is where every text starts.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lm.data.tokenizer import UNK_DISPLAY
from lm.errors import LMError
from lm.models.ngram.arpa import BOS, EOS, UNK, export_orders, format_arpa, parse_arpa

if TYPE_CHECKING:  # torch stays out of model listings
    from lm.store.checkpoint import LoadedModel

ARPA_SUFFIXES = (".arpa", ".arpa.gz")
CHAR_NAMES = {" ": "<sp>", "\n": "<nl>", "\t": "<tab>"}
_NAMED_CHARS = {v: k for k, v in CHAR_NAMES.items()}
_CODE_POINT = re.compile(r"<U\+([0-9A-F]{4,6})>")
_SPECIALS = (BOS, EOS, UNK)
_SNIFF_UNIGRAMS = 5000  # a listing reads at most this many unigrams to tell a character file from a word file


def is_arpa_file(path: Path) -> bool:
    return path.name.lower().endswith(ARPA_SUFFIXES) and path.is_file()


def char_word(ch: str) -> str:
    """The ARPA word of one character (see the module docstring)."""
    if ch in CHAR_NAMES:
        return CHAR_NAMES[ch]
    if ch.isspace() or not ch.isprintable():
        return f"<U+{ord(ch):04X}>"
    return ch


def word_char(word: str) -> str | None:
    """The character an ARPA word of a character model stands for (None: not such a word)."""
    if len(word) == 1:
        return word
    if word in _NAMED_CHARS:
        return _NAMED_CHARS[word]
    match = _CODE_POINT.fullmatch(word)
    if match and int(match.group(1), 16) <= 0x10FFFF:
        return chr(int(match.group(1), 16))
    return None


# -- export ---------------------------------------------------------------------------------------------
def token_words(tokenizer) -> tuple[list[str], int | None]:
    """(ARPA word of every token id, the id that is `<unk>` or None) for a char or BPE tokenizer."""
    if tokenizer.kind == "char":
        unk = tokenizer.unk_id
        words = [UNK if i == unk else char_word(p) for i, p in enumerate(tokenizer.pieces())]
    elif tokenizer.kind == "bpe":
        unk, words = None, tokenizer.pieces()
        bad = [w for w in words if w in _SPECIALS or not w or any(c.isspace() for c in w)]
        if bad:
            raise LMError(f"the BPE piece {bad[0]!r} cannot be an ARPA word (it is empty, has whitespace or is "
                          f"one of {', '.join(_SPECIALS)})")
    else:
        raise LMError(f"a {tokenizer.kind} tokenizer has no ARPA spelling (char and bpe models export)")
    return words, unk


def export_arpa(model, tokenizer, path: str | os.PathLike) -> list[int]:
    """Write an n-gram view as an ARPA file (gzip-compressed when the name ends in .gz); the n-gram counts.

    LMError for stupid back-off (not probabilities) and for an add-k export past the size limit.
    """
    from lm.models.ngram.model import NgramModel  # torch: listing models stays cheap

    if not isinstance(model, NgramModel):
        raise LMError("only counted n-gram models export to ARPA (use --format hf for a Transformer)")
    words, unk = token_words(tokenizer)
    orders = export_orders(model, unk_id=unk)
    names = words + [BOS, EOS] + ([UNK] if unk is None else [])
    _write_atomic(Path(path), format_arpa(orders, names))
    return [len(o) for o in orders]


def _write_atomic(path: Path, chunks: Iterator[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(tmp, "wt", encoding="utf-8", newline="\n") as handle:
            for chunk in chunks:
                handle.write(chunk)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- import ---------------------------------------------------------------------------------------------
def _lines(path: Path) -> Iterator[str]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            yield from handle
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise LMError(f"cannot read {path.name}: {exc}") from None


def _is_char_vocabulary(words: Sequence[str]) -> bool:
    ordinary = [w for w in words if w not in _SPECIALS]
    return bool(ordinary) and all(word_char(w) is not None for w in ordinary) \
        and any(w in ("<sp>", "<nl>") for w in ordinary)


class ArpaTokenizer:
    """Text <-> the word ids of an ARPA file: one word per character (kind "char") or per whitespace-separated
    word (kind "word"); read-only and safe to share between threads."""

    def __init__(self, words: Sequence[str], kind: str):
        if kind not in ("char", "word"):
            raise LMError(f"unknown ARPA tokenizer kind {kind!r}")
        self.kind, self._words = kind, list(words)
        self.vocab_size = len(self._words)
        self.unk_id = self._words.index(UNK)
        self._ids = {w: i for i, w in enumerate(self._words)}
        if kind == "char":
            self._chars = {word_char(w): i for i, w in enumerate(self._words) if w not in _SPECIALS}
            shown = {UNK: UNK_DISPLAY, BOS: "", EOS: "\n"}
            self._text = [shown[w] if w in shown else word_char(w) for w in self._words]
        else:
            self._text = ["\n" if w == EOS else "" if w == BOS else w for w in self._words]
        self._display = [BOS if w == BOS else t for w, t in zip(self._words, self._text)]

    def encode_report(self, text: str) -> tuple[list[int], list[str]]:
        """(ids, sorted distinct characters (char) or words (word) that became `<unk>`)."""
        if not isinstance(text, str):
            raise LMError(f"expected text, got {type(text).__name__}")
        units = list(text) if self.kind == "char" else text.split()
        table = self._chars if self.kind == "char" else self._ids
        ids = [table.get(u, self.unk_id) for u in units]
        return ids, sorted({u for u, i in zip(units, ids) if i == self.unk_id and u != UNK})

    def encode(self, text: str) -> list[int]:
        return self.encode_report(text)[0]

    def encode_array(self, text: str) -> np.ndarray:
        return np.asarray(self.encode(text), dtype=np.int64)

    def _check(self, ids: Any) -> list[int]:
        out = [int(i) for i in (ids.tolist() if hasattr(ids, "tolist") else ids)]
        for i in out:
            if not 0 <= i < self.vocab_size:
                raise LMError(f"token id {i} is outside the vocabulary (0..{self.vocab_size - 1})")
        return out

    def decode(self, ids: Any) -> str:
        pieces = [self._text[i] for i in self._check(ids)]
        if self.kind == "char":
            return "".join(pieces)
        out: list[str] = []
        for piece in pieces:  # words joined by single spaces, a line end without spaces around it
            if not piece:
                continue
            out.append(piece if (piece == "\n" or not out or out[-1] == "\n") else " " + piece)
        return "".join(out)

    def token_strings(self, ids: Any) -> list[str]:
        return [self._display[i] for i in self._check(ids)]

    def id_to_piece(self, token_id: int) -> str:
        return self._words[self._check([token_id])[0]]

    def pieces(self) -> list[str]:
        return list(self._words)

    def to_json(self) -> str:
        return json.dumps({"kind": f"arpa-{self.kind}", "words": self._words}, ensure_ascii=False)

    def save(self, path: str | os.PathLike) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")

    def __repr__(self) -> str:
        return f"ArpaTokenizer(kind={self.kind!r}, vocab_size={self.vocab_size})"


def load_arpa(path: str | os.PathLike, name: str | None = None) -> LoadedModel:
    """An ARPA file as a read-only n-gram model with its tokenizer (see the module docstring)."""
    from lm.models.ngram.arpa_model import ArpaConfig, ArpaModel  # torch: listing models stays cheap
    from lm.store.checkpoint import LoadedModel  # torch: as above

    path = Path(path)
    words, orders = parse_arpa(_lines(path), source=path.name)
    kind = "char" if _is_char_vocabulary(words) else "word"
    config = ArpaConfig(vocab_size=len(words), order=len(orders), start_id=words.index(BOS) if BOS in words else -1)
    model = ArpaModel(config, orders)
    tokenizer = ArpaTokenizer(words, kind)
    counts = [len(o) for o in orders]
    meta = {"format": "arpa", "name": name or path.name, "model": config.to_dict(),
            "tokenizer": {"kind": kind, "vocab_size": len(words)}, "corpus": {"name": "ARPA file"},
            "parameters": int(sum(counts)), "description": arpa_description(counts, kind),
            "arpa": {"path": str(path), "counts": counts}}
    return LoadedModel(name or path.name, model, tokenizer, meta, path)


def arpa_description(counts: Sequence[int], kind: str) -> str:
    return f"ARPA back-off model, order {len(counts)}, {kind}-level, {sum(counts):,} n-grams"


def arpa_header(path: Path) -> tuple[list[int], str]:
    """(n-gram counts per order, "char" or "word") from the start of an ARPA file, without reading it all."""
    counts: list[int] = []
    lines = _lines(path)
    for line in lines:
        text = line.strip()
        if text.startswith("ngram "):
            counts.append(int(text.partition("=")[2]))
        elif text.startswith("\\1-grams"):
            break
        elif text and text != "\\data\\":
            raise LMError(f"{path.name} is not an ARPA file")
    if not counts:
        raise LMError(f"{path.name} has no ARPA counts")
    if counts[0] > _SNIFF_UNIGRAMS:
        return counts, "word"
    words = [parts[1] for parts in (line.split() for _, line in zip(range(counts[0]), lines)) if len(parts) > 1]
    return counts, "char" if _is_char_vocabulary(words) else "word"


__all__ = ["ARPA_SUFFIXES", "CHAR_NAMES", "ArpaTokenizer", "arpa_description", "arpa_header", "char_word",
           "export_arpa", "is_arpa_file", "load_arpa", "token_words", "word_char"]
