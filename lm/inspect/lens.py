"""Inside a Transformer's forward pass: the logit lens, and one attention computation written out step by step.

- `logit_lens`: the residual stream after the embeddings and after every layer, read out through the final
  LayerNorm and the unembedding as if the model stopped there (nostalgebraist's "logit lens", TransformerLens's
  `accumulated_resid`): what the model would predict at each depth, layers x positions. After the last layer
  that is exactly the model's output.
- `transformer_steps`: for one query position, one layer and one head, every step of the block recomputed
  from the same weights in NumPy (float64): token and position embedding, the LayerNorm, Q, K and V of the head,
  the scaled dot products, the causal mask, the softmax, the weighted sum of values, the MLP's most active
  units, the residual stream's norm after every sub-layer, and the final next-token probabilities. The tests
  hold each of them equal to the model's fast path (its captures, its attention probabilities, its logits).

Both take an `Ablation`, so a switched-off head shows what it changes layer by layer.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np
import torch

from lm.device import check_ids
from lm.errors import LMError
from lm.inspect.ablation import (Ablation, block_ablations, check_ablation, embed, family_label, run_blocks,
                                 unembed)
from lm.models.transformer.block import ACTIVATIONS, explicit_attention

LENS_TOP = 5  # predictions kept per layer and position


def _transformer(model) -> None:
    if model.family != "transformer":
        raise LMError(f"this view is for Transformer models; {family_label(model)} models have no layers of attention")


@dataclasses.dataclass
class LogitLens:
    """Top next-token predictions read out after each layer: [depth, position, k] (depth 0: the embeddings)."""

    layers: list[str]  # "embeddings", "layer 0", ..., "layer L-1"
    top_ids: np.ndarray  # [L + 1, T, k]
    top_probs: np.ndarray  # [L + 1, T, k]
    probs: np.ndarray  # [L + 1, T] probability each depth gives the token that actually follows (NaN at the end)

    def rows(self, token_strings: Sequence[str]) -> list[dict[str, str]]:
        """One table row per depth: the top-1 prediction and its probability at every position."""
        out = []
        for d, name in enumerate(self.layers):
            row = {"layer": name}
            for t in range(self.top_ids.shape[1]):
                row[str(t)] = f"{token_strings[int(self.top_ids[d, t, 0])]} {self.top_probs[d, t, 0]:.0%}"
            out.append(row)
        return out


def _forward(model, ids: Sequence[int], ablation: Ablation | None) -> tuple[list[torch.Tensor], list[dict]]:
    """(the residual stream [T, D] after the embeddings and after every layer, each layer's captures: its
    attention probabilities and its writes) of one pass of the fast path."""
    _transformer(model)
    ablation = ablation or Ablation()
    check_ablation(model, ablation)
    x = check_ids(torch.tensor(list(ids), dtype=torch.long, device=model.device), model.vocab_size, dims=1,
                  max_length=model.context_length)
    keep, captures = [embed(model, x)], [{} for _ in model.h]
    run_blocks(model, keep[0], explicit_attention(model.config.n_heads), captures, block_ablations(model, ablation),
               captures, keep)
    return keep, captures


@torch.inference_mode()
def residual_stream(model, ids: Sequence[int], ablation: Ablation | None = None) -> list[torch.Tensor]:
    """The residual stream [T, D] after the embeddings and after every layer (L + 1 tensors)."""
    return _forward(model, ids, ablation)[0]


@torch.inference_mode()
def logit_lens(model, ids: Sequence[int], ablation: Ablation | None = None, k: int = LENS_TOP) -> LogitLens:
    """The logit lens of `ids` through `model` (with `ablation` switched off): see the module."""
    stream = torch.stack(residual_stream(model, ids, ablation))  # [L + 1, T, D]
    probs = torch.softmax(unembed(model, stream).float(), dim=-1)  # [L + 1, T, V]
    top = probs.topk(min(k, probs.shape[-1]), dim=-1)
    following = torch.tensor(list(ids)[1:], dtype=torch.long, device=probs.device)
    actual = torch.full(probs.shape[:2], math.nan, device=probs.device)
    actual[:, :-1] = probs[:, :-1].gather(-1, following[None, :, None].expand(probs.shape[0], -1, 1))[..., 0]
    names = ["embeddings"] + [f"layer {i}" for i in range(model.config.n_layers)]
    return LogitLens(names, top.indices.cpu().numpy(), top.values.cpu().numpy(), actual.cpu().numpy())


@dataclasses.dataclass
class TransformerSteps:
    """One attention computation written out, for query `position` in `layer`, `head` (arrays float64)."""

    position: int
    layer: int
    head: int
    token_embedding: np.ndarray  # [D] wte of the query's token
    position_embedding: np.ndarray  # [D] wpe of its position
    layer_input: np.ndarray  # [T, D] the residual stream entering the layer
    normed: np.ndarray  # [T, D] after ln_1
    query: np.ndarray  # [Dh] of the query position
    keys: np.ndarray  # [T, Dh] of every position (the mask hides the later ones)
    values: np.ndarray  # [T, Dh]
    scores: np.ndarray  # [T] q . k / sqrt(Dh)
    masked: np.ndarray  # [T] the scores with -inf after the query position
    weights: np.ndarray  # [T] softmax of the masked scores
    head_output: np.ndarray  # [Dh] the head's weighted sum of values (before any switch-off)
    heads_output: np.ndarray  # [D] every head's weighted sum side by side, switched-off ones zeroed (c_proj's input)
    attention_write: np.ndarray  # [D] what the layer's attention adds to the residual stream
    mlp_hidden: np.ndarray  # [4D] the MLP's activations at the query
    mlp_write: np.ndarray  # [D] what the MLP adds
    top_units: list[tuple[int, float]]  # the MLP units with the largest |activation|, strongest first
    residual_norms: list[tuple[str, float]]  # the stream's L2 norm at the query after each sub-layer
    probs: np.ndarray  # [V] the model's next-token distribution at the query position


def _np(t) -> np.ndarray | None:
    return None if t is None else t.detach().double().cpu().numpy()


def _layer_norm(x: np.ndarray, weight, bias, eps: float) -> np.ndarray:
    centred = x - x.mean(-1, keepdims=True)
    out = centred / np.sqrt((centred ** 2).mean(-1, keepdims=True) + eps)
    out = out * weight if weight is not None else out
    return out + bias if bias is not None else out


def _linear(x: np.ndarray, weight, bias) -> np.ndarray:
    return x @ weight.T + (bias if bias is not None else 0.0)


@torch.inference_mode()
def transformer_steps(model, ids: Sequence[int], position: int, layer: int = 0, head: int = 0,
                      ablation: Ablation | None = None, top_units: int = 10) -> TransformerSteps:
    """Every step of `layer`'s block at query `position` (head `head`), recomputed in NumPy: see the module."""
    _transformer(model)
    c = model.config
    stream, captures = _forward(model, ids, ablation)  # the fast path: the stream entering each layer
    T = stream[0].shape[0]
    if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position < T:
        raise LMError(f"position must be a token index from 0 to {T - 1}, not {position!r}")
    if not (0 <= layer < c.n_layers and 0 <= head < c.n_heads):
        raise LMError(f"layer {layer}, head {head} does not exist: the model has {c.n_layers} layers of "
                      f"{c.n_heads} heads")
    ablation = ablation or Ablation()
    mask = block_ablations(model, ablation)[layer]
    keep_heads = np.ones(c.d_model) if mask is None else _np(mask.heads)
    attn_on, mlp_on = (1.0, 1.0) if mask is None else (mask.attn, mask.mlp)
    w = [_np(t) for t in model.h[layer].weights()]
    (ln1_w, ln1_b, qkv_w, qkv_b, proj_w, proj_b, ln2_w, ln2_b, fc_w, fc_b, out_w, out_b) = w
    D, H = c.d_model, c.n_heads
    Dh = D // H
    x = _np(stream[layer])  # [T, D]
    normed = _layer_norm(x, ln1_w, ln1_b, c.layer_norm_eps)
    qkv = _linear(normed, qkv_w, qkv_b).reshape(T, 3, H, Dh)  # q, k, v of every head
    q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]  # each [T, H, Dh]
    scores = np.einsum("hd,thd->ht", q[position], k) / math.sqrt(Dh)  # [H, T]
    masked = np.where(np.arange(T) > position, -np.inf, scores)
    weights = np.exp(masked - masked.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    summed = np.einsum("ht,thd->hd", weights, v)  # [H, Dh] every head's weighted sum of values
    heads = summed.reshape(D) * keep_heads  # [D] side by side, switched-off heads zeroed: what c_proj reads
    attention_write = _linear(heads, proj_w, proj_b) * attn_on
    mid = x[position] + attention_write
    act = ACTIVATIONS[c.activation]
    hidden = act(torch.from_numpy(_linear(_layer_norm(mid, ln2_w, ln2_b, c.layer_norm_eps), fc_w, fc_b))).numpy()
    mlp_write = _linear(hidden, out_w, out_b) * mlp_on
    strongest = np.argsort(-np.abs(hidden), kind="stable")[:top_units]
    norms = [("embeddings", float(stream[0][position].norm()))]
    for i, cap in enumerate(captures):  # the fast path's stream after each sub-layer
        norms.append((f"layer {i} attention", float((stream[i][position] + cap["attn"][position]).norm())))
        norms.append((f"layer {i} MLP", float(stream[i + 1][position].norm())))
    final = _np(stream[-1][position])
    ln_f = model.ln_f
    logits = _linear(_layer_norm(final, _np(ln_f.weight), _np(ln_f.bias), c.layer_norm_eps), _np(model.lm_head.weight),
                     None)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    token = int(list(ids)[position])
    return TransformerSteps(
        position, layer, head, _np(model.wte.weight[token]), _np(model.wpe.weight[position]), x, normed,
        q[position, head], k[:, head], v[:, head], scores[head], masked[head], weights[head],
        summed[head], heads, attention_write, hidden, mlp_write,
        [(int(u), float(hidden[u])) for u in strongest], norms, probs)


__all__ = ["LENS_TOP", "LogitLens", "TransformerSteps", "logit_lens", "residual_stream", "transformer_steps"]
