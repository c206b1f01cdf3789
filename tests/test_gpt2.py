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
from lm.models.gpt2 import export_gpt2, hub_name, load_gpt2
from lm.models.transformer.model import TransformerConfig, TransformerModel

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
    from lm.data.tokenizer import Tokenizer

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
    with pytest.raises(LMError, match="cannot download 'gpt2-nowhere': huggingface_hub is not installed"):
        load_gpt2("gpt2-nowhere")


def test_hub_names(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert hub_name("hf:gpt2") == "gpt2" and hub_name("hf: openai-community/gpt2") == "openai-community/gpt2"
    assert hub_name("openai-community/gpt2") == "openai-community/gpt2"  # no such directory here
    (tmp_path / "runs" / "mine").mkdir(parents=True)
    assert hub_name("runs/mine") is None  # an existing directory stays a path
    for local in ("shakespeare-char-lstm", "/abs/path", "./a/b", "~/x/y", "a/b/c"):
        assert hub_name(local) is None, local
    for bad in ("hf:", "hf:../x", "hf:a/b/c", "hf:-x"):
        with pytest.raises(LMError, match="not a Hugging Face Hub name"):
            hub_name(bad)


@pytest.fixture
def hub_snapshot(saved, tmp_path):
    """A snapshot directory as `snapshot_download` leaves one: the tiny GPT-2 plus a tokenizer.json."""
    from lm.data.tokenizer import Tokenizer

    snapshot = tmp_path / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        (snapshot / name).write_bytes((saved / name).read_bytes())
    Tokenizer.char(string.ascii_letters + string.digits + " .,\n").save(snapshot / "tokenizer.json")
    return snapshot


@pytest.mark.parametrize("name", ["hf:someone/tiny-gpt2", "someone/tiny-gpt2"])
def test_a_hub_name_downloads_through_huggingface_hub(name, hub_snapshot, saved, monkeypatch, capsys):
    """No network in tests: `snapshot_download` is replaced by one that returns a prepared snapshot, and the
    test checks what was asked for (safetensors only, never pickle weights) and that the result loads."""
    import huggingface_hub

    from lm.cli import main
    from lm.store.registry import load_model

    calls = []

    def fake_snapshot_download(repo_id, allow_patterns=None, **kw):
        calls.append((repo_id, allow_patterns))
        return str(hub_snapshot)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    loaded = load_model(name)
    assert calls[0] == ("someone/tiny-gpt2", ["config.json"])  # the config first, to check the architecture
    assert calls[-1][0] == "someone/tiny-gpt2" and loaded.name == "someone/tiny-gpt2"
    patterns = calls[-1][1]
    assert "model.safetensors" in patterns and "tokenizer.json" in patterns
    assert not any(p.endswith((".bin", ".pt", ".pth", ".ckpt")) or p == "*" for p in patterns)
    ids = torch.randint(0, 67, (1, 20), generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(loaded.model.logits(ids), reference(saved, ids)[0], atol=1e-4, rtol=0)
    assert main(["generate", "-m", name, "-p", "ab", "-n", "5", "--seed", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == "someone/tiny-gpt2"


@pytest.mark.parametrize("name", ["hf:someone/absent", "someone/absent"])
def test_offline_hub_name_is_a_clear_one_line_error(name, monkeypatch, tmp_path, capsys):
    import huggingface_hub.constants

    from lm.cli import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no traffic, whether the library reads it now or at import
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # the real code path
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    before = sorted(tmp_path.rglob("*"))
    assert main(["generate", "-m", name, "-p", "a", "-n", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("error: ")
    assert "cannot download 'someone/absent'" in err and "offline" in err
    assert ("no model directory" in err) == (not name.startswith("hf:"))  # a bare owner/name may be a bad path
    assert sorted(tmp_path.rglob("*")) == before

def test_another_architecture_on_the_hub_is_refused_before_its_weights_are_fetched(monkeypatch, tmp_path):
    import huggingface_hub

    from lm.store.registry import load_model

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}), encoding="utf-8")
    asked = []

    def fake_snapshot_download(repo_id, allow_patterns=None, **kw):
        asked.append(allow_patterns)
        return str(tmp_path)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    with pytest.raises(LMError, match="'someone/big-llama' is a llama model; only GPT-2"):
        load_model("hf:someone/big-llama")
    assert asked == [["config.json"]]  # never the weights


def test_padded_embedding_rows_are_never_drawn_or_shown(hub_snapshot):
    """GPT-2 checkpoints may pad the embedding past the tokenizer (here 100 rows, 67 tokens)."""
    from lm.run.generate import generate, next_token_stages
    from lm.run.sampling import SamplingSettings

    model, tokenizer, _ = load_gpt2(hub_snapshot)
    assert (model.vocab_size, tokenizer.vocab_size) == (100, 67)
    settings = SamplingSettings(temperature=2.0, max_new_tokens=300, seed=3, samples=2)
    ids = [t.token_id for t in generate(model, tokenizer, "ab", settings)]
    assert len(ids) == 600 and max(ids) < 67
    pieces, stages = next_token_stages(model, tokenizer, "ab", settings)
    assert len(pieces) == 67 and all(probs.shape == (67,) for _, probs in stages)
