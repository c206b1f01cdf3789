"""Training: every family learns and saves a loadable checkpoint; seeded runs repeat; a stopped or killed run
resumes to exactly the weights of an uninterrupted one; progress events; cancelling; bad settings.

Models are tiny (one layer, width 32, context 16) so the whole file runs in well under a minute on 2 cores.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from lm.store.checkpoint import load_tensors
from lm.errors import LMError
from lm.train.settings import TrainEvent, TrainSettings
from lm.train.schedule import lr_at, sample_starts
from lm.train.state import resume_dir_for
from lm.train.loop import train

ROOT = Path(__file__).resolve().parent.parent
WORDS = ["cat", "dog", "moon", "sea", "king", "queen", "rose", "wind"]


@pytest.fixture(scope="module")
def text_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "lines.txt"
    lines = [f"The {WORDS[i % 8]} of line {i} is {WORDS[(i * 3) % 8]}, and the night goes on.\n" for i in range(900)]
    path.write_text("".join(lines), encoding="utf-8")
    return path


def tiny(corpus, tmp_path: Path, **overrides) -> TrainSettings:
    base = dict(family="transformer", corpus=corpus, preset="tiny", layers=1, width=32, embed=16, heads=2,
                context=16, batch_size=8, steps=30, eval_every=1000, log_every=5, threads=1, name="m",
                out=str(tmp_path / "m"), seed=1, score_chars=4000)
    base.update(overrides)
    return TrainSettings(**base)


def falls(result) -> bool:
    losses = [loss for _, loss in result.history["train"]]
    return losses[-1] < losses[0] - 0.2


@pytest.mark.parametrize("family", ["rnn", "gru", "lstm", "transformer"])
def test_neural_family_learns_saves_and_generates(family, text_file, tmp_path):
    from lm.data.corpus import load_corpus
    from lm.run.generate import generate
    from lm.run.metrics import score
    from lm.run.sampling import SamplingSettings
    from lm.store.registry import load_model

    result = train(tiny(text_file, tmp_path, family=family, steps=40, lr=1e-2))
    assert falls(result), result.history["train"]
    loaded = load_model(str(result.path))
    assert loaded.family == ("transformer" if family == "transformer" else "rnn")
    if family != "transformer":
        assert loaded.meta["model"]["cell"] == family
    meta = loaded.meta
    assert meta["metrics"]["valid_bits_per_char"] > 0 and meta["metrics"]["valid_nats_per_char"] > 0
    assert meta["training"]["tokens_seen"] == 40 * 8 * 16 and meta["training"]["steps"] == 40
    assert meta["corpus"]["split"]["valid_chars"] > 0 and meta["description"]
    assert meta["parameters"] == loaded.model.num_parameters()
    assert not resume_dir_for(result.path).exists()  # a finished run leaves no resume state behind
    # the recorded score is the saved weights' score: re-evaluate the loaded checkpoint
    valid = load_corpus(text_file).split().valid.text
    check = score(loaded.model, loaded.tokenizer, valid[:meta["metrics"]["check_chars"]])
    assert check.bits_per_char == pytest.approx(meta["metrics"]["check_bits_per_char"], abs=1e-4)
    # the loaded checkpoint generates what the trained model predicts: greedy, token by token
    ids = loaded.tokenizer.encode("The ")
    tokens = list(generate(loaded.model, loaded.tokenizer, "The ", SamplingSettings(temperature=0, max_new_tokens=8)))
    with torch.no_grad():
        for token in tokens:
            assert token.token_id == int(result.model.logits(torch.tensor([ids]))[0, -1].argmax())
            ids.append(token.token_id)
    assert "".join(t.text for t in tokens) == loaded.tokenizer.decode(ids[-8:]) and len(tokens) == 8


def test_transformer_on_names_with_bpe_registers_in_user_dir(tmp_path):
    from lm.store.registry import list_models, load_model

    result = train(tiny("names", tmp_path, out=None, name="names-bpe", tokenizer="bpe", vocab_size=300,
                        steps=25, lr=1e-2, max_chars=30_000))
    assert falls(result)
    assert "names-bpe" in [m.name for m in list_models()]
    loaded = load_model("names-bpe")
    assert loaded.tokenizer.kind == "bpe" and loaded.meta["corpus"]["name"] == "names"


def test_ngram_family_counts(tmp_path):
    events = []
    result = train(tiny("names", tmp_path, family="ngram", order=3), callback=events.append)
    from lm.store.registry import load_model

    loaded = load_model(str(result.path))
    assert loaded.family == "ngram" and loaded.meta["model"]["order"] == 3
    assert loaded.meta["training"]["method"] == "counting"
    assert 0 < loaded.meta["metrics"]["valid_bits_per_char"] < 5
    assert events[-1].phase == "done"


def test_seeded_runs_repeat_and_seeds_differ(text_file, tmp_path):
    settings = dict(dropout=0.1, steps=15)
    a = train(tiny(text_file, tmp_path / "a", seed=5, **settings))
    b = train(tiny(text_file, tmp_path / "b", seed=5, **settings))
    c = train(tiny(text_file, tmp_path / "c", seed=6, **settings))
    assert a.history["train"] == b.history["train"]
    assert a.meta["metrics"] == b.meta["metrics"]
    wa, wb, wc = (load_tensors(r.path / "model.safetensors") for r in (a, b, c))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


def test_concurrent_runs_in_threads_stay_reproducible(text_file, tmp_path):
    """The app trains in background threads: two seeded runs at once must not disturb each other's dropout."""
    results = {}
    # One intra-op thread for every run (the app's jobs use one too): with several, MKL may split a matrix
    # product differently when the machine is busy, and Adam amplifies those last bits over the steps. Set
    # before the threads start, so that no run's restore of "the previous thread count" changes another's.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        def run(key):
            results[key] = train(tiny(text_file, tmp_path / key, dropout=0.2, steps=15, threads=1))

        threads = [threading.Thread(target=run, args=(k,)) for k in ("x", "y")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        solo = train(tiny(text_file, tmp_path / "solo", dropout=0.2, steps=15, threads=1))
    finally:
        torch.set_num_threads(previous)
    # Crossed dropout streams change every step's masks, so they show in the first logged window already: it
    # must match to the bit. Later windows only to float noise: two runs allocating at once can land tensors
    # on differently aligned memory, the matrix kernels then round their last bits differently, and Adam
    # grows that over the steps (seen: 1e-4 by step 15 on a busy machine).
    for other in (results["x"], results["y"]):
        history = (results["x"].history["train"], results["y"].history["train"], solo.history["train"])
        assert other.history["train"][0] == solo.history["train"][0], history
        assert [s for s, _ in other.history["train"]] == [s for s, _ in solo.history["train"]], history
        assert all(abs(a[1] - b[1]) < 2e-3 for a, b in zip(other.history["train"], solo.history["train"])), history


def test_batches_are_a_pure_function_of_seed_rank_step():
    a, _ = sample_starts(1, 0, 7, 1000, 4)
    b, _ = sample_starts(1, 0, 7, 1000, 4)
    c, _ = sample_starts(1, 1, 7, 1000, 4)
    assert a.tolist() == b.tolist() and a.tolist() != c.tolist()
    assert lr_at(0, 1.0, 10, 100) == pytest.approx(0.1)
    assert lr_at(10, 1.0, 10, 100) == pytest.approx(1.0)
    assert lr_at(100, 1.0, 10, 100) == pytest.approx(0.1)


@pytest.mark.parametrize("family,optimizer", [("transformer", "adamw"), ("lstm", "sgd")])
def test_stop_and_resume_equals_uninterrupted_run(family, optimizer, text_file, tmp_path):
    common = dict(family=family, optimizer=optimizer, dropout=0.1, steps=20, log_every=1, keep_resume_state=True)
    straight = train(tiny(text_file, tmp_path / "a", **common))
    first = train(tiny(text_file, tmp_path / "b", **common), callback=lambda e: e.phase == "train" and e.step == 10)
    assert first.stopped and first.steps == 10
    assert (resume_dir_for(first.path) / "state.json").is_file()
    events: list[TrainEvent] = []
    second = train(tiny(text_file, tmp_path / "b", resume=True, **common), callback=events.append)
    assert not second.stopped and second.steps == 20
    assert any("resumed at step 10" in e.message for e in events)
    final_a = load_tensors(resume_dir_for(straight.path) / "model.safetensors")
    final_b = load_tensors(resume_dir_for(second.path) / "model.safetensors")
    assert max(float((final_a[k] - final_b[k]).abs().max()) for k in final_a) <= 1e-6
    assert straight.history["train"][-1] == second.history["train"][-1]
    state = json.loads((resume_dir_for(second.path) / "state.json").read_text())
    assert state["step"] == 20 and state["optimizer"]["param_groups"]  # scalars as JSON, tensors beside
    assert not list(resume_dir_for(second.path).glob("*.pt")) and not list(resume_dir_for(second.path).glob("*.pkl"))


def test_events_describe_progress(text_file, tmp_path):
    events: list[TrainEvent] = []
    result = train(tiny(text_file, tmp_path, steps=20, eval_every=10, lr=5e-3, warmup=4), callback=events.append)
    phases = [e.phase for e in events]
    assert phases[0] == "setup" and phases[-1] == "done" and "eval" in phases
    trains = [e for e in events if e.phase == "train"]
    assert [e.step for e in trains] == [5, 10, 15, 20]
    assert all(e.total == 20 and e.tokens_per_second > 0 and e.train_loss > 0 for e in trains)
    # each report carries the rate its last step used: warm-up over 4 steps, then the cosine decay
    assert [e.lr for e in trains] == pytest.approx([lr_at(e.step - 1, 5e-3, 4, 20) for e in trains])
    assert trains[0].lr > trains[1].lr > trains[2].lr > trains[3].lr >= 5e-4
    assert [e.elapsed for e in trains] == sorted(e.elapsed for e in trains)
    evals = [e for e in events if e.phase == "eval" and e.valid_loss is not None]
    assert [e.step for e in evals][:2] == [10, 20] and evals[0].valid_bits_per_char > 0
    assert [s for s, *_ in result.history["valid"]] == [10, 20]


def test_should_stop_event_cancels_and_keeps_what_was_trained(text_file, tmp_path):
    stop = threading.Event()

    def callback(event: TrainEvent):
        if event.phase == "train" and event.step >= 10:
            stop.set()

    result = train(tiny(text_file, tmp_path, steps=500, should_stop=stop), callback=callback)
    assert result.stopped and result.steps == 10
    assert (result.path / "model.safetensors").is_file()
    assert json.loads((result.path / "config.json").read_text())["training"]["finished"] is False
    assert (resume_dir_for(result.path) / "state.json").is_file()

    already = threading.Event()
    already.set()
    result = train(tiny(text_file, tmp_path / "early", should_stop=already))
    assert result.stopped and result.steps == 0 and result.path is None
    assert not (tmp_path / "early").exists()


def test_minutes_budget_ends_the_run(text_file, tmp_path):
    result = train(tiny(text_file, tmp_path, steps=None, minutes=0.02, log_every=2))
    assert not result.stopped and result.steps >= 2 and result.meta["training"]["planned_steps"] is None


@pytest.mark.parametrize("overrides,message", [
    ({"family": "mamba"}, "unknown model family"),
    ({"steps": 0}, "steps must be"),
    ({"name": "../x", "out": None}, "invalid model name"),
    ({"lr": -1.0}, "lr must be"),
    ({"width": 30, "heads": 4}, "divisible"),
    ({"context": 200_000}, "fewer than the context"),
    ({"corpus": "no-such-corpus"}, "unknown corpus"),
])
def test_bad_settings_raise_one_line_and_write_nothing(overrides, message, text_file, tmp_path):
    from lm.store.registry import home_dir

    before = sorted(p.name for p in home_dir().rglob("*")) if home_dir().exists() else []
    with pytest.raises(LMError) as info:
        train(tiny(overrides.pop("corpus", text_file), tmp_path / "out", **overrides))
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()
    after = sorted(p.name for p in home_dir().rglob("*")) if home_dir().exists() else []
    assert before == after


def test_short_corpus_file_is_refused(tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("a tiny text.\nanother line here.\n", encoding="utf-8")
    with pytest.raises(LMError, match="context"):
        train(tiny(short, tmp_path / "o", context=64))
    assert not (tmp_path / "o").exists()


# -- the command line, killed and resumed ------------------------------------------------------------------
def _cli(home: Path, *args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "LM_PLAYGROUND_HOME": str(home), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "lm", "train", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _wait_for(path: Path, proc: subprocess.Popen, after: float = 0.0, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file() and path.stat().st_mtime > after:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    raise AssertionError(f"{path} never appeared")


def test_cli_killed_then_terminated_then_resumed_finishes(text_file, tmp_path, monkeypatch, capsys):
    """SIGKILL a `python -m lm train` process after its first save; resume in-process and stop that run with
    SIGTERM (a clean stop that saves); resume again to the end. (One subprocess: importing torch is slow.)"""
    from lm.cli import main
    from lm.store.registry import load_model

    home = tmp_path / "home"
    monkeypatch.setenv("LM_PLAYGROUND_HOME", str(home))
    args = ["--family", "lstm", "--preset", "tiny", "--corpus", str(text_file), "--name", "killed",
            "--layers", "1", "--width", "32", "--embed", "16", "--context", "16", "--batch-size", "8",
            "--steps", "400", "--save-every", "10", "--eval-every", "100", "--threads", "1",
            "--score-chars", "4000"]
    state = home / "models" / "killed.resume" / "state.json"

    proc = _cli(home, *args)
    _wait_for(state, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    first_step = json.loads(state.read_text())["step"]
    assert 0 < first_step < 400

    mark = state.stat().st_mtime

    def terminate_after_a_save():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (state.is_file() and state.stat().st_mtime > mark):
            time.sleep(0.005)
        os.kill(os.getpid(), signal.SIGTERM)  # handled by the CLI's handler in the main thread

    killer = threading.Thread(target=terminate_after_a_save)
    killer.start()
    code = main(["train", *args, "--resume"])
    killer.join()
    err = capsys.readouterr().err
    assert code == 130, err
    assert f"resumed at step {first_step}" in err and "stopping" in err
    stopped_at = json.loads(state.read_text())["step"]
    assert first_step < stopped_at < 400
    assert signal.getsignal(signal.SIGTERM) is not None  # the CLI put the previous handler back

    assert main(["train", *args, "--resume", "--json", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 400 and not summary["stopped"]
    loaded = load_model(summary["path"])
    assert loaded.meta["training"]["steps"] == 400 and loaded.meta["training"]["finished"]
    assert not state.exists()


def test_cli_bad_input_is_one_line(tmp_path, monkeypatch, capsys):
    from lm.cli import main

    monkeypatch.setenv("LM_PLAYGROUND_HOME", str(tmp_path))
    assert main(["train", "--family", "lstm", "--name", "../x", "--steps", "5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.strip().count("\n") == 0
    assert not (tmp_path / "models").exists()
    assert main(["train", "--family", "lstm", "--name", "ok", "--steps", "0"]) == 2
    assert "steps must be" in capsys.readouterr().err
