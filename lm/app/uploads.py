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
from lm.app.quotas import OWNER_SUFFIX, TEACHER, Quotas, check_upload, upload_owner
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


def save_upload(data: bytes, filename: str, home: Path | None = None, max_bytes: int | None = None,
                owner: str | None = None, quotas: Quotas | None = None) -> Path:
    """Validate an uploaded text file and keep it under corpora/ (same bytes and owner, same path); every
    check, quotas included, comes before anything is written. `owner` (a browser's token) is recorded beside it."""
    max_bytes = upload_max_bytes() if max_bytes is None else max_bytes
    stem = re.sub(r"[^a-z0-9]+", "-", Path(str(filename or "upload")).stem.lower()).strip("-")[:40] or "upload"
    corpus = corpus_from_bytes(data, f"{stem}.txt", max_bytes=max_bytes)  # raises a one-line LMError
    if len(corpus.text) < 200:
        raise LMError("the file has only {chars} characters of text; upload at least 200", chars=len(corpus.text))
    digest = hashlib.sha256((owner or "").encode() + b"\0" + bytes(data)).hexdigest()[:8]
    root = corpora_dir(home)
    path = root / f"{stem}-{digest}.txt"
    if path.exists():
        return path
    home_path = Path(home or home_dir())
    encoded = corpus.text.encode("utf-8")
    check_upload(quotas or Quotas.from_env(), root, owner, len(encoded), home_path)
    root.mkdir(parents=True, exist_ok=True)
    if owner is not None:
        atomic_write_bytes(Path(f"{path}{OWNER_SUFFIX}"), owner.encode())
    atomic_write_bytes(path, encoded)
    return path


def delete_upload(path: Path, by: str | None, home: Path | None = None) -> None:
    """Delete an uploaded text: its owner or the teacher (`by` None or "teacher"); nothing outside corpora/."""
    root = corpora_dir(home).resolve()
    path = Path(path).resolve()
    if path.parent != root or path.suffix != ".txt" or not path.is_file():
        raise LMError("no such upload")
    if by not in (None, TEACHER) and upload_owner(path) != by:
        raise LMError("this text was uploaded by another student: only they or the teacher can delete it")
    path.unlink()
    Path(f"{path}{OWNER_SUFFIX}").unlink(missing_ok=True)


def list_uploads(home: Path | None = None) -> list[dict]:
    """Every upload: path, bytes, owner token (None when unknown)."""
    root = corpora_dir(home)
    if not root.is_dir():
        return []
    return [{"path": p, "bytes": p.stat().st_size, "owner": upload_owner(p)} for p in sorted(root.glob("*.txt"))]
