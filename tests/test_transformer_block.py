"""The one Transformer block: the same computation on torch and NumPy ops, captures that add up, and dropout
exactly where GPT-2 puts it (checked against the computation written out by hand)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lm.models.transformer.block import cached_attention, explicit_attention, head_norms, torch_block
from lm.models.transformer.step import NumpyWeights
from lm.models.transformer.step import cached_attention as numpy_cached_attention
from test_transformer import C, make, random_ids


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("activation", ["gelu", "gelu_tanh", "relu"])
def test_the_block_on_numpy_ops_equals_it_on_torch_ops_with_the_same_captures(bias, activation):
    model = make(4, bias=bias, activation=activation)
    c = model.config
    x = torch.randn(1, c.d_model, generator=torch.Generator().manual_seed(5))  # one position of batch 1
    fast = NumpyWeights(model)
    with torch.inference_mode():
        kv_torch = torch.zeros(1, 2, c.n_heads, C, c.d_model // c.n_heads)
        kv_numpy = kv_torch[0].clone().numpy()
        run = torch_block(c.d_model, c.layer_norm_eps, c.activation, None)
        for pos in range(4):  # a few positions so that the attention has something to mix
            want_capture, got_capture = {}, {}
            want = run(x, model.h[0].weights(), cached_attention(c.n_heads, pos), kv_torch, want_capture)
            got = fast.run(x[0].numpy(), fast.layers[0], numpy_cached_attention(c.n_heads, pos), kv_numpy,
                           got_capture)
            np.testing.assert_allclose(got, want[0].numpy(), atol=1e-5, rtol=0)
            assert set(got_capture) == set(want_capture) == {"heads", "attn", "mlp"}
            for name in want_capture:
                np.testing.assert_allclose(got_capture[name], want_capture[name][0].numpy(), atol=1e-5, rtol=0)
            x = want
        np.testing.assert_allclose(kv_numpy[:, :, :4], kv_torch[0, :, :, :4].numpy(), atol=1e-6, rtol=0)


def test_captures_are_the_two_writes_into_the_residual_stream():
    model = make(2)
    c, block = model.config, model.h[1]
    x = torch.randn(7, c.d_model, generator=torch.Generator().manual_seed(3))
    capture = {}
    with torch.inference_mode():
        out = torch_block(c.d_model, c.layer_norm_eps, c.activation, None)(
            x, block.weights(), explicit_attention(c.n_heads), capture, capture)
        torch.testing.assert_close(out, x + capture["attn"] + capture["mlp"], atol=1e-6, rtol=0)
        torch.testing.assert_close(capture["attn"], block.attn.c_proj(capture["heads"]), atol=1e-6, rtol=0)
        mlp_in = block.ln_2(x + capture["attn"])
        torch.testing.assert_close(capture["mlp"], block.mlp.c_proj(F.gelu(block.mlp.c_fc(mlp_in), approximate="tanh")),
                                   atol=1e-6, rtol=0)
        # each head's write, summed over heads, is the whole attention write less the projection's bias
        H, Dh = c.n_heads, c.d_model // c.n_heads
        per_head = [capture["heads"][:, h * Dh:(h + 1) * Dh] @ block.attn.c_proj.weight[:, h * Dh:(h + 1) * Dh].T
                    for h in range(H)]
        torch.testing.assert_close(sum(per_head) + block.attn.c_proj.bias, capture["attn"], atol=1e-5, rtol=0)
        norms = head_norms(capture["heads"], block.attn.c_proj.weight, H)
        torch.testing.assert_close(norms, torch.stack([p.norm(dim=-1) for p in per_head]), atol=1e-5, rtol=1e-5)
    assert capture["attention"].shape == (H, 7, 7)


def by_hand(model, ids: torch.Tensor, p: float) -> torch.Tensor:
    """One-layer logits written out with GPT-2's dropouts: embedding, attention, residual and MLP, in order."""
    c, block = model.config, model.h[0]
    B, T = ids.shape
    x = F.dropout(model.wte.weight[ids] + model.wpe.weight[:T], p, p > 0)
    q, k, v = block.attn.c_attn(block.ln_1(x)).split(c.d_model, dim=2)
    q, k, v = (t.view(B, T, c.n_heads, -1).transpose(1, 2) for t in (q, k, v))
    y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True).transpose(1, 2).reshape(B, T, -1)
    x = x + F.dropout(block.attn.c_proj(y), p, p > 0)
    x = x + F.dropout(block.mlp.c_proj(F.gelu(block.mlp.c_fc(block.ln_2(x)), approximate="tanh")), p, p > 0)
    return model.lm_head(model.ln_f(x))


def test_training_applies_dropout_where_gpt2_does_and_nowhere_in_eval():
    model = make(1, dropout=0.3, n_layers=1).train()
    ids = random_ids(2, 9)
    torch.manual_seed(11)
    got = model.logits(ids)
    torch.manual_seed(11)  # the same random numbers drawn in the same order: the same masks
    torch.testing.assert_close(got, by_hand(model, ids, 0.3), atol=0, rtol=0)
    assert not torch.equal(got, model.logits(ids))  # fresh masks: dropout is on
    model.eval()
    torch.testing.assert_close(model.logits(ids), by_hand(model, ids, 0.0), atol=1e-6, rtol=0)
