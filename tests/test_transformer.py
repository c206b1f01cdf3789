"""Transformer: SDPA path, KV-cache path and explicit-attention inspection path must agree; sharing is safe."""

from __future__ import annotations

import dataclasses
import math
import threading

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from lm.errors import LMError
from lm.models import build_model, config_from_dict
from lm.models.transformer.model import KVCache, TransformerConfig, TransformerModel
from lm.models.trace import AttentionTrace

V, C = 29, 32


def make(seed: int = 0, **kw) -> TransformerModel:
    config = TransformerConfig(**{"vocab_size": V, "context_length": C, "n_layers": 2, "n_heads": 2,
                                  "d_model": 16, **kw})
    model = TransformerModel(config, generator=torch.Generator().manual_seed(seed))
    g = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():  # nanoGPT's init makes tiny logits; spread them so comparisons mean something
        for name, param in model.named_parameters():
            if param.dim() == 2:
                param.normal_(0, 0.3, generator=g)
            elif "bias" in name:
                param.normal_(0, 0.1, generator=g)
    return model


def random_ids(*shape: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, V, shape, generator=torch.Generator().manual_seed(seed))


def greedy_cached(model, prompt: torch.Tensor, n: int) -> tuple[list[int], list[torch.Tensor]]:
    logits, cache = model.prefill(prompt[None], model.start(1))
    tokens, all_logits = [], []
    for _ in range(n):
        all_logits.append(logits[0])
        token = logits.argmax(-1)  # [1]
        tokens.append(int(token))
        logits, cache = model.step(token, cache)
    return tokens, all_logits


def greedy_full(model, prompt: torch.Tensor, n: int) -> tuple[list[int], list[torch.Tensor]]:
    ids = prompt.tolist()
    tokens, all_logits = [], []
    for _ in range(n):
        logits = model.logits(torch.tensor([ids]))[0, -1]  # recompute everything, every time
        all_logits.append(logits)
        tokens.append(int(logits.argmax()))
        ids.append(tokens[-1])
    return tokens, all_logits


# -- config -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [
    {"d_model": 15}, {"n_heads": 0}, {"context_length": 0}, {"dropout": 1.5}, {"bias": "yes"},
    {"activation": "swish"}, {"layer_norm_eps": 0}, {"tie_embeddings": 1}, {"vocab_size": -1},
])
def test_config_rejects_bad_values(bad):
    with pytest.raises(LMError):
        TransformerConfig(**{"vocab_size": V, **bad})


def test_config_round_trips_through_registry():
    config = TransformerConfig(vocab_size=V, context_length=C, n_layers=3, n_heads=4, d_model=32, bias=False,
                               tie_embeddings=False, activation="gelu_tanh", dropout=0.1)
    assert config.to_dict()["family"] == "transformer"
    assert config_from_dict(config.to_dict()) == config


# -- inspection path ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kw", [{}, {"bias": False, "tie_embeddings": False}, {"activation": "gelu"},
                                {"activation": "relu", "n_heads": 4}])
def test_trace_logits_equal_fast_path(kw):
    model = make(**kw)
    ids = random_ids(C)
    trace = model.trace(ids)
    assert isinstance(trace, AttentionTrace)
    torch.testing.assert_close(trace.logits, model.logits(ids[None])[0], atol=1e-5, rtol=0)
    heads = model.config.n_heads
    assert trace.attention.shape == (2, heads, C, C)
    assert trace.head_output_norm.shape == (2, heads, C)


def test_attention_is_causal_and_normalised():
    trace = make().trace(random_ids(20))
    att = trace.attention
    torch.testing.assert_close(att.sum(-1), torch.ones(2, 2, 20), atol=1e-5, rtol=0)
    above = torch.ones(20, 20, dtype=torch.bool).triu(1)
    assert torch.all(att[..., above] == 0)
    assert torch.all(att[..., ~above] > 0)
    assert torch.all(trace.head_output_norm >= 0)
    assert trace.to_json()["kind"] == "attention"


