"""Tiny models for the app tests (AppTest and the real-browser test), written as real checkpoints.

`build_tiny_zoo(home)` writes these checkpoints under `home/models/` with `lm.store.checkpoint.save_checkpoint`,
all trained on the built-in **names** corpus (36k characters, one lowercase first name per line), so they
are fast to build (a few seconds on 2 CPU cores) and their output looks like names:

    tiny-char-ngram        n-gram, order 4, char tokenizer        (family "ngram")
    tiny-char-lstm         LSTM, 1 layer x 48 units, char          (family "rnn", cell "lstm")
    tiny-char-transformer  Transformer, 2 layers x 2 heads, d=32,  (family "transformer")
                           context 32, char
    tiny-bpe-ngram         n-gram, order 3, byte-level BPE of 300  (family "ngram"): lets tests check that
                           char and BPE models line up by character position

`TINY_MODELS` lists the names; `TINY_CHAR_TRIO` is the (ngram, lstm, transformer) triple of one tokenizer.
Every checkpoint's meta has `corpus.name == "names"` (so the memorisation meter can load the corpus),
a corpus split, and `metrics.valid_bits_per_char` measured on (the start of) the held-out names.

Use from pytest (import the fixture into a test module or a conftest):

    from app_fixtures import app_home   # noqa: F401  (tests/ is on sys.path under pytest; session-scoped)

    def test_something(app_home):                    # app_home: pathlib.Path of LM_PLAYGROUND_HOME
        ...

`app_home` builds the zoo once per test process in a temporary directory (every module that imports the
fixture gets the same one), sets `os.environ["LM_PLAYGROUND_HOME"]` to it and returns the path. The
directory goes when the process exits. The shipped zoo in `assets/` is listed by the registry as well, so a
test that needs a particular model should name a tiny one (e.g. `?model=tiny-char-lstm`) rather than rely
on a page's default, which prefers the zoo's Shakespeare models once they exist.
From a script: `python -m tests.app_fixtures /some/dir` builds the same models there.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
import torch

TINY_CHAR_TRIO = ("tiny-char-ngram", "tiny-char-lstm", "tiny-char-transformer")
TINY_MODELS = TINY_CHAR_TRIO + ("tiny-bpe-ngram",)
CORPUS = "names"
VALID_CHARS = 4000  # held-out characters scored for the recorded bits/char (enough for a table)
TRAIN_STEPS = 120  # gradient steps for the neural models: enough to beat uniform clearly, a second or two


def _train_neural(model, ids: list[int], steps: int, seq_len: int, seed: int) -> float:
    """A few Adam steps on random windows of `ids`; returns the last training loss (nats/token)."""
    g = torch.Generator().manual_seed(seed)
    data = torch.tensor(ids, dtype=torch.long)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    loss_value = float("nan")
    for _ in range(steps):
        starts = torch.randint(0, len(data) - seq_len - 1, (16,), generator=g)
        batch = torch.stack([data[s:s + seq_len + 1] for s in starts.tolist()])  # [16, T+1]
        logits = model.logits(batch[:, :-1])  # [16, T, V]
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss_value = loss.item()
    model.eval()
    model.requires_grad_(False)
    return loss_value


def _meta(split, model, tokenizer, method: str, **extra) -> dict:
    from lm.run.metrics import score

    valid = split.valid.text[:VALID_CHARS]
    bpc = score(model, tokenizer, valid).bits_per_char
    return {
        "corpus": {"name": CORPUS, "split": split.info},
        "training": {"method": method, **extra},
        "metrics": {"valid_bits_per_char": round(bpc, 4)},
        "description": f"Tiny test model ({method}) on the names corpus.",
    }


def build_tiny_zoo(home: Path | str) -> Path:
    """Write the tiny checkpoints into `home/models/` (replacing any there); returns `home`."""
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models train fastest on one thread, above all on a busy shared CPU
    try:
        return _build(Path(home))
    finally:
        torch.set_num_threads(previous_threads)


def _build(home: Path) -> Path:
    from lm.store.checkpoint import save_checkpoint
    from lm.data.corpus import load_corpus
    from lm.models.ngram.model import NgramModel
    from lm.models.rnn import RNNConfig, RNNModel
    from lm.models.transformer.model import TransformerConfig, TransformerModel
    from lm.data.tokenizer import Tokenizer

    models = home / "models"
    models.mkdir(parents=True, exist_ok=True)
    corpus = load_corpus(CORPUS)
    split = corpus.split()
    char = Tokenizer.char(corpus.text)
    ids = char.encode(split.train.text)

    ngram = NgramModel.build(ids, char.vocab_size, order=4, smoothing="kneser_ney")
    save_checkpoint(models / "tiny-char-ngram", ngram, char,
                    {"name": "tiny-char-ngram", **_meta(split, ngram, char, "counting", tokens=len(ids))})

    lstm = RNNModel(RNNConfig(vocab_size=char.vocab_size, cell="lstm", n_layers=1, d_embed=16, d_hidden=48),
                    generator=torch.Generator().manual_seed(1))
    loss = _train_neural(lstm, ids, TRAIN_STEPS, seq_len=32, seed=1)
    save_checkpoint(models / "tiny-char-lstm", lstm, char,
                    {"name": "tiny-char-lstm", **_meta(split, lstm, char, "gradient", steps=TRAIN_STEPS,
                                                       train_loss=round(loss, 4))})

    gpt = TransformerModel(TransformerConfig(vocab_size=char.vocab_size, context_length=32, n_layers=2,
                                             n_heads=2, d_model=32), generator=torch.Generator().manual_seed(2))
    loss = _train_neural(gpt, ids, TRAIN_STEPS, seq_len=32, seed=2)
    save_checkpoint(models / "tiny-char-transformer", gpt, char,
                    {"name": "tiny-char-transformer", **_meta(split, gpt, char, "gradient", steps=TRAIN_STEPS,
                                                              train_loss=round(loss, 4))})

    bpe = Tokenizer.bpe(split.train.text, 300)
    bpe_ids = bpe.encode(split.train.text)
    bpe_ngram = NgramModel.build(bpe_ids, bpe.vocab_size, order=3, smoothing="kneser_ney")
    save_checkpoint(models / "tiny-bpe-ngram", bpe_ngram, bpe,
                    {"name": "tiny-bpe-ngram", **_meta(split, bpe_ngram, bpe, "counting", tokens=len(bpe_ids))})
    return home


_built: dict[str, Path] = {}


def shared_home() -> Path:
    """The tiny zoo of this test process: built on first use, removed when the process exits."""
    if "home" not in _built:
        home = Path(tempfile.mkdtemp(prefix="lm-app-home-"))
        atexit.register(shutil.rmtree, home, True)
        build_tiny_zoo(home)
        _built["home"] = home
    return _built["home"]


@pytest.fixture(scope="session")
def app_home():
    """A temporary LM_PLAYGROUND_HOME holding the tiny zoo, set in os.environ for the session.

    Several test modules import this fixture; they all get the same directory (built once per process).
    """
    before = os.environ.get("LM_PLAYGROUND_HOME")
    home = shared_home()
    os.environ["LM_PLAYGROUND_HOME"] = str(home)
    try:
        yield home
    finally:
        if before is None:
            os.environ.pop("LM_PLAYGROUND_HOME", None)
        else:
            os.environ["LM_PLAYGROUND_HOME"] = before


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="lm-app-home-"))
    print(build_tiny_zoo(target))
