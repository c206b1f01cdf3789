"""Property-based fuzzing (hypothesis) of the places user input enters `lm`.

- the command line: random argv for `generate` / `score` ends in an exit status (an int, or argparse's
  SystemExit) with a one-line `error: ...`, never a traceback;
- the sampling knobs: arbitrary values only ever raise LMError, and a sampled token is always one the knobs
  kept (the distribution invariants themselves are in test_sampling.py);
- the checkpoint loader: random or mutated bytes as model.safetensors / config.json / tokenizer.json, and
  random-but-valid JSON in config.json, give LMError or a working model, nothing else;
- the n-gram `from_state` loader: random tensors, or a valid state with one tensor mutated, give LMError or a
  model whose log-probabilities are finite.

Tokenizer round trips are already property-tested in test_tokenizer.py (char over its alphabet, BPE over any
text) and are not repeated here.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lm.store.checkpoint import load_checkpoint
from lm.cli import main
from lm.errors import LMError
from lm.models.ngram.model import NgramConfig, NgramModel
from lm.run.generate import generate
from lm.run.sampling import SamplingSettings, process

FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny names-corpus character 3-gram checkpoint, built once per module."""
    out = tmp_path_factory.mktemp("fuzz") / "names-3gram"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["ngram", "--corpus", "names", "--order", "3", "--name", "names-3gram", "--out", str(out)]) == 0
    return out


def run_main(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


# -- the command line -------------------------------------------------------------------------------------
VALUES = st.one_of(
    st.sampled_from(["0", "1", "-1", "3", "17", "0.5", "1.0", "2", "10", "nan", "inf", "-inf", "1e9", "5001",
                     "0.0", "-0.5", "1e-300", "abc", "", "-", "--", "x" * 50, "ROMEO:", "README.md", "/", "."]),
    st.text(max_size=12),
)
GENERATE_FLAGS = ["-p", "--prompt", "-n", "--max-new-tokens", "--temperature", "--top-k", "--top-p", "--min-p",
                  "--repetition-penalty", "--seed", "--samples", "--stop", "--json", "-m", "--bogus", "--temp"]
SCORE_FLAGS = ["--text", "--file", "--json", "-m", "--bogus"]


def argv_for(command: str, flags: list[str]):
    pair = st.tuples(st.sampled_from(flags), st.lists(VALUES, max_size=2))
    return st.tuples(st.booleans(), st.lists(pair, max_size=6)).map(
        lambda t: (t[0], [command] + [item for flag, values in t[1] for item in (flag, *values)]))


def check_cli(argv: list[str]) -> None:
    code, out, err = run_main(argv)
    assert isinstance(code, int), (argv, code)
    assert "Traceback" not in err
    lines = err.strip().split("\n")
    if code != 0:
        assert len(lines) == 1 and lines[0].startswith("error:"), (argv, err)
    else:
        assert err == "" or (len(lines) == 1 and lines[0].startswith("note:")), (argv, err)


@FUZZ
@given(argv_for("generate", GENERATE_FLAGS))
def test_generate_argv_never_crashes(model_dir, drawn):
    with_model, argv = drawn
    check_cli(argv[:1] + (["-m", str(model_dir)] if with_model else []) + argv[1:] + ["-n", "3"] * with_model)


@FUZZ
@given(argv_for("score", SCORE_FLAGS))
def test_score_argv_never_crashes(model_dir, drawn):
    with_model, argv = drawn
    check_cli(argv[:1] + (["-m", str(model_dir)] if with_model else []) + argv[1:])


# -- sampling knobs ---------------------------------------------------------------------------------------
ANY_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True),
                      st.text(max_size=5), st.lists(st.integers(), max_size=2), st.just(b"1"))
KNOBS = ["temperature", "top_k", "top_p", "min_p", "repetition_penalty", "max_new_tokens", "seed", "samples", "stop"]


@FUZZ
@given(st.dictionaries(st.sampled_from(KNOBS), ANY_VALUE, max_size=4))
def test_settings_from_arbitrary_values_raise_only_lm_error(values):
    try:
        s = SamplingSettings(**values)
    except LMError as exc:
        assert "\n" not in str(exc)
        return
    assert 0 <= s.temperature <= 10 and s.top_k >= 0 and 0 < s.top_p <= 1 and 1 <= s.samples


