"""Shared test fixtures: an isolated user directory, and a tiny contract-conforming model for testing the
family-independent machinery (sampling, generation, scoring) without training anything."""

from __future__ import annotations

import os
import tempfile

import pytest
import torch

# Every test run gets its own user directory: tests never touch ~/.lm-playground. Set before lm is imported.
os.environ.setdefault("LM_PLAYGROUND_HOME", tempfile.mkdtemp(prefix="lm-test-home-"))
# The app's background warm-up (lm/app/warmup.py) would load and run every model of a test's zoo behind the
# page under test, and write the n-gram cache while a test checks that nothing changed on disk: tests of the
# warm-up switch it on themselves (tests/test_warmup.py).
os.environ.setdefault("LM_WARMUP", "0")

from lm.models.base import LanguageModel, ModelConfig  # noqa: E402


class BigramTable(LanguageModel):
    """logits(next | last token) from a fixed random table; optional context limit to test sliding.

    Its state counts the tokens fed so tests can check the generation loop never overfills the context.
    """

    def __init__(self, vocab_size: int, seed: int = 0, context_length: int | None = None):
        self.config = ModelConfig(vocab_size=vocab_size)
        g = torch.Generator().manual_seed(seed)
        self.table = torch.randn(vocab_size, vocab_size, generator=g) * 3  # [V, V]
        self._context = context_length
        self.max_fed = 0

    @property
    def context_length(self):
        return self._context

    @property
    def state_capacity(self):
        return self._context

    def start(self, batch_size):
        return {"last": torch.zeros(batch_size, dtype=torch.long), "fed": 0}

    def step(self, tokens, state):
        fed = state["fed"] + 1
        if self._context is not None and fed > self._context:
            raise AssertionError(f"context overfilled: {fed} > {self._context}")
        self.max_fed = max(self.max_fed, fed)
        return self.table[tokens].clone(), {"last": tokens, "fed": fed}

    def logits(self, ids):
        return self.table[ids]  # [B, T, V]

    def trace(self, ids):
        return None

    def state_tensors(self):
        return {"table": self.table}

    @classmethod
    def from_state(cls, config, tensors):
        model = cls(config.vocab_size)
        model.table = tensors["table"]
        return model


@pytest.fixture
def bigram():
    return BigramTable


@pytest.fixture(scope="session")
def char_tokenizer():
    from lm.data.tokenizer import Tokenizer

    return Tokenizer.char("abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ.,;:!?'\n")


ROBUSTNESS_FILES = {"test_bad_input.py": "bad-input cases", "test_faults.py": "fault cases (real full disk)",
                    "test_fuzz.py": "fuzz properties", "test_bad_urls.py": "crafted URL values (every page, every key)",
                    "test_robust_files.py": "hostile files in the user directory",
                    "test_worker.py": "training worker faults (killed, out of memory, other owners)"}


def pytest_terminal_summary(terminalreporter):
    """Count the robustness cases in the test report (the robustness issue asks for the number)."""
    counts: dict[str, dict[str, int]] = {}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            nodeid = getattr(report, "nodeid", "")
            name = nodeid.split("::")[0].rsplit("/", 1)[-1]
            if name in ROBUSTNESS_FILES and (outcome != "passed" or getattr(report, "when", "call") == "call"):
                counts.setdefault(name, {}).setdefault(outcome, 0)
                counts[name][outcome] += 1
    if counts:
        terminalreporter.section("robustness cases")
        for name, tally in sorted(counts.items()):
            terminalreporter.write_line(f"{ROBUSTNESS_FILES[name]} (tests/{name}): "
                                        + ", ".join(f"{n} {outcome}" for outcome, n in tally.items()))
