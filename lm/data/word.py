"""The word-level tokenizer's pipeline: how text is cut into words, counted, and joined back.

A word token carries the one space before it, as GPT-2's byte-level pieces do (" king", not "king"), so
decoding is plain concatenation and decode(encode(text)) == text for every text whose characters the
training text had — spaces, newlines and punctuation included — and bits per character count the real
characters.
A bigram is then the classic P(" king" | " the"): no separate space tokens sit between the words.

The pre-tokenizer (a `tokenizers` Split on WORD_PATTERN, so a Hugging Face library reads our files) cuts:

- one Chinese (Han) character, with the space before it if any: Chinese has no spaces between words, and
  without a word segmenter one character is the nearest unit to a word;
- a run of other word characters (letters, digits, marks, "_"): " king", "ROMEO", " 1599";
- one punctuation mark or symbol: ",", " '", "—";
- each newline alone; other whitespace in runs (the last space before a word stays with the word).

The vocabulary is the unknown token ``<unk>`` at id 0, every character of the training text, and as many of
its most frequent pieces as the cap leaves room for, ordered by frequency (ties in code point order).

Unknown words are spelled out. A word outside the vocabulary is encoded as its characters (character
fallback, as SentencePiece's byte fallback), and only a character the training text never had becomes <unk>.
This keeps bits per character fair: had an unknown word been one <unk> token, a word model would be
charged only for "some rare word" instead of the word itself, and would score better the smaller its
vocabulary (docs/models.md has the figures). Spelled out, every character of the text is predicted, as under
a character or BPE model. (A Hugging Face library reading our tokenizer.json sees a
WordLevel model and maps an unknown word to <unk>; `lm.data.tokenizer.Tokenizer` does the spelling.)
"""

from __future__ import annotations

import collections
import re
from typing import Any

from tokenizers import Regex, decoders, models, pre_tokenizers
from tokenizers import Tokenizer as HFTokenizer

from lm.errors import LMError

WORD_PATTERN = r" ?\p{Han}| ?(?:(?!\p{Han})\w)+| ?[^\s\w]|\n|[^\S\n]+(?!\S)|[^\S\n]+"
WORD_UNK = "<unk>"
MIN_WORD_VOCAB = 2  # the unknown token and one word
MAX_WORD_VOCAB = 1 << 18
DEFAULT_WORD_VOCAB = 8192  # 96 % of Shakespeare's pieces are among its 8,192 most frequent (35,064 in all)

# A newline is always a piece of its own, so text can be cut after any newline without changing the pieces.
CHUNK_CHARS = 1 << 16
_AFTER_NEWLINE = re.compile(r"\n")


def word_pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.Split(Regex(WORD_PATTERN), behavior="isolated")


def build_word_hf(vocab: dict[str, int], unk_token: str = WORD_UNK) -> HFTokenizer:
    """The `tokenizers` pipeline of a word vocabulary: WordLevel over WORD_PATTERN pieces, joined by Fuse."""
    hf = HFTokenizer(models.WordLevel(vocab, unk_token=unk_token))
    hf.pre_tokenizer = word_pre_tokenizer()
    hf.decoder = decoders.Fuse()
    return hf


def is_word_pipeline(data: dict[str, Any]) -> bool:
    """Whether a tokenizer.json's pre-tokenizer is ours (a Split on WORD_PATTERN)."""
    pre = data.get("pre_tokenizer")
    return isinstance(pre, dict) and pre.get("type") == "Split" \
        and isinstance(pre.get("pattern"), dict) and pre["pattern"].get("Regex") == WORD_PATTERN


def cut_chunks(text: str, size: int = CHUNK_CHARS, cut: re.Pattern = _AFTER_NEWLINE) -> list[str]:
    """`text` in pieces of about `size` characters, each (but the last) ending where `cut` matches (by
    default right after a newline), so a pre-tokenizer that always separates there gives the same pieces."""
    chunks, start, n = [], 0, len(text)
    while start < n:
        if n - start <= size:
            chunks.append(text[start:])
            break
        m = cut.search(text, start + size)
        if m is None:
            chunks.append(text[start:])
            break
        chunks.append(text[start:m.end()])
        start = m.end()
    return chunks


def word_vocab(text: str, vocab_size: int) -> dict[str, int]:
    """<unk> at id 0, every character of `text`, and its most frequent longer pieces up to `vocab_size` entries
    in all, most frequent first. LMError if `vocab_size` cannot hold the characters."""
    split = word_pre_tokenizer()
    counts: collections.Counter[str] = collections.Counter()
    for chunk in cut_chunks(text):
        counts.update(piece for piece, _ in split.pre_tokenize_str(chunk))
    alphabet = set(text)
    if len(alphabet) + 1 > vocab_size:
        raise LMError(f"a word vocabulary of this text needs at least {len(alphabet) + 1:,} entries (<unk> and "
                      f"its {len(alphabet):,} characters, to spell unknown words), got {vocab_size:,}")
    words = sorted((p for p in counts if len(p) > 1), key=lambda p: (-counts[p], p))[:vocab_size - 1 - len(alphabet)]
    chosen = sorted({*alphabet, *words}, key=lambda p: (-counts[p], p))
    return {WORD_UNK: 0, **{piece: i + 1 for i, piece in enumerate(chosen)}}
