"""Inference thread count: one setting steers torch and NumPy's BLAS alike; bad values get one-line errors."""

from __future__ import annotations

import pytest
import torch
from threadpoolctl import threadpool_info

from lm.cli import main
from lm.device import pick_device, set_inference_threads
from lm.errors import LMError
from lm.models.transformer.model import TransformerConfig, TransformerModel


def blas_threads() -> set[int]:
    """Thread counts of NumPy's BLAS (the one its wheels bundle; another library, e.g. SciPy's, may be loaded)."""
    pools = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
    own = [pool for pool in pools if "numpy" in pool["filepath"]]
    return {pool["num_threads"] for pool in own or pools}


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    set_inference_threads(before)


@pytest.mark.parametrize("n", [1, 2, 1])
def test_set_inference_threads_steers_torch_and_numpy_blas(n, restore_threads):
    assert set_inference_threads(n) == n == torch.get_num_threads()
    assert blas_threads() == {n}  # NumPy's BLAS is found (the NumPy wheels bundle OpenBLAS) and follows


def test_lm_threads_is_the_default_and_is_checked(monkeypatch, restore_threads):
    monkeypatch.setenv("LM_THREADS", "1")
    assert set_inference_threads() == 1 and blas_threads() == {1}
    monkeypatch.setenv("LM_THREADS", "two")
    with pytest.raises(LMError, match="LM_THREADS"):
        set_inference_threads()
    for bad in (0, -3, True, 1.5):
        with pytest.raises(LMError, match="thread count"):
            set_inference_threads(bad)
    assert torch.get_num_threads() == 1  # a refused value changed nothing


def test_the_first_transformer_gives_numpy_blas_torchs_count_and_later_ones_change_nothing(
        monkeypatch, restore_threads):
    import lm.device

    set_inference_threads(2)
    monkeypatch.setattr(lm.device, "_blas_threads", [0])  # as in a fresh process where nothing set it yet
    torch.set_num_threads(1)  # e.g. a notebook that only knows torch's own call
    model = TransformerModel(TransformerConfig(vocab_size=5, context_length=8, n_layers=1, n_heads=1, d_model=8))
    model.start(1)
    assert blas_threads() == {1}
    torch.set_num_threads(2)  # torch's count is per thread (a training thread sets its own): not followed
    model.start(1)
    assert blas_threads() == {1}
    set_inference_threads(2)  # the one call that changes it afterwards
    assert blas_threads() == {2}


def test_cli_threads_option(tmp_path, capsys, restore_threads):
    from lm.store.checkpoint import save_checkpoint
    from lm.data.tokenizer import Tokenizer

    tokenizer = Tokenizer.char("ab")
    model = TransformerModel(TransformerConfig(vocab_size=tokenizer.vocab_size, context_length=16, n_layers=1,
                                               n_heads=1, d_model=8))
    save_checkpoint(tmp_path / "m", model, tokenizer)
    assert main(["generate", "-m", str(tmp_path / "m"), "-p", "ab", "-n", "3", "--threads", "1"]) == 0
    assert torch.get_num_threads() == 1 and blas_threads() == {1}
    capsys.readouterr()
    assert main(["score", "-m", str(tmp_path / "m"), "--text", "abba", "--threads", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: thread count") and "\n" not in err


def test_pick_device_cpu_and_unknown_names():
    assert pick_device("cpu") == torch.device("cpu") == pick_device(" CPU ")
    with pytest.raises(LMError, match="unknown device"):
        pick_device("banana")


@pytest.mark.parametrize("cuda, mps, expected", [
    (True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu"),
])
def test_auto_prefers_cuda_then_mps_then_the_cpu(cuda, mps, expected, monkeypatch):
    import lm.device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(lm.device, "_mps_available", lambda: mps)
    assert pick_device("auto") == pick_device("") == pick_device(None) == torch.device(expected)
    for name, present in (("cuda", cuda), ("mps", mps), ("cuda:1", cuda)):
        if present:
            assert pick_device(name) == torch.device(name)
        else:  # asked for by name but missing: a one-line error, never a silent fall-back to the CPU
            with pytest.raises(LMError, match="not available"):
                pick_device(name)
