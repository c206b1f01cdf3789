"""Data-parallel training: `torchrun --nproc_per_node 2 -m lm train ...` (the same entry point as a plain run)
on 2 CPU processes with gloo. The ranks must end with identical weights, the loss must fall, and only rank 0
saves. Each rank writes its parameter checksum where $LM_TRAIN_CHECKSUM_DIR says.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch.distributed as dist

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="no gloo backend")
def test_two_cpu_ranks_stay_in_sync_and_learn(tmp_path):
    home, sums = tmp_path / "home", tmp_path / "sums"
    env = {**os.environ, "LM_PLAYGROUND_HOME": str(home), "LM_TRAIN_CHECKSUM_DIR": str(sums),
           "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "lm", "train", "--family", "transformer", "--preset", "tiny", "--corpus", "names",
           "--layers", "1", "--width", "32", "--heads", "2", "--context", "16", "--batch-size", "8",
           "--steps", "40", "--lr", "1e-2", "--dropout", "0.1", "--eval-every", "20", "--save-every", "15",
           "--device", "cpu", "--name", "ddp", "--json"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]

    ranks = [json.loads((sums / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2] and [r["step"] for r in ranks] == [40, 40]
    assert ranks[0]["checksum"] == ranks[1]["checksum"]  # gradients were averaged: the replicas agree
    assert ranks[0]["last_loss"] < ranks[0]["first_loss"] - 0.1

    summary = json.loads(proc.stdout)  # printed once, by rank 0
    assert summary["steps"] == 40 and summary["valid_bits_per_char"] > 0
    meta = json.loads((home / "models" / "ddp" / "config.json").read_text())
    assert meta["training"]["world_size"] == 2
    assert meta["training"]["tokens_seen"] == 40 * 2 * 8 * 16  # both ranks' batches count
    assert sorted(p.name for p in (home / "models").iterdir()) == ["ddp"]  # one checkpoint, no resume state
