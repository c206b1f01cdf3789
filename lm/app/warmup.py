"""Warming a server: load every zoo model once, run each through the paths a first click takes, then freeze the
start-up heap and keep collecting garbage on a schedule.

Why: the first use of a shipped n-gram counts its tables (seconds), the first neural generation pays for imports
and buffer allocation, and Streamlit's forced `gc.collect(2)` after every script run (switched off in
.streamlit/config.toml) cost 44 % of the server's CPU under load, walking a heap of torch, Plotly and the models
that never becomes garbage. After warming, `gc.freeze()` moves that heap out of the collector's sight; Python's
own generational collector keeps running for everything a session creates, and `collect_every` adds a full
collection on a timer so memory held in reference cycles is returned even when allocation is quiet.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from lm.errors import LMError
from lm.run.generate import generate
from lm.run.metrics import score
from lm.run.sampling import SamplingSettings
from lm.store.registry import list_models

WARM_PROMPT = "\n"  # every built-in corpus has line starts
WARM_TOKENS = 8
FULL_COLLECT_SECONDS = 60.0
WARM_DONE = "warm-up done"  # starts the server-log line that says so (bench/bench_burst.py waits for it)

_log = logging.getLogger(__name__)
_log.setLevel(logging.INFO)  # one line per process reaches the server log, whose "lm" handler shows warnings only


def warm_models(load: Callable[[str], Any], names: Iterable[str] | None = None) -> dict[str, float]:
    """Load each model with `load` (the app's cached loader) and run a short generation and a scoring on it,
    so that every lazily built table, cache and buffer exists before a student asks. Returns seconds per model;
    a model that cannot load is skipped (its page will say why)."""
    timings: dict[str, float] = {}
    settings = SamplingSettings(max_new_tokens=WARM_TOKENS, seed=0)
    for name in names if names is not None else [m.name for m in list_models() if m.source == "zoo"]:
        started = time.perf_counter()
        try:
            loaded = load(name)
            for _ in generate(loaded.model, loaded.tokenizer, WARM_PROMPT, settings):
                pass
            score(loaded.model, loaded.tokenizer, "To be, or not to be\n")
        except LMError:
            continue
        timings[name] = round(time.perf_counter() - started, 3)
    return timings


def freeze_heap() -> None:
    """Collect once, then exclude everything alive now (imports, models, caches) from future collections."""
    gc.collect()
    gc.freeze()


def collect_every(seconds: float = FULL_COLLECT_SECONDS, stop: threading.Event | None = None) -> threading.Thread:
    """A daemon thread that runs a full collection every `seconds` (the forced per-run collection's job, at a
    rate that does not grow with the number of students)."""
    stop = stop or threading.Event()

    def loop() -> None:
        while not stop.wait(seconds):
            gc.collect()

    thread = threading.Thread(target=loop, name="lm-gc", daemon=True)
    thread.start()
    return thread


_started = threading.Event()


def start_background_warmup(load: Callable[[str], Any], names: Iterable[str] | None = None,
                            on_done: Callable[[dict[str, float]], Any] | None = None) -> bool:
    """Warm the zoo in a daemon thread, once per process; then freeze the heap and start the collection timer.
    Returns False when a warm-up was already started."""
    if _started.is_set():
        return False
    _started.set()

    def run() -> None:
        started = time.perf_counter()
        timings = warm_models(load, names)
        freeze_heap()
        collect_every()
        _log.info("%s: %d models in %.1f s, start-up heap frozen", WARM_DONE, len(timings),
                  time.perf_counter() - started)
        if on_done is not None:
            on_done(timings)

    threading.Thread(target=run, name="lm-warmup", daemon=True).start()
    return True
