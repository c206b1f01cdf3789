"""The server's model cache is bounded by memory: least recently used evicted first, too-big models refused,
and a model many sessions ask for at once is loaded once."""

from __future__ import annotations

import threading
import time

import pytest

from lm.app.model_cache import ModelCache, model_bytes
from lm.errors import LMError


def make(budget, sizes):
    loads = []

    def load(name):
        loads.append(name)
        time.sleep(0.05)  # long enough for concurrent askers to overlap
        return f"model:{name}"

    return ModelCache(load, budget=budget, size=sizes.__getitem__), loads


def test_least_recently_used_models_go_first_when_the_bytes_pass_the_budget():
    cache, loads = make(100, {"a": 40, "b": 40, "c": 40})
    assert cache.get("a") == "model:a" and cache.get("b") == "model:b"
    cache.get("a")  # a is now the most recently used
    cache.get("c")  # 120 > 100: b goes
    assert cache.names() == ["a", "c"] and cache.bytes() == 80
    cache.get("b")
    assert loads == ["a", "b", "c", "b"]


def test_a_model_bigger_than_the_budget_is_refused_before_loading():
    cache, loads = make(100, {"huge": 500})
    with pytest.raises(LMError, match="LM_MODEL_CACHE_MB"):
        cache.get("huge")
    assert loads == [] and cache.names() == []


def test_many_sessions_asking_at_once_load_a_model_once():
    cache, loads = make(100, {"a": 10})
    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("a"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert loads == ["a"] and results == ["model:a"] * 8


def test_sizes_come_from_the_weight_files():
    assert model_bytes("shakespeare-char-lstm") > 1_000_000  # its model.safetensors
