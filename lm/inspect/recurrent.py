"""Recurrent summaries: gate saturation (share of steps above 0.9 / below 0.1 per unit) and the correlation
of every unit with simple, human-readable text features (inside quotes, line ends, after a speaker name, ...)."""

from __future__ import annotations

import dataclasses
import re
from typing import Iterable, Sequence

import numpy as np

from lm.errors import LMError
from lm.inspect.text import Inspection, as_array


SIGMOID_STATES = frozenset({"input", "forget", "output", "reset", "update"})  # gates, values in (0, 1)
TANH_STATES = frozenset({"cell_candidate", "candidate", "hidden"})  # values in (-1, 1)
SATURATION_HIGH, SATURATION_LOW = 0.9, 0.1


# -- recurrent summaries ------------------------------------------------------------------------------------


def gate_saturation(values, high: float = SATURATION_HIGH, low: float = SATURATION_LOW) -> tuple[np.ndarray, np.ndarray]:
    """(share of steps above `high`, share of steps below `low`) per unit, for values [..., T, units].

    For a sigmoid gate, a unit that is almost always > 0.9 (or < 0.1) acts like a switch that is stuck open
    (or shut), as in Karpathy et al.'s "Visualizing and Understanding Recurrent Networks".
    """
    v = as_array(values)
    if v.ndim < 2 or v.shape[-2] == 0:
        raise LMError("gate saturation needs values shaped [..., steps, units] with at least one step")
    return (v > high).mean(-2), (v < low).mean(-2)


FEATURES = {
    "inside quotes": "the text so far has an open double quote",
    "line end": "the token contains a line break",
    "position in line": "characters since the last line break",
    "after a speaker name": "on the line after a speaker line like 'HAMLET:'",
    "uppercase": "the token's letters are all capitals",
}
_SPEAKER_LINE = re.compile(r"^[A-Z][A-Za-z' .&-]{0,40}:[ \t]*$", re.M)


def char_features(text: str) -> dict[str, np.ndarray]:
    """Each feature of `FEATURES` as a value per character of `text` (the state after reading it)."""
    n = len(text)
    quotes = np.zeros(n, dtype=np.float32)
    inside = False
    for i, ch in enumerate(text):
        if ch == '"':
            inside = not inside
        elif ch == "\u201c":
            inside = True
        elif ch == "\u201d":
            inside = False
        quotes[i] = inside
    chars = np.array(list(text)) if n else np.array([], dtype="<U1")
    newline = (chars == "\n").astype(np.float32)
    position = np.zeros(n, dtype=np.float32)
    col = 0
    for i, ch in enumerate(text):
        col = 0 if ch == "\n" else col + 1
        position[i] = col
    speaker = np.zeros(n, dtype=np.float32)
    for m in _SPEAKER_LINE.finditer(text):
        start = m.end() + 1  # the character after the speaker line's line break
        if start <= n:
            stop = text.find("\n", start)
            speaker[start:n if stop < 0 else stop + 1] = 1.0
    upper = np.array([c.isupper() for c in text], dtype=np.float32)
    lower = np.array([c.islower() for c in text], dtype=np.float32)
    return {"inside quotes": quotes, "line end": newline, "position in line": position,
            "after a speaker name": speaker, "_upper": upper, "_lower": lower}


def token_features(text: str, spans: Sequence[tuple[int, int]]) -> dict[str, np.ndarray]:
    """`FEATURES` per token: the value at the token's last character (uppercase: over its letters)."""
    chars = char_features(text)
    out = {name: np.zeros(len(spans), dtype=np.float32) for name in FEATURES}
    last = {name: 0.0 for name in FEATURES}
    for t, (s, e) in enumerate(spans):
        if e > s:
            last = {name: float(chars[name][e - 1]) for name in ("inside quotes", "position in line",
                                                                 "after a speaker name")}
            last["line end"] = float(chars["line end"][s:e].max())
            up, low = chars["_upper"][s:e].sum(), chars["_lower"][s:e].sum()
            last["uppercase"] = float(up > 0 and low == 0)
        for name in FEATURES:
            out[name][t] = last.get(name, 0.0)
    return out


def correlations(values, feature) -> np.ndarray:
    """Pearson correlation of every unit of values [T, units] with feature [T] (0 where either is constant)."""
    v = as_array(values)
    f = as_array(feature)
    if v.ndim != 2 or f.shape != (v.shape[0],):
        raise LMError(f"expected values [T, units] and feature [T], got {v.shape} and {f.shape}")
    vc = v - v.mean(0)
    fc = f - f.mean()
    denom = np.sqrt((vc ** 2).sum(0) * (fc ** 2).sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (vc * fc[:, None]).sum(0) / denom
    return np.nan_to_num(np.where(denom > 1e-12, r, 0.0)).astype(np.float32)


@dataclasses.dataclass
class UnitMatch:
    feature: str
    unit: int
    r: float  # Pearson correlation over the text's tokens


def feature_units(inspection: Inspection, state: str = "hidden", layer: int = 0, top: int = 3,
                  features: Iterable[str] | None = None) -> list[UnitMatch]:
    """The `top` units of one state/layer that best (|r|) follow each text feature that varies in the text."""
    states = inspection.trace.states
    if state not in states:
        raise LMError(f"this model has no {state!r} state (it has {', '.join(states)})")
    values = as_array(states[state])[layer]  # [T, units]
    feats = token_features(inspection.text, inspection.spans)
    out = []
    for name in features or FEATURES:
        f = feats[name]
        if f.std() == 0:
            continue  # the text never changes this feature: nothing to correlate with
        r = correlations(values, f)
        for unit in np.argsort(-np.abs(r), kind="stable")[:top]:
            out.append(UnitMatch(name, int(unit), float(r[unit])))
    return out


@dataclasses.dataclass(frozen=True)
class CellRow:
    """One recurrent model beside the others on one text: which cell, how big, how well it reads the text."""

    name: str
    cell: str  # rnn (Elman) | gru | lstm
    parameters: int
    states: tuple[str, ...]  # what its trace shows: gates and states
    bits_per_char: float  # on the text
    valid_bits_per_char: float | None  # held-out, as its checkpoint records


def compare_cells(models: Sequence, text: str, held_out: Sequence[float | None]) -> list[CellRow]:
    """The recurrent `models` (loaded: `.name`, `.model`, `.tokenizer`) side by side on `text`: the Memory
    page's "three cells" table (Elman RNN, GRU, LSTM); `held_out` is each one's recorded held-out bits/char."""
    from lm.models.rnn import STATE_NAMES  # torch: the feature helpers above stay importable without it
    from lm.run.metrics import score  # torch, as above

    rows = []
    for loaded, valid in zip(models, held_out):
        cell = str(loaded.model.config.cell)
        rows.append(CellRow(loaded.name, cell, loaded.model.num_parameters(), tuple(STATE_NAMES[cell]),
                            score(loaded.model, loaded.tokenizer, text).bits_per_char, valid))
    return rows
