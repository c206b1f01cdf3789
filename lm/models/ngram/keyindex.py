"""A hash index over a sorted int64 key array: vectorised lookups in about one random read each.

A binary search over a table of millions of keys costs ~20 dependent reads per query; scoring a text looks up
every position at every order, so the tables the history walk cannot read directly (`_Tables.dense`) get this
index instead. It is a short cascade of direct-mapped tables, each slot holding a position in the key array
(int32, 4 bytes a slot: the keys themselves are not copied). Every key claims its slot in the first table
(load at most 0.5); the keys that lost their slot to another go to a smaller second table under another hash,
and so on (each table about an eighth of the one before). A query reads one slot per table and stops at the
first table whose slot is empty or holds it: about 80 % of the keys sit in the first table, so almost every
query costs one slot read and one key read, with no probing loop. Built from the keys (never saved) and
read-only afterwards, so threads share it.

Queries may be any int64, negative ones included (the scoring paths look up "no context" as a negative key,
which is never found).
"""

from __future__ import annotations

import threading

import numpy as np

# odd 64-bit multipliers (Fibonacci hashing: the top bits of key * m), one per table of the cascade
_MULTIPLIERS = tuple(np.int64(m - (1 << 64) if m >= 1 << 63 else m) for m in (
    0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93, 0xFF51AFD7ED558CCD,
    0xC4CEB9FE1A85EC53, 0x94D049BB133111EB, 0xBF58476D1CE4E5B9))
_MAX_LOAD = 0.5


def _slots_of(keys: np.ndarray, multiplier: np.int64, shift: int, mask: int) -> np.ndarray:
    with np.errstate(over="ignore"):  # the multiplication wraps modulo 2^64 on purpose
        return ((keys * multiplier) >> shift) & mask


class KeyIndex:
    """key -> position in `keys` (sorted, distinct, >= 0), or -1."""

    def __init__(self, keys: np.ndarray):
        self.keys = keys
        self._tables: list[tuple[np.ndarray, np.int64, int, int]] = []
        pending = np.arange(keys.size, dtype=np.int64)
        while pending.size:
            level = len(self._tables)
            bits = max(4, int(np.ceil(np.log2(pending.size / _MAX_LOAD))))
            # (past the listed multipliers, which takes a pathological key set, vary them: still odd)
            multiplier = _MULTIPLIERS[level % len(_MULTIPLIERS)] ^ np.int64(2 * (level // len(_MULTIPLIERS)))
            shift, mask = 64 - bits, (1 << bits) - 1
            slot = _slots_of(keys[pending], multiplier, shift, mask)
            table = np.full(1 << bits, -1, dtype=np.int32)
            taken, first = np.unique(slot, return_index=True)  # the first key of each slot keeps it
            table[taken] = pending[first]
            table.setflags(write=False)
            self._tables.append((table, multiplier, shift, mask))
            lost = np.ones(pending.size, dtype=bool)
            lost[first] = False
            pending = pending[lost]

    @property
    def nbytes(self) -> int:
        return int(sum(t[0].nbytes for t in self._tables))

    def find(self, query: np.ndarray) -> np.ndarray:
        """Position of each query in `keys` (int64; -1 where the key is not there)."""
        query = np.asarray(query, dtype=np.int64)
        if not self._tables:
            return np.full(query.shape, -1, dtype=np.int64)
        keys = self.keys
        table, multiplier, shift, mask = self._tables[0]
        pos = table[_slots_of(query, multiplier, shift, mask)].astype(np.int64)
        occupied = pos >= 0
        hit = occupied & (keys[pos] == query)  # (an empty slot reads keys[-1]; `occupied` discards it)
        out = np.where(hit, pos, -1)
        more = np.flatnonzero(occupied & ~hit)  # the slot holds another key: this one may be further on
        for table, multiplier, shift, mask in self._tables[1:]:
            if more.size == 0:
                break
            q = query[more]
            pos = table[_slots_of(q, multiplier, shift, mask)].astype(np.int64)
            occupied = pos >= 0
            hit = occupied & (keys[pos] == q)
            out[more[hit]] = pos[hit]
            more = more[occupied & ~hit]
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
