"""The batch-1 NumPy decoding step must equal the torch step, share the cache, and refuse bad tokens."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lm.errors import LMError
from lm.models.transformer.model import KVCache
from test_transformer import C, V, make, random_ids


def torch_only(cache: KVCache) -> KVCache:
    """The same buffers and position without the NumPy step: `step` then takes the torch path."""
    return KVCache(cache.kv, cache.position)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 50), prompt=st.integers(1, 12), bias=st.booleans(), tie=st.booleans(),
       activation=st.sampled_from(["gelu", "gelu_tanh", "relu"]), heads=st.sampled_from([1, 2, 4]))
def test_numpy_step_equals_torch_step(seed, prompt, bias, tie, activation, heads):
    model = make(seed, bias=bias, tie_embeddings=tie, activation=activation, n_heads=heads)
    ids = random_ids(1, C, seed=seed)
    _, fast = model.prefill(ids[:, :prompt], model.start(1))
    _, slow = model.prefill(ids[:, :prompt], torch_only(model.start(1)))
    assert fast.numpy_step is not None and slow.numpy_step is None
    for t in range(prompt, C):
        got, fast = model.step(ids[:, t], fast)
        want, slow = model.step(ids[:, t], slow)
        assert got.shape == want.shape == (1, V) and got.dtype == want.dtype == torch.float32
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    for a, b in zip(fast.kv, slow.kv):  # both wrote the same keys and values into their caches
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_paths_alternate_within_one_sequence_and_match_the_full_logits():
    model = make(3)
    ids = random_ids(1, C, seed=3)
    full = model.logits(ids)[0]  # [C, V]
    _, cache = model.prefill(ids[:, :5], model.start(1))
    for t in range(5, C):  # even positions in NumPy, odd ones in torch, all in one cache
        step = model.step if t % 2 == 0 else model.step_torch
        logits, cache = step(ids[:, t], cache)
        torch.testing.assert_close(logits[0], full[t], atol=1e-5, rtol=0)
    assert cache.position == C


def test_only_batch_one_on_the_cpu_in_float32_gets_the_numpy_step():
    model = make()
    assert model.start(1).numpy_step is not None
    assert model.start(2).numpy_step is None
    assert make().double().start(1).numpy_step is None


def test_numpy_step_reads_the_weights_live_and_shares_the_cache_buffers():
    model = make()
    cache = model.start(1)
    _, cache = model.step(torch.tensor([3]), cache)
    assert np.shares_memory(cache.numpy_step.kv[0], cache.kv[0].numpy())
    with torch.no_grad():  # an in-place weight update (a training step) is seen by the views at once
        model.lm_head.weight.mul_(2.0)
    got, _ = model.step(torch.tensor([4]), cache.clone())
    want, _ = model.step_torch(torch.tensor([4]), torch_only(cache.clone()))
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_a_cloned_cache_steps_on_its_own_buffers():
    model = make()
    _, cache = model.prefill(random_ids(1, 6), model.start(1))
    before = [kv.clone() for kv in cache.kv]
    fork = cache.clone()
    a, fork = model.step(torch.tensor([7]), fork)
    b, fork = model.step(torch.tensor([8]), fork)
    assert all(torch.equal(kv, old) for kv, old in zip(cache.kv, before))  # the original is untouched
    assert cache.position == 6 and fork.position == 8
    want_a, cache = model.step_torch(torch.tensor([7]), torch_only(cache))
    torch.testing.assert_close(a, want_a, atol=1e-5, rtol=0)


def test_a_cache_from_other_weights_falls_back_to_the_torch_step():
    model, other = make(1), make(2)
    ids = random_ids(1, 8, seed=4)
    _, cache = model.prefill(ids[:, :6], model.start(1))
    got, _ = other.step(ids[:, 6], cache.clone())  # a cache handed to another model: that model's weights
    want, _ = other.step_torch(ids[:, 6], torch_only(cache.clone()))
    torch.testing.assert_close(got, want, atol=0, rtol=0)
    model.double()  # the parameters move to new memory: the views taken at start() are stale
    got, _ = model.step(ids[:, 6], KVCache([kv.double() for kv in cache.kv], 6, cache.numpy_step))
    assert got.dtype == torch.float64
    torch.testing.assert_close(got[0], model.logits(ids[:, :7])[0, -1], atol=1e-5, rtol=0)  # (cache from float32)


def test_weight_views_are_read_only():
    cache = make().start(1)
    with pytest.raises(ValueError):
        cache.numpy_step.weights.wte[0, 0] = 1.0


@pytest.mark.parametrize("tokens, batch", [
    (torch.tensor([1, V]), 2), (torch.tensor([-1, 0]), 2), (torch.tensor([[1]]), 1), (torch.tensor(1), 1),
    (torch.tensor([1, 2, 3]), 2), ([1], 1), (torch.tensor([0.5, 1.0]), 2),
])
def test_the_torch_step_refuses_bad_tokens_with_one_line(tokens, batch):
    model = make()
    cache = model.start(batch)
    with pytest.raises(LMError) as info:
        model.step(tokens, cache)
    assert "\n" not in str(info.value) and cache.position == 0


@pytest.mark.parametrize("tokens, message", [
    (torch.tensor([-1]), "outside the model's vocabulary"),
    (torch.tensor([V]), "outside the model's vocabulary"),
    (torch.tensor([1.0]), "must be integers"),
    (torch.tensor([True]), "must be integers"),
])
def test_bad_tokens_raise_and_leave_the_cache_as_it_was(tokens, message):
    model = make()
    _, cache = model.prefill(random_ids(1, 4), model.start(1))
    before = [kv.clone() for kv in cache.kv]
    with pytest.raises(LMError, match=message):
        model.step(tokens, cache)
    assert cache.position == 4 and all(torch.equal(kv, old) for kv, old in zip(cache.kv, before))
