"""`python -m lm export --format hf`: a project Transformer as a Hugging Face GPT-2 directory that
`transformers` loads (model and tokenizer) with the same log-probabilities, and that loads back here."""

from __future__ import annotations

import json

import pytest
import torch

from lm.cli import main
from lm.data.tokenizer import Tokenizer
from lm.models.transformer.model import TransformerConfig, TransformerModel
from lm.store.checkpoint import save_checkpoint
from lm.store.registry import load_model

transformers = pytest.importorskip("transformers")

TEXT = "To be, or not to be: that is the question.\n"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    tok = Tokenizer.char(TEXT + "ABCxyz")
    config = TransformerConfig(vocab_size=tok.vocab_size, context_length=64, n_layers=2, n_heads=2, d_model=16)
    model = TransformerModel(config, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # away from the initialisation, so every weight matters
        for param in model.parameters():
            param.add_(0.2 * torch.randn(param.shape, generator=g))
    model.eval()
    path = tmp_path_factory.mktemp("export") / "tiny-gpt"
    save_checkpoint(path, model, tok)
    return path, model, tok


def test_hf_export_loads_in_transformers_with_the_same_log_probabilities(checkpoint, tmp_path, capsys):
    path, model, tok = checkpoint
    out = tmp_path / "hf"
    assert main(["export", "-m", str(path), "--format", "hf", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(summary["files"])
    hf = transformers.GPT2LMHeadModel.from_pretrained(out).eval()
    hf_tok = transformers.AutoTokenizer.from_pretrained(out)
    ids = tok.encode(TEXT)
    assert hf_tok(TEXT)["input_ids"] == ids
    x = torch.tensor([ids])
    with torch.no_grad():
        theirs = torch.log_softmax(hf(x).logits, -1)
        ours = torch.log_softmax(model.logits(x), -1)
    torch.testing.assert_close(theirs, ours, atol=1e-4, rtol=0)
    again = load_model(str(out))  # and the directory is a model here too
    torch.testing.assert_close(torch.log_softmax(again.model.logits(x), -1), ours, atol=1e-5, rtol=0)
    assert again.tokenizer.encode(TEXT) == ids


def test_hf_export_of_an_ngram_model_is_refused(tmp_path, capsys):
    from lm.models.ngram.model import NgramModel

    tok = Tokenizer.char(TEXT)
    save_checkpoint(tmp_path / "ng", NgramModel.build(tok.encode_array(TEXT), tok.vocab_size, 3), tok)
    assert main(["export", "-m", str(tmp_path / "ng"), "--format", "hf", "--out", str(tmp_path / "o")]) == 2
    assert "only Transformer models" in capsys.readouterr().err
    assert main(["export", "-m", str(tmp_path / "ng"), "--format", "arpa", "--order", "9",
                 "--out", str(tmp_path / "o.arpa")]) == 2
    assert "order 9 is not available" in capsys.readouterr().err
