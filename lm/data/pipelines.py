"""The `tokenizers` pipelines behind `lm.data.tokenizer.Tokenizer`, and the checks every kind shares.

The character pipeline is a WordLevel model over a pre-tokenizer that isolates every code point, decoded by
Fuse with <unk> shown as U+FFFD; the BPE pipeline is GPT-2's (ByteLevel pre-tokenizer without prefix space,
ByteLevel decoder); the word pipeline lives with its pre-tokenizer in `lm.data.word`.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from tokenizers import Regex, decoders, models, pre_tokenizers
from tokenizers import Tokenizer as HFTokenizer

from lm.data.word import cut_chunks
from lm.errors import LMError

UNK_TOKEN = "<unk>"
UNK_DISPLAY = "\ufffd"  # what decode / token_strings show for a character tokenizer's <unk>

# Long BPE inputs are encoded as a batch of chunks of about this many characters. Chunks end right after a
# "\n" that has a printable non-space ASCII character on both sides: the GPT-2 split regex always separates
# there (no pattern matches a newline followed by a non-space), so chunking cannot change the ids.
BPE_CHUNK_CHARS = 1 << 16
_SAFE_BPE_CUT = re.compile(r"[!-~]\n(?=[!-~])")

PROBE = "Hello, world!\n  Tab\there; ünïcödé 世界 😀 \r\n'tis done\x00."


def pre_tokenizer_types(spec: Any) -> list[dict[str, Any]]:
    """The pre-tokenizer specs in a tokenizer.json (flattening Sequence)."""
    if not isinstance(spec, dict):
        return []
    if spec.get("type") == "Sequence":
        out: list[dict[str, Any]] = []
        for item in spec.get("pretokenizers", spec.get("decoders", [])) or []:
            out.extend(pre_tokenizer_types(item))
        return out
    return [spec]


def build_char_hf(vocab: dict[str, int], unk_token: str) -> HFTokenizer:
    hf = HFTokenizer(models.WordLevel(vocab, unk_token=unk_token))
    # "[\s\S]" matches any one code point (Oniguruma's "." would skip newlines).
    hf.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    hf.decoder = decoders.Sequence([decoders.Replace(unk_token, UNK_DISPLAY), decoders.Fuse()])
    return hf


def new_bpe_hf() -> HFTokenizer:
    hf = HFTokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    hf.decoder = decoders.ByteLevel()
    return hf


def as_id_array(ids: Any) -> np.ndarray:
    """Token ids as a 1-D int64 array; accepts a list/tuple of ints, a NumPy array or a torch tensor."""
    if hasattr(ids, "detach"):  # torch tensor, without importing torch here
        ids = ids.detach().cpu().numpy()
    if isinstance(ids, (str, bytes)) or not hasattr(ids, "__len__"):
        raise LMError(f"token ids must be a sequence of integers, got {type(ids).__name__}")
    arr = np.asarray(ids)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.ndim != 1:
        raise LMError(f"token ids must be a flat sequence, got shape {tuple(arr.shape)}")
    if arr.dtype.kind not in "iu":
        raise LMError(f"token ids must be integers, got values of type {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def safe_bpe_chunks(text: str, size: int) -> list[str]:
    return cut_chunks(text, size, _SAFE_BPE_CUT)


def check_vocab_size(what: str, vocab_size: Any, low: int, high: int) -> None:
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, (int, np.integer)) or not low <= vocab_size <= high:
        raise LMError(f"{what} vocabulary size must be a whole number from {low} to {high}, got {vocab_size!r}")
