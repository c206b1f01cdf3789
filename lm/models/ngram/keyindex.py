"""A hash index over a sorted int64 key array: vectorised lookups in about one random read each.

A binary search over a table of millions of keys costs ~20 dependent reads per query; scoring a text looks up
every position at every order, so the tables the history walk cannot read directly (`_Tables.dense`) get this
index instead: open addressing with linear probing, a load of at most 0.6, each slot holding a position in the
key array (int32, so 4 bytes a slot: the keys themselves are not copied). It is derived from the keys when a
model first scores (never saved) and read-only afterwards, so threads share it.
"""

from __future__ import annotations

import threading

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: the top bits of key * 2^64 / phi
_MAX_LOAD = 0.6


class KeyIndex:
    """key -> position in `keys` (sorted, distinct, >= 0), or -1."""

    def __init__(self, keys: np.ndarray):
        self.keys = keys
        bits = max(4, int(np.ceil(np.log2(max(keys.size, 1) / _MAX_LOAD))))
        self._shift, self._mask = np.uint64(64 - bits), (1 << bits) - 1
        slots = np.full(1 << bits, -1, dtype=np.int32)
        pending = np.arange(keys.size, dtype=np.int64)
        pos = self._home(keys)
        while pending.size:  # each round: every pending key claims its slot if free (the first one wins)
            at = pos[pending]
            free = slots[at] < 0
            slot, first = np.unique(at[free], return_index=True)
            winners = pending[free][first]
            slots[slot] = winners
            placed = np.zeros(keys.size, dtype=bool)
            placed[winners] = True
            pending = pending[~placed[pending]]
            pos[pending] = (pos[pending] + 1) & self._mask
        slots.setflags(write=False)
        self._slots = slots

    def _home(self, keys: np.ndarray) -> np.ndarray:
        return ((keys.astype(np.uint64) * _GOLDEN) >> self._shift).astype(np.int64)

    def find(self, query: np.ndarray) -> np.ndarray:
        out = np.full(query.size, -1, dtype=np.int64)
        if self.keys.size == 0:
            return out
        pos = self._home(query)
        pending = np.arange(query.size, dtype=np.int64)
        while pending.size:
            at = pos[pending] if pending.size < query.size else pos
            slot = self._slots[at]
            q = query[pending] if pending.size < query.size else query
            hit = (slot >= 0) & (self.keys[np.maximum(slot, 0)] == q)
            out[pending[hit]] = slot[hit]
            more = (slot >= 0) & ~hit
            pending = pending[more]
            pos[pending] = (at[more] + 1) & self._mask
        return out


class LazyIndexes:
    """One KeyIndex per key array, built on first use (thread-safe)."""

    def __init__(self):
        self._built: dict[int, KeyIndex] = {}
        self._lock = threading.Lock()

    def get(self, name: int, keys: np.ndarray) -> KeyIndex:
        index = self._built.get(name)
        if index is None:
            with self._lock:
                index = self._built.get(name)
                if index is None:
                    index = self._built[name] = KeyIndex(keys)
        return index


__all__ = ["KeyIndex", "LazyIndexes"]
