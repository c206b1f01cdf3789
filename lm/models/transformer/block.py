"""The Transformer block, written once: its weights, its parameters in GPT-2's layout, and its computation.

- `BlockWeights`: the twelve tensors of one block, by name; every way of running the model reads these.
- `Block`: the nn.Module that owns them under GPT-2's names (`ln_1`, `attn.c_attn`, `attn.c_proj`, `ln_2`,
  `mlp.c_fc`, `mlp.c_proj`), so checkpoints and `lm.models.gpt2` map onto it; it has no forward of its own.
- `block_function(ops)`: the computation order, pre-LayerNorm, x + attn(ln_1(x)) then x + mlp(ln_2(x)), bound
  to a backend of ops (`Ops`: torch here, NumPy in `lm.models.transformer.step`) with the attention passed in.

The attentions that plug in: `causal_attention` (training and scoring, SDPA with its causal mask),
`cached_attention` (prefill and the torch step, SDPA over a KV cache), `explicit_attention` (inspection:
softmax(Q K^T / sqrt(Dh)) written out so its probabilities can be kept) and the NumPy step's own.

Observing or changing a block happens in `block_function` only, through arguments, never through hooks or
state on the shared model: `capture` receives what the block writes ("heads": the attention's output before
its projection, heads side by side; "attn" and "mlp": what each adds to the residual stream), and `ablate`
(a `BlockAblation`) switches heads, the layer's attention or its MLP off at those same points, per call.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

# activation name -> function. "gelu_tanh" is GPT-2's "gelu_new": 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
ACTIVATIONS = {
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
}


class BlockWeights(NamedTuple):
    """One block's tensors (torch parameters or NumPy views of them), named after their GPT-2 parameters;
    weights are [out, in] and every bias may be None (config.bias false)."""

    ln_1_weight: object  # [D]
    ln_1_bias: object
    c_attn_weight: object  # [3D, D]: q, k, v of all heads in one product
    c_attn_bias: object
    attn_proj_weight: object  # [D, D]: attn.c_proj
    attn_proj_bias: object
    ln_2_weight: object
    ln_2_bias: object
    c_fc_weight: object  # [4D, D]
    c_fc_bias: object
    mlp_proj_weight: object  # [D, 4D]: mlp.c_proj
    mlp_proj_bias: object


class BlockAblation(NamedTuple):
    """What one call of a block switches off, as multipliers (1 keeps, 0 removes) of what the block writes:
    exact for 1 (x * 1.0 == x), so a mask that keeps everything changes no bit of the result."""

    heads: object  # [D]: one factor per channel of the heads side by side (a head's Dh channels share one)
    attn: float  # the layer's whole attention write, c_proj's bias included
    mlp: float  # the MLP's whole write


class Ops(NamedTuple):
    """A backend: the operations a block is made of, on its own kind of array."""

    layer_norm: Callable  # (x, weight, bias) -> x normalised over its last axis
    linear: Callable  # (x [..., in], weight [out, in], bias) -> [..., out]
    act: Callable  # the MLP's nonlinearity
    dropout: Callable | None  # training only (None: none), applied to each write into the residual stream


def block_function(ops: Ops) -> Callable:
    """The block on `ops`: block(x [..., D], weights, attend, state=None, capture=None, ablate=None) -> x [..., D].

    `attend(qkv [..., 3D], state)` -> [..., D] (heads side by side) is the attention; `state` is what it keeps
    or records into (a layer's KV cache buffer, a dict), passed through untouched. `ablate` (a `BlockAblation`,
    arrays of the backend's kind) scales the heads, the attention write and the MLP write; None costs one
    comparison per write. The ops are closure cells, as fast as locals: this runs once per layer per token.
    """
    layer_norm, linear, act, dropout = ops

    def block(x, w: BlockWeights, attend: Callable, state=None, capture: dict | None = None,
              ablate: BlockAblation | None = None):
        heads = attend(linear(layer_norm(x, w.ln_1_weight, w.ln_1_bias), w.c_attn_weight, w.c_attn_bias), state)
        if ablate is not None:
            heads = heads * ablate.heads
        attn = linear(heads, w.attn_proj_weight, w.attn_proj_bias)
        if dropout is not None:
            attn = dropout(attn)
        if ablate is not None:
            attn = attn * ablate.attn
        x = x + attn
        hidden = act(linear(layer_norm(x, w.ln_2_weight, w.ln_2_bias), w.c_fc_weight, w.c_fc_bias))  # [..., 4D]
        mlp = linear(hidden, w.mlp_proj_weight, w.mlp_proj_bias)
        if dropout is not None:
            mlp = dropout(mlp)
        if ablate is not None:
            mlp = mlp * ablate.mlp
        if capture is not None:
            capture["heads"], capture["attn"], capture["mlp"] = heads, attn, mlp
        return x + mlp

    return block


@functools.cache
def torch_block(d_model: int, eps: float, activation: str, dropout: float | None) -> Callable:
    """`block_function` on torch ops; `dropout` is the training rate (None in eval mode, inference, inspection)."""
    shape = (d_model,)

    def layer_norm(x, weight, bias):  # F.layer_norm's own op without its Python wrapper (~0.5 us per call)
        return torch.layer_norm(x, shape, weight, bias, eps)

    drop = None if dropout is None else functools.partial(F.dropout, p=dropout, training=True)
    return block_function(Ops(layer_norm, F.linear, ACTIVATIONS[activation], drop))


class Block(nn.Module):
    """One block's parameters under GPT-2's names; the computation is `block_function`, fed by `weights()`."""

    def __init__(self, config):
        super().__init__()
        d, bias = config.d_model, config.bias
        self.ln_1 = nn.LayerNorm(d, eps=config.layer_norm_eps, bias=bias)
        self.attn = nn.ModuleDict({"c_attn": nn.Linear(d, 3 * d, bias=bias), "c_proj": nn.Linear(d, d, bias=bias)})
        self.ln_2 = nn.LayerNorm(d, eps=config.layer_norm_eps, bias=bias)
        self.mlp = nn.ModuleDict({"c_fc": nn.Linear(d, 4 * d, bias=bias), "c_proj": nn.Linear(4 * d, d, bias=bias)})

    def weights(self) -> BlockWeights:
        """The parameters themselves (not copies: gradients flow, in-place updates are seen).

        Plain dict lookups on purpose: nn.Module attribute access costs ~0.5 us, ~100 times per token.
        """
        mods = self._modules
        ln_1, ln_2 = mods["ln_1"]._parameters, mods["ln_2"]._parameters
        attn, mlp = mods["attn"]._modules, mods["mlp"]._modules
        qkv, proj = attn["c_attn"]._parameters, attn["c_proj"]._parameters
        fc, out = mlp["c_fc"]._parameters, mlp["c_proj"]._parameters
        return BlockWeights(ln_1["weight"], ln_1["bias"], qkv["weight"], qkv["bias"], proj["weight"], proj["bias"],
                            ln_2["weight"], ln_2["bias"], fc["weight"], fc["bias"], out["weight"], out["bias"])


def causal_attention(n_heads: int, dropout: float) -> Callable:
    """Training and scoring: whole sequences qkv [B, T, 3D] through SDPA's causal mask (and attention dropout)."""

    def attend(qkv: torch.Tensor, _state) -> torch.Tensor:
        B, T, D3 = qkv.shape
        q, k, v = qkv.view(B, T, 3, n_heads, D3 // (3 * n_heads)).permute(2, 0, 3, 1, 4).unbind(0)  # [B, H, T, Dh]
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)  # [B, H, T, Dh]
        return y.transpose(1, 2).reshape(B, T, D3 // 3)  # [B, T, D]: heads side by side again

    return attend


def cached_attention(n_heads: int, pos: int, dropout: float = 0.0) -> Callable:
    """Prefill and the torch step: a chunk qkv [B, T, 3D] (the step: one position, [B, 3D]) at positions pos..
    writes its keys and values into the layer's cache buffer (the state, [B, 2, H, C, Dh]) and attends to
    everything cached up to itself. The step stays 2-D: F.linear on [B, 1, D] adds ops (~1-2 us each)."""

    def attend(qkv: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        step = qkv.dim() == 2
        if step:  # one plain view
            (B, D3), T = qkv.shape, 1
            qkv = qkv.view(B, 3, n_heads, 1, D3 // (3 * n_heads))  # [B, 3, H, 1, Dh]
        else:
            B, T, D3 = qkv.shape
            qkv = qkv.view(B, T, 3, n_heads, D3 // (3 * n_heads)).permute(0, 2, 3, 1, 4)  # [B, 3, H, T, Dh]
        kv.narrow(3, pos, T).copy_(qkv[:, 1:])  # keys and values [B, 2, H, T, Dh] with one copy
        k, v = kv.narrow(3, 0, pos + T).unbind(1)  # each [B, H, pos + T, Dh]
        mask = None
        if pos > 0 and T > 1:  # is_causal aligns the mask top-left; a chunk after a prefix needs it bottom-right
            rows = torch.arange(pos, pos + T, device=kv.device)[:, None]  # [T, 1] absolute positions
            mask = torch.arange(pos + T, device=kv.device)[None, :] <= rows  # [T, pos + T]
        y = F.scaled_dot_product_attention(qkv[:, 0], k, v, attn_mask=mask, dropout_p=dropout,
                                           is_causal=pos == 0 and T > 1)  # [B, H, T, Dh]; one query sees all
        return y.view(B, D3 // 3) if step else y.transpose(1, 2).reshape(B, T, D3 // 3)  # heads side by side

    return attend


def explicit_attention(n_heads: int) -> Callable:
    """Inspection of one sequence qkv [T, 3D]: the probabilities computed explicitly under the causal mask
    (exact zeros where masked) and kept in the state dict as "attention" [H, T, T]."""

    def attend(qkv: torch.Tensor, record: dict) -> torch.Tensor:
        T, D3 = qkv.shape
        Dh = D3 // (3 * n_heads)
        q, k, v = qkv.view(T, 3, n_heads, Dh).permute(1, 2, 0, 3).unbind(0)  # each [H, T, Dh]
        scores = (q @ k.transpose(1, 2)) / math.sqrt(Dh)  # [H, T, T]
        future = torch.ones(T, T, dtype=torch.bool, device=qkv.device).triu(1)  # True above the diagonal
        record["attention"] = probs = scores.masked_fill(future, float("-inf")).softmax(dim=-1)
        return (probs @ v).transpose(0, 1).reshape(T, D3 // 3)  # [H, T, Dh] -> [T, D]

    return attend


def head_norms(heads: torch.Tensor, proj_weight: torch.Tensor, n_heads: int) -> torch.Tensor:
    """How strongly each head writes into the residual stream: its slice of c_proj applied to its own output;
    heads [T, D] (a capture's "heads") -> [H, T]."""
    T, D = heads.shape
    y = heads.view(T, n_heads, D // n_heads)  # [T, H, Dh]
    return torch.einsum("thd,ehd->hte", y, proj_weight.view(D, n_heads, D // n_heads)).norm(dim=-1)  # [H, T]
