"""Tokenizers: character-level, byte-level BPE and word-level, all built on Hugging Face `tokenizers`.

Three kinds, one class:

- ``char``: one token per Unicode code point seen in the training text. Id 0 is the unknown token
  ``<unk>``; the characters follow in sorted (code point) order as ids 1..V-1. A character outside the
  vocabulary encodes to 0 and `encode_report` lists it; decoding id 0 gives U+FFFD ("�"), so a decoded text
  visibly shows where something was replaced. The `tokenizers` pipeline is a WordLevel model over a
  pre-tokenizer that isolates every code point and a Fuse decoder, so decode(encode(s)) == s for every s
  drawn from the vocabulary (spaces and newlines included). Encoding and decoding use an equivalent NumPy
  lookup (tests check it matches `tokenizers`), because per-character pre-tokenization in `tokenizers`
  takes seconds on a few MB.
- ``bpe``: byte-level BPE (GPT-2 style: ByteLevel pre-tokenizer with add_prefix_space=False and the GPT-2
  split regex, no normalizer, ByteLevel decoder). Every string round-trips exactly; there is no unknown
  token. Long texts are encoded in parallel chunks cut where the split regex always cuts, which gives the
  same ids as one call. GPT-2 style ``tokenizer.json`` files from Hugging Face snapshots load as kind "bpe"
  when they round-trip text exactly. A BPE token is bytes, not characters: `decode` shows an incomplete
  character as U+FFFD (as `tokenizers` does), `decode_visible` as byte markers like ``<0xE5>``
  (`lm.data.utf8`), and `utf8_mask` says which tokens can continue valid UTF-8.
- ``word``: one token per word, punctuation mark or newline, the space before a word kept with it
  (`lm.data.word`: the pre-tokenizer, the frequency cap, how spaces come back). Id 0 is ``<unk>``; a word
  outside the vocabulary is spelled with the character entries, so only a character the training text never
  had is <unk> (decoded as the text "<unk>"), and decode(encode(s)) == s whenever s has no such character.

Files are the standard ``tokenizer.json`` of `tokenizers`; the kind is inferred from the model type when
loading, so a Hugging Face library can read our files and we can read theirs.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import pre_tokenizers, trainers
from tokenizers import Tokenizer as HFTokenizer

from lm.errors import LMError
from lm.data.textio import atomic_write_text, format_size
from lm.data.pipelines import (BPE_CHUNK_CHARS, PROBE, UNK_DISPLAY, UNK_TOKEN, as_id_array, build_char_hf,
                               check_vocab_size, new_bpe_hf, pre_tokenizer_types, safe_bpe_chunks)
from lm.data.utf8 import CHAR_TO_BYTE, Utf8Mask, show_bytes
from lm.data.word import (DEFAULT_WORD_VOCAB, MAX_WORD_VOCAB, MIN_WORD_VOCAB, build_word_hf, cut_chunks,
                          is_word_pipeline, word_vocab)

TOKENIZER_KINDS = ("char", "bpe", "word")  # what a model can be trained with
UNK_ID = 0  # char tokenizers built here always put <unk> at id 0
MIN_BPE_VOCAB = 256  # the byte alphabet
MAX_BPE_VOCAB = 65536
MAX_TOKENIZER_FILE_BYTES = 200 * 1024 * 1024

class Tokenizer:
    """A trained tokenizer (kind "char", "bpe" or "word"); immutable and safe to share between threads."""

    def __init__(self, hf: HFTokenizer, kind: str):
        if kind not in TOKENIZER_KINDS:
            raise LMError(f"unknown tokenizer kind '{kind}' (expected {', '.join(map(repr, TOKENIZER_KINDS))})")
        hf.no_padding()
        hf.no_truncation()
        self._hf = hf
        self.kind = kind
        self.vocab_size = hf.get_vocab_size(with_added_tokens=True)
        vocab = hf.get_vocab(with_added_tokens=True)
        pieces = [""] * self.vocab_size
        for piece, i in vocab.items():
            if not 0 <= i < self.vocab_size:
                raise LMError(f"tokenizer vocabulary has id {i} outside 0..{self.vocab_size - 1}")
            pieces[i] = piece
        self._pieces = pieces
        self._display: list[str] | None = None
        self._bytes: list[bytes] | None = None
        self._mask: Utf8Mask | None = None
        self._bpe_chunkable = False
        if kind == "char":
            self._init_char(vocab)
        elif kind == "word":
            self.unk_id = vocab[json.loads(hf.to_str())["model"]["unk_token"]]
            self._spell = {p: i for p, i in vocab.items() if len(p) == 1}  # what unknown words are spelled with
        else:
            self.unk_id = None
            pre = pre_tokenizer_types(json.loads(hf.to_str()).get("pre_tokenizer"))
            added = hf.get_added_tokens_decoder() if hasattr(hf, "get_added_tokens_decoder") else {}
            self._bpe_chunkable = (
                len(pre) == 1 and pre[0].get("type") == "ByteLevel" and pre[0].get("use_regex", True)
                and not any("\n" in t.content for t in added.values())
            )

    def _init_char(self, vocab: dict[str, int]) -> None:
        model = json.loads(self._hf.to_str())["model"]
        unk = model.get("unk_token")
        if unk not in vocab:
            raise LMError("character tokenizer has no unknown token in its vocabulary")
        self.unk_id = vocab[unk]
        chars = [(ord(p), i) for p, i in vocab.items() if p != unk]
        if any(len(p) != 1 for p in vocab if p != unk):
            raise LMError("character tokenizer vocabulary has entries longer than one character")
        chars.sort()
        self._codes = np.array([c for c, _ in chars], dtype=np.int64)
        self._code_ids = np.array([i for _, i in chars], dtype=np.int64)
        self._char_strs = [UNK_DISPLAY if i == self.unk_id else p for i, p in enumerate(self._pieces)]
        # id -> code point of its display character, for a vectorised decode
        self._id_codes = np.array([ord(c) for c in self._char_strs], dtype=np.uint32)

    # -- training ---------------------------------------------------------------------------------
    @classmethod
    def char(cls, text: str) -> "Tokenizer":
        """Character vocabulary of `text`: <unk> at id 0, then its distinct characters in code point order."""
        if not isinstance(text, str):
            raise LMError(f"expected text, got {type(text).__name__}")
        if not text:
            raise LMError("cannot build a character vocabulary from empty text")
        # Lone surrogates (only possible in Python strings, never in decoded files) cannot go into a
        # `tokenizers` vocabulary; they stay out of it and encode as <unk>.
        chars = sorted(c for c in set(text) if not 0xD800 <= ord(c) <= 0xDFFF)
        if not chars:
            raise LMError("cannot build a character vocabulary: the text has no valid characters")
        vocab = {UNK_TOKEN: UNK_ID, **{c: i + 1 for i, c in enumerate(chars)}}
        return cls(build_char_hf(vocab, UNK_TOKEN), "char")

    @classmethod
    def bpe(cls, text: str, vocab_size: int) -> "Tokenizer":
        """Train byte-level BPE on `text` with at most `vocab_size` tokens (256 bytes + learned merges)."""
        if not isinstance(text, str):
            raise LMError(f"expected text, got {type(text).__name__}")
        check_vocab_size("BPE", vocab_size, MIN_BPE_VOCAB, MAX_BPE_VOCAB)
        if not text:
            raise LMError("cannot train a BPE tokenizer on empty text")
        text = cls._replace_surrogates(text)[0]
        hf = new_bpe_hf()
        trainer = trainers.BpeTrainer(
            vocab_size=int(vocab_size),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            special_tokens=[],
            show_progress=False,
        )
        hf.train_from_iterator(safe_bpe_chunks(text, BPE_CHUNK_CHARS), trainer=trainer, length=None)
        return cls(hf, "bpe")

    @classmethod
    def word(cls, text: str, vocab_size: int) -> "Tokenizer":
        """<unk> at id 0, every character of `text` and its most frequent words (and marks, newlines), up to
        `vocab_size` entries (`lm.data.word.word_vocab`)."""
        if not isinstance(text, str):
            raise LMError(f"expected text, got {type(text).__name__}")
        check_vocab_size("word", vocab_size, MIN_WORD_VOCAB, MAX_WORD_VOCAB)
        if not text:
            raise LMError("cannot build a word vocabulary from empty text")
        return cls(build_word_hf(word_vocab(cls._replace_surrogates(text)[0], int(vocab_size))), "word")

    # -- encoding ---------------------------------------------------------------------------------
    @staticmethod
    def _replace_surrogates(text: str) -> tuple[str, list[str]]:
        """Lone surrogates cannot be UTF-8 encoded; BPE sees U+FFFD instead (and reports them)."""
        try:
            text.encode("utf-8")
            return text, []
        except UnicodeEncodeError:
            bad = sorted({ch for ch in text if 0xD800 <= ord(ch) <= 0xDFFF})
            return re.sub("[\ud800-\udfff]", UNK_DISPLAY, text), bad

    def _char_ids(self, text: str) -> np.ndarray:
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.int64)
        if not len(self._codes):
            return np.full(len(codes), self.unk_id, dtype=np.int64)
        pos = np.searchsorted(self._codes, codes)
        pos_clipped = np.minimum(pos, len(self._codes) - 1)
        found = self._codes[pos_clipped] == codes
        return np.where(found, self._code_ids[pos_clipped], self.unk_id)

    def _bpe_ids(self, text: str, chunk_chars: int = BPE_CHUNK_CHARS) -> list[int]:
        if self._bpe_chunkable and len(text) > chunk_chars:
            chunks = safe_bpe_chunks(text, chunk_chars)
            batch = getattr(self._hf, "encode_batch_fast", self._hf.encode_batch)
            return [i for enc in batch(chunks, add_special_tokens=False) for i in enc.ids]
        return self._hf.encode(text, add_special_tokens=False).ids

    def _word_ids(self, text: str) -> tuple[list[int], list[str]]:
        """Ids (unknown words spelled out), and the distinct characters that became <unk>, of text with no lone
        surrogates. `tokenizers` finds the pieces and the known words; the spelling is ours."""
        ids: list[int] = []
        unknown: set[str] = set()
        chunks = cut_chunks(text, BPE_CHUNK_CHARS)
        for chunk, enc in zip(chunks, self._hf.encode_batch(chunks, add_special_tokens=False)):
            if self.unk_id not in enc.ids:
                ids.extend(enc.ids)
                continue
            for i, (start, end) in zip(enc.ids, enc.offsets):
                if i != self.unk_id:
                    ids.append(i)
                    continue
                for ch in chunk[start:end]:
                    ids.append(self._spell.get(ch, self.unk_id))
                    if ch not in self._spell:
                        unknown.add(ch)
        return ids, sorted(unknown)

    def encode(self, text: str) -> list[int]:
        """Token ids of `text` (characters outside a char vocabulary become `unk_id`)."""
        return self.encode_report(text)[0]

    def encode_array(self, text: str) -> np.ndarray:
        """Like `encode` but as an int64 NumPy array (cheaper for multi-MB training text)."""
        if not isinstance(text, str):
            raise LMError(f"expected text, got {type(text).__name__}")
        if self.kind == "char":
            return self._char_ids(text)
        return np.asarray(self.encode(text), dtype=np.int64)

    def encode_report(self, text: str) -> tuple[list[int], list[str]]:
        """(ids, sorted distinct characters that were replaced): <unk> for char and word, U+FFFD (lone
        surrogates) for bpe."""
        if not isinstance(text, str):
            raise LMError(f"expected text, got {type(text).__name__}")
        if not text:
            return [], []
        if self.kind == "char":
            ids = self._char_ids(text)
            unknown = ids == self.unk_id
            replaced: list[str] = []
            if unknown.any():
                codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
                replaced = [chr(c) for c in np.unique(codes[unknown]).tolist()]
            return ids.tolist(), replaced
        text, replaced = self._replace_surrogates(text)
        if self.kind == "word":
            ids, unknown = self._word_ids(text)
            return ids, sorted({*replaced, *unknown})
        return self._bpe_ids(text), replaced

    # -- decoding ---------------------------------------------------------------------------------
    def _check_ids(self, ids: Any) -> np.ndarray:
        arr = as_id_array(ids)
        if arr.size and (arr.min() < 0 or arr.max() >= self.vocab_size):
            bad = int(arr[(arr < 0) | (arr >= self.vocab_size)][0])
            raise LMError(f"token id {bad} is outside the vocabulary (0..{self.vocab_size - 1})")
        return arr

    def decode(self, ids: Any) -> str:
        """Text of `ids`; a char <unk> shows as U+FFFD, and so do incomplete UTF-8 byte sequences of BPE tokens
        (`decode_visible` shows those as byte markers); a word <unk> as "<unk>"."""
        ids = self._check_ids(ids)
        if not ids.size:
            return ""
        if self.kind == "char":
            return self._id_codes[ids].tobytes().decode("utf-32-le", "surrogatepass")
        if self.kind == "word":
            return "".join(self._pieces[i] for i in ids.tolist())
        return self._hf.decode(ids.tolist(), skip_special_tokens=False)

    def decode_visible(self, ids: Any) -> str:
        """`decode`, but the bytes of BPE tokens that form no valid character are shown as markers like
        ``<0xE5>`` instead of U+FFFD: the text a person is shown (generated text, downloads)."""
        if self.kind != "bpe":
            return self.decode(ids)
        table = self.token_bytes()
        return show_bytes(b"".join(table[i] for i in self._check_ids(ids).tolist()))

    def token_bytes(self) -> list[bytes] | None:
        """The UTF-8 bytes of every vocabulary entry (by id) of a byte-level BPE; None for char and word
        tokenizers, whose tokens are whole characters. Computed once."""
        if self.kind != "bpe":
            return None
        if self._bytes is None:
            added = set(self._hf.get_added_tokens_decoder()) if hasattr(self._hf, "get_added_tokens_decoder") else set()
            self._bytes = [piece.encode("utf-8") if i in added or any(c not in CHAR_TO_BYTE for c in piece)
                           else bytes(CHAR_TO_BYTE[c] for c in piece)  # special tokens are stored as plain text
                           for i, piece in enumerate(self._pieces)]
        return self._bytes

    def utf8_mask(self) -> Utf8Mask | None:
        """Which tokens can continue valid UTF-8 from each decoder state (`lm.data.utf8.Utf8Mask`), for
        byte-level BPE; None for tokenizers whose every token is whole characters. Built once."""
        if self._mask is None and self.kind == "bpe":
            self._mask = Utf8Mask(self.token_bytes())
        return self._mask

    def _display_strings(self) -> list[str]:
        if self._display is None:
            if self.kind == "char":
                self._display = list(self._char_strs)
            elif self.kind == "word":
                self._display = list(self._pieces)
            else:
                self._display = [raw.decode("utf-8", errors="backslashreplace") for raw in self.token_bytes()]
        return self._display

    def token_strings(self, ids: Any) -> list[str]:
        """Display text of each token: the character (U+FFFD for <unk>), the word ("<unk>" for <unk>) or, for
        BPE, the token's bytes as UTF-8 with bytes of an incomplete character written as backslash escapes
        like ``\\xe2``."""
        display = self._display_strings()
        return [display[i] for i in self._check_ids(ids).tolist()]

    def id_to_piece(self, token_id: int) -> str:
        """The raw vocabulary entry of `token_id` ("<unk>", a character, a word, or a byte-level string like
        'Ġthe')."""
        return self._pieces[int(self._check_ids([token_id])[0])]

    def pieces(self) -> list[str]:
        """All raw vocabulary entries, indexed by id."""
        return list(self._pieces)

    @property
    def hf(self) -> HFTokenizer:
        """The underlying `tokenizers.Tokenizer` (do not reconfigure it: tokenizers are shared)."""
        return self._hf

    def __repr__(self) -> str:
        return f"Tokenizer(kind={self.kind!r}, vocab_size={self.vocab_size})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tokenizer) and self.kind == other.kind and self._pieces == other._pieces \
            and self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]

    # -- persistence ------------------------------------------------------------------------------
    def to_json(self) -> str:
        """The standard `tokenizers` JSON (what `save` writes)."""
        return self._hf.to_str(pretty=True)

    def save(self, path: str | os.PathLike) -> None:
        """Write ``tokenizer.json`` to `path` atomically."""
        atomic_write_text(path, self.to_json())

    @classmethod
    def from_json(cls, text: str, source: str = "tokenizer JSON") -> "Tokenizer":
        """A tokenizer from `tokenizers` JSON; kind inferred (WordLevel over our word pre-tokenizer: word,
        WordLevel of single characters: char, byte-level BPE: bpe). LMError for anything corrupt, unsupported
        or not lossless."""
        if not isinstance(text, str):
            raise LMError(f"expected tokenizer JSON text, got {type(text).__name__}")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LMError(f"{source} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
        if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
            raise LMError(f"{source} is not a tokenizer file (no 'model' section)")
        model_type = data["model"].get("type")
        if model_type is None:  # very old files omit the type; infer it from the fields
            model_type = "BPE" if "merges" in data["model"] else "WordLevel" if "vocab" in data["model"] else None
        try:
            hf = HFTokenizer.from_str(text)
        except Exception as exc:  # tokenizers raises plain Exception with a serde message
            raise LMError(f"{source} is not a valid tokenizer file: {str(exc).splitlines()[0][:200]}") from None
        if model_type == "WordLevel":
            vocab = hf.get_vocab(with_added_tokens=False)
            unk = data["model"].get("unk_token")
            if unk in vocab and is_word_pipeline(data):  # rebuilt with our pipeline, as below
                return cls(build_word_hf(dict(vocab), unk), "word")
            if unk not in vocab or any(len(p) != 1 for p in vocab if p != unk):
                raise LMError(f"{source} is a word-level tokenizer, not a character tokenizer "
                              f"(entries must be single characters plus an unknown token)")
            # Rebuild with our pipeline so behaviour does not depend on what else the file configured.
            return cls(build_char_hf(dict(vocab), unk), "char")
        if model_type == "BPE":
            pre = [p.get("type") for p in pre_tokenizer_types(data.get("pre_tokenizer"))]
            dec = [d.get("type") for d in pre_tokenizer_types(data.get("decoder"))]
            if "ByteLevel" not in pre or "ByteLevel" not in dec:
                raise LMError(f"{source} is a BPE tokenizer but not byte-level (only byte-level BPE such as "
                              f"GPT-2's is supported)")
            tok = cls(hf, "bpe")
            if tok.decode(tok.encode(PROBE)) != PROBE:
                raise LMError(f"{source} does not give text back exactly after encoding (a normalizer or "
                              f"prefix space changes it); only lossless byte-level BPE is supported")
            return tok
        raise LMError(f"{source} uses a {model_type} model; only character- and word-level (WordLevel) and "
                      f"byte-level BPE tokenizers are supported")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Tokenizer":
        """Load ``tokenizer.json`` (or a directory containing one, e.g. a Hugging Face snapshot)."""
        file = Path(path)
        try:
            if file.is_dir():
                if not (file / "tokenizer.json").is_file():
                    raise LMError(f"{file} is a directory without a tokenizer.json")
                file = file / "tokenizer.json"
            if not file.exists():
                raise LMError(f"no tokenizer file at {file}")
            size = file.stat().st_size
            if size > MAX_TOKENIZER_FILE_BYTES:
                raise LMError(f"{file} is {format_size(size)}, too big for a tokenizer file "
                              f"(limit {format_size(MAX_TOKENIZER_FILE_BYTES)})")
            data = file.read_bytes()
        except OSError as exc:
            raise LMError(f"cannot read {file}: {exc.strerror or exc}") from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise LMError(f"{file} is not a tokenizer file (not UTF-8 text at byte offset {exc.start})") from None
        return cls.from_json(text, source=str(file))


def train_tokenizer(kind: str, text: str, vocab_size: int | None = None) -> Tokenizer:
    """`Tokenizer.char(text)`, `Tokenizer.bpe(text, vocab_size)` or `Tokenizer.word(text, vocab_size)` chosen
    by `kind` (for UI/CLI knobs)."""
    if kind == "char":
        return Tokenizer.char(text)
    if kind in ("bpe", "word"):
        if vocab_size is None:
            raise LMError(f"a {'BPE' if kind == 'bpe' else 'word'} tokenizer needs a vocabulary size")
        return Tokenizer.bpe(text, vocab_size) if kind == "bpe" else Tokenizer.word(text, vocab_size)
    raise LMError(f"unknown tokenizer kind '{kind}' (expected {', '.join(map(repr, TOKENIZER_KINDS))})")


DEFAULT_BPE_VOCAB = 2048
DEFAULT_VOCAB = {"bpe": DEFAULT_BPE_VOCAB, "word": DEFAULT_WORD_VOCAB}  # when a run names no vocabulary size


def make_tokenizer(kind: str, corpus_text: str, train_text: str, vocab_size: int | None = None) -> Tokenizer:
    """The tokenizer a model is trained with: characters over the whole corpus's alphabet (so the held-out
    part has no unknown characters), or a byte-level BPE or a word vocabulary learned from the training
    part only (held-out words outside it are <unk>)."""
    if kind == "char":
        return train_tokenizer("char", corpus_text)
    return train_tokenizer(kind, train_text, DEFAULT_VOCAB.get(kind) if vocab_size is None else vocab_size)
