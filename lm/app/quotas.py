"""Quotas for a shared class server: what one student (an owner token) and the whole class may keep and run.

Every cap has a class-sized default and an environment variable; over a cap, one line names it. Counted from
what is on disk (job records say who made which model; an upload's owner is written beside it), so the caps
hold across restarts and replicas sharing one `LM_PLAYGROUND_HOME`. A caller with no owner (the CLI, the
library, the teacher) is only held to the class-wide caps.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Iterable

from lm.errors import LMError

MB = 2**20
TEACHER = "teacher"  # the `by` of a caller holding the teacher token (ui/session.py): no owner's limits


@dataclasses.dataclass(frozen=True)
class Quotas:
    models_per_owner: int = 5
    model_mb_per_owner: float = 300.0
    uploads_per_owner: int = 5
    upload_mb_per_owner: float = 20.0
    trainings_per_owner: int = 1
    user_mb_total: float = 4000.0  # models and uploads of the whole class
    models_total: int = 200

    @classmethod
    def from_env(cls) -> "Quotas":
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            raw = os.environ.get(f"LM_QUOTA_{field.name.upper()}", "").strip()
            if not raw:
                continue
            try:
                values[field.name] = int(raw) if field.type == "int" else float(raw)
            except ValueError:
                raise LMError("{variable} must be a number, not {value}", variable=f"LM_QUOTA_{field.name.upper()}",
                              value=repr(raw)) from None
        return cls(**values)


def folder_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def owned_models(records: Iterable[dict[str, Any]], owner: str, models_dir: Path) -> list[Path]:
    """Model directories on disk made by `owner`'s runs."""
    names = {r["name"] for r in records if r.get("owner_token") == owner}
    return [models_dir / n for n in sorted(names) if (models_dir / n).is_dir()]


def check_training(quotas: Quotas, records: list[dict[str, Any]], owner: str | None, home: Path,
                   active: tuple[str, ...]) -> None:
    """Raise a one-line LMError when starting one more training would break a cap."""
    models_dir = home / "models"
    existing = [p for p in models_dir.iterdir() if p.is_dir() and not p.name.startswith(".")] \
        if models_dir.is_dir() else []
    if len(existing) >= quotas.models_total:
        raise LMError("the class already has {count} models, the server's limit (LM_QUOTA_MODELS_TOTAL); "
                      "ask the teacher to delete some", count=len(existing))
    used = folder_bytes(models_dir) + folder_bytes(home / "corpora")
    if used >= quotas.user_mb_total * MB:
        raise LMError("the class's models and uploads use {mb:.0f} MB, the server's limit "
                      "(LM_QUOTA_USER_MB_TOTAL); ask the teacher to delete some", mb=used / MB)
    if owner is None:
        return
    running = [r for r in records if r.get("owner_token") == owner and r.get("status") in active]
    if len(running) >= quotas.trainings_per_owner:
        raise LMError("you are already training {model}; wait for it or cancel it first "
                      "(LM_QUOTA_TRAININGS_PER_OWNER)", model=running[0]["name"])
    mine = owned_models(records, owner, models_dir)
    if len(mine) >= quotas.models_per_owner:
        raise LMError("you have {count} models, the limit per student (LM_QUOTA_MODELS_PER_OWNER); delete one "
                      "first", count=len(mine))
    size = sum(folder_bytes(p) for p in mine)
    if size >= quotas.model_mb_per_owner * MB:
        raise LMError("your models use {mb:.0f} MB, the limit per student (LM_QUOTA_MODEL_MB_PER_OWNER); "
                      "delete one first", mb=size / MB)


DEFAULT_REQUEST_SECONDS = 30.0


def request_time_budget() -> float:
    """Seconds one generation request may run on the shared server ($LM_REQUEST_SECONDS, default 30): a crafted
    request cannot hold a core for minutes whatever its token and sample counts."""
    raw = os.environ.get("LM_REQUEST_SECONDS", "").strip()
    try:
        value = float(raw) if raw else DEFAULT_REQUEST_SECONDS
    except ValueError:
        raise LMError("LM_REQUEST_SECONDS must be a number of seconds, not {value}", value=repr(raw)) from None
    if not value > 0:
        raise LMError("LM_REQUEST_SECONDS must be positive, not {value}", value=repr(raw))
    return value


OWNER_SUFFIX = ".owner"


def owned_uploads(corpora: Path, owner: str) -> list[Path]:
    if not corpora.is_dir():
        return []
    return sorted(p.with_suffix("") for p in corpora.glob(f"*.txt{OWNER_SUFFIX}")
                  if _read(p) == owner and p.with_suffix("").is_file())


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return ""


def upload_owner(path: Path) -> str | None:
    return _read(Path(f"{path}{OWNER_SUFFIX}")) or None


def check_upload(quotas: Quotas, corpora: Path, owner: str | None, size: int, home: Path) -> None:
    """Raise a one-line LMError when keeping one more upload of `size` bytes would break a cap (nothing written)."""
    used = folder_bytes(home / "models") + folder_bytes(corpora)
    if used + size > quotas.user_mb_total * MB:
        raise LMError("the class's models and uploads would pass the server's limit of {mb:.0f} MB "
                      "(LM_QUOTA_USER_MB_TOTAL); ask the teacher to delete some", mb=quotas.user_mb_total)
    if owner is None:
        return
    mine = owned_uploads(corpora, owner)
    if len(mine) >= quotas.uploads_per_owner:
        raise LMError("you have uploaded {count} texts, the limit per student (LM_QUOTA_UPLOADS_PER_OWNER); "
                      "delete one first", count=len(mine))
    if sum(p.stat().st_size for p in mine) + size > quotas.upload_mb_per_owner * MB:
        raise LMError("your uploads would pass {mb:.0f} MB, the limit per student "
                      "(LM_QUOTA_UPLOAD_MB_PER_OWNER); delete one first", mb=quotas.upload_mb_per_owner)
