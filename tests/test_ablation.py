"""Ablation: switching off nothing is the model bit for bit; a head, an attention, an MLP or an LSTM unit off
equals the same model with the weights that carry it zeroed by hand; the shared model is never touched,
and a concurrent unablated generation keeps its reference text."""

from __future__ import annotations

import threading

import pytest
import torch
import torch.nn.functional as F

from lm.data.tokenizer import Tokenizer
from lm.errors import LMError
from lm.inspect.ablation import (Ablation, AblatedTransformer, ablated, ablation_spec, parse_ablation,
                                 rnn_without_units)
from lm.inspect.attribution import integrated_gradients, occlusion_matrix
from lm.models.transformer.block import BlockAblation
from lm.run.generate import collect, generate
from lm.run.sampling import SamplingSettings
from test_attribution import spread
from test_rnn import make as make_rnn
from test_transformer import make as make_transformer

ALPHABET = "abcdefghijklmnopqrstuvwxyz .,\n"


def ids(n: int, vocab: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, vocab, (2, n), generator=torch.Generator().manual_seed(seed))


def tokenizer_for(model) -> Tokenizer:
    tok = Tokenizer.char(ALPHABET[:model.vocab_size - 1])
    assert tok.vocab_size == model.vocab_size
    return tok


def text_of(model, tok, prompt: str, seed: int) -> str:
    return collect(generate(model, tok, prompt, SamplingSettings(max_new_tokens=40, seed=seed))).texts[0]


def zeroed_copy(model, edit) -> object:
    """An independent reference: a fresh model of the same weights with `edit(tensors)` applied to a copy."""
    tensors = {k: v.clone() for k, v in model.state_tensors().items()}
    edit(tensors)
    return type(model).from_state(model.config, tensors)


def test_switching_off_nothing_is_the_transformer_bit_for_bit():
    model = make_transformer(0)
    x = ids(12, model.vocab_size)
    want = model.logits(x)
    assert torch.equal(ablated(model, Ablation()).logits(x), want)
    c = model.config
    ones = BlockAblation(torch.ones(c.d_model), 1.0, 1.0)  # masks that keep everything: still the same bits
    view = AblatedTransformer(model, Ablation())
    view.masks = [ones] * c.n_layers
    assert torch.equal(view.logits(x), want)
    tok = tokenizer_for(model)
    assert text_of(view, tok, "abc", 3) == text_of(model, tok, "abc", 3)  # torch chunks vs the NumPy step


def test_switching_off_nothing_is_the_rnn_bit_for_bit():
    model = make_rnn("lstm", 0)
    x = ids(12, model.vocab_size)
    copy = rnn_without_units(model, [])
    assert copy is not model and torch.equal(copy.logits(x), model.logits(x))
    tok = tokenizer_for(model)
    assert text_of(copy, tok, "abc", 2) == text_of(model, tok, "abc", 2)


def test_a_head_off_equals_its_output_projection_columns_zeroed():
    model = make_transformer(1)
    c = model.config
    Dh = c.d_model // c.n_heads

    def edit(t):
        t["h.1.attn.c_proj.weight"][:, Dh:2 * Dh] = 0.0  # layer 1, head 1 writes nothing

    x = ids(12, model.vocab_size)
    got = ablated(model, Ablation(heads=((1, 1),))).logits(x)
    torch.testing.assert_close(got, zeroed_copy(model, edit).logits(x), atol=1e-5, rtol=0)
    assert (got - model.logits(x)).abs().max() > 1e-3


@pytest.mark.parametrize("part", ["attention", "mlp"])
def test_a_layers_attention_or_mlp_off_equals_its_projection_zeroed(part):
    model = make_transformer(2)
    name = "attn" if part == "attention" else "mlp"

    def edit(t):
        t[f"h.0.{name}.c_proj.weight"].zero_()
        t[f"h.0.{name}.c_proj.bias"].zero_()

    x = ids(10, model.vocab_size)
    got = ablated(model, Ablation(**{part: (0,)})).logits(x)
    torch.testing.assert_close(got, zeroed_copy(model, edit).logits(x), atol=1e-5, rtol=0)
    assert (got - model.logits(x)).abs().max() > 1e-3


