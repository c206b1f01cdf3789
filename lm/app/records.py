"""Job records on disk: where they live, which process owns a running one, and the checks that turn a file
read from the user directory into a record the pages can show (a damaged or hostile file hides one entry)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from lm.store.registry import home_dir

ACTIVE = ("queued", "running")
TERMINAL = ("finished", "cancelled", "failed", "interrupted")
JOB_ID = re.compile(r"^[a-z0-9-]{6,40}$")


def jobs_dir(home: Path | None = None) -> Path:
    return Path(home or home_dir()) / "jobs"


def process_start(pid: int) -> str | None:
    """The kernel's start time of a process (Linux /proc), so a recycled pid is not taken for the original."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]  # field 22 of /proc/<pid>/stat, counted after the name
    except (OSError, IndexError):
        return None


def this_process() -> dict[str, Any]:
    import socket

    return {"host": socket.gethostname(), "pid": os.getpid(), "start": process_start(os.getpid())}


def owner_alive(owner: Any) -> bool:
    """True when `owner` (a job record's) is another process on this machine that is still running.

    Several app replicas may share one LM_PLAYGROUND_HOME (docs/serving.md): a replica that starts must
    not mark a sibling's live training as interrupted. A dead owner, this very process (a restart reusing
    the pid), an owner on another host or a record without one count as gone.
    """
    import socket

    if not isinstance(owner, dict) or owner.get("host") != socket.gethostname():
        return False
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid == os.getpid() or owner.get("start") is None:
        return False
    return process_start(pid) == owner["start"]


def checked_record(record: Any) -> dict[str, Any] | None:
    """A job record read from disk, with every field the pages read present and of the right type; None when
    it is not a job record at all (a hostile or damaged file must hide one entry, never break a page)."""
    if not isinstance(record, dict) or not isinstance(record.get("id"), str) or not JOB_ID.match(record["id"]):
        return None
    if not isinstance(record.get("name"), str) or record.get("status") not in ACTIVE + TERMINAL:
        return None
    number = (int, float)
    defaults = {"created": 0.0, "started": None, "ended": None, "message": "", "error": None, "result": None,
                "resumable": False, "runs": 0, "settings": {}, "directory": "", "owner": None, "owner_token": None,
                "paused": False, "race": None}
    kinds = {"created": number, "started": number, "ended": number, "message": str, "error": str, "result": dict,
             "resumable": bool, "runs": int, "settings": dict, "directory": str, "owner": dict, "owner_token": str,
             "paused": bool, "race": dict}
    for key, default in defaults.items():
        if not isinstance(record.get(key), kinds[key]):
            record[key] = default
    progress = record.get("progress") if isinstance(record.get("progress"), dict) else {}
    record["progress"] = {"step": 0, "total": None, "minutes": None, "elapsed": 0.0, "phase": "setup",
                          "tokens_per_second": 0.0, **progress}
    history = record.get("history") if isinstance(record.get("history"), dict) else {}
    record["history"] = {part: [p for p in history.get(part, []) if isinstance(p, list) and len(p) >= 2
                                and all(isinstance(v, number) or v is None for v in p)]
                         if isinstance(history.get(part), list) else [] for part in ("train", "valid", "clock")}
    samples = history.get("samples") if isinstance(history.get("samples"), list) else []  # [step, text]
    record["history"]["samples"] = [p for p in samples if isinstance(p, list) and len(p) == 2
                                    and isinstance(p[0], int) and isinstance(p[1], str)]
    return record