logit_batches = st.integers(1, 3).flatmap(lambda b: st.integers(2, 40).flatmap(lambda v: st.lists(
    st.lists(st.one_of(st.floats(-1e4, 1e4), st.just(-math.inf)), min_size=v, max_size=v), min_size=b, max_size=b)))


@settings(FUZZ, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # `bigram`
@given(logit_batches, st.floats(0.0, 10.0), st.integers(0, 60), st.floats(0.01, 1.0), st.floats(0.0, 0.99),
       st.floats(1.0, 10.0), st.integers(0, 2**32))
def test_generated_token_is_one_the_knobs_kept(bigram, rows, t, k, p, min_p, penalty, seed):
    """`generate` (as the app and the CLI call it) on a stub model that predicts each fuzzed row after any
    token, with a random 5-token prompt (what the repetition penalty sees)."""
    from lm.data.tokenizer import Tokenizer

    logits = torch.tensor(rows, dtype=torch.float32)
    logits[:, 0] = torch.where(torch.isinf(logits[:, 0]), torch.zeros(()), logits[:, 0])  # >= 1 finite per row
    s = SamplingSettings(temperature=t, top_k=k, top_p=p, min_p=min_p, repetition_penalty=penalty, seed=seed,
                         max_new_tokens=1)
    vocab = logits.shape[1]
    tokenizer = Tokenizer.char("".join(chr(0x100 + i) for i in range(vocab - 1)))  # and <unk>: `vocab` ids
    history = torch.randint(1, vocab, (logits.shape[0], 5), generator=torch.Generator().manual_seed(seed))
    kept = torch.isfinite(process(logits, s, history))
    for row in range(logits.shape[0]):
        model = bigram(vocab)
        model.table = logits[row].expand(vocab, vocab).clone()
        prompt = tokenizer.decode(history[row].tolist())
        (token,) = generate(model, tokenizer, prompt, s)
        assert kept[row, token.token_id]


# -- the checkpoint loader --------------------------------------------------------------------------------
FILES = ["model.safetensors", "config.json", "tokenizer.json"]


@contextlib.contextmanager
def damaged_copy(model_dir: Path):
    with tempfile.TemporaryDirectory(prefix="lm-fuzz-") as tmp:
        path = Path(tmp) / "damaged"
        shutil.copytree(model_dir, path)
        yield path


def load_or_lm_error(path: Path) -> None:
    """Loading gives LMError, or a model that scores a short text to a finite number (or LMError there)."""
    try:
        loaded = load_checkpoint(path)
    except LMError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    from lm.run.metrics import score

    try:
        result = score(loaded.model, loaded.tokenizer, "anna\nemma\n")
    except LMError:
        return
    assert math.isfinite(result.total_nats)


@FUZZ
@given(st.sampled_from(FILES), st.binary(max_size=2048))
def test_random_bytes_as_a_checkpoint_file(model_dir, which, data):
    with damaged_copy(model_dir) as path:
        (path / which).write_bytes(data)
        load_or_lm_error(path)


@FUZZ
@given(st.sampled_from(FILES), st.data())
def test_mutated_checkpoint_file(model_dir, which, data):
    with damaged_copy(model_dir) as path:
        original = bytearray((path / which).read_bytes())
        how = data.draw(st.sampled_from(["truncate", "flip", "insert"]))
        if how == "truncate":
            original = original[:data.draw(st.integers(0, len(original) - 1))]
        elif how == "flip":
            for _ in range(data.draw(st.integers(1, 8))):
                original[data.draw(st.integers(0, len(original) - 1))] = data.draw(st.integers(0, 255))
        else:
            at = data.draw(st.integers(0, len(original)))
            original[at:at] = data.draw(st.binary(min_size=1, max_size=16))
        (path / which).write_bytes(bytes(original))
        load_or_lm_error(path)


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
              st.text(max_size=8)),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(st.text(max_size=6), children, max_size=3)),
    max_leaves=6)


@FUZZ
@given(st.dictionaries(st.sampled_from(["family", "vocab_size", "order", "smoothing", "k", "backoff_alpha", "extra"]),
                       JSON_VALUES, min_size=1, max_size=3), st.booleans())
