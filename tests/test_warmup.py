"""The server's warm-up (lm/app/warmup.py): every model loaded and exercised once, then the heap frozen."""

from __future__ import annotations

import gc
import threading

from lm.app import warmup
from lm.store.registry import list_models, load_model


def test_warm_models_loads_and_runs_every_zoo_model_through_the_given_loader():
    names = [m.name for m in list_models() if m.source == "zoo" and m.family == "ngram"][:1]
    names += ["no-such-model"]  # a model that cannot load is skipped, not fatal
    loaded = []

    def load(name):
        loaded.append(name)
        return load_model(name)

    timings = warmup.warm_models(load, names)
    assert loaded == names
    assert list(timings) == names[:1] and timings[names[0]] > 0


def test_background_warmup_runs_once_then_freezes_the_heap(monkeypatch):
    monkeypatch.setattr(warmup, "_started", threading.Event())
    done = threading.Event()
    seen = {}
    monkeypatch.setattr(warmup, "collect_every", lambda: None)  # no timer thread left behind by the test
    try:
        assert warmup.start_background_warmup(lambda name: load_model(name), [],
                                              on_done=lambda t: (seen.update(t=t), done.set()))
        assert not warmup.start_background_warmup(lambda name: None, [])  # a second start is refused
        assert done.wait(30)
        assert seen["t"] == {} and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_the_collection_timer_collects(monkeypatch):
    calls = []
    monkeypatch.setattr(gc, "collect", lambda *a: calls.append(a) or 0)
    stop = threading.Event()
    thread = warmup.collect_every(0.01, stop)
    try:
        deadline = threading.Event()
        deadline.wait(0.2)
        assert len(calls) >= 2
    finally:
        stop.set()
        thread.join(1)
