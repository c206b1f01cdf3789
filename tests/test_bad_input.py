"""Bad input, table-driven: every case ends in one clear line and leaves the disk exactly as it was.

Each case runs through the library (an `LMError` with a one-line message) and/or the command line
(`lm.cli.main` in-process: exit status != 0 and one `error: ...` line on stderr, never a traceback). Cases
that must *work* (an empty prompt, top-k 0 or larger than the vocabulary, emoji on a character model) run
too. Around every case the user directory (`$LM_PLAYGROUND_HOME`) and every checkpoint directory involved
are snapshotted — names, sizes, mtimes and a hash of the bytes — and must be identical afterwards.

Categories (see the parametrize ids): prompts, knobs, uploads, model directories and names, training
settings, and the app (Playground and Train pages under `streamlit.testing.v1.AppTest`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the pages import `ui` and `lm` from the repository root
    sys.path.insert(0, str(ROOT))

from app_fixtures import app_home  # noqa: E402,F401
from lm.store.checkpoint import load_checkpoint  # noqa: E402
from lm.cli import main  # noqa: E402
from lm.data.corpus import corpus_from_bytes  # noqa: E402
from lm.errors import LMError  # noqa: E402
from lm.run.generate import MAX_PROMPT_CHARS, encode_prompt, generate  # noqa: E402
from lm.store.registry import home_dir, load_model  # noqa: E402
from lm.run.sampling import SamplingSettings  # noqa: E402
from lm.data.textio import DEFAULT_MAX_BYTES  # noqa: E402
from lm.train.settings import TrainSettings, resolve_settings  # noqa: E402


# -- helpers ----------------------------------------------------------------------------------------------
def snapshot(*roots: Path) -> dict:
    """Every file and directory under `roots`: kind, size, mtime (ns) and a hash of the bytes."""
    found: dict = {}
    for root in roots:
        root = Path(root)
        if not root.exists():
            found[str(root)] = None
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            d = Path(dirpath)
            found[str(d)] = ("dir", sorted(dirnames), sorted(filenames), d.stat().st_mtime_ns)
            for name in sorted(filenames):
                f = d / name
                st = f.lstat()
                digest = hashlib.sha256(f.read_bytes()).hexdigest() if f.is_file() else None
                found[str(f)] = ("file", st.st_size, st.st_mtime_ns, digest)
    return found


@contextmanager
def disk_unchanged(*extra: Path):
    """Assert that the user directory and `extra` paths are byte-for-byte the same after the block."""
    roots = (home_dir(), *extra)
    before = snapshot(*roots)
    yield
    after = snapshot(*roots)
    assert after == before, "the disk changed: " + ", ".join(
        sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k)))[:500]


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_cli_error(code, err: str, fragment: str) -> None:
    lines = err.strip().splitlines()
    assert code != 0, err
    assert len(lines) == 1, f"expected one line on stderr, got: {err!r}"
    assert lines[0].startswith("error:"), lines[0]
    assert "Traceback" not in err
    assert fragment.lower() in lines[0].lower(), f"{fragment!r} not in {lines[0]!r}"


def assert_lm_error(info: pytest.ExceptionInfo, fragment: str) -> None:
    message = str(info.value)
    assert message and "\n" not in message
    assert fragment.lower() in message.lower(), f"{fragment!r} not in {message!r}"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A names-corpus character 3-gram checkpoint (alphabet: lowercase letters and newline)."""
    out = tmp_path_factory.mktemp("bad-input") / "names-3gram"
    assert main(["ngram", "--corpus", "names", "--order", "3", "--name", "names-3gram", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def tiny_loaded(tiny_model):
    return load_model(str(tiny_model))


# -- prompts ----------------------------------------------------------------------------------------------
PROMPT_CASES = [
    # (prompt, error fragment or None when it must work, characters that must be reported as replaced)
    pytest.param("", None, "", id="empty"),
    pytest.param("anna\n" * (MAX_PROMPT_CHARS // 5), None, "", id="100000-chars"),
    pytest.param("a" * (MAX_PROMPT_CHARS + 1), "the limit is 100,000", "", id="100001-chars"),
    pytest.param("an\x00\x01\x07\x1b[31mna\x7f", None, "\x00\x01\x07\x1b[31\x7f", id="control-chars"),
    pytest.param("emma 你好 😀", None, " 你好😀", id="emoji-cjk"),
]


@pytest.mark.parametrize("prompt, fragment, replaced", PROMPT_CASES)
def test_prompt_library(prompt, fragment, replaced, tiny_model, tiny_loaded):
    settings = SamplingSettings(max_new_tokens=5, seed=1)
    with disk_unchanged(tiny_model):
        if fragment:
            with pytest.raises(LMError) as info:
                list(generate(tiny_loaded.model, tiny_loaded.tokenizer, prompt, settings))
            assert_lm_error(info, fragment)
            return
        tokens = list(generate(tiny_loaded.model, tiny_loaded.tokenizer, prompt, settings))
    assert len(tokens) == 5
    assert set(encode_prompt(tiny_loaded.tokenizer, prompt).replaced) == set(replaced)


@pytest.mark.parametrize("prompt, fragment, replaced", PROMPT_CASES)
def test_prompt_cli(prompt, fragment, replaced, tiny_model, capsys):
    with disk_unchanged(tiny_model):
        code, out, err = run_cli(["generate", "-m", str(tiny_model), "-p", prompt, "-n", "5", "--json"], capsys)
    if fragment:
        assert_cli_error(code, err, fragment)
        return
    assert code == 0, err
    assert len(json.loads(out)["samples"][0]["tokens"]) == 5
    if replaced:  # one note line naming the unknown characters
        (note,) = err.strip().splitlines()
        assert note.startswith("note:") and "<unk>" in note
        for ch in replaced:
            assert repr(ch)[1:-1] in note
    else:
        assert err.strip() == ""


# -- sampling knobs ---------------------------------------------------------------------------------------
KNOB_CASES = [
    # (CLI flags, SamplingSettings keywords, error fragment or None when it must work)
    pytest.param(["--temperature", "-0.5"], {"temperature": -0.5}, "temperature", id="negative-temperature"),
    pytest.param(["--temperature", "nan"], {"temperature": math.nan}, "temperature", id="nan-temperature"),
    pytest.param(["--temperature", "inf"], {"temperature": math.inf}, "temperature", id="inf-temperature"),
    pytest.param(["--top-k", "0"], {"top_k": 0}, None, id="top-k-0-off"),
    pytest.param(["--top-k", "100000"], {"top_k": 100_000}, None, id="top-k-over-vocab-clamped"),
    pytest.param(["--top-k", "-1"], {"top_k": -1}, "top_k", id="negative-top-k"),
    pytest.param(["--top-p", "0"], {"top_p": 0.0}, "top_p", id="top-p-0"),
    pytest.param(["--top-p", "1.5"], {"top_p": 1.5}, "top_p", id="top-p-over-1"),
    pytest.param(["--min-p", "1"], {"min_p": 1.0}, "min_p", id="min-p-1"),
    pytest.param(["--repetition-penalty", "0.5"], {"repetition_penalty": 0.5}, "repetition_penalty",
                 id="repetition-penalty-below-1"),
    pytest.param(["-n", str(10**9)], {"max_new_tokens": 10**9}, "max_new_tokens", id="huge-token-budget"),
    pytest.param(["--samples", "0"], {"samples": 0}, "samples", id="samples-0"),
    pytest.param(["--seed", "-1"], {"seed": -1}, "seed", id="seed-minus-1"),
    pytest.param(["--stop", ""], {"stop": ("",)}, "stop", id="empty-stop-string"),
]


@pytest.mark.parametrize("flags, kwargs, fragment", KNOB_CASES)
def test_knob_library(flags, kwargs, fragment):
    if fragment:
        with pytest.raises(LMError) as info:
            SamplingSettings(**kwargs)
        assert_lm_error(info, fragment)
    else:
        SamplingSettings(**kwargs)


@pytest.mark.parametrize("flags, kwargs, fragment", KNOB_CASES)
def test_knob_cli(flags, kwargs, fragment, tiny_model, capsys):
    args = ["generate", "-m", str(tiny_model), "-p", "em", "--json", *(["-n", "4"] if "-n" not in flags else []),
            *flags]
    with disk_unchanged(tiny_model):
        code, out, err = run_cli(args, capsys)
    if fragment:
        assert_cli_error(code, err, fragment)
    else:
        assert code == 0, err
        assert len(json.loads(out)["samples"][0]["tokens"]) == 4


# -- uploads ----------------------------------------------------------------------------------------------
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)
UPLOAD_CASES = [
    # (bytes, error fragment); "over-cap" uses a small max_bytes in the library and a sparse file in the CLI
    pytest.param(PNG, "binary", id="png-header"),
    pytest.param(b"hello\x00world\n" * 10, "NUL byte", id="nul-bytes"),
    pytest.param("café crème brûlée\n".encode("latin-1") * 10, "not valid UTF-8", id="latin-1"),
    pytest.param(bytes(range(1, 32)) * 20, "binary", id="control-bytes"),
    pytest.param(b"", "empty", id="empty"),
    pytest.param(b" \n\t\r\n   \n", "only whitespace", id="whitespace-only"),
    pytest.param(None, "limit", id="over-cap"),
]


@pytest.mark.parametrize("data, fragment", UPLOAD_CASES)
def test_upload_library(data, fragment):
    cap = DEFAULT_MAX_BYTES
    if data is None:
        data, cap = b"plain text\n" * 20, 100
    with disk_unchanged():
        with pytest.raises(LMError) as info:
            corpus_from_bytes(data, "upload.txt", max_bytes=cap)
    assert_lm_error(info, fragment)


def _corpus_file(tmp_path: Path, data: bytes | None) -> Path:
    path = tmp_path / "upload.txt"
    if data is None:  # over the 20 MiB cap without writing 20 MiB: a sparse file
        with open(path, "wb") as handle:
            handle.truncate(DEFAULT_MAX_BYTES + 1)
    else:
        path.write_bytes(data)
    return path


def _train_args(corpus: str, out: Path, *extra: str) -> list[str]:
    return ["train", "--family", "lstm", "--preset", "tiny", "--steps", "1", "--corpus", corpus, "--name",
            "bad-upload", "--out", str(out), "--device", "cpu", "--quiet", *extra]


def _ngram_args(corpus: str, out: Path, *extra: str) -> list[str]:
    return ["ngram", "--corpus", corpus, "--order", "3", "--name", "bad-upload", "--out", str(out), *extra]


@pytest.mark.parametrize("command", [_ngram_args, _train_args], ids=["ngram", "train"])
@pytest.mark.parametrize("data, fragment", UPLOAD_CASES)
def test_upload_cli(command, data, fragment, tmp_path, capsys):
    corpus = _corpus_file(tmp_path, data)
    out = tmp_path / "models" / "bad-upload"
    with disk_unchanged(tmp_path):
        code, _, err = run_cli(command(str(corpus), out), capsys)
    assert_cli_error(code, err, fragment)
    assert not out.exists()


SHORT_CASES = [
    # (corpus text, CLI command builder, extra flags, error fragment)
    pytest.param("anna\nemma\n" * 12, _train_args, ["--family", "transformer", "--context", "256"],
                 "fewer than the context", id="train-shorter-than-context"),
    pytest.param("anna\nemma\n" * 12, _train_args, ["--context", "200"], "fewer than the context",
                 id="train-lstm-shorter-than-bptt-window"),
    pytest.param("a", _train_args, [], "too short", id="train-one-character"),
    pytest.param("a", _ngram_args, [], "too short", id="ngram-one-character"),
]


@pytest.mark.parametrize("text, command, extra, fragment", SHORT_CASES)
def test_corpus_too_short_to_train(text, command, extra, fragment, tmp_path, capsys):
    corpus = _corpus_file(tmp_path, text.encode())
    out = tmp_path / "models" / "bad-upload"
    with disk_unchanged(tmp_path):
        code, _, err = run_cli(command(str(corpus), out, *extra), capsys)
    assert_cli_error(code, err, fragment)
    assert not out.exists()


# -- model directories and names --------------------------------------------------------------------------
def _rewrite_config(path: Path, change) -> None:
    data = json.loads((path / "config.json").read_text())
    change(data)
    (path / "config.json").write_text(json.dumps(data))


def _wrong_shapes(path: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(path / "model.safetensors"))
    tensors["level1.counts"] = torch.zeros(3, 3, dtype=torch.int64)
    save_file(tensors, str(path / "model.safetensors"))


def _other_tokenizer(path: Path) -> None:
    from lm.data.tokenizer import Tokenizer

    Tokenizer.char("abc").save(path / "tokenizer.json")


def _truncate(path: Path, keep) -> None:
    data = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(data[:keep(len(data))])


DAMAGE_CASES = [
    pytest.param(lambda p: (p / "config.json").unlink(), "missing config.json", id="missing-config"),
    pytest.param(lambda p: (p / "model.safetensors").unlink(), "missing model.safetensors", id="missing-weights"),
    pytest.param(lambda p: (p / "tokenizer.json").unlink(), "tokenizer", id="missing-tokenizer"),
    pytest.param(lambda p: (p / "model.safetensors").write_bytes(os.urandom(4096)), "corrupt",
                 id="random-bytes-safetensors"),
    pytest.param(lambda p: _truncate(p, lambda n: n // 2), "corrupt", id="truncated-safetensors"),
    pytest.param(lambda p: _truncate(p, lambda n: 8), "corrupt", id="truncated-to-header-size"),
    pytest.param(lambda p: (p / "model.safetensors").write_bytes(b""), "corrupt", id="empty-safetensors"),
    pytest.param(_wrong_shapes, "1-D", id="wrong-shapes"),
    pytest.param(_other_tokenizer, "do not belong together", id="tokenizer-does-not-match"),
    pytest.param(lambda p: (p / "tokenizer.json").write_bytes(os.urandom(300)), "tokenizer",
                 id="random-bytes-tokenizer"),
    pytest.param(lambda p: (p / "config.json").write_text("{not json"), "not valid JSON", id="config-not-json"),
    pytest.param(lambda p: (p / "config.json").write_text("[1, 2]"), "not a JSON object", id="config-not-object"),
    pytest.param(lambda p: _rewrite_config(p, lambda d: d.update(format="other/9")), "not an LM Playground",
                 id="config-wrong-format"),
    pytest.param(lambda p: _rewrite_config(p, lambda d: d["model"].update(family="cnn")), "unknown model family",
                 id="config-unknown-family"),
    pytest.param(lambda p: _rewrite_config(p, lambda d: d["model"].update(order=3.5)), "order",
                 id="config-bad-order"),
    pytest.param(lambda p: _rewrite_config(p, lambda d: d["model"].update(order=4)), "order",
                 id="config-order-does-not-match-tensors"),
]


@pytest.mark.parametrize("damage, fragment", DAMAGE_CASES)
def test_damaged_model_directory(damage, fragment, tiny_model, tmp_path, capsys):
    path = tmp_path / "damaged"
    shutil.copytree(tiny_model, path)
    damage(path)
    with disk_unchanged(path):
        with pytest.raises(LMError) as info:
            load_checkpoint(path)
        assert_lm_error(info, fragment)
        code, _, err = run_cli(["score", "-m", str(path), "--text", "anna"], capsys)
        assert_cli_error(code, err, fragment)
        code, _, err = run_cli(["generate", "-m", str(path), "-p", "an", "-n", "3"], capsys)
        assert_cli_error(code, err, fragment)


NAME_CASES = [
    # (model name or path given to -m, error fragment)
    pytest.param("a..b", "invalid model name", id="dot-dot-inside"),
    pytest.param("../etc", "no model directory", id="dot-dot-path"),
    pytest.param("../../../../../../etc/passwd", "no model directory", id="dot-dot-to-a-file"),
    pytest.param("a/b", "no model directory", id="slash"),
    pytest.param("NAMES", "invalid model name", id="uppercase"),
    pytest.param("/etc", "missing config.json", id="absolute-dir-not-a-model"),
    pytest.param("/no/such/model", "no model directory", id="absolute-missing"),
    pytest.param("", "no model given", id="empty"),
    pytest.param("   ", "no model given", id="blank"),
    pytest.param("no-such-model", "no model named", id="unknown-name"),
    pytest.param("a" * 65, "invalid model name", id="too-long"),
]


@pytest.mark.parametrize("name, fragment", NAME_CASES)
def test_bad_model_name(name, fragment, capsys):
    with disk_unchanged():
        with pytest.raises(LMError) as info:
            load_model(name)
        assert_lm_error(info, fragment)
        code, _, err = run_cli(["generate", "-m", name, "-p", "x", "-n", "3"], capsys)
        assert_cli_error(code, err, fragment)


@pytest.mark.parametrize("name", ["a..b", "../up", "a/b", "UPPER", "/abs", "", "with space", "-dash", ".hidden"])
def test_bad_name_for_a_new_model(name, tmp_path, capsys):
    with disk_unchanged(tmp_path):
        code, _, err = run_cli(["ngram", "--corpus", "names", "--order", "2", f"--name={name}"], capsys)
    assert_cli_error(code, err, "invalid model name")


# -- training settings ------------------------------------------------------------------------------------
TRAIN_CASES = [
    # (CLI flags, TrainSettings keywords, CLI error fragment, library error fragment)
    pytest.param(["--steps", "0"], {"steps": 0}, "steps", "steps", id="steps-0"),
    pytest.param(["--lr", "-0.001"], {"lr": -0.001}, "lr", "lr", id="negative-lr"),
    pytest.param(["--lr", "nan"], {"lr": math.nan}, "lr", "lr", id="nan-lr"),
    pytest.param(["--family", "cnn"], {"family": "cnn"}, "invalid choice", "unknown model family",
                 id="unknown-family"),
    pytest.param(["--tokenizer", "wordpiece"], {"tokenizer": "wordpiece"}, "invalid choice", "unknown tokenizer",
                 id="unknown-tokenizer"),
    pytest.param(["--tokenizer", "bpe", "--vocab-size", "10"], {"tokenizer": "bpe", "vocab_size": 10},
                 "BPE vocabulary size", "BPE vocabulary size", id="bpe-vocab-10"),
    pytest.param(["--family", "transformer", "--width", "30", "--heads", "4"],
                 {"family": "transformer", "width": 30, "heads": 4}, "divisible", "divisible",
                 id="heads-do-not-divide-width"),
    pytest.param(["--name", "Bad Name"], {"name": "Bad Name"}, "invalid model name", "invalid model name",
                 id="bad-name"),
    pytest.param(["--name", "../evil"], {"name": "../evil"}, "invalid model name", "invalid model name",
                 id="dot-dot-name"),
    pytest.param(["--dropout", "1.5"], {"dropout": 1.5}, "dropout", "dropout", id="dropout-over-1"),
    pytest.param(["--batch-size", "0"], {"batch_size": 0}, "batch_size", "batch_size", id="batch-size-0"),
    pytest.param(["--context", "0"], {"context": 0}, "context", "context", id="context-0"),
    pytest.param(["--minutes", "-1"], {"minutes": -1.0}, "minutes", "minutes", id="negative-minutes"),
    pytest.param(["--max-chars", "0"], {"max_chars": 0}, "max_chars", "max_chars", id="max-chars-0"),
    pytest.param(["--family", "ngram", "--order", "0"], {"family": "ngram", "order": 0}, "order", "order",
                 id="ngram-order-0"),
    pytest.param(["--device", "tpu"], {"device": "tpu"}, "unknown device", "unknown device", id="unknown-device"),
    pytest.param(["--preset", "huge"], {"preset": "huge"}, "invalid choice", "unknown preset", id="unknown-preset"),
    pytest.param(["--steps", "ten"], {"steps": "ten"}, "invalid int", "steps", id="steps-not-a-number"),
]


@pytest.mark.parametrize("flags, kwargs, cli_fragment, lib_fragment", TRAIN_CASES)
def test_train_settings_library(flags, kwargs, cli_fragment, lib_fragment, tmp_path):
    settings = TrainSettings(**{"family": "lstm", "corpus": "names", "preset": "tiny", "name": "bad-settings",
                                "out": str(tmp_path / "out"), "device": "cpu", **kwargs})
    with disk_unchanged(tmp_path):
        with pytest.raises(LMError) as info:
            resolve_settings(settings)
    assert_lm_error(info, lib_fragment)


@pytest.mark.parametrize("flags, kwargs, cli_fragment, lib_fragment", TRAIN_CASES)
def test_train_settings_cli(flags, kwargs, cli_fragment, lib_fragment, tmp_path, capsys):
    args = ["train", "--family", "lstm", "--corpus", "names", "--preset", "tiny", "--steps", "2", "--name",
            "bad-settings", "--out", str(tmp_path / "out"), "--device", "cpu", "--quiet", *flags]
    with disk_unchanged(tmp_path):
        code, _, err = run_cli(args, capsys)
    assert_cli_error(code, err, cli_fragment)


# -- the app ----------------------------------------------------------------------------------------------
APP_TIMEOUT = 60


def app_page(name: str, query: dict):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=APP_TIMEOUT)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    at.switch_page(f"views/{name}.py").run()
    assert not at.exception, at.exception
    return at


def _messages(at) -> str:
    return " | ".join([e.value for e in at.error] + [w.value for w in at.warning])


PLAYGROUND_CASES = [
    # (query parameters, check of the page after its first run)
    pytest.param({"temperature": "-5"}, lambda at: at.slider(key="temperature").value == 0.0,
                 id="temperature-minus-5-clamped"),
    pytest.param({"temperature": "nan"}, lambda at: "temperature" in _messages(at)
                 or 0.0 <= at.slider(key="temperature").value <= 2.0, id="temperature-nan"),
    pytest.param({"top_p": "7"}, lambda at: at.slider(key="top_p").value == 1.0, id="top-p-7-clamped"),
    pytest.param({"top_k": "100000"}, lambda at: at.slider(key="top_k").value == 200, id="top-k-huge-clamped"),
    pytest.param({"max_new_tokens": str(10**9), "samples": "0", "seed": "-1"},
                 lambda at: (at.slider(key="max_new_tokens").value, at.number_input(key="samples").value,
                             at.number_input(key="seed").value) == (1000, 1, 0), id="budget-samples-seed-clamped"),
    pytest.param({"model": "../../etc"}, lambda at: at.selectbox(key="model").value != "../../etc",
                 id="model-dot-dot-path"),
    pytest.param({"prompt": "a" * (MAX_PROMPT_CHARS + 1)}, lambda at: any("limit" in e.value for e in at.error),
                 id="prompt-100001-chars"),
    pytest.param({"prompt": "emma 你好 😀"}, lambda at: any("'你'" in w.value for w in at.warning),
                 id="prompt-emoji-cjk"),
]


@pytest.mark.parametrize("query, check", PLAYGROUND_CASES)
def test_playground_page_bad_input(query, check, app_home):
    query = {"model": "tiny-char-ngram", **query}
    with disk_unchanged():
        at = app_page("playground", query)
        assert not at.exception
        assert check(at), _messages(at)
        if at.button(key="generate") is not None and not at.error:
            at.button(key="generate").click().run()  # generating with the (clamped) settings works
            assert not at.exception and not at.error, _messages(at)


TRAIN_PAGE_CASES = [
    # (query parameters, model name typed in, error fragment)
    pytest.param({}, "../evil", "invalid model name", id="name-dot-dot"),
    pytest.param({}, "Bad Name", "invalid model name", id="name-uppercase-space"),
    pytest.param({}, "tiny-char-ngram", "already exists", id="name-taken"),
    pytest.param({"tr_family": "cnn", "tr_steps": "0", "tr_minutes": "-3", "tr_max_chars": "-1"}, "../evil",
                 "invalid model name", id="bad-query-then-bad-name"),
    pytest.param({"tr_tokenizer": "bpe", "tr_vocab": "10"}, "../evil", "invalid model name",
                 id="bpe-vocab-10-in-query"),
]


@pytest.mark.parametrize("query, name, fragment", TRAIN_PAGE_CASES)
def test_train_page_bad_input(query, name, fragment, app_home):
    from lm.app.jobs import get_manager

    get_manager()  # the job manager (and its directory) exist before the snapshot
    with disk_unchanged():
        at = app_page("train", query)
        at.text_input(key="tr_name").input(name)
        at.button(key="tr_start").click().run()
        assert not at.exception, at.exception
        assert any(fragment in e.value for e in at.error), _messages(at)
        assert not at.session_state["job"] if "job" in at.session_state else True
