"""Checkpoints and the registry: round trips, clear errors for broken directories, atomic saves, safe names."""

import os

import pytest
import torch

from lm.store.checkpoint import load_checkpoint, save_checkpoint
from lm.errors import LMError
from lm.store.registry import list_models, load_model, resolve, user_models_dir, validate_name

TEXT = "to be or not to be, that is the question.\nwhether 'tis nobler in the mind to suffer\n" * 20


@pytest.fixture
def ngram_checkpoint(tmp_path, char_tokenizer):
    from lm.models.ngram.model import NgramModel

    model = NgramModel.build(char_tokenizer.encode(TEXT), char_tokenizer.vocab_size, order=3, smoothing="kneser_ney")
    path = save_checkpoint(tmp_path / "tiny-3gram", model, char_tokenizer, {"corpus": {"name": "test"}})
    return path, model


def test_round_trip_gives_identical_predictions(ngram_checkpoint, char_tokenizer):
    path, model = ngram_checkpoint
    loaded = load_checkpoint(path)
    ids = torch.tensor([char_tokenizer.encode("to be or")])
    assert torch.allclose(loaded.model.logits(ids), model.logits(ids))
    assert loaded.meta["corpus"] == {"name": "test"} and loaded.meta["model"]["family"] == "ngram"
    assert sorted(os.listdir(path)) == ["config.json", "model.safetensors", "tokenizer.json"]
    assert not [p for p in os.listdir(path.parent) if p.startswith(".")]  # no staging left behind


@pytest.mark.parametrize("damage, message", [
    (lambda p: (p / "model.safetensors").unlink(), "missing model.safetensors"),
    (lambda p: (p / "model.safetensors").write_bytes(os.urandom(300)), "corrupt"),
    (lambda p: (p / "model.safetensors").write_bytes(b""), "corrupt"),
    (lambda p: (p / "config.json").write_text("{not json"), "not valid JSON"),
    (lambda p: (p / "config.json").unlink(), "missing config.json"),
    (lambda p: (p / "tokenizer.json").write_text("[]"), "tokenizer"),
])
def test_damaged_checkpoints_give_one_line_errors(ngram_checkpoint, damage, message):
    path, _ = ngram_checkpoint
    damage(path)
    with pytest.raises(LMError) as info:
        load_checkpoint(path)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_mismatched_tokenizer_is_detected(ngram_checkpoint, tmp_path):
    from lm.data.tokenizer import Tokenizer

    path, _ = ngram_checkpoint
    Tokenizer.char("abc").save(path / "tokenizer.json")
    with pytest.raises(LMError, match="do not belong together"):
        load_checkpoint(path)


def test_wrong_shapes_are_detected(ngram_checkpoint):
    from safetensors.torch import load_file, save_file

    path, _ = ngram_checkpoint
    tensors = load_file(str(path / "model.safetensors"))
    name = sorted(tensors)[0]
    tensors[name] = torch.zeros(3, 3, 3, dtype=tensors[name].dtype)
    save_file(tensors, str(path / "model.safetensors"))
    with pytest.raises(LMError):
        load_checkpoint(path)


def test_failed_save_keeps_the_previous_checkpoint(ngram_checkpoint, char_tokenizer, monkeypatch):
    path, model = ngram_checkpoint
    before = {f: (path / f).read_bytes() for f in os.listdir(path)}

    def broken_save(self, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(type(char_tokenizer), "save", broken_save)
    with pytest.raises(LMError, match="could not save tiny-3gram: No space left on device"):
        save_checkpoint(path, model, char_tokenizer, {"corpus": {"name": "changed"}})
    assert {f: (path / f).read_bytes() for f in os.listdir(path)} == before
    assert not [p for p in os.listdir(path.parent) if p.startswith(".")]


@pytest.mark.parametrize("name", ["../evil", "a/b", "", ".hidden", "UPPER", "a" * 65, "x..y", "nul\0", "/abs"])
def test_unsafe_names_are_refused(name):
    with pytest.raises(LMError):
        validate_name(name)


def test_registry_lists_and_resolves_user_models(ngram_checkpoint, char_tokenizer):
    path, model = ngram_checkpoint
    save_checkpoint(user_models_dir() / "reg-test-3gram", model, char_tokenizer,
                    {"corpus": {"name": "test"}, "metrics": {"valid_bits_per_char": 2.5}})
    info = {m.name: m for m in list_models()}["reg-test-3gram"]
    assert (info.source, info.family, info.tokenizer, info.valid_bits_per_char) == ("user", "ngram", "char", 2.5)
    assert resolve("reg-test-3gram") == user_models_dir() / "reg-test-3gram"
    assert load_model(str(path)).name == "tiny-3gram"  # a path works too
    with pytest.raises(LMError, match="no model named"):
        resolve("does-not-exist")
    with pytest.raises(LMError, match="invalid model name"):
        resolve("Bad Name")
    with pytest.raises(LMError, match="missing config.json"):  # a path is only ever a checkpoint directory
        load_model(str(user_models_dir() / ".." / ".."))
