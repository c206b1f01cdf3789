"""`python -m lm`: happy paths and one-line errors for bad input."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lm.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def names_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "names-3gram"
    assert main(["ngram", "--corpus", "names", "--order", "3", "--name", "names-3gram", "--out", str(out)]) == 0
    return out


def test_generate_is_reproducible_and_json(names_model, capsys):
    args = ["generate", "-m", str(names_model), "-p", "ma", "-n", "30", "--seed", "5", "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out) == first
    sample = first["samples"][0]
    assert len(sample["tokens"]) == 30 and all(t["rank"] >= 1 and 0 <= t["prob"] <= 1 for t in sample["tokens"])


def test_generate_streams_plain_text_with_samples(names_model, capsys):
    assert main(["generate", "-m", str(names_model), "-p", "a", "-n", "10", "--samples", "2", "--temperature", "0.5",
                 "--top-k", "5", "--top-p", "0.9"]) == 0
    out = capsys.readouterr().out
    assert "sample 1" in out and "sample 2" in out


def test_score_reports_bits_per_char(names_model, capsys):
    assert main(["score", "-m", str(names_model), "--text", "mary\njohn\n", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["tokens"]) == 10 and data["bits_per_char"] > 0
    assert data["bits_per_char"] == pytest.approx(-sum(t["logprob"] for t in data["tokens"]) / 0.6931471805599453 / 10)


def test_models_json_lists_fields(names_model, capsys):
    assert main(["models", "--json"]) == 0
    for entry in json.loads(capsys.readouterr().out):
        assert {"name", "family", "tokenizer", "path", "valid_bits_per_char"} <= set(entry)


@pytest.mark.parametrize("args, fragment", [
    (["generate", "-m", "no-such-model", "-p", "x"], "no model named"),
    (["generate", "-m", "../etc", "-p", "x"], "no model directory"),
    (["generate", "-m", "NAMES", "-p", "x"], "invalid model name"),
    (["generate", "-m", "x", "--temperature", "-1"], "temperature"),
    (["generate", "-m", "x", "--top-p", "0"], "top_p"),
    (["generate", "-m", "x", "--top-k", "-3"], "top_k"),
    (["generate", "-m", "x", "-n", "0"], "max_new_tokens"),
    (["generate", "-m", "x", "--seed", "abc"], "invalid int"),
    (["score", "-m", "x"], "one of the arguments"),
    (["score", "-m", "x", "--file", "/nonexistent/file.txt"], "nonexistent"),
    (["ngram", "--name", "../up"], "invalid model name"),
    (["ngram", "--name", "ok", "--corpus", "/no/such/corpus.txt"], "corpus"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_is_one_line_and_nonzero(args, fragment, capsys):
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert len(err.splitlines()) == 1 and err.startswith("error:") and fragment in err


def test_help_for_every_command():
    for command in ["models", "generate", "score", "ngram"]:
        with pytest.raises(SystemExit) as info:
            main([command, "--help"])
        assert info.value.code == 0


def test_real_entry_point_error_has_no_traceback(tmp_path):
    out = subprocess.run([sys.executable, "-m", "lm", "score", "-m", "nope", "--text", "hi"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().startswith("error: no model named")


@pytest.fixture(scope="module")
def neural_models(tmp_path_factory, char_tokenizer):
    from lm.store.checkpoint import save_checkpoint
    from lm.models import build_model
    from lm.models.rnn import RNNConfig
    from lm.models.transformer.model import TransformerConfig

    root = tmp_path_factory.mktemp("neural")
    v = char_tokenizer.vocab_size
    gpt = build_model(TransformerConfig(vocab_size=v, context_length=16, n_layers=2, n_heads=2, d_model=16))
    lstm = build_model(RNNConfig(vocab_size=v, cell="lstm", n_layers=2, d_embed=8, d_hidden=12))
    return (save_checkpoint(root / "tiny-gpt", gpt, char_tokenizer, {}),
            save_checkpoint(root / "tiny-lstm", lstm, char_tokenizer, {}))


def test_inspect_json_shapes_for_every_family(neural_models, names_model, capsys):
    gpt, lstm = neural_models
    assert main(["inspect", "-m", str(gpt), "--text", "hello there", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    attention = data["trace"]["attention"]
    assert len(data["tokens"]) == 11 and (len(attention), len(attention[0])) == (2, 2)
    assert len(attention[0][0]) == 11 and len(attention[0][0][0]) == 11
    assert main(["inspect", "-m", str(lstm), "--text", "hello", "--json"]) == 0
    states = json.loads(capsys.readouterr().out)["trace"]["states"]
    assert set(states) == {"input", "forget", "cell_candidate", "output", "cell", "hidden"}
    assert (len(states["forget"]), len(states["forget"][0]), len(states["forget"][0][0])) == (2, 5, 12)
    assert main(["inspect", "-m", str(names_model), "--text", "anna", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["trace"]["rows"]
    assert len(rows) == 3 and [r["order"] for r in rows[-1]] == [3, 2, 1]


def test_generate_and_score_work_for_neural_families(neural_models, capsys):
    for path in neural_models:
        assert main(["generate", "-m", str(path), "-p", "Hi", "-n", "40", "--seed", "2", "--json"]) == 0
        assert len(json.loads(capsys.readouterr().out)["samples"][0]["tokens"]) == 40
        assert main(["score", "-m", str(path), "--text", "a longer text than the context of sixteen", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["bits_per_char"] > 0


def test_device_option_places_neural_models_and_refuses_missing_hardware(tmp_path, capsys):
    """--device picks where a neural model runs: "cpu" always works; a device this machine lacks (or a
    made-up one) is a one-line error, exit status 2. "auto" takes CUDA, then MPS, else the CPU."""
    import torch

    from lm.store.checkpoint import save_checkpoint
    from lm.models.rnn import RNNConfig, RNNModel
    from lm.store.registry import load_model
    from lm.data.tokenizer import Tokenizer

    tok = Tokenizer.char("abc de\n")
    path = tmp_path / "tiny-gru"
    save_checkpoint(path, RNNModel(RNNConfig(vocab_size=tok.vocab_size, cell="gru", n_layers=1, d_embed=4, d_hidden=8),
                                   torch.Generator().manual_seed(0)), tok)
    assert main(["generate", "-m", str(path), "-p", "ab", "-n", "5", "--device", "cpu", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["samples"][0]["tokens"]) == 5
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert load_model(str(path), device="auto").model.device.type in (expected, "mps")
    missing = [d for d in ("cuda", "mps") if not (torch.cuda.is_available() if d == "cuda"
                                                   else torch.backends.mps.is_available())]
    for device in [*missing, "banana"]:
        for command in (["generate", "-m", str(path), "-p", "ab"], ["score", "-m", str(path), "--text", "ab"],
                        ["inspect", "-m", str(path), "--text", "ab"]):
            assert main([*command, "--device", device]) == 2
            err = capsys.readouterr().err.strip()
            assert err.startswith("error: ") and "\n" not in err and device in err


def test_export_refuses_a_format_the_family_does_not_have(tmp_path, capsys):
    assert main(["export", "-m", "shakespeare-char-lstm", "--format", "arpa", "--out", str(tmp_path / "x.arpa")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: shakespeare-char-lstm is a RNN model: --format arpa exports only n-gram models"
    assert not (tmp_path / "x.arpa").exists()
