"""A decoder-only Transformer (GPT-2 layout) behind the `LanguageModel` contract.

Pre-LayerNorm blocks, learned positions, causal multi-head self-attention, a 4x MLP, a final LayerNorm and a
linear head (optionally tied to the token embedding). The parameter names follow GPT-2 (`wte`, `h.{i}.attn.
c_attn`, ...) so that `lm.models.gpt2` can map a Hugging Face checkpoint onto this module one tensor at a time.

Three ways to run the same weights, all through the one block of `lm.models.transformer.block` with a
different attention plugged in:
- `logits` (training, scoring): whole sequences through `F.scaled_dot_product_attention(is_causal=True)`;
- `start` / `prefill` / `step` (generation): a preallocated KV cache, so a new token costs one pass of one
  position over the model instead of recomputing the whole window (at batch 1 on the CPU the step runs in
  NumPy on the same weights and cache, `lm.models.transformer.step`; `step_torch` is the same step in torch);
- `trace` (inspection): attention probabilities computed explicitly as softmax(Q K^T / sqrt(d)) under the
  causal mask, plus how strongly each head writes into the residual stream.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from lm.device import build_with_weights, check_ids, module_device
from lm.errors import LMError
from lm.models.base import LanguageModel, ModelConfig
from lm.models.transformer.block import (ACTIVATIONS, Block, cached_attention, causal_attention,
                                         explicit_attention, head_norms, torch_block)
from lm.models.transformer.step import NumpyStep, NumpyWeights
from lm.models.trace import AttentionTrace



def _whole(name: str, value, low: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise LMError(f"{name} must be a whole number >= {low}, not {value!r}")


@dataclasses.dataclass
class TransformerConfig(ModelConfig):
    """GPT hyper-parameters; `context_length` is the block size (the most tokens the model can see)."""

    family: ClassVar[str] = "transformer"
    context_length: int = 256
    n_layers: int = 4
    n_heads: int = 4
    d_model: int = 128
    dropout: float = 0.0  # attention, residual and embedding dropout; training only
    bias: bool = True  # biases in the Linear and LayerNorm layers
    layer_norm_eps: float = 1e-5
    tie_embeddings: bool = True  # the head reuses the token embedding matrix
    activation: str = "gelu_tanh"  # MLP nonlinearity: "gelu_tanh" (GPT-2, faster on CPU) | "gelu" (erf) | "relu"

    def __post_init__(self) -> None:
        for name in ("vocab_size", "context_length", "n_layers", "n_heads", "d_model"):
            _whole(name, getattr(self, name))
        if self.d_model % self.n_heads:
            raise LMError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)):
            raise LMError(f"dropout must be a number in [0, 1), not {self.dropout!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise LMError(f"dropout must be in [0, 1), not {self.dropout!r}")
        if not isinstance(self.layer_norm_eps, (int, float)) or not self.layer_norm_eps > 0:
            raise LMError(f"layer_norm_eps must be a positive number, not {self.layer_norm_eps!r}")
        for name in ("bias", "tie_embeddings"):
            if not isinstance(getattr(self, name), bool):
                raise LMError(f"{name} must be true or false, not {getattr(self, name)!r}")
        if self.activation not in ACTIVATIONS:
            raise LMError(f"unknown activation {self.activation!r} (choose from {', '.join(ACTIVATIONS)})")
        self.dropout = float(self.dropout)
        self.layer_norm_eps = float(self.layer_norm_eps)

    def describe(self) -> str:
        return (f"Transformer {self.n_layers} layers x {self.n_heads} heads x {self.d_model}, "
                f"context {self.context_length}")


class KVCache:
    """Keys and values of every token seen so far, per layer; the generation loop owns it.

    `step` and `prefill` write into the preallocated buffers in place and advance `position`, so nothing is
    allocated per token. Keys and values of a layer share one buffer so that a step stores both with one
    copy. Use `clone()` to fork a sequence (e.g. to try two continuations of one prompt). `numpy_step`, when
    set, is the batch-1 CPU step bound to these buffers.
    """

    __slots__ = ("kv", "position", "numpy_step")

    def __init__(self, kv: list[torch.Tensor], position: int = 0, numpy_step: NumpyStep | None = None):
        self.kv = kv  # per layer [B, 2, H, context_length, Dh]: [:, 0] keys, [:, 1] values
        self.position = position  # tokens written so far (= the next token's position)
        self.numpy_step = numpy_step

    @property
    def keys(self) -> list[torch.Tensor]:
        return [kv[:, 0] for kv in self.kv]  # per layer [B, H, context_length, Dh]

    @property
    def values(self) -> list[torch.Tensor]:
        return [kv[:, 1] for kv in self.kv]  # per layer [B, H, context_length, Dh]

    @property
    def batch_size(self) -> int:
        return self.kv[0].shape[0]

    @property
    def capacity(self) -> int:
        return self.kv[0].shape[3]

    def clone(self) -> KVCache:
        kv = [buffer.clone() for buffer in self.kv]
        fast = None if self.numpy_step is None else NumpyStep(self.numpy_step.weights, kv)
        return KVCache(kv, self.position, fast)


class TransformerModel(nn.Module, LanguageModel):
    """GPT-style decoder. Incremental state: a `KVCache` from `start`, advanced in place by `prefill`/`step`.

    Built in eval mode (models are served read-only; a trainer calls `.train()`). Weights are drawn from
    `generator` when one is given (nanoGPT's scheme), so seeded runs need no global seed.
    """

    def __init__(self, config: TransformerConfig, generator: torch.Generator | None = None):
        super().__init__()
        if not isinstance(config, TransformerConfig):
            raise LMError(f"TransformerModel needs a TransformerConfig, not {type(config).__name__}")
        self.config = config
        c = config
        self.wte = nn.Embedding(c.vocab_size, c.d_model)
        self.wpe = nn.Embedding(c.context_length, c.d_model)
        self.drop = nn.Dropout(c.dropout)
        self.h = nn.ModuleList(Block(c) for _ in range(c.n_layers))
        self.ln_f = nn.LayerNorm(c.d_model, eps=c.layer_norm_eps, bias=c.bias)
        self.lm_head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        if c.tie_embeddings:
            self.lm_head.weight = self.wte.weight  # one Parameter, two uses
        self.reset_parameters(generator)
        self.eval()

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """nanoGPT's init: N(0, 0.02), residual projections scaled by 1/sqrt(2 * n_layers), zero biases."""
        proj_std = 0.02 / math.sqrt(2 * self.config.n_layers)
        for name, param in self.named_parameters():  # a tied weight is listed once
            if name.endswith("c_proj.weight"):
                param.normal_(0.0, proj_std, generator=generator)
            elif name.endswith("weight") and param.dim() == 2:
                param.normal_(0.0, 0.02, generator=generator)
            elif name.endswith("weight"):  # LayerNorm gain
                param.fill_(1.0)
            else:
                param.zero_()

    # -- plumbing ---------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return module_device(self)

    @property
    def context_length(self) -> int:
        return self.config.context_length

    @property
    def state_capacity(self) -> int:
        return self.config.context_length

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.logits(ids)

    def _embed(self, ids: torch.Tensor, pos: int) -> torch.Tensor:
        return self.drop(self.wte(ids) + self.wpe.weight[pos:pos + ids.shape[-1]])  # [B, T, D]

    def _block(self, dropout: bool = True) -> tuple[Callable, float]:
        """(the block on torch ops, the attention dropout rate): with dropout only when training."""
        c = self.config
        rate = c.dropout if dropout and self.training else None
        return torch_block(c.d_model, c.layer_norm_eps, c.activation, rate), rate or 0.0

    # -- full-sequence path -----------------------------------------------------------------------
    def logits(self, ids: torch.Tensor) -> torch.Tensor:
        ids = check_ids(ids, self.config.vocab_size, dims=2, max_length=self.config.context_length)
        x = self._embed(ids, 0)  # [B, T, D]
        run, rate = self._block()
        attend = causal_attention(self.config.n_heads, rate)
        for block in self.h:
            x = run(x, block.weights(), attend)
        return self.lm_head(self.ln_f(x))  # [B, T, V]

    # -- incremental path -------------------------------------------------------------------------
    @torch.inference_mode()
    def start(self, batch_size: int) -> KVCache:
        _whole("batch_size", batch_size)
        c = self.config
        shape = (batch_size, 2, c.n_heads, c.context_length, c.d_model // c.n_heads)  # [B, 2, H, C, Dh]
        w = self.wte.weight
        kv = [torch.zeros(shape, dtype=w.dtype, device=w.device) for _ in self.h]
        fast = batch_size == 1 and w.device.type == "cpu" and w.dtype == torch.float32
        return KVCache(kv, 0, NumpyStep(NumpyWeights(self), kv) if fast else None)

    def _check_room(self, cache: KVCache, n: int) -> int:
        if not isinstance(cache, KVCache):
            raise LMError(f"Transformer state must be a KVCache from start(), not {type(cache).__name__}")
        pos = cache.position
        if pos + n > cache.capacity:
            raise LMError(
                f"KV cache is full: {pos} + {n} tokens exceed the context length of {cache.capacity}; "
                "restart from a shorter window"
            )
        return pos

    @torch.inference_mode()
    def prefill(self, ids: torch.Tensor, cache: KVCache) -> tuple[torch.Tensor, KVCache]:
        ids = check_ids(ids, self.config.vocab_size, dims=2)
        pos = self._check_room(cache, ids.shape[1])
        if ids.shape[0] != cache.batch_size:
            raise LMError(f"prompt batch of {ids.shape[0]} does not match the cache's batch of {cache.batch_size}")
        x = self._embed(ids, pos)  # [B, T, D]
        run, rate = self._block()
        attend = cached_attention(self.config.n_heads, pos, rate)
        for block, kv in zip(self.h, cache.kv):
            x = run(x, block.weights(), attend, kv)
        cache.position = pos + ids.shape[1]
        return self.lm_head(self.ln_f(x[:, -1])), cache  # [B, V]

    def step(self, tokens: torch.Tensor, cache: KVCache) -> tuple[torch.Tensor, KVCache]:
        """One token per row [B] -> logits [B, V]. The generation hot path: at batch 1 on the CPU the
        cache's NumPy step (same weights, same buffers; tested equal to `step_torch`), else `step_torch`."""
        fast = cache.numpy_step if isinstance(cache, KVCache) else None
        if (fast is None or not isinstance(tokens, torch.Tensor) or tokens.shape != (1,)
                or fast.weights.source != self.wte.weight.data_ptr()):
            return self.step_torch(tokens, cache)
        pos = self._check_room(cache, 1)
        logits = fast(tokens.item(), pos)  # [V]
        cache.position = pos + 1
        return torch.from_numpy(logits)[None], cache  # [1, V]

    @torch.inference_mode()
    def step_torch(self, tokens: torch.Tensor, cache: KVCache) -> tuple[torch.Tensor, KVCache]:
        """`step` in torch, any batch or device: functional calls on one position, no allocation of the
        cache, no module calls (their dispatch overhead is a large share of a small model's step)."""
        pos = self._check_room(cache, 1)
        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 1 or tokens.shape[0] != cache.batch_size:
            shape = list(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
            raise LMError(f"step needs one token id per row, shape [{cache.batch_size}], not {shape}")
        check_ids(tokens[:, None], self.config.vocab_size, dims=2)  # LMError, never an IndexError
        run, attend = self._block(dropout=False)[0], cached_attention(self.config.n_heads, pos)
        x = F.embedding(tokens, self.wte.weight) + self.wpe.weight[pos]  # [B, D]
        for block, kv in zip(self.h, cache.kv):
            x = run(x, block.weights(), attend, kv)
        cache.position = pos + 1
        c, ln_f = self.config, self.ln_f
        x = F.layer_norm(x, (c.d_model,), ln_f.weight, ln_f.bias, c.layer_norm_eps)
        return F.linear(x, self.lm_head.weight), cache  # [B, V]

    # -- inspection path --------------------------------------------------------------------------
    @torch.inference_mode()
    def trace(self, ids: torch.Tensor) -> AttentionTrace:
        ids = check_ids(ids, self.config.vocab_size, dims=1, max_length=self.config.context_length)
        x = self.wte(ids) + self.wpe.weight[: ids.shape[0]]  # [T, D]
        H = self.config.n_heads
        run, attend = self._block(dropout=False)[0], explicit_attention(H)
        attention, norms = [], []
        for block in self.h:
            w, record = block.weights(), {}
            x = run(x, w, attend, record, record)  # the attention records its probabilities, the block its writes
            attention.append(record["attention"])
            norms.append(head_norms(record["heads"], w.attn_proj_weight, H))
        logits = self.lm_head(self.ln_f(x))  # [T, V]
        return AttentionTrace(
            attention=torch.stack(attention).float().cpu(),  # [L, H, T, T]
            head_output_norm=torch.stack(norms).float().cpu(),  # [L, H, T]
            logits=logits.float().cpu(),
        )

    # -- persistence ------------------------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """All weights; a tied head is stored once, as `wte.weight` (safetensors refuses shared storage)."""
        tensors = {k: v.detach() for k, v in self.state_dict().items()}
        if self.config.tie_embeddings:
            tensors.pop("lm_head.weight", None)
        return tensors

    @classmethod
    def from_state(cls, config: ModelConfig, tensors: dict[str, torch.Tensor]) -> TransformerModel:
        if not isinstance(config, TransformerConfig):
            raise LMError(f"TransformerModel needs a TransformerConfig, not {type(config).__name__}")
        # a tied head is the embedding itself (one Parameter): its copy in the file is not loaded twice
        return build_with_weights(cls, config, tensors, ignore=("lm_head.weight",) if config.tie_embeddings else ())


__all__ = ["ACTIVATIONS", "KVCache", "TransformerConfig", "TransformerModel"]
