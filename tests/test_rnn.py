"""RNN / GRU / LSTM: fused path, step path and the explicit inspection path must agree."""

from __future__ import annotations

import time

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from lm.errors import LMError
from lm.models import build_model, config_from_dict
from lm.models.rnn import STATE_NAMES, RNNConfig, RNNModel
from lm.models.trace import RecurrentTrace

CELLS = ["rnn", "gru", "lstm"]
V = 23


def make(cell: str, seed: int = 0, **kw) -> RNNModel:
    config = RNNConfig(vocab_size=V, cell=cell, **{"n_layers": 2, "d_embed": 8, "d_hidden": 12, **kw})
    return RNNModel(config, generator=torch.Generator().manual_seed(seed))


def random_ids(*shape: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, V, shape, generator=torch.Generator().manual_seed(seed))


def hidden_per_step(model: RNNModel, ids: torch.Tensor):
    """Per-layer h (and c) after every token, from the fused module run one token at a time: [L, T, H]."""
    hs, cs = [], []
    state = None
    with torch.no_grad():
        x = model.embed(ids[None])  # [1, T, E]
        for t in range(ids.shape[0]):
            _, state = model.rnn(x[:, t:t + 1], state)
            h, c = state if model.config.cell == "lstm" else (state, None)
            hs.append(h[:, 0])
            if c is not None:
                cs.append(c[:, 0])
    return torch.stack(hs, dim=1), (torch.stack(cs, dim=1) if cs else None)


# -- config -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [
    {"cell": "transformer"}, {"n_layers": 0}, {"d_hidden": -3}, {"d_embed": 2.5}, {"dropout": 1.0},
    {"dropout": -0.1}, {"vocab_size": 0}, {"n_layers": True},
])
def test_config_rejects_bad_values(bad):
    with pytest.raises(LMError):
        RNNConfig(**{"vocab_size": V, **bad})


def test_config_round_trips_through_registry():
    config = RNNConfig(vocab_size=V, cell="gru", n_layers=3, d_embed=5, d_hidden=7, dropout=0.25)
    data = config.to_dict()
    assert data["family"] == "rnn"
    assert config_from_dict(data) == config
    with pytest.raises(LMError):
        config_from_dict({**data, "cell": "nope"})


# -- fast paths ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", CELLS)
def test_step_and_prefill_match_full_logits(cell):
    model = make(cell)
    ids = random_ids(3, 17)
    full = model.logits(ids)  # [B, T, V]
    assert full.shape == (3, 17, V)
    state = model.start(3)
    for t in range(17):
        logits, state = model.step(ids[:, t], state)
        torch.testing.assert_close(logits, full[:, t], atol=1e-5, rtol=0)
    # prefill the first 10 in one fused call, then step the rest (short prompts are stepped through)
    logits, _ = model.prefill(ids[:, :3], model.start(3))
    torch.testing.assert_close(logits, full[:, 2], atol=1e-5, rtol=0)
    logits, state = model.prefill(ids[:, :10], model.start(3))
    torch.testing.assert_close(logits, full[:, 9], atol=1e-5, rtol=0)
    for t in range(10, 17):
        logits, state = model.step(ids[:, t], state)
    torch.testing.assert_close(logits, full[:, -1], atol=1e-5, rtol=0)


@settings(max_examples=15, deadline=None)
@given(cell=st.sampled_from(CELLS), layers=st.integers(1, 3), length=st.integers(1, 12), seed=st.integers(0, 99))
def test_step_equals_full_property(cell, layers, length, seed):
    model = make(cell, seed=seed, n_layers=layers)
    ids = random_ids(2, length, seed=seed)
    full = model.logits(ids)
    state = model.start(2)
    for t in range(length):
        logits, state = model.step(ids[:, t], state)
    torch.testing.assert_close(logits, full[:, -1], atol=1e-5, rtol=0)


# -- inspection path ----------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", CELLS)
def test_trace_states_equal_fused_path(cell):
    model = make(cell)
    ids = random_ids(20)
    trace = model.trace(ids)
    assert isinstance(trace, RecurrentTrace) and trace.cell == cell
    assert list(trace.states) == list(STATE_NAMES[cell])
    for name, tensor in trace.states.items():
        assert tensor.shape == (2, 20, 12), name
    h, c = hidden_per_step(model, ids)
    torch.testing.assert_close(trace.states["hidden"], h, atol=1e-5, rtol=0)
    if cell == "lstm":
        torch.testing.assert_close(trace.states["cell"], c, atol=1e-5, rtol=0)
    torch.testing.assert_close(trace.logits, model.logits(ids[None])[0], atol=1e-5, rtol=0)
    assert trace.to_json()["states"]["hidden"][0][0]  # JSON-friendly nested lists