def lstm_with_silent_unit(model, x: torch.Tensor, layer: int, unit: int) -> torch.Tensor:
    """The LSTM written out with one unit's hidden state forced to 0 at every step (logits [B, T, V])."""
    c = model.config
    inp = model.embed(x)
    for k in range(c.n_layers):
        w = [model.rnn._parameters[f"{n}_l{k}"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        h = torch.zeros(x.shape[0], c.d_hidden)
        cell = torch.zeros_like(h)
        out = []
        for t in range(x.shape[1]):
            h, cell = torch.lstm_cell(inp[:, t], (h, cell), *w)
            if k == layer:
                h = h.clone()
                h[:, unit] = 0.0
            out.append(h)
        inp = torch.stack(out, 1)
    return F.linear(inp, model.head.weight, model.head.bias)


@pytest.mark.parametrize("layer", [0, 1])
def test_an_lstm_unit_off_equals_its_hidden_state_held_at_zero(layer):
    model = make_rnn("lstm", 3)
    x = ids(9, model.vocab_size)
    with torch.no_grad():
        want = lstm_with_silent_unit(model, x, layer, 5)
        got = ablated(model, parse_ablation(model, units=f"{layer}.5")).logits(x)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    assert (got - model.logits(x)).abs().max() > 1e-4


def test_the_shared_model_is_never_touched_and_a_concurrent_generation_keeps_its_text():
    cases = ((make_transformer(3), {"heads": "0.0,1.1"}), (spread(make_rnn("lstm", 4)), {"units": "0.1,1.2"}))
    for model, spec in cases:
        tok = tokenizer_for(model)
        reference = text_of(model, tok, "the ", 7)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        attributes = {name: set(vars(module)) for name, module in model.named_modules()}
        ablation = parse_ablation(model, **spec)
        results, errors = [], []

        def plain():
            try:
                for _ in range(5):
                    results.append(text_of(model, tok, "the ", 7))
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                errors.append(exc)

        thread = threading.Thread(target=plain)
        thread.start()
        for seed in range(5):
            view = ablated(model, ablation)
            text_of(view, tok, "the ", seed)
            occlusion_matrix(model, tok.encode("the cat sat"), 1, ablation)
            integrated_gradients(model, tok.encode("the cat sat"), 8, 1, ablation)
        thread.join()
        assert not errors, errors[0]
        assert results == [reference] * 5
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
        assert {name: set(vars(module)) for name, module in model.named_modules()} == attributes
        for module in model.modules():
            assert not module._forward_hooks and not module._forward_pre_hooks and not module._backward_hooks
        assert all(p.grad is None for p in model.parameters())
        assert text_of(ablated(model, ablation), tok, "the ", 7) != reference  # the ablation did change something


@pytest.mark.parametrize("family, kwargs, fragment", [
    ("transformer", {"heads": "2.0"}, "head 2.0 does not exist"),
    ("transformer", {"heads": "0.2"}, "head 0.2 does not exist"),
    ("transformer", {"heads": "zero"}, "cannot read 'zero'"),
    ("transformer", {"units": "0.1"}, "no recurrent units"),
    ("lstm", {"heads": "all"}, "RNN models have no attention heads"),
    ("lstm", {"units": "0.12"}, "unit 0.12 does not exist"),
    ("lstm", {"units": "2.0"}, "unit 2.0 does not exist"),
    ("lstm", {"units": "0.mlp"}, "cannot read '0.mlp' as a unit"),
    ("transformer", {"heads": "2.attn"}, "layer 2 does not exist"),
])
def test_ablations_of_things_the_model_lacks_are_one_line_errors(family, kwargs, fragment):
    model = make_transformer(0) if family == "transformer" else make_rnn("lstm", 0)
    with pytest.raises(LMError, match=fragment):
        parse_ablation(model, **kwargs)


def test_all_heads_and_the_description():
    model = make_transformer(0)
    every = parse_ablation(model, heads="all")
    assert every.heads == ((0, 0), (0, 1), (1, 0), (1, 1))
    assert parse_ablation(model, heads=" 1.0, 0.1 ,").describe() == "heads 0.1, 1.0"
    parts = parse_ablation(model, heads="1.mlp,0.attn,1.1")
    assert parts == Ablation(heads=((1, 1),), attention=(0,), mlp=(1,))
    assert parse_ablation(model, *ablation_spec(parts)) == parts
    lstm = make_rnn("lstm", 0)
    units = parse_ablation(lstm, units="1.3,0.11")
    assert parse_ablation(lstm, *ablation_spec(units)) == units and ablation_spec(units) == ("", "0.11,1.3")
    assert Ablation().describe() == "nothing" and not Ablation()