def test_config_json_with_odd_values(model_dir, changes, replace_section):
    with damaged_copy(model_dir) as path:
        config = json.loads((path / "config.json").read_text())
        if replace_section:  # the whole "model" section becomes something else
            config["model"] = changes.get("family", changes)
        else:
            config["model"].update(changes)
        (path / "config.json").write_text(json.dumps(config))
        load_or_lm_error(path)


@FUZZ
@given(st.lists(st.sampled_from(["model", "normalizer", "pre_tokenizer", "decoder", "added_tokens", "version",
                                 "lm_playground", "kind"]), min_size=1, max_size=3, unique=True),
       st.lists(JSON_VALUES, min_size=3, max_size=3))
def test_tokenizer_json_with_odd_values(model_dir, keys, values):
    with damaged_copy(model_dir) as path:
        tokenizer = json.loads((path / "tokenizer.json").read_text())
        for key, value in zip(keys, values):
            tokenizer[key] = value
        (path / "tokenizer.json").write_text(json.dumps(tokenizer))
        load_or_lm_error(path)


# -- the n-gram loader ------------------------------------------------------------------------------------
V, ORDER = 5, 3
IDS = [0, 1, 2, 3, 4, 0, 1, 1, 2, 0, 4, 4, 3, 2, 1, 0, 2, 2, 3]


def valid_state() -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in NgramModel.build(IDS, V, order=ORDER).state_tensors().items()}


def names_for(order: int) -> list[str]:
    """The tensors of a checkpoint (format 2, lm.models.ngram.storage)."""
    return ["format", "meta"] + [f"level{j}.{p}" for j in range(1, order + 1) for p in ("keys", "counts")]


def format1_names_for(order: int) -> list[str]:
    """What format 1 stored besides (checkpoints saved before the compact format still load)."""
    return [f"context{m}.keys" for m in range(1, order)] + [f"level{j}.cont" for j in range(1, order)]


def tensors():
    dtypes = st.sampled_from([torch.int64, torch.int32, torch.uint8, torch.float32, torch.bool])
    return st.tuples(st.lists(st.integers(-3, 200), max_size=12), dtypes, st.booleans()).map(
        lambda t: torch.tensor(t[0], dtype=torch.int64).to(t[1]).reshape((-1, 1) if t[2] and t[0] else (-1,)))


def usable_or_lm_error(config: NgramConfig, state: dict[str, torch.Tensor]) -> None:
    try:
        model = NgramModel.from_state(config, state)
    except LMError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    ids = torch.tensor([IDS])
    logprobs = torch.log_softmax(model.logits(ids).double(), -1)
    assert not torch.isnan(logprobs).any()
    assert torch.isclose(logprobs.exp().sum(-1), torch.ones((), dtype=torch.float64), atol=1e-6).all()


@FUZZ
@given(st.dictionaries(st.sampled_from(names_for(4) + format1_names_for(4) + ["junk"]), tensors(), max_size=12),
       st.integers(1, 4), st.lists(st.integers(-2, 400), min_size=3, max_size=3))
def test_ngram_from_random_tensors(state, order, meta):
    state["meta"] = torch.tensor(meta, dtype=torch.int64) if meta[0] != -2 else state.get("meta", torch.zeros(3))
    usable_or_lm_error(NgramConfig(vocab_size=V, order=order), state)


@FUZZ
@given(st.sampled_from(names_for(ORDER)), st.data())
def test_ngram_from_a_mutated_valid_state(name, data):
    state = valid_state()
    how = data.draw(st.sampled_from(["drop", "replace", "poke", "dtype"]))
    if how == "drop":
        del state[name]
    elif how == "replace":
        state[name] = torch.tensor(data.draw(st.lists(st.integers(-3, 60), max_size=15)), dtype=torch.int64)
    elif how == "poke" and state[name].numel():
        i = data.draw(st.integers(0, state[name].numel() - 1))
        state[name][i] = data.draw(st.integers(-5, 60))
    else:
        state[name] = state[name].to(data.draw(st.sampled_from([torch.float64, torch.bool, torch.int32])))
    usable_or_lm_error(NgramConfig(vocab_size=V, order=ORDER, smoothing=data.draw(
        st.sampled_from(["mle", "addk", "kneser_ney", "stupid_backoff"]))), state)
