"""The server's model cache, bounded by memory rather than by count.

A count (Streamlit's `max_entries=32`) does not bound memory: one order-8 n-gram counted on a 5 MB upload of
random letters held 1.5 GB. This cache keeps the most recently used models while their estimated size (the
weight files on disk: model.safetensors, or a recipe's cached build) stays under `LM_MODEL_CACHE_MB` (default
2,000 MB), evicting the least recently used first. A model larger than the whole budget is refused in one line
before it is loaded. Models are shared read-only by every session; an evicted model stays alive for a session
that still holds it and is simply loaded again by the next one who asks.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from lm.errors import LMError
from lm.store.paths import WEIGHTS_FILE, cache_dir
from lm.store.registry import resolve

DEFAULT_CACHE_MB = 2000
RECIPE_ESTIMATE_BYTES = 300 * 2**20  # a zoo recipe not built yet: about the size of the largest shipped 7-gram


def cache_budget() -> int:
    raw = os.environ.get("LM_MODEL_CACHE_MB", "").strip()
    try:
        value = float(raw) if raw else DEFAULT_CACHE_MB
    except ValueError:
        raise LMError("LM_MODEL_CACHE_MB must be a number of megabytes, not {value}", value=repr(raw)) from None
    return int(value * 2**20)


def model_bytes(name: str) -> int:
    """Memory a loaded model takes, estimated from its weight file (its cached build for a zoo recipe)."""
    path = resolve(name)
    for candidate in (path / WEIGHTS_FILE, cache_dir() / path.name / WEIGHTS_FILE):
        if candidate.is_file():
            return candidate.stat().st_size
    return path.stat().st_size if path.is_file() else RECIPE_ESTIMATE_BYTES  # an ARPA file, or a recipe


class ModelCache:
    """Name -> loaded model, least recently used evicted first when the estimated bytes pass the budget."""

    def __init__(self, load: Callable[[str], Any], budget: int | None = None, size: Callable[[str], int] = model_bytes):
        self._load, self._size = load, size
        self.budget = cache_budget() if budget is None else budget
        self._models: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def get(self, name: str) -> Any:
        with self._lock:
            if name in self._models:
                self._models.move_to_end(name)
                return self._models[name][0]
            gate = self._loading.setdefault(name, threading.Lock())
        with gate:  # two sessions asking for one model load it once
            with self._lock:
                if name in self._models:
                    return self._models[name][0]
            size = self._size(name)
            if size > self.budget:
                raise LMError("{model} needs about {mb:,.0f} MB, more than this server keeps for models "
                              "({budget:,.0f} MB, LM_MODEL_CACHE_MB)", model=name, mb=size / 2**20,
                              budget=self.budget / 2**20)
            model = self._load(name)
            with self._lock:
                self._models[name] = (model, size)
                while sum(s for _, s in self._models.values()) > self.budget and len(self._models) > 1:
                    self._models.popitem(last=False)
                self._loading.pop(name, None)
            return model

    def names(self) -> list[str]:
        with self._lock:
            return list(self._models)

    def bytes(self) -> int:
        with self._lock:
            return sum(s for _, s in self._models.values())

    def forget(self, name: str) -> None:
        """Drop a model (it was deleted or retrained)."""
        with self._lock:
            self._models.pop(name, None)


__all__ = ["ModelCache", "cache_budget", "model_bytes"]
