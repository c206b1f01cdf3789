"""A decoder-only Transformer (GPT-2 layout) behind the `LanguageModel` contract.

Pre-LayerNorm blocks, learned positions, causal multi-head self-attention, a 4x MLP, a final LayerNorm and a
linear head (optionally tied to the token embedding). The parameter names follow GPT-2 (`wte`, `h.{i}.attn.
c_attn`, ...) so that `lm.models.gpt2` can map a Hugging Face checkpoint onto this module one tensor at a time.

Three ways to run the same weights:
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
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from lm.device import build_with_weights, check_ids, module_device
from lm.errors import LMError
from lm.models.base import LanguageModel, ModelConfig
from lm.models.transformer.block import ACTIVATIONS
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


class CausalSelfAttention(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        d = config.d_model
        self.n_heads = config.n_heads
        self.dropout = config.dropout
        self.c_attn = nn.Linear(d, 3 * d, bias=config.bias)  # q, k, v for all heads in one matmul
        self.c_proj = nn.Linear(d, d, bias=config.bias)
        self.resid_drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, cache: tuple[torch.Tensor, int] | None = None) -> torch.Tensor:
        """x [B, T, D] -> [B, T, D]; with `cache` (kv buffer [B, 2, H, C, Dh], position) attend to the prefix too."""
        B, T, D = x.shape
        H = self.n_heads
        q, k, v = self.c_attn(x).split(D, dim=2)  # each [B, T, D]
        q = q.view(B, T, H, D // H).transpose(1, 2)  # [B, H, T, Dh]
        k = k.view(B, T, H, D // H).transpose(1, 2)  # [B, H, T, Dh]
        v = v.view(B, T, H, D // H).transpose(1, 2)  # [B, H, T, Dh]
        mask, causal = None, True
        if cache is not None:
            kv, pos = cache
            kv[:, 0, :, pos:pos + T] = k  # write this chunk into the preallocated cache
            kv[:, 1, :, pos:pos + T] = v
            k, v = kv[:, :, :, :pos + T].unbind(1)  # each [B, H, pos + T, Dh]
            if pos > 0:  # is_causal aligns the mask top-left; a chunk after a prefix needs it bottom-right
                rows = torch.arange(pos, pos + T, device=x.device)[:, None]  # [T, 1] absolute positions
                mask, causal = torch.arange(pos + T, device=x.device)[None, :] <= rows, False  # [T, pos + T]
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=causal)  # [B, H, T, Dh]
        y = y.transpose(1, 2).reshape(B, T, D)  # [B, T, D]: heads side by side again
        return self.resid_drop(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.d_model, 4 * config.d_model, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.d_model, config.d_model, bias=config.bias)
        self.act = ACTIVATIONS[config.activation]
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.c_proj(self.act(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cache=None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache)
        return x + self.mlp(self.ln_2(x))

    def step_weights(self) -> tuple[torch.Tensor | None, ...]:
        """The 12 tensors of a decoding step (`TransformerModel.step_torch`, `NumpyWeights`; biases may be
        None), read from the parameter dicts.

        Plain dict lookups on purpose: nn.Module attribute access costs ~0.5 us, ~100 times per token.
        """
        mods = self._modules
        ln_1, ln_2 = mods["ln_1"]._parameters, mods["ln_2"]._parameters
        attn, mlp = mods["attn"]._modules, mods["mlp"]._modules
        qkv, proj = attn["c_attn"]._parameters, attn["c_proj"]._parameters
        fc, out = mlp["c_fc"]._parameters, mlp["c_proj"]._parameters
        return (ln_1["weight"], ln_1["bias"], qkv["weight"], qkv["bias"], proj["weight"], proj["bias"],
                ln_2["weight"], ln_2["bias"], fc["weight"], fc["bias"], out["weight"], out["bias"])

    def explain(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The inspection path for one sequence x [T, D]: (new x [T, D], attention [H, T, T], head norms [H, T])."""
        T, D = x.shape
        attn = self.attn
        H = attn.n_heads
        q, k, v = attn.c_attn(self.ln_1(x)).split(D, dim=1)  # each [T, D]
        q = q.view(T, H, D // H).transpose(0, 1)  # [H, T, Dh]
        k = k.view(T, H, D // H).transpose(0, 1)  # [H, T, Dh]
        v = v.view(T, H, D // H).transpose(0, 1)  # [H, T, Dh]
        scores = (q @ k.transpose(1, 2)) / math.sqrt(D // H)  # [H, T, T]
        future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)  # True above the diagonal
        probs = scores.masked_fill(future, float("-inf")).softmax(dim=-1)  # [H, T, T], exact zeros where masked
        y = probs @ v  # [H, T, Dh]
        # what each head adds to the residual stream: its slice of c_proj applied to its own output
        w = attn.c_proj.weight.view(D, H, D // H)  # [D_out, H, Dh]
        norms = torch.einsum("htd,ehd->hte", y, w).norm(dim=-1)  # [H, T, D_out] -> [H, T]
        x = x + attn.c_proj(y.transpose(0, 1).reshape(T, D))  # [H, T, Dh] -> [T, D]
        mlp = self.mlp  # written out rather than called so that dropout never applies here
        x = x + mlp.c_proj(mlp.act(mlp.c_fc(self.ln_2(x))))
        return x, probs, norms


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

    # -- full-sequence path -----------------------------------------------------------------------
    def logits(self, ids: torch.Tensor) -> torch.Tensor:
        ids = check_ids(ids, self.config.vocab_size, dims=2, max_length=self.config.context_length)
        x = self._embed(ids, 0)  # [B, T, D]
        for block in self.h:
            x = block(x)
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
        for block, kv in zip(self.h, cache.kv):
            x = block(x, (kv, pos))
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
        c = self.config
        D, H, eps, shape, act = c.d_model, c.n_heads, c.layer_norm_eps, (c.d_model,), ACTIVATIONS[c.activation]
        x = F.embedding(tokens, self.wte.weight) + self.wpe.weight[pos]  # [B, D]
        B = x.shape[0]
        for block, kv in zip(self.h, cache.kv):
            ln1_w, ln1_b, qkv_w, qkv_b, proj_w, proj_b, ln2_w, ln2_b, fc_w, fc_b, out_w, out_b = block.step_weights()
            h = F.layer_norm(x, shape, ln1_w, ln1_b, eps)
            qkv = F.linear(h, qkv_w, qkv_b).view(B, 3, H, 1, D // H)  # [B, 3D] -> [B, 3, H, 1, Dh]
            kv.narrow(3, pos, 1).copy_(qkv[:, 1:])  # k and v [B, 2, H, 1, Dh] into this position's cache slot
            k, v = kv.narrow(3, 0, pos + 1).unbind(1)  # each [B, H, pos + 1, Dh]
            y = F.scaled_dot_product_attention(qkv[:, 0], k, v)  # [B, H, 1, Dh]
            x = x + F.linear(y.view(B, D), proj_w, proj_b)  # [B, H, 1, Dh] -> [B, D]: heads side by side
            h = F.layer_norm(x, shape, ln2_w, ln2_b, eps)
            x = x + F.linear(act(F.linear(h, fc_w, fc_b)), out_w, out_b)  # [B, 4D] -> [B, D]
        cache.position = pos + 1
        ln_f = self.ln_f
        x = F.layer_norm(x, shape, ln_f.weight, ln_f.bias, eps)
        return F.linear(x, self.lm_head.weight), cache  # [B, V]

    # -- inspection path --------------------------------------------------------------------------
    @torch.inference_mode()
    def trace(self, ids: torch.Tensor) -> AttentionTrace:
        ids = check_ids(ids, self.config.vocab_size, dims=1, max_length=self.config.context_length)
        x = self.wte(ids) + self.wpe.weight[: ids.shape[0]]  # [T, D]
        attention, norms = [], []
        for block in self.h:
            x, probs, head_norms = block.explain(x)
            attention.append(probs)
            norms.append(head_norms)
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