def _part(stacked: torch.Tensor, j: int, units: int = 12) -> torch.Tensor:
    """Gate j's rows of one of PyTorch's stacked weight matrices / bias vectors."""
    return stacked[j * units:(j + 1) * units]


def _weights(model: RNNModel, k: int):
    r = model.rnn
    return [getattr(r, f"{n}_l{k}").detach().double() for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


def test_lstm_gates_match_textbook_equations():
    """Each gate from its own weight slice, in float64: i, f, g, o rows of PyTorch's stacked matrices."""
    model = make("lstm")
    ids = random_ids(9)
    trace = model.trace(ids)
    H = 12
    x = model.embed.weight.detach().double()[ids]  # [T, E]
    for k in range(2):
        w_ih, w_hh, b_ih, b_hh = _weights(model, k)
        h = torch.zeros(H, dtype=torch.float64)
        c = torch.zeros(H, dtype=torch.float64)
        outs = {n: [] for n in STATE_NAMES["lstm"]}
        for t in range(ids.shape[0]):
            i = torch.sigmoid(_part(w_ih, 0) @ x[t] + _part(b_ih, 0) + _part(w_hh, 0) @ h + _part(b_hh, 0))
            f = torch.sigmoid(_part(w_ih, 1) @ x[t] + _part(b_ih, 1) + _part(w_hh, 1) @ h + _part(b_hh, 1))
            g = torch.tanh(_part(w_ih, 2) @ x[t] + _part(b_ih, 2) + _part(w_hh, 2) @ h + _part(b_hh, 2))
            o = torch.sigmoid(_part(w_ih, 3) @ x[t] + _part(b_ih, 3) + _part(w_hh, 3) @ h + _part(b_hh, 3))
            c = f * c + i * g
            h = o * torch.tanh(c)
            for name, value in zip(STATE_NAMES["lstm"], (i, f, g, o, c, h)):
                outs[name].append(value)
        for name, values in outs.items():
            torch.testing.assert_close(trace.states[name][k].double(), torch.stack(values), atol=1e-5, rtol=0)
        x = torch.stack(outs["hidden"])


def test_gru_gates_match_textbook_equations():
    model = make("gru")
    ids = random_ids(9)
    trace = model.trace(ids)
    H = 12
    x = model.embed.weight.detach().double()[ids]  # [T, E]
    for k in range(2):
        w_ih, w_hh, b_ih, b_hh = _weights(model, k)
        h = torch.zeros(H, dtype=torch.float64)
        outs = {n: [] for n in STATE_NAMES["gru"]}
        for t in range(ids.shape[0]):
            r = torch.sigmoid(_part(w_ih, 0) @ x[t] + _part(b_ih, 0) + _part(w_hh, 0) @ h + _part(b_hh, 0))
            z = torch.sigmoid(_part(w_ih, 1) @ x[t] + _part(b_ih, 1) + _part(w_hh, 1) @ h + _part(b_hh, 1))
            n = torch.tanh(_part(w_ih, 2) @ x[t] + _part(b_ih, 2) + r * (_part(w_hh, 2) @ h + _part(b_hh, 2)))
            h = (1 - z) * n + z * h
            for name, value in zip(STATE_NAMES["gru"], (r, z, n, h)):
                outs[name].append(value)
        for name, values in outs.items():
            torch.testing.assert_close(trace.states[name][k].double(), torch.stack(values), atol=1e-5, rtol=0)
        x = torch.stack(outs["hidden"])


def test_elman_hidden_matches_textbook_equation():
    model = make("rnn", n_layers=1)
    ids = random_ids(9)
    w_ih, w_hh, b_ih, b_hh = _weights(model, 0)
    x = model.embed.weight.detach().double()[ids]
    h = torch.zeros(12, dtype=torch.float64)
    expected = []
    for t in range(9):
        h = torch.tanh(w_ih @ x[t] + b_ih + w_hh @ h + b_hh)
        expected.append(h)
    torch.testing.assert_close(model.trace(ids).states["hidden"][0].double(), torch.stack(expected), atol=1e-5, rtol=0)


def test_trace_ignores_dropout_and_is_deterministic():
    model = make("lstm", dropout=0.5)
    ids = random_ids(15)
    a, b = model.trace(ids), model.trace(ids)
    torch.testing.assert_close(a.logits, b.logits, atol=0, rtol=0)
    torch.testing.assert_close(a.logits, model.logits(ids[None])[0], atol=1e-5, rtol=0)  # eval mode by default


def test_trace_is_fast_enough():
    model = RNNModel(RNNConfig(vocab_size=70, cell="lstm", n_layers=2, d_embed=64, d_hidden=256),
                     generator=torch.Generator().manual_seed(0))
    ids = torch.randint(0, 70, (256,), generator=torch.Generator().manual_seed(0))
    model.trace(ids)
    best = min(_timed(lambda: model.trace(ids)) for _ in range(3))
    assert best < 1.0, f"trace of 256 tokens took {best:.3f}s (target 0.15s on an idle machine)"


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@pytest.mark.parametrize("bad", [torch.tensor([1, V]), torch.tensor([-1]), torch.tensor([], dtype=torch.long),
                                 torch.tensor([[1, 2]]), torch.tensor([0.5])])
def test_trace_rejects_bad_ids(bad):
    with pytest.raises(LMError):
        make("gru").trace(bad)


def test_logits_rejects_bad_ids():
    with pytest.raises(LMError):
        make("lstm").logits(torch.tensor([1, 2]))  # needs [B, T]
    with pytest.raises(LMError):
        make("lstm").logits(torch.tensor([[1, V + 5]]))


# -- persistence and plumbing -------------------------------------------------------------------------
@pytest.mark.parametrize("cell", CELLS)
def test_state_tensors_round_trip(cell, tmp_path):
    model = make(cell)
    path = tmp_path / "model.safetensors"
    save_file(model.state_tensors(), str(path))
    again = build_model(model.config, load_file(str(path)))
    assert isinstance(again, RNNModel) and not again.training
    ids = random_ids(2, 9)
    torch.testing.assert_close(again.logits(ids), model.logits(ids), atol=0, rtol=0)
    assert again.num_parameters() == model.num_parameters() == sum(p.numel() for p in model.parameters())


def test_from_state_rejects_mismatches():
    model = make("lstm")
    tensors = model.state_tensors()
    bigger = RNNConfig(vocab_size=V, cell="lstm", n_layers=2, d_embed=8, d_hidden=13)
    with pytest.raises(LMError, match="shape"):
        RNNModel.from_state(bigger, tensors)
    with pytest.raises(LMError, match="lack"):
        RNNModel.from_state(model.config, {k: v for k, v in tensors.items() if k != "head.bias"})
    with pytest.raises(LMError, match="unexpected"):
        RNNModel.from_state(model.config, {**tensors, "extra": torch.zeros(1)})
    with pytest.raises(LMError):  # a GRU's weights are 3H tall, not 4H
        RNNModel.from_state(RNNConfig(vocab_size=V, cell="gru", n_layers=2, d_embed=8, d_hidden=12), tensors)


def test_generator_makes_init_reproducible():
    a, b, c = make("gru", seed=5), make("gru", seed=5), make("gru", seed=6)
    for (name, x), y, z in zip(a.state_tensors().items(), b.state_tensors().values(), c.state_tensors().values()):
        assert torch.equal(x, y), name
    assert not all(torch.equal(x, z) for x, z in zip(a.state_tensors().values(), c.state_tensors().values()))


def test_contract_properties_and_no_mutation():
    model = make("lstm")
    assert model.family == "rnn" and model.vocab_size == V and model.context_length is None
    assert model.device == torch.device("cpu")
    before = {k: v.clone() for k, v in model.state_tensors().items()}
    attrs = set(vars(model))
    model.trace(random_ids(5))
    logits, state = model.step(torch.tensor([1, 2]), model.start(2))
    assert set(vars(model)) == attrs
    assert all(torch.equal(before[k], v) for k, v in model.state_tensors().items())
    assert state[0].shape == (2, 2, 12) and logits.shape == (2, V)
    with pytest.raises(LMError):
        model.start(0)
