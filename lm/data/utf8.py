"""UTF-8 byte by byte: the text of byte-level tokens, and which tokens can continue a valid text.

A byte-level BPE token is a few bytes, not a few characters: one Chinese character is three bytes and may be
split over two or three tokens, and a model can emit bytes that never form a character (a lone continuation
byte, a lead byte whose tail never comes). Three tools:

- `Utf8Decoder`: incremental decoding. Bytes of an incomplete character are held until the character is
  complete; bytes that can never become valid are shown as markers like ``<0xE5>`` (one per byte, never
  U+FFFD), and the decoder says where in its text the markers are, so a view can style them. `show_bytes`
  decodes a whole byte string the same way (a trailing incomplete character is final there: markers).
- `Utf8Mask`: from every token's bytes (computed once per tokenizer), which tokens keep the text a valid
  UTF-8 prefix from a decoder state. The mask depends only on the state, which is one of 8 (how many
  continuation bytes are still needed, and the range the next one must fall in, Unicode Table 3-7), and on
  how many tokens may still follow (fewer than three: a character must be finished in time), so every mask
  is computed once and cached.
- GPT-2's reversible byte <-> printable character map (`BYTE_TO_CHAR`), in which byte-level BPE stores
  its vocabulary.

Validity follows the Unicode standard (Table 3-7, "well-formed UTF-8 byte sequences", the same rules as
Python's strict decoder): no overlong forms, no surrogates (ED A0..BF), nothing above U+10FFFF.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

MARK = "<0x{:02X}>"  # how a byte that is not part of any valid character is shown
_ANY = (0x80, 0xBF)  # the range of every continuation byte after the first
EMPTY = (0, *_ANY)  # decoder state: (continuation bytes still needed, lowest and highest allowed next byte)


def _lead(byte: int) -> tuple[int, int, int] | None:
    """(continuation bytes needed, range of the first) for a byte that starts a character; None if none does."""
    if byte < 0x80:
        return EMPTY
    if 0xC2 <= byte <= 0xDF:
        return (1, *_ANY)
    if 0xE0 <= byte <= 0xEF:
        return (2, 0xA0, 0xBF) if byte == 0xE0 else (2, 0x80, 0x9F) if byte == 0xED else (2, *_ANY)
    if 0xF0 <= byte <= 0xF4:
        return (3, 0x90, 0xBF) if byte == 0xF0 else (3, 0x80, 0x8F) if byte == 0xF4 else (3, *_ANY)
    return None  # a continuation byte, C0, C1 or F5..FF: never starts a character


_LEADS = [_lead(b) for b in range(256)]


def state_of(pending: bytes) -> tuple[int, int, int]:
    """The decoder state after `pending`, the bytes of an incomplete character (b"" for none)."""
    if not pending:
        return EMPTY
    need, low, high = _LEADS[pending[0]] or EMPTY
    if len(pending) > 1:
        low, high = _ANY
    return need - (len(pending) - 1), low, high


def _walk(data: bytes, state: tuple[int, int, int] = EMPTY) -> int:
    """Continuation bytes still needed after feeding `data` from `state`; -1 if some byte can never be valid."""
    need, low, high = state
    for byte in data:
        if need:
            if not low <= byte <= high:
                return -1
            need, low, high = need - 1, *_ANY
        else:
            lead = _LEADS[byte]
            if lead is None:
                return -1
            need, low, high = lead
    return need


class Utf8Decoder:
    """Turns a stream of byte strings into text as soon as it is decodable.

    `feed(data)` returns (text, marks): the characters completed by `data` and the (start, end) ranges in that
    text that are byte markers. The bytes of a character still incomplete are held (`pending`); when a
    byte arrives that cannot continue them, they become markers and the byte starts afresh.
    """

    def __init__(self) -> None:
        self.pending = bytearray()
        self.state = EMPTY

    def feed(self, data: bytes) -> tuple[str, list[tuple[int, int]]]:
        if not self.pending:
            try:  # most tokens hold whole characters: one C call
                return data.decode("utf-8"), []
            except UnicodeDecodeError:
                pass
        parts: list[str] = []
        marks: list[tuple[int, int]] = []
        length = 0

        def emit(text: str, mark: bool) -> None:
            nonlocal length
            parts.append(text)
            if mark:
                marks.append((length, length + len(text)))
            length += len(text)

        need, low, high = self.state
        pending = self.pending
        for byte in data:
            if need:
                if low <= byte <= high:
                    pending.append(byte)
                    need, low, high = need - 1, *_ANY
                    if not need:
                        emit(pending.decode("utf-8"), False)
                        pending.clear()
                    continue
                emit("".join(MARK.format(b) for b in pending), True)  # the tail never came
                pending.clear()
                need = 0
            lead = _LEADS[byte]
            if lead is None:
                emit(MARK.format(byte), True)
            elif lead[0] == 0:
                emit(chr(byte), False)
            else:
                pending.append(byte)
                need, low, high = lead
        self.state = (need, low, high) if need else EMPTY
        return "".join(parts), _merge(marks)

    def flush(self) -> tuple[str, list[tuple[int, int]]]:
        """The end of the stream: held bytes can no longer complete, so they become markers."""
        if not self.pending:
            return "", []
        text = "".join(MARK.format(b) for b in self.pending)
        self.pending.clear()
        self.state = EMPTY
        return text, [(0, len(text))]


def _merge(marks: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Adjacent marker ranges as one."""
    out: list[tuple[int, int]] = []
    for start, end in marks:
        if out and out[-1][1] == start:
            out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def show_bytes(data: bytes) -> str:
    """`data` as text, every byte that is not part of a valid character shown as a marker like ``<0xE5>``."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        decoder = Utf8Decoder()
        return decoder.feed(data)[0] + decoder.flush()[0]


class Utf8Mask:
    """Which tokens keep a byte-level text valid UTF-8, from each decoder state; built once per tokenizer."""

    def __init__(self, token_bytes: Sequence[bytes]):
        size = len(token_bytes)
        self.size = size
        self._length = np.array([len(b) for b in token_bytes], dtype=np.int64)
        self._first = np.array([b[0] if b else -1 for b in token_bytes], dtype=np.int64)
        # leading continuation bytes (0x80..0xBF) of each token, counted up to 3
        self._cont = np.array([next((i for i, x in enumerate(b[:3]) if not 0x80 <= x <= 0xBF), min(3, len(b)))
                               for b in token_bytes], dtype=np.int64)
        # after the first k bytes (a pending character's tail), what the rest of the token leaves: the
        # continuation bytes still needed, or -1 if it can never be valid
        self._after = np.array([[_walk(b[k:]) if len(b) >= k else -1 for b in token_bytes] for k in range(4)],
                               dtype=np.int64).reshape(4, size)
        self._cache: dict[tuple, np.ndarray] = {}  # at most 8 states x 4 budgets; shared by threads (setdefault)

    def allowed(self, state: tuple[int, int, int] | bytes = EMPTY, remaining: int | None = None) -> np.ndarray:
        """bool[V]: the tokens that can follow `state` (a decoder state, or the pending bytes) without making
        the text invalid, and, when only `remaining` (< 3) tokens may follow, that leave at most that many
        continuation bytes to come (so single-byte tokens can still finish the character in time)."""
        if not isinstance(state, tuple):
            state = state_of(bytes(state))
        key = (state, None if remaining is None or remaining >= 3 else max(0, int(remaining)))
        mask = self._cache.get(key)
        if mask is None:
            mask = self._compute(*key)
            mask.setflags(write=False)
            mask = self._cache.setdefault(key, mask)
        return mask

    def _compute(self, state: tuple[int, int, int], remaining: int | None) -> np.ndarray:
        need, low, high = state
        if need == 0:
            after = self._after[0]
        else:
            first_ok = (self._length == 0) | ((self._first >= low) & (self._first <= high))
            short = self._length < need  # the whole token is continuation bytes of the pending character
            fits = first_ok & (self._cont >= np.minimum(self._length, need))
            after = np.where(fits, np.where(short, need - self._length, self._after[need]), -1)
        ok = after >= 0
        if remaining is not None:
            ok &= after <= remaining
        return ok


# -- GPT-2's byte-level alphabet ------------------------------------------------------------------------------
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map used by the ByteLevel pre-tokenizer."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


BYTE_TO_CHAR = bytes_to_unicode()
CHAR_TO_BYTE = {c: b for b, c in BYTE_TO_CHAR.items()}
