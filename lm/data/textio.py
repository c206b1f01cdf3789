"""Small file helpers shared by the `lm` package: atomic writes and safe reading of user text.

Atomic writes go to a temporary file in the destination's directory and are moved into place with
`os.replace`, so a reader (or a crash) never sees a half-written file. Reading user text turns every way a
file can be unusable (missing, a directory, too big, binary, not UTF-8, empty) into one `LMError` line that
names the problem.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from lm.errors import LMError

DEFAULT_MAX_BYTES = 20 * 1024 * 1024  # 20 MiB: far more text than a CPU model trains on in a session

# Control characters that real text files contain; anything else below U+0020 counts as "binary-looking".
_TEXT_CONTROLS = frozenset("\t\n\r\f\v\x1b")
_BINARY_SAMPLE_CHARS = 1 << 16
_BINARY_CONTROL_FRACTION = 0.05


def format_size(num_bytes: int) -> str:
    """Human-readable size: '512 bytes', '3.4 KB', '25.0 MB' (binary multiples)."""
    if num_bytes < 1024:
        return f"{num_bytes} bytes"
    value = float(num_bytes)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1024
        if value < 1024 or unit == "TB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically (temp file in the same directory, fsync, os.replace).

    Missing parent directories are created. OS problems (permissions, full disk) raise LMError.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # Keep the mode an ordinary write would give (mkstemp creates 0600 files).
        mode = target.stat().st_mode & 0o777 if target.exists() else 0o644
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise LMError("cannot write {path}: {reason}", path=target, reason=exc.strerror or exc) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, target)
    except BaseException as exc:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise LMError("cannot write {path}: {reason}", path=target, reason=exc.strerror or exc) from None
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` as UTF-8 to `path` atomically (no newline translation)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write JSON to a temporary file beside `path` and rename it into place."""
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def decode_text(data: bytes, what: str = "the text") -> str:
    """Decode user-supplied bytes as UTF-8 text or raise LMError saying why they are not text.

    A UTF-8 byte-order mark is dropped and Windows/old-Mac line endings become "\\n", so an upload behaves
    the same whatever editor wrote it. `what` names the input in messages ("notes.txt", "the upload").
    Emptiness is not checked here (see `check_not_blank`).
    """
    nul = data.find(b"\x00")
    if nul != -1:
        raise LMError("{what} looks like a binary file (NUL byte at byte offset {offset}), not text", what=what,
                      offset=nul)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.start + 1].hex()
        raise LMError("{what} is not valid UTF-8 (byte 0x{byte} at byte offset {offset}); save it as UTF-8 text",
                      what=what, byte=bad, offset=exc.start) from None
    sample = text[:_BINARY_SAMPLE_CHARS]
    controls = sum(1 for ch in sample if ch < " " and ch not in _TEXT_CONTROLS)
    if sample and controls / len(sample) > _BINARY_CONTROL_FRACTION:
        raise LMError("{what} looks like a binary file ({controls} control characters in the first {chars} "
                      "characters), not text", what=what, controls=controls, chars=len(sample))
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def check_not_blank(text: str, what: str = "the text") -> str:
    """Return `text` unchanged, or raise LMError if it is empty or whitespace only."""
    if not text:
        raise LMError("{what} is empty", what=what)
    if text.isspace():
        raise LMError("{what} contains only whitespace", what=what)
    return text


def check_size(num_bytes: int, max_bytes: int | None, what: str = "the text") -> None:
    """Raise LMError if `num_bytes` exceeds `max_bytes` (None: no limit), stating both sizes."""
    if max_bytes is not None and num_bytes > max_bytes:
        raise LMError("{what} is {size}, over the {limit} limit", what=what, size=format_size(num_bytes),
                      limit=format_size(max_bytes))


def read_text_file(path: str | os.PathLike, max_bytes: int | None = DEFAULT_MAX_BYTES) -> str:
    """Read a user's UTF-8 text file, raising LMError for missing/directory/oversize/binary/non-UTF-8/blank."""
    file = Path(path)
    what = str(file)
    try:
        if file.is_dir():
            raise LMError("{what} is a directory, not a text file", what=what)
        if not file.exists():
            raise LMError("no such file: {what}", what=what)
        check_size(file.stat().st_size, max_bytes, what)
        data = file.read_bytes()
    except OSError as exc:
        raise LMError("cannot read {what}: {reason}", what=what, reason=exc.strerror or exc) from None
    check_size(len(data), max_bytes, what)  # the file may have grown since stat()
    return check_not_blank(decode_text(data, what), what)
