"""Uploaded training texts: validated before anything is written, then kept under
`$LM_PLAYGROUND_HOME/corpora/` (same bytes, same file), so training, resuming and the memorisation meter can
read them later."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from lm.data.corpus import corpus_from_bytes
from lm.data.textio import atomic_write_bytes
from lm.errors import LMError
from lm.store.registry import home_dir

DEFAULT_UPLOAD_MAX_BYTES = 5 * 1024 * 1024  # a few MB of text is plenty for a CPU model in a lesson


def corpora_dir(home: Path | None = None) -> Path:
    return Path(home or home_dir()) / "corpora"


def upload_max_bytes() -> int:
    raw = os.environ.get("LM_UPLOAD_MAX_MB", "").strip()
    try:
        return int(float(raw) * 1024 * 1024) if raw else DEFAULT_UPLOAD_MAX_BYTES
    except ValueError:
        return DEFAULT_UPLOAD_MAX_BYTES


def save_upload(data: bytes, filename: str, home: Path | None = None, max_bytes: int | None = None) -> Path:
    """Validate an uploaded text file and keep it under corpora/; returns its path (same bytes, same path)."""
    max_bytes = upload_max_bytes() if max_bytes is None else max_bytes
    stem = re.sub(r"[^a-z0-9]+", "-", Path(str(filename or "upload")).stem.lower()).strip("-")[:40] or "upload"
    corpus = corpus_from_bytes(data, f"{stem}.txt", max_bytes=max_bytes)  # raises a one-line LMError
    if len(corpus.text) < 200:
        raise LMError(f"'{filename}' has only {len(corpus.text)} characters of text; upload at least 200")
    digest = hashlib.sha256(bytes(data)).hexdigest()[:8]
    path = corpora_dir(home) / f"{stem}-{digest}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        atomic_write_bytes(path, corpus.text.encode("utf-8"))
    return path
