"""Faults, end to end, through real mechanisms rather than mocks: a disk that fills up during a save.

The disk is a real one: a small tmpfs mounted for the test where the machine allows it (root with mount
rights, as in CI), otherwise a kernel limit on file size (RLIMIT_FSIZE) for the saving process. Either
way the kernel refuses the write half-way through the weights file, and the test checks what a user
would see: one clear line, exit status 2, and the previous checkpoint exactly as it was, still loading.
(The killed-training and interrupted-save faults are in test_train.py and test_checkpoint.py; the server
restart mid-training is in test_browser.py.)
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from lm.store.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parent.parent
DISK_BYTES = 1024 * 1024  # the small disk: room for a tiny checkpoint, not for a 3 MB one

# Saves a one-layer Transformer of the given width as a checkpoint, the way `lm.train.loop` and the app do.
SAVE = """
import sys, torch
from lm.store.checkpoint import save_checkpoint
from lm.errors import LMError
from lm.models.transformer.model import TransformerConfig, TransformerModel
from lm.data.tokenizer import Tokenizer
target, width = sys.argv[1], int(sys.argv[2])
tok = Tokenizer.char("to be or not to be\\n")
config = TransformerConfig(vocab_size=tok.vocab_size, n_layers=1, n_heads=2, d_model=width, context_length=16)
model = TransformerModel(config, torch.Generator().manual_seed(width))
try:
    save_checkpoint(target, model, tok, {"corpus": {"name": "faults"}})
except LMError as exc:
    print(f"error: {exc}")
    sys.exit(2)
"""


@pytest.fixture
def small_disk(tmp_path):
    """(directory on a small disk, how writes beyond it fail: 'tmpfs' or 'rlimit')."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(mount_point)],
                             capture_output=True).returncode == 0 if hasattr(os, "geteuid") and os.geteuid() == 0 else False
    try:
        yield mount_point, "tmpfs" if mounted else "rlimit"
    finally:
        if mounted:
            subprocess.run(["umount", str(mount_point)], check=True)


def run_save(target: Path, width: int, mechanism: str | None) -> subprocess.CompletedProcess:
    def limit_file_size():  # in the child only: any file written past DISK_BYTES fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (DISK_BYTES, DISK_BYTES))

    return subprocess.run([sys.executable, "-c", SAVE, str(target), str(width)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          preexec_fn=limit_file_size if mechanism == "rlimit" else None)


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_full_disk_during_a_save_keeps_the_previous_checkpoint(small_disk):
    disk, mechanism = small_disk
    target = disk / "faults-model"
    first = run_save(target, 16, None)  # a tiny checkpoint fits
    assert first.returncode == 0, first.stderr
    before = snapshot(disk)
    names_before = sorted(os.listdir(disk))

    second = run_save(target, 256, mechanism)  # ~3 MB of weights: the disk fills up half-way
    assert second.returncode == 2, second.stderr
    message = second.stdout.strip()
    expected = "No space left on device" if mechanism == "tmpfs" else "File too large"
    assert message == f"error: could not save faults-model: {expected}", (mechanism, message, second.stderr)
    assert "Traceback" not in second.stderr
    assert snapshot(disk) == before  # the old checkpoint byte for byte, no half-written file beside it
    assert sorted(os.listdir(disk)) == names_before  # no staging directory left behind
    loaded = load_checkpoint(target)
    assert loaded.model.config.d_model == 16

    third = run_save(target, 256, None) if mechanism == "rlimit" else None  # room again: the save succeeds
    if third is not None:
        assert third.returncode == 0 and load_checkpoint(target).model.config.d_model == 256


def test_training_on_a_full_disk_fails_cleanly_from_the_cli(small_disk, tmp_path):
    disk, mechanism = small_disk
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("to be or not to be, that is the question\n" * 200, encoding="utf-8")
    command = [sys.executable, "-m", "lm", "train", "--family", "transformer", "--corpus", str(corpus),
               "--name", "full-disk", "--out", str(disk / "full-disk"), "--layers", "1", "--heads", "2",
               "--width", "256", "--context", "16", "--steps", "2", "--batch-size", "2", "--threads", "1", "--quiet"]

    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (DISK_BYTES, DISK_BYTES))

    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(ROOT)},
                            preexec_fn=limit_file_size if mechanism == "rlimit" else None)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: ") and "Traceback" not in result.stderr
    assert ("No space left on device" if mechanism == "tmpfs" else "File too large") in lines[-1]
    leftovers = [p.name for p in disk.iterdir()]
    assert not [n for n in leftovers if n.startswith(".") and "saving" in n], leftovers
