"""One optimizer step's forward and backward pass: the batch in micro-batches (a full batch is larger than
the preset's), the forward pass under bf16 autocast where that is faster, and dropout under a forked, seeded
copy of the global RNG.

bf16 autocast (`TrainSettings.precision`, default "auto": on a CPU with native bf16 instructions, AVX-512
BF16 or AMX) runs the matrix products in bfloat16 while the weights, their gradients, the optimizer state and
the loss stay float32; bench/bench_train.py measured it 1.5-1.6x faster per CPU-second on this machine's CPU
with the same held-out loss (docs/benchmarks.md). Evaluation and the recorded metrics always run in float32.
"""

from __future__ import annotations

import threading
from pathlib import Path

import torch
import torch.nn.functional as F

GLOBAL_RNG_LOCK = threading.Lock()  # held while a run's forward pass uses the (forked, seeded) global RNG


def cpu_has_native_bf16() -> bool:
    """True on a CPU with bf16 arithmetic in hardware (Linux /proc/cpuinfo: avx512_bf16 or amx_bf16)."""
    try:
        flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    except OSError:
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags.split()))


def use_bf16(precision: str, device: torch.device) -> bool:
    """Whether a run autocasts to bf16: asked for, or "auto" on a CPU that computes bf16 natively (elsewhere
    "auto" stays float32: emulated bf16 is slower, and GPUs were not measured here)."""
    return precision == "bf16" or (precision == "auto" and device.type == "cpu" and cpu_has_native_bf16())


def forward_backward(net, batch: torch.Tensor, micro_batch: int, dropout_seed: int, device: torch.device, *,
                     dropout: bool, bf16: bool) -> torch.Tensor:
    """Mean loss of `batch` (detached), its gradients accumulated into the parameters: in micro-batches of
    `micro_batch` windows, each weighted by its share of the windows."""
    chunks = batch.split(micro_batch)
    return sum(_chunk(net, chunk, dropout_seed + i, len(chunk) / len(batch), device, dropout, bf16)
               for i, chunk in enumerate(chunks))


def _chunk(net, batch: torch.Tensor, dropout_seed: int, weight: float, device: torch.device, dropout: bool,
           bf16: bool) -> torch.Tensor:
    inputs, targets = batch[:, :-1], batch[:, 1:]

    def loss_and_grads() -> torch.Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = net(inputs)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1))
        (loss * weight if weight != 1.0 else loss).backward()
        return loss.detach() * weight

    if not dropout:
        return loss_and_grads()
    # Dropout draws from the global generator (no generator argument exists): fork it, seed the fork from
    # this step's stream, and restore the caller's state afterwards. The lock keeps two runs in one
    # process (the app's background jobs) from seeding each other's steps. The backward pass is inside
    # too: with it outside, two concurrent dropout runs intermittently drifted apart from a solo run in
    # their later losses (tests/test_train.py), and stayed equal bit for bit once it was inside.
    devices = [device.index or 0] if device.type == "cuda" else []
    with GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=devices, device_type=device.type):
        torch.manual_seed(dropout_seed)
        return loss_and_grads()
