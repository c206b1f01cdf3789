"""The parts of a training run that are pure functions of its settings: the learning-rate schedule, the
per-step batch stream (a function of (seed, rank, step), so a resumed run sees the batches the uninterrupted
one would have), and joining the data-parallel process group torchrun describes (and its test checksums)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import numpy as np
import torch

from lm.device import pick_device
from lm.errors import LMError

CHECKSUM_ENV = "LM_TRAIN_CHECKSUM_DIR"  # tests: each rank writes its final parameter checksum here


def lr_at(step: int, base: float, warmup: int, total: int, progress: float | None = None) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to 10% of `base` at the end of the run.

    `progress` (0..1) replaces step/total when a time budget bounds the run.
    """
    if step < warmup:
        return base * (step + 1) / warmup
    if progress is None:
        progress = (step - warmup) / max(1, total - warmup)
    progress = min(1.0, max(0.0, progress))
    return base * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def batch_rng(seed: int, rank: int, step: int) -> np.random.Generator:
    """The random stream of one step of one rank: a pure function of its arguments (exact resumes)."""
    return np.random.default_rng([seed, rank, step])


def sample_starts(seed: int, rank: int, step: int, n_windows: int, batch_size: int) -> tuple[np.ndarray, int]:
    """Start offsets of a batch of random contiguous windows, and a seed for that step's dropout masks."""
    rng = batch_rng(seed, rank, step)
    starts = rng.integers(0, n_windows, size=batch_size)
    return starts, int(rng.integers(0, 2**62))


@dataclasses.dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False  # we initialised the process group (and so tear it down)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group torchrun describes in the environment (a plain run: world size 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), False)
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return DistInfo()
    if not dist.is_available():
        raise LMError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistInfo(rank, world, local_rank, True)


def train_device(preference: str, dist_info_world: int) -> torch.device:
    device = pick_device(preference)
    if device.type == "cuda" and dist_info_world > 1 and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def write_checksum(model, history: dict, rank: int, world_size: int, step: int) -> None:
    """Tests of data-parallel runs: each rank's final parameter sum and losses, into $LM_TRAIN_CHECKSUM_DIR."""
    target = os.environ.get(CHECKSUM_ENV)
    if not target:
        return
    total = sum(float(p.detach().double().sum()) for p in model.parameters())
    last = history["train"][-1][1] if history["train"] else None
    first = history["train"][0][1] if history["train"] else None
    data = {"rank": rank, "world_size": world_size, "checksum": total, "first_loss": first, "last_loss": last,
            "step": step}
    Path(target).mkdir(parents=True, exist_ok=True)
    (Path(target) / f"rank{rank}.json").write_text(json.dumps(data), encoding="utf-8")
