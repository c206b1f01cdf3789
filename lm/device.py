"""Torch runtime helpers shared by the neural families: device choice, CPU thread count, input checks.

Kept apart from the models so that the app and the CLI can choose a device or a thread count without
building a model, and so that every neural family rejects bad token ids with the same one-line LMError.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable

import torch
from torch import nn

from lm.errors import LMError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def pick_device(preference: str = "auto") -> torch.device:
    """The device to run on: "auto" picks CUDA, then Apple MPS, else the CPU; a named one must exist."""
    choice = str(preference or "auto").strip().lower()
    if choice.startswith("cuda:"):  # a specific GPU, e.g. "cuda:1"
        if not torch.cuda.is_available():
            raise LMError(f"device {preference!r} asked for, but CUDA is not available on this machine")
        return torch.device(choice)
    if choice not in DEVICE_CHOICES:
        raise LMError(f"unknown device {preference!r} (choose from {', '.join(DEVICE_CHOICES)})")
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise LMError("device 'cuda' asked for, but CUDA is not available on this machine")
    if choice == "mps" and not _mps_available():
        raise LMError("device 'mps' asked for, but Apple MPS is not available on this machine")
    return torch.device(choice)


def set_inference_threads(n: int | None = None) -> int:
    """Set torch's intra-op CPU threads to `n`, else to $LM_THREADS; with neither, keep torch's default.

    Small models step faster on few threads (less synchronisation per tiny matmul), so the app lets the
    user choose. Returns the thread count now in effect.
    """
    if n is None:
        raw = os.environ.get("LM_THREADS", "").strip()
        if not raw:
            return torch.get_num_threads()
        try:
            n = int(raw)
        except ValueError:
            raise LMError(f"LM_THREADS must be a whole number of threads, not {raw!r}") from None
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise LMError(f"thread count must be a whole number >= 1, not {n!r}")
    torch.set_num_threads(n)
    sync_blas_threads(n)
    return torch.get_num_threads()


_blas_threads = [0]  # the thread count last given to NumPy's BLAS (0: never set)
_blas_lock = threading.Lock()


def sync_blas_threads(n: int | None = None) -> None:
    """Give NumPy's BLAS (OpenBLAS in NumPy's wheels) `n` threads; with no `n`, torch's count, but only if
    nothing has set it yet (the first Transformer a process builds).

    The Transformer's batch-1 step multiplies with NumPy (`lm.models.transformer.step`); without this,
    OpenBLAS would use every core for large products even where the user chose one thread (`LM_THREADS`,
    `--threads`). The BLAS setting is process-wide, while torch's count is per thread (a training thread
    sets its own), so only `set_inference_threads` changes it after the first time. A no-op where
    threadpoolctl finds no BLAS it can steer.
    """
    with _blas_lock:
        if n is None:  # the per-start call: only the first one in a process sets anything
            if _blas_threads[0]:
                return
            n = torch.get_num_threads()
        # an explicit count is always applied: another library may have changed the process-wide setting since
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # an install without it: NumPy keeps its own default
            return
        threadpool_limits(limits=n, user_api="blas")  # applied at once and kept (used as a function)
        _blas_threads[0] = n


def module_device(module: nn.Module) -> torch.device:
    """Where a module's parameters live (the CPU for a module without any)."""
    for param in module.parameters():
        return param.device
    return torch.device("cpu")


def check_ids(
    ids: torch.Tensor, vocab_size: int, *, dims: int, max_length: int | None = None
) -> torch.Tensor:
    """Validate token ids (`dims` = 1 for [T], 2 for [B, T]); raise LMError instead of an IndexError."""
    if not isinstance(ids, torch.Tensor):
        raise LMError(f"token ids must be a tensor, not {type(ids).__name__}")
    if ids.dtype in (torch.bool,) or ids.is_floating_point() or ids.is_complex():
        raise LMError(f"token ids must be integers, not {ids.dtype}")
    shape = "[T]" if dims == 1 else "[B, T]"
    if ids.dim() != dims:
        raise LMError(f"token ids must have shape {shape}, got {list(ids.shape)}")
    if ids.numel() == 0 or ids.shape[-1] == 0:
        raise LMError("token ids are empty: need at least one token")
    if max_length is not None and ids.shape[-1] > max_length:
        raise LMError(f"{ids.shape[-1]} tokens exceed the model's context length of {max_length}")
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= vocab_size:
        bad = low if low < 0 else high
        raise LMError(f"token id {bad} is outside the model's vocabulary of {vocab_size}")
    return ids.long()


def build_with_weights(cls, config, tensors: dict[str, torch.Tensor], ignore: Iterable[str] = ()):
    """`cls(config)` filled with `tensors` by `load_checked`.

    Built directly on the CPU: its random init is wasted work, but for the zoo's sizes it costs
    milliseconds, while skipping it on the meta device imports torch._dynamo (over a second, once per
    process — most of the app's first model load).
    """
    model = cls(config)
    load_checked(model, tensors, ignore=ignore)
    return model


def load_checked(module: nn.Module, tensors: dict[str, torch.Tensor], ignore: Iterable[str] = ()) -> None:
    """Copy `tensors` into `module`; name the first missing, unexpected or mis-shaped tensor in an LMError."""
    expected = module.state_dict()
    ignored = set(ignore)
    missing = sorted(k for k in expected if k not in tensors and k not in ignored)
    unexpected = sorted(k for k in tensors if k not in expected and k not in ignored)
    if missing:
        raise LMError(f"saved weights lack tensor {missing[0]!r} ({len(missing)} missing in all)")
    if unexpected:
        raise LMError(f"saved weights have unexpected tensor {unexpected[0]!r} ({len(unexpected)} in all)")
    for name, want in expected.items():
        if name in ignored:
            continue
        got = tensors[name]
        if not isinstance(got, torch.Tensor):
            raise LMError(f"saved weight {name!r} is not a tensor")
        if tuple(got.shape) != tuple(want.shape):
            raise LMError(
                f"saved weight {name!r} has shape {list(got.shape)} but the config needs {list(want.shape)}"
            )
    with torch.no_grad():
        for name, want in expected.items():
            if name not in ignored:
                want.copy_(tensors[name])  # state_dict() tensors share storage with the parameters


__all__ = [
    "DEVICE_CHOICES", "check_ids", "load_checked", "module_device", "pick_device", "set_inference_threads",
    "sync_blas_threads",
]
