"""The Transformer's one-token decoding step for batch 1 on the CPU, in NumPy, on the model's own weights.

The step is the one block of `lm.models.transformer.block` on NumPy ops with a NumPy KV-cached attention.
Why a second backend: at batch 1 a step is sixteen matrix-vector products (four per layer at 4 layers) and some
sixty small vector operations. On the CPUs measured for this project (AMD EPYC, docs/benchmarks.md) torch's
bundled MKL runs a [768, 256] x [256] product 2-3x slower than NumPy's OpenBLAS does (MKL is tuned for
Intel CPUs), and every torch op costs a few microseconds of dispatch against about one for NumPy.
Together that is most of a step: at d = 256 this step takes ~0.7 ms where the torch step takes 1.1-1.8.

It reads the same float32 tensors as the torch path (zero-copy views, never a copy or a conversion) and the
same KV cache buffers that `prefill` writes, so the two paths can alternate within one sequence. Tests hold
it equal to `TransformerModel.step_torch` within 1e-5. `TransformerModel.start` attaches it to a cache only
for batch 1, float32, on the CPU; batches, GPUs, prefill, training and `trace` stay in torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from lm.device import sync_blas_threads
from lm.errors import LMError
from lm.models.transformer.block import ACTIVATIONS, BlockWeights, Ops, block_function


def _view(tensor: torch.Tensor | None) -> np.ndarray | None:
    if tensor is None:
        return None
    view = tensor.detach().numpy()  # shares memory with the parameter: a training step is seen at once
    view.flags.writeable = False  # and nothing here can write into a shared model
    return view


def numpy_ops(eps: float, activation: str) -> Ops:
    """The block's ops on 1-D float32 vectors (one position)."""
    # The activation goes through torch (one op per layer): NumPy has no erf for the exact GELU, and
    # sharing torch's function keeps the two paths identical there.
    torch_act = ACTIVATIONS[activation]

    def layer_norm(x: np.ndarray, weight: np.ndarray | None, bias: np.ndarray | None) -> np.ndarray:
        centred = x - x.sum() / x.shape[0]  # the same float32 mean as x.mean(), without its ~3 us of Python
        out = centred * (1.0 / math.sqrt(float(centred @ centred) / x.shape[0] + eps))
        if weight is not None:
            out = out * weight
        return out if bias is None else out + bias

    def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        out = weight @ x  # [out, in] @ [in] -> [out]: a matrix-vector product
        return out if bias is None else out + bias

    def act(x: np.ndarray) -> np.ndarray:
        return torch_act(torch.from_numpy(x)).numpy()

    return Ops(layer_norm, linear, act, None)


class NumpyWeights:
    """Read-only NumPy views of a `TransformerModel`'s parameters and the block on NumPy ops, made once per
    `start()`."""

    __slots__ = ("layers", "wte", "wpe", "ln_f", "head", "n_heads", "vocab_size", "source", "run", "layer_norm")

    def __init__(self, model):
        c = model.config
        self.layers = [BlockWeights._make(map(_view, block.weights())) for block in model.h]
        self.wte, self.wpe = _view(model.wte.weight), _view(model.wpe.weight)  # [V, D], [C, D]
        # Whose weights these are: `step` falls back to torch for a cache started by another model, or
        # after the weights moved (`.to()` gives the parameters new memory).
        self.source = model.wte.weight.data_ptr()
        self.ln_f = (_view(model.ln_f.weight), _view(model.ln_f.bias))
        self.head = _view(model.lm_head.weight)  # [V, D]; the same memory as wte when tied
        self.n_heads, self.vocab_size = c.n_heads, c.vocab_size
        ops = numpy_ops(c.layer_norm_eps, c.activation)
        self.run, self.layer_norm = block_function(ops), ops.layer_norm
        sync_blas_threads()  # the first time in a process: NumPy's products follow torch's thread count


def cached_attention(n_heads: int, pos: int) -> Callable:
    """The step's attention: this position's qkv [3D] writes its keys and values into the layer's cache
    buffer (the state, [2, H, C, Dh]) and its query attends to every cached position up to itself."""

    def attend(qkv: np.ndarray, kv: np.ndarray) -> np.ndarray:
        D = qkv.shape[0] // 3
        qkv = qkv.reshape(3, n_heads, D // n_heads)  # [3, H, Dh]
        kv[:, :, pos] = qkv[1:]  # this position's keys and values [2, H, Dh] into the cache
        keys, values = kv[0, :, :pos + 1], kv[1, :, :pos + 1]  # each [H, pos + 1, Dh]
        scores = np.matmul(keys, qkv[0, :, :, None])[:, :, 0] * (1.0 / math.sqrt(D // n_heads))  # [H, pos + 1]
        probs = np.exp(scores - scores.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        return np.matmul(probs[:, None, :], values).reshape(D)  # [H, 1, Dh] -> [D]: heads side by side

    return attend


class NumpyStep:
    """Advances one sequence by one token: `step(token, pos)` -> logits [V] (float32 NumPy).

    Holds the weights' views and NumPy views of this cache's buffers (per layer [2, H, C, Dh]); one per
    sequence, like the cache it belongs to, so threads never share one.
    """

    __slots__ = ("weights", "kv")

    def __init__(self, weights: NumpyWeights, kv: list[torch.Tensor]):
        self.weights = weights
        self.kv = [buffer[0].numpy() for buffer in kv]  # [1, 2, H, C, Dh] -> [2, H, C, Dh], shared memory

    def __call__(self, token: int, pos: int) -> np.ndarray:
        w = self.weights
        if type(token) is not int:  # e.g. a float or bool tensor's item(): NumPy would index by it silently
            raise LMError(f"token ids must be integers, not {type(token).__name__}")
        if not 0 <= token < w.vocab_size:
            raise LMError(f"token id {token} is outside the model's vocabulary of {w.vocab_size}")
        run, attend = w.run, cached_attention(w.n_heads, pos)
        x = w.wte[token] + w.wpe[pos]  # [D]
        for layer, kv in zip(w.layers, self.kv):
            x = run(x, layer, attend, kv)
        return w.head @ w.layer_norm(x, *w.ln_f)  # [V]
