"""The logit lens ends in the model's own output; the step-by-step attention equals the fast path at every step;
the embedding projection is a PCA and the neighbours are by cosine."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lm.errors import LMError
from lm.inspect.ablation import Ablation, ablated
from lm.inspect.embeddings import _pca, nearest_neighbours, token_class
from lm.inspect.lens import logit_lens, residual_stream, transformer_steps
from lm.models.transformer.block import explicit_attention, torch_block
from test_transformer import make, random_ids


def test_the_last_layer_of_the_logit_lens_is_the_models_output():
    model = make(0, n_layers=3)
    x = random_ids(11).tolist()
    lens = logit_lens(model, x, k=4)
    assert lens.layers == ["embeddings", "layer 0", "layer 1", "layer 2"]
    assert lens.top_ids.shape == lens.top_probs.shape == (4, 11, 4)
    with torch.no_grad():
        probs = torch.softmax(model.logits(torch.tensor([x]))[0], -1)  # [T, V]
    top = probs.topk(4, -1)
    np.testing.assert_array_equal(lens.top_ids[-1], top.indices.numpy())
    np.testing.assert_allclose(lens.top_probs[-1], top.values.numpy(), atol=1e-6, rtol=0)
    following = probs[torch.arange(10), torch.tensor(x[1:])].numpy()
    np.testing.assert_allclose(lens.probs[-1, :-1], following, atol=1e-6, rtol=0)
    assert np.isnan(lens.probs[:, -1]).all()
    # depth 0 reads the embeddings themselves through the final LayerNorm and the head
    with torch.no_grad():
        direct = torch.softmax(model.lm_head(model.ln_f(model.wte.weight[x] + model.wpe.weight[:11])), -1)
    np.testing.assert_allclose(lens.top_probs[0, :, 0], direct.max(-1).values.numpy(), atol=1e-6, rtol=0)
    assert not np.array_equal(lens.top_ids[0], lens.top_ids[-1])


def test_the_logit_lens_of_an_ablated_model_ends_in_the_ablated_output():
    model = make(1)
    x = random_ids(9).tolist()
    off = Ablation(heads=((1, 0),), mlp=(0,))
    lens = logit_lens(model, x, off, k=1)
    with torch.no_grad():
        probs = torch.softmax(ablated(model, off).logits(torch.tensor([x]))[0], -1)
    np.testing.assert_allclose(lens.top_probs[-1, :, 0], probs.max(-1).values.numpy(), atol=1e-6, rtol=0)
    assert len(residual_stream(model, x)) == 3


@pytest.mark.parametrize("layer, head, position", [(0, 0, 0), (0, 1, 6), (1, 1, 11), (1, 0, 4)])
def test_every_step_equals_the_fast_path(layer, head, position):
    model = make(2)
    c = model.config
    x = random_ids(12).tolist()
    steps = transformer_steps(model, x, position, layer, head, top_units=5)
    trace = model.trace(torch.tensor(x))
    np.testing.assert_allclose(steps.weights, trace.attention[layer, head, position].numpy(), atol=1e-6, rtol=0)
    assert np.all(np.isneginf(steps.masked[position + 1:])) and np.all(steps.weights[position + 1:] == 0)
    np.testing.assert_allclose(steps.masked[:position + 1], steps.scores[:position + 1], rtol=0, atol=0)
    Dh = c.d_model // c.n_heads
    np.testing.assert_allclose(steps.scores * math.sqrt(Dh), steps.keys @ steps.query, atol=1e-9, rtol=0)
    np.testing.assert_allclose(steps.head_output, steps.weights @ steps.values, atol=1e-9, rtol=0)
    # the block's own captures at the same layer
    stream = residual_stream(model, x)
    capture, record = {}, {}
    with torch.inference_mode():
        torch_block(c.d_model, c.layer_norm_eps, c.activation, None)(
            stream[layer], model.h[layer].weights(), explicit_attention(c.n_heads), record, capture)
    np.testing.assert_allclose(steps.heads_output, capture["heads"][position].numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(steps.attention_write, capture["attn"][position].numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(steps.mlp_write, capture["mlp"][position].numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(steps.layer_input, stream[layer].numpy(), atol=1e-6, rtol=0)
    if layer == 0:  # the layer's input is the token plus its position's embedding
        np.testing.assert_allclose(steps.layer_input[position], steps.token_embedding + steps.position_embedding,
                                   atol=1e-6, rtol=0)
    with torch.no_grad():
        probs = torch.softmax(model.logits(torch.tensor([x]))[0, position].double(), -1).numpy()
    np.testing.assert_allclose(steps.probs, probs, atol=1e-6, rtol=0)
    assert [u for u, _ in steps.top_units] == list(np.argsort(-np.abs(steps.mlp_hidden), kind="stable")[:5])
    names = [name for name, _ in steps.residual_norms]
    assert names == ["embeddings", "layer 0 attention", "layer 0 MLP", "layer 1 attention", "layer 1 MLP"]
    assert steps.residual_norms[-1][1] == pytest.approx(float(stream[-1][position].norm()), rel=1e-6)
    mid = steps.layer_input[position] + steps.attention_write
    assert steps.residual_norms[1 + 2 * layer][1] == pytest.approx(float(np.linalg.norm(mid)), rel=1e-5)


def test_a_switched_off_head_writes_nothing_in_the_step_by_step():
    model = make(3)
    x = random_ids(8).tolist()
    steps = transformer_steps(model, x, 7, 1, 0, Ablation(heads=((1, 0),)))
    Dh = model.config.d_model // model.config.n_heads
    assert np.all(steps.heads_output[:Dh] == 0) and np.abs(steps.heads_output[Dh:]).max() > 0
    assert np.abs(steps.head_output).max() > 0  # its weighted sum is still shown: it is what gets switched off


@pytest.mark.parametrize("bad", [{"position": 8}, {"layer": 2}, {"head": 2}])
def test_steps_outside_the_model_are_one_line_errors(bad):
    args = {"position": 3, "layer": 0, "head": 0, **bad}
    with pytest.raises(LMError):
        transformer_steps(make(0), random_ids(8).tolist(), **args)


@pytest.mark.parametrize("piece, expected", [
    ("a", "vowel"), ("E", "capital"), ("t", "consonant"), ("7", "digit"), (",", "punctuation"), (" ", "whitespace"),
    ("\n", "whitespace"), (" the", "consonant"), (" And", "capital"), ("é", "vowel"), ("�", "punctuation"),
])
def test_token_classes(piece, expected):
    assert token_class(piece) == expected


def test_the_projection_is_the_principal_plane_and_neighbours_are_by_cosine():
    g = np.random.default_rng(0)
    q, _ = np.linalg.qr(g.normal(size=(40, 6)) - g.normal(size=(40, 6)).mean(0) * 0)
    q -= q.mean(0)  # centred columns ...
    q, _ = np.linalg.qr(q)  # ... and orthonormal: uncorrelated by construction
    rotation, _ = np.linalg.qr(g.normal(size=(6, 6)))
    scales = np.array([5.0, 0.1, 2.0, 0.3, 0.2, 0.1])
    table = (q * scales) @ rotation.T + 7.0  # principal axes: rotation[:, 0] (variance 25), rotation[:, 2] (4)
    xy, explained = _pca(table)
    np.testing.assert_allclose(np.abs(xy[:, 0]), np.abs(q[:, 0] * 5.0), atol=1e-9)
    np.testing.assert_allclose(np.abs(xy[:, 1]), np.abs(q[:, 2] * 2.0), atol=1e-9)
    total = float((scales ** 2).sum())
    assert explained == (pytest.approx(25.0 / total), pytest.approx(4.0 / total))

    model = make(0)
    with torch.no_grad():
        model.wte.weight[5] = model.wte.weight[2] * 3.0  # the same direction, longer
        model.wte.weight[9] = -model.wte.weight[2]
    near = nearest_neighbours(model, 2, k=model.vocab_size - 1)
    assert near[0] == (5, pytest.approx(1.0)) and near[-1] == (9, pytest.approx(-1.0))
    assert 2 not in [i for i, _ in near]
    with pytest.raises(LMError):
        nearest_neighbours(model, model.vocab_size)
