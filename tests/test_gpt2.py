"""GPT-2 import/export against the reference implementation in `transformers` (a dev dependency)."""

from __future__ import annotations

import json
import string
import sys

import pytest
import torch
import transformers
from transformers import GPT2Config, GPT2LMHeadModel

from lm.errors import LMError
from lm.models.gpt2 import export_gpt2, load_gpt2
from lm.models.transformer import TransformerConfig, TransformerModel

transformers.logging.set_verbosity_error()


def tiny_hf(**kw) -> GPT2LMHeadModel:
    config = GPT2Config(n_layer=2, n_head=2, n_embd=32, vocab_size=100, n_positions=64,
                        bos_token_id=None, eos_token_id=None, **kw)
    model = GPT2LMHeadModel(config).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # spread the weights (biases and LayerNorm gains included) so every mapping matters
        for name, param in model.named_parameters():
            if ".ln_" in name and name.endswith("weight"):
                param.copy_(1 + 0.2 * torch.randn(param.shape, generator=g))
            else:
                param.copy_(0.2 * torch.randn(param.shape, generator=g))
    return model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny-gpt2")
    tiny_hf().save_pretrained(directory, safe_serialization=True)
    return directory


def reference(directory, ids):
    hf = GPT2LMHeadModel.from_pretrained(directory, attn_implementation="eager").eval()
    with torch.no_grad():
        out = hf(ids, output_attentions=True)
    return out.logits, torch.stack([a[0] for a in out.attentions])  # [1, T, V], [L, H, T, T]


def test_loaded_weights_reproduce_transformers(saved):
    model, tokenizer, meta = load_gpt2(saved, need_tokenizer=False)
    assert tokenizer is None and meta["format"] == "hf-gpt2"
    c = model.config
    assert (c.vocab_size, c.context_length, c.n_layers, c.n_heads, c.d_model) == (100, 64, 2, 2, 32)
    assert c.activation == "gelu_tanh" and c.tie_embeddings and model.lm_head.weight is model.wte.weight
    ids = torch.randint(0, 100, (1, 40), generator=torch.Generator().manual_seed(1))
    logits, attention = reference(saved, ids)
    trace = model.trace(ids[0])
    torch.testing.assert_close(model.logits(ids), logits, atol=1e-4, rtol=0)
    torch.testing.assert_close(trace.logits, logits[0], atol=1e-4, rtol=0)
    torch.testing.assert_close(trace.attention, attention, atol=1e-4, rtol=0)
    # and the KV-cache path
    step_logits, cache = model.prefill(ids[:, :30], model.start(1))
    for t in range(30, 40):
        step_logits, cache = model.step(ids[:, t], cache)
    torch.testing.assert_close(step_logits, logits[:, -1], atol=1e-4, rtol=0)


@pytest.mark.parametrize("kw", [{}, {"bias": False, "tie_embeddings": False, "activation": "gelu"}])
def test_export_round_trips_through_transformers(kw, tmp_path):
    config = TransformerConfig(vocab_size=50, context_length=24, n_layers=2, n_heads=4, d_model=16, **kw)
    model = TransformerModel(config, generator=torch.Generator().manual_seed(2))
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.3 * torch.randn(param.shape, generator=g))
    export_gpt2(model, tmp_path)
    ids = torch.randint(0, 50, (2, 24), generator=g)
    hf = GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(hf(ids).logits, model.logits(ids), atol=1e-4, rtol=0)
    again, _, _ = load_gpt2(tmp_path, need_tokenizer=False)
    torch.testing.assert_close(again.logits(ids), model.logits(ids), atol=1e-5, rtol=0)


def test_tokenizer_is_loaded_and_checked(tmp_path):
    from lm.tokenizer import Tokenizer

    tiny_hf().save_pretrained(tmp_path, safe_serialization=True)
    with pytest.raises(LMError, match="tokenizer.json"):
        load_gpt2(tmp_path)
    Tokenizer.char(string.ascii_letters + string.digits + " .,\n").save(tmp_path / "tokenizer.json")  # 67 tokens
    _, tokenizer, meta = load_gpt2(tmp_path)
    assert tokenizer.vocab_size == 67 and meta["tokenizer"]["kind"] == "char"
    Tokenizer.char(string.printable + "äöüßéèàç").save(tmp_path / "tokenizer.json")  # 109 > 100 tokens
    with pytest.raises(LMError, match="do not belong together"):
        load_gpt2(tmp_path)


def test_pickle_checkpoints_are_refused(tmp_path):
    hf = tiny_hf()
    hf.config.save_pretrained(tmp_path)
    (tmp_path / "pytorch_model.bin").write_bytes(b"not even read")
    with pytest.raises(LMError, match="pickle"):
        load_gpt2(tmp_path, need_tokenizer=False)


@pytest.mark.parametrize("change", [{"activation_function": "swish"}, {"n_inner": 7}, {"model_type": "llama"},
                                    {"scale_attn_by_inverse_layer_idx": True}])
def test_unsupported_variants_are_refused(change, saved, tmp_path):
    for name in ("model.safetensors", "config.json"):
        (tmp_path / name).write_bytes((saved / name).read_bytes())
    data = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**data, **change}))
    with pytest.raises(LMError):
        load_gpt2(tmp_path, need_tokenizer=False)


def test_corrupt_or_mismatched_weights_are_refused(saved, tmp_path):
    (tmp_path / "config.json").write_bytes((saved / "config.json").read_bytes())
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(LMError):
        load_gpt2(tmp_path, need_tokenizer=False)
    data = json.loads((saved / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**data, "n_embd": 64}))
    (tmp_path / "model.safetensors").write_bytes((saved / "model.safetensors").read_bytes())
    with pytest.raises(LMError, match="shape"):
        load_gpt2(tmp_path, need_tokenizer=False)


def test_missing_directory_without_hub_is_a_clear_error(monkeypatch, tmp_path):
    with pytest.raises(LMError, match="no local directory"):
        load_gpt2(str(tmp_path / "absent"))
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # as if it were not installed
    with pytest.raises(LMError, match="no local directory 'gpt2-nowhere' and cannot download"):
        load_gpt2("gpt2-nowhere")