def test_first_layer_attention_and_head_norms_match_independent_computation():
    model = make()
    ids = random_ids(11)
    trace = model.trace(ids)
    block, D, H = model.h[0], 16, 2
    with torch.no_grad():
        x = model.wte.weight[ids] + model.wpe.weight[:11]  # [T, D]
        h = F.layer_norm(x, (D,), block.ln_1.weight, block.ln_1.bias, 1e-5)
        qkv = h @ block.attn.c_attn.weight.T + block.attn.c_attn.bias  # [T, 3D]
        w_proj = block.attn.c_proj.weight  # [D, D]
        for head in range(H):
            sl = slice(head * D // H, (head + 1) * D // H)
            q, k, v = qkv[:, sl], qkv[:, D:][:, sl], qkv[:, 2 * D:][:, sl]  # [T, Dh]
            expected = torch.zeros(11, 11)
            for t in range(11):  # row by row: softmax over the visible keys only
                expected[t, :t + 1] = torch.softmax(q[t] @ k[:t + 1].T / math.sqrt(D // H), dim=-1)
            torch.testing.assert_close(trace.attention[0, head], expected, atol=1e-5, rtol=0)
            contribution = (expected @ v) @ w_proj[:, sl].T  # [T, D]: this head's write to the residual
            torch.testing.assert_close(trace.head_output_norm[0, head], contribution.norm(dim=-1), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("bad", [random_ids(C + 1), torch.tensor([V]), torch.tensor([], dtype=torch.long),
                                 random_ids(1, 4)])
def test_trace_rejects_bad_ids(bad):
    with pytest.raises(LMError):
        make().trace(bad)


# -- KV cache -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kw", [{}, {"bias": False, "tie_embeddings": False, "activation": "gelu"}])
def test_kv_cache_greedy_generation_equals_full_recomputation(kw):
    model = make(**kw)
    prompt = random_ids(5)
    cached_tokens, cached_logits = greedy_cached(model, prompt, C - 5)
    full_tokens, full_logits = greedy_full(model, prompt, C - 5)
    assert cached_tokens == full_tokens
    for a, b in zip(cached_logits, full_logits):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


@settings(max_examples=15, deadline=None)
@given(cuts=st.lists(st.integers(1, 8), min_size=1, max_size=4), batch=st.integers(1, 3), seed=st.integers(0, 50))
def test_chunked_prefill_and_steps_match_full_logits(cuts, batch, seed):
    model = make()
    ids = random_ids(batch, C, seed=seed)
    full = model.logits(ids)
    cache, pos = model.start(batch), 0
    for cut in cuts:  # prefill chunks at growing offsets, then single steps
        logits, cache = model.prefill(ids[:, pos:pos + cut], cache)
        pos += cut
        torch.testing.assert_close(logits, full[:, pos - 1], atol=1e-5, rtol=0)
    for t in range(pos, min(pos + 4, C)):
        logits, cache = model.step(ids[:, t], cache)
        torch.testing.assert_close(logits, full[:, t], atol=1e-5, rtol=0)


def test_cache_is_preallocated_and_full_cache_raises():
    model = make()
    cache = model.start(2)
    assert isinstance(cache, KVCache) and cache.capacity == C == model.context_length
    assert cache.keys[0].shape == (2, 2, C, 8) and cache.values[1].shape == (2, 2, C, 8)
    pointers = [kv.data_ptr() for kv in cache.kv]
    _, cache = model.prefill(random_ids(2, C - 1), cache)
    forked = cache.clone()
    _, cache = model.step(torch.tensor([1, 2]), cache)
    assert cache.position == C and forked.position == C - 1
    assert [kv.data_ptr() for kv in cache.kv] == pointers  # written in place, never reallocated
    with pytest.raises(LMError, match="full"):
        model.step(torch.tensor([1, 2]), cache)
    with pytest.raises(LMError, match="full"):
        model.prefill(random_ids(2, 2), forked)
    with pytest.raises(LMError):
        model.logits(random_ids(1, C + 1))
    with pytest.raises(LMError):
        model.prefill(random_ids(3, 2), model.start(2))  # batch mismatch


# -- sharing one model ----------------------------------------------------------------------------------
def _work(model, seed):
    ids = random_ids(12 + seed, seed=seed)
    trace = model.trace(ids)
    tokens, _ = greedy_cached(model, ids[:4], 10)
    return trace.attention, trace.logits, tokens


def test_threads_sharing_one_model_get_their_own_results():
    model = make()
    expected = {seed: _work(model, seed) for seed in range(6)}
    results: dict[int, tuple] = {}
    errors: list[BaseException] = []

    def run(seed):
        try:
            for _ in range(3):
                results[seed] = _work(model, seed)
                got, want = results[seed], expected[seed]
                assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1]) and got[2] == want[2]
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(seed,)) for seed in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[0]
    assert set(results) == set(expected)


def test_no_hooks_and_no_state_left_on_the_model():
    model = make()
    snapshot = {name: set(vars(module)) for name, module in model.named_modules()}
    weights = {k: v.clone() for k, v in model.state_tensors().items()}
    model.trace(random_ids(9))
    greedy_cached(model, random_ids(3), 5)
    model.logits(random_ids(2, 6))
    for name, module in model.named_modules():
        assert set(vars(module)) == snapshot[name], name
        for hooks in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_state_dict_hooks"):
            assert not getattr(module, hooks), (name, hooks)
        assert not module._buffers
    assert all(torch.equal(weights[k], v) for k, v in model.state_tensors().items())
    assert not model.training


# -- persistence and plumbing -------------------------------------------------------------------------
@pytest.mark.parametrize("tie", [True, False])
def test_state_tensors_round_trip(tie, tmp_path):
    model = make(tie_embeddings=tie)
    tensors = model.state_tensors()
    assert ("lm_head.weight" in tensors) is not tie  # a tied head is stored once
    save_file(tensors, str(tmp_path / "m.safetensors"))  # refuses shared storage, so this checks the tie too
    again = build_model(model.config, load_file(str(tmp_path / "m.safetensors")))
    assert (again.lm_head.weight is again.wte.weight) is tie
    ids = random_ids(2, 10)
    torch.testing.assert_close(again.logits(ids), model.logits(ids), atol=0, rtol=0)
    assert model.num_parameters() == sum(p.numel() for p in model.parameters())


def test_from_state_rejects_mismatches():
    model = make()
    tensors = model.state_tensors()
    with pytest.raises(LMError, match="shape"):
        TransformerModel.from_state(TransformerConfig(vocab_size=V, context_length=C + 1, n_layers=2,
                                                      n_heads=2, d_model=16), tensors)
    with pytest.raises(LMError, match="lack"):
        TransformerModel.from_state(model.config, {k: v for k, v in tensors.items() if k != "ln_f.weight"})
    with pytest.raises(LMError):
        TransformerModel.from_state(TransformerConfig(vocab_size=V, context_length=C, n_layers=3, n_heads=2,
                                                      d_model=16), tensors)


def test_generator_makes_init_reproducible_and_train_mode_is_opt_in():
    cfg = TransformerConfig(vocab_size=V, context_length=C, n_layers=1, n_heads=2, d_model=16, dropout=0.2)
    a = TransformerModel(cfg, generator=torch.Generator().manual_seed(3))
    b = TransformerModel(cfg, generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(x, y) for x, y in zip(a.state_tensors().values(), b.state_tensors().values()))
    assert not a.training and a.device == torch.device("cpu")
    ids = random_ids(1, 8)
    # a fresh model is in eval mode: its logits are those of the same weights without any dropout ...
    plain = TransformerModel(dataclasses.replace(cfg, dropout=0.0), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a.logits(ids), plain.logits(ids), atol=0, rtol=0)
    a.train()  # ... and dropout is applied once asked for
    assert not torch.allclose(a.logits(ids), plain.logits(ids))
