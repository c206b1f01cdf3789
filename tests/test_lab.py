"""The training lab. In the loop: every torch.optim optimizer learns and resumes exactly, batch gradient descent,
samples and the clock in the history, the test split, pause / step / resume, fine-tuning (neural and n-gram),
the knobs shared by the CLI and the page. In the job layer: pause / step one evaluation / unpause of a real
run in its worker process, the queue within the concurrent-training cap, races of runs that differ in one
setting, the clock and samples in job records (also across a restart), and the lab's figures (escaped, on
each time axis). Loop-level runs use tests/test_train.py's tiny models."""

from __future__ import annotations

import json
import threading
import time

import pytest
import torch

from lm.app.jobs import JobManager
from lm.app.races import list_races, race_records, race_settings, run_name, start_race
from lm.errors import LMError
from lm.store.checkpoint import load_tensors
from lm.train.loop import train
from lm.train.settings import TrainEvent, TrainResult, TrainSettings
from lm.train.state import resume_dir_for
from lm.viz import adaptation_figure, race_figure, samples_html
from test_train import WORDS, text_file, tiny  # noqa: F401  (text_file: the module fixture of a small corpus)
from test_worker import _wait_for  # polling a job record until a condition holds


def run_settings(name: str, **kw) -> TrainSettings:
    return TrainSettings(**{"family": "lstm", "preset": "tiny", "corpus": "names", "name": name, "steps": 40,
                            "score_chars": 2000, "log_every": 5, "eval_every": 20, "sample_tokens": 10, **kw})


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("LM_PLAYGROUND_HOME", str(tmp_path))
    return tmp_path


def test_a_worker_run_pauses_steps_one_evaluation_and_goes_on(home):
    manager = JobManager(home, max_concurrent=1)
    job = manager.submit(run_settings("lab-pause", steps=100_000, minutes=1.0, eval_every=40), owner="alice")
    assert _wait_for(lambda: manager.get(job)["progress"]["step"] >= 10)
    with pytest.raises(LMError, match="another student"):
        manager.pause(job, by="bob")
    assert manager.pause(job, by="alice")
    assert _wait_for(lambda: manager.get(job)["paused"])
    held = manager.get(job)["progress"]["step"]
    time.sleep(1.0)
    assert manager.get(job)["progress"]["step"] == held  # nothing trains while paused
    assert manager.step_eval(job, by="alice")
    assert _wait_for(lambda: manager.get(job)["progress"]["step"] > held and manager.get(job)["paused"])
    record = manager.get(job)
    stepped_to = record["progress"]["step"]
    assert stepped_to % 40 == 0 and record["history"]["valid"][-1][0] == stepped_to  # paused right after an eval
    assert record["history"]["samples"][-1][0] == stepped_to
    assert manager.unpause(job, by="alice")
    assert _wait_for(lambda: manager.get(job)["progress"]["step"] > stepped_to)
    assert not manager.get(job)["paused"]
    manager.cancel(job)
    record = manager.wait(job, 60)
    assert record["status"] == "cancelled" and not record["paused"] and not manager.pause(job)


def fake_train(release: threading.Event):
    """A train() lookalike reporting a clock and a sample, waiting for `release` (or a stop)."""

    def run(settings: TrainSettings, callback):
        callback(TrainEvent(0, 4, None, None, 0.0, 0.0, 0.0, "eval", sample="<b>step0</b>", tokens_seen=0))
        for step in (1, 2):
            callback(TrainEvent(step, 4, 3.0 - step, None, 1e-3, 10.0, step * 0.5, "train", tokens_seen=step * 64))
        callback(TrainEvent(2, 4, None, 2.5, 1e-3, 0.0, 1.0, "eval", valid_bits_per_char=3.6, tokens_seen=128,
                            sample="two"))
        while not release.is_set() and not settings.should_stop.is_set():
            time.sleep(0.01)
        stopped = settings.should_stop.is_set()
        return TrainResult(settings.name, None, None, None, {"metrics": {"test_bits_per_char": 3.7}}, 2, 1.0,
                           stopped, {})

    return run


def test_queued_runs_start_when_a_slot_frees_and_can_be_cancelled_before(home):
    release = threading.Event()
    manager = JobManager(home, max_concurrent=1, train_fn=fake_train(release))
    first = manager.submit(run_settings("q-one"))
    with pytest.raises(LMError, match="limit is 1"):
        manager.submit(run_settings("q-refused"))  # without queue=True the cap still refuses
    second = manager.submit(run_settings("q-two"), queue=True)
    third = manager.submit(run_settings("q-three"), queue=True)
    assert [manager.get(j)["status"] for j in (second, third)] == ["queued", "queued"]
    assert "waiting" in manager.get(second)["message"]
    assert not manager.pause(second)  # nothing to pause before it starts
    assert manager.cancel(third) and manager.get(third)["status"] == "cancelled"
    time.sleep(0.2)
    assert manager.get(second)["status"] == "queued"  # the slot is still taken
    release.set()
    assert manager.wait(first, 10)["status"] == "finished"
    assert _wait_for(lambda: manager.get(second)["status"] == "finished", 10)
    assert manager.get(third)["status"] == "cancelled" and manager.get(third)["started"] is None
    record = manager.get(second)
    assert record["history"]["clock"] == [[0, 0, 0.0], [1, 64, 0.5], [2, 128, 1.0]]
    assert record["history"]["samples"] == [[0, "<b>step0</b>"], [2, "two"]]
    assert record["result"]["test_bits_per_char"] == 3.7
    # the clock and the samples survive a restart of the server (records are re-read and checked)
    again = JobManager(home, max_concurrent=1, train_fn=fake_train(release)).get(second)
    assert again["history"] == record["history"]


def test_a_hostile_record_cannot_smuggle_samples_or_a_race(home):
    (home / "jobs").mkdir()
    record = {"id": "abcdef-1", "name": "x", "status": "finished", "race": "not a dict",
              "history": {"train": [[1, 2.0]], "clock": [[1, "many", 2]], "samples": [[1, {"html": 1}], [2, "ok"]]}}
    (home / "jobs" / "abcdef-1.json").write_text(json.dumps(record))
    loaded = JobManager(home).get("abcdef-1")
    assert loaded["race"] is None and loaded["history"]["clock"] == []
    assert loaded["history"]["samples"] == [[2, "ok"]]


def test_race_settings_vary_one_setting_and_refuse_bad_races(home):
    base = run_settings("race")
    runs = race_settings(base, "lr", [0.01, 0.003])
    assert [r.lr for r in runs] == [0.01, 0.003] and [r.name for r in runs] == ["race-0.01", "race-0.003"]
    assert all((r.seed, r.corpus, r.steps) == (base.seed, base.corpus, base.steps) for r in runs)
    assert run_name("a" * 64, "adamw").endswith("-adamw") and len(run_name("a" * 64, "adamw")) <= 64
    manager = JobManager(home, max_concurrent=1, train_fn=fake_train(threading.Event()))
    for setting, values, message in [("seed", [1, 2], "a race varies one of"), ("lr", [0.1], "2 to 4 runs"),
                                     ("lr", [0.1] * 5, "2 to 4 runs"), ("lr", [0.1, 0.1], "must differ"),
                                     ("optimizer", ["adam", "lion"], "unknown optimizer")]:
        with pytest.raises(LMError, match=message):
            start_race(manager, base, setting, values)
    assert manager.list() == []  # nothing was submitted


def test_a_real_race_queues_within_the_cap_and_overlays_on_each_axis(home):
    manager = JobManager(home, max_concurrent=1)
    race = start_race(manager, run_settings("sgd-vs-adam"), "optimizer", ["sgd", "adam"], owner="alice")
    assert manager.get(race.job_ids[1])["status"] == "queued"
    for job in race.job_ids:
        assert manager.wait(job, 180)["status"] == "finished"
    records = race_records(manager, race.id)
    assert [r["race"]["value"] for r in records] == ["sgd", "adam"]
    assert list_races(manager)[0]["job_ids"] == list(race.job_ids)
    for record in records:
        assert [s for s, _ in record["history"]["samples"]] == [0, 20, 40]
        assert all(tokens == step * 16 * 32 for step, tokens, _ in record["history"]["clock"])
    valid = {a: race_figure(records, a) for a in ("steps", "tokens", "seconds")}
    assert [t.name for t in valid["steps"].data] == ["optimizer = sgd", "optimizer = adam"]
    assert list(valid["steps"].data[0].x) == [20.0, 40.0]
    assert list(valid["tokens"].data[0].x) == [20 * 16 * 32, 40 * 16 * 32]
    seconds = list(valid["seconds"].data[1].x)
    assert seconds == sorted(seconds) and 0 < seconds[-1] < 120
    train_curve = race_figure(records, "tokens", curve="train")
    assert list(train_curve.data[0].x)[0] == 5 * 16 * 32
    with pytest.raises(ValueError, match="axis"):
        race_figure(records, "epochs")


def test_lab_figures_escape_what_students_typed():
    html = samples_html([[0, "<script>alert(1)</script>\nnext"], [500, "ROMEO: I will"]])
    assert "<script>" not in html and "&lt;script&gt;" in html and "↵" in html and "step 500" in html
    record = {"name": "<b>x</b>", "race": {"setting": "lr", "value": "<i>1</i>"},
              "history": {"valid": [[10, 2.0, 2.9], [20, 1.5, 2.2]], "clock": [[10, 100, 1.0], [20, 200, 2.0]]}}
    fig = race_figure([record], "seconds")
    assert fig.data[0].name == "lr = &lt;i&gt;1&lt;/i&gt;" and list(fig.data[0].x) == [1.0, 2.0]
    bars = adaptation_figure({"base": "b", "base_corpus": "<u>plays</u>", "new_text": {"before": 6.2, "after": 3.1},
                              "original_text": {"before": 1.8, "after": 3.3}})
    assert [t.y for t in bars.data] == [(6.2, 1.8), (3.1, 3.3)] and "&lt;u&gt;" in bars.data[0].x[1]


# -- in the loop ----------------------------------------------------------------------------------------------
OPTIMIZERS_TO_RESUME = [("adam", None), ("nesterov", None), ("rmsprop", 0.5), ("adagrad", None), ("sgd", 0.0)]


@pytest.mark.parametrize("optimizer,momentum", OPTIMIZERS_TO_RESUME)
def test_every_optimizer_learns_and_resumes_exactly(optimizer, momentum, text_file, tmp_path):
    """Each optimizer's state (moments, momentum buffers, Adagrad's sums, step counts) survives the resume
    state: stopped at 6 and resumed to 12, the weights equal a straight 12-step run's."""
    common = dict(family="lstm", optimizer=optimizer, momentum=momentum, steps=12, log_every=1,
                  keep_resume_state=True, sample_tokens=0, lr=1e-2 if optimizer != "sgd" else 0.5)
    straight = train(tiny(text_file, tmp_path / "a", **common))
    assert straight.history["train"][-1][1] < straight.history["train"][0][1]
    first = train(tiny(text_file, tmp_path / "b", **common), callback=lambda e: e.phase == "train" and e.step == 6)
    assert first.stopped and first.steps == 6
    second = train(tiny(text_file, tmp_path / "b", resume=True, **common))
    final_a = load_tensors(resume_dir_for(straight.path) / "model.safetensors")
    final_b = load_tensors(resume_dir_for(second.path) / "model.safetensors")
    assert max(float((final_a[k] - final_b[k]).abs().max()) for k in final_a) <= 1e-6
    state = json.loads((resume_dir_for(second.path) / "state.json").read_text())
    assert state["optimizer_name"] == optimizer
    with pytest.raises(LMError, match="resume with the same optimizer"):
        other = "adamw" if optimizer != "adamw" else "adam"
        train(tiny(text_file, tmp_path / "b", resume=True, **{**common, "optimizer": other, "momentum": None}))


def test_optimizer_state_round_trips_through_safetensors_and_json():
    from lm.train.optim import build_optimizer
    from lm.train.settings import OPTIMIZERS
    from lm.train.state import _flatten_optimizer, _unflatten_optimizer

    for name, spec in OPTIMIZERS.items():
        weights = torch.randn(4, 3, generator=torch.Generator().manual_seed(1), requires_grad=True)
        optimizer = build_optimizer(name, [{"params": [weights]}], 0.1, spec.momentum, torch.device("cpu"))
        for _ in range(2):
            optimizer.zero_grad()
            (weights ** 2).sum().backward()
            optimizer.step()
        tensors, data = _flatten_optimizer(optimizer)
        json.dumps(data)  # every scalar is JSON
        again = build_optimizer(name, [{"params": [weights]}], 0.1, spec.momentum, torch.device("cpu"))
        again.load_state_dict(_unflatten_optimizer(tensors, json.loads(json.dumps(data))))
        before, after = optimizer.state_dict(), again.state_dict()
        assert before["param_groups"] == after["param_groups"], name
        for key, value in before["state"][0].items():
            assert torch.equal(value, after["state"][0][key]) if isinstance(value, torch.Tensor) \
                else value == after["state"][0][key], (name, key)
        assert type(optimizer).__name__ == spec.torch_class


@pytest.mark.parametrize("overrides,message", [
    ({"optimizer": "lion"}, "unknown optimizer"),
    ({"optimizer": "adagrad", "momentum": 0.9}, "has no momentum"),
    ({"optimizer": "nesterov", "momentum": 0.0}, "Nesterov momentum"),
    ({"momentum": 1.5}, "momentum must be"),
    ({"batch_size": "most"}, "batch_size must be"),
    ({"test_every": 1}, "test_every must be"),
    ({"precision": "fp8"}, "unknown precision"),
])
def test_bad_lab_settings_are_one_line(overrides, message, text_file, tmp_path):
    with pytest.raises(LMError, match=message) as info:
        train(tiny(text_file, tmp_path / "out", **overrides))
    assert "\n" not in str(info.value) and not (tmp_path / "out").exists()


def test_batch_gradient_descent_uses_every_window_once_per_step(text_file, tmp_path):
    from lm.data.corpus import load_corpus
    from lm.train.data import full_batch_starts

    starts = full_batch_starts(101, 10)
    targets = sorted(t for a in starts for t in range(a + 1, a + 11))
    assert targets == list(range(1, 101))  # every token after the first is a target exactly once
    result = train(tiny(text_file, tmp_path, family="lstm", batch_size="full", steps=6, log_every=1, max_chars=6000,
                        optimizer="sgd", lr=1.0, sample_tokens=0))
    n_train = len(load_corpus(text_file, max_chars=6000).split(test_every=10).train.text)  # char tokens
    assert result.meta["training"]["tokens_seen"] == 6 * ((n_train - 1) // 16) * 16
    losses = [loss for _, loss in result.history["train"]]
    assert losses[-1] < losses[0]


def test_samples_clock_and_test_split_are_recorded(text_file, tmp_path):
    from lm.data.corpus import load_corpus

    events: list[TrainEvent] = []
    result = train(tiny(text_file, tmp_path / "a", steps=20, eval_every=10, sample_tokens=12, sample_prompt="The "),
                   callback=events.append)
    samples = result.history["samples"]
    assert [step for step, _ in samples] == [0, 10, 20] and all(len(text) >= 12 for _, text in samples)
    assert [e.sample for e in events if e.sample is not None] == [text for _, text in samples]
    again = train(tiny(text_file, tmp_path / "b", steps=20, eval_every=10, sample_tokens=12, sample_prompt="The "))
    assert again.history["samples"] == samples  # fixed prompt and seed: the same run writes the same
    assert all(tokens == step * 8 * 16 for step, tokens, _ in result.history["clock"])
    assert [s for s, *_ in result.history["clock"]] == sorted({s for s, *_ in result.history["clock"]})
    meta = json.loads((result.path / "config.json").read_text())
    assert meta["training"]["history"]["samples"] == samples
    split = load_corpus(text_file).split(test_every=10)
    assert meta["corpus"]["split"]["test_chars"] == len(split.test.text) > 0
    assert meta["corpus"]["split"]["valid_documents"] == load_corpus(text_file).split().info["valid_documents"]
    assert 0 < meta["metrics"]["test_bits_per_char"] != meta["metrics"]["valid_bits_per_char"]


def test_a_paused_run_holds_steps_then_one_evaluation_then_goes_on(text_file, tmp_path):
    from lm.train.control import PauseGate

    gate, seen = PauseGate(), []

    def callback(event: TrainEvent):
        seen.append((event.phase, event.step))
        if event.phase == "train" and event.step == 10 and not gate.paused and ("pause", 10) not in seen:
            gate.pause()
            threading.Timer(0.6, gate.step).start()  # run one evaluation interval, then pause again
        if event.phase == "pause" and event.step == 20:
            threading.Timer(0.6, gate.resume).start()

    result = train(tiny(text_file, tmp_path, steps=40, eval_every=20, sample_tokens=0, control=gate),
                   callback=callback)
    assert ("pause", 10) in seen and ("pause", 20) in seen and not result.stopped and result.steps == 40
    after_first = seen[seen.index(("pause", 10)) + 1:]
    assert after_first[0] == ("resume", 10)  # nothing trained while paused
    assert after_first.index(("eval", 20)) < after_first.index(("pause", 20))
    assert result.seconds < 1.0  # 1.2 s paused, not counted as training time


def test_fine_tuning_starts_from_the_base_and_reports_gain_and_forgetting(text_file, tmp_path, monkeypatch):
    from lm.cli import main
    from lm.store.registry import load_model
    from lm.train.settings import fine_tune_settings

    monkeypatch.setenv("LM_PLAYGROUND_HOME", str(tmp_path / "home"))
    base = train(tiny(text_file, tmp_path / "base", family="lstm", steps=30, lr=1e-2, sample_tokens=0))
    poems = tmp_path / "poems.txt"
    poems.write_text("".join(f"the {w} is near the sea, {w} and the night.\n" for w in WORDS * 60), encoding="utf-8")
    settings = fine_tune_settings(str(base.path), corpus=str(poems), name="tuned", out=str(tmp_path / "tuned"),
                                  steps=20, lr=1e-2, threads=1, score_chars=3000, eval_every=10, sample_tokens=8)
    assert (settings.family, settings.width, settings.context) == ("lstm", 32, 16)
    tuned = train(settings)
    report = tuned.metrics["adaptation"]
    assert report["base"] == base.path.name and report["new_text"]["after"] < report["new_text"]["before"]
    assert report["original_text"]["before"] == pytest.approx(
        load_model(str(base.path)).meta["metrics"]["valid_bits_per_char"], abs=0.05)
    # the step-0 sample is the base model's own writing: the same weights, prompt and seed
    from lm.train.scoring import sample_text

    loaded = load_model(str(base.path))
    assert tuned.history["samples"][0] == [0, sample_text(loaded.model, loaded.tokenizer, "", 8, settings.seed)]
    with pytest.raises(LMError, match="keeps .*shape.*width"):
        train(fine_tune_settings(str(base.path), corpus=str(poems), name="x", out=str(tmp_path / "x"), width=64))
    odd = tmp_path / "odd.txt"
    odd.write_text("Ça, naïve façade — ünïcode\n" * 300, encoding="utf-8")
    with pytest.raises(LMError, match=r"^m has never seen 6 of this text's characters \('v', 'Ç', 'ç', ") as info:
        train(fine_tune_settings(str(base.path), corpus=str(odd), name="y", out=str(tmp_path / "y")))
    assert "\n" not in str(info.value)
    code = main(["train", "--init-from", str(base.path), "--corpus", str(poems), "--name", "tuned-cli", "--steps", "4",
                 "--threads", "1", "--score-chars", "2000", "--quiet"])
    assert code == 0
    assert load_model("tuned-cli").meta["training"]["adapted_from"] == base.path.name


def test_an_ngram_adapts_by_adding_weighted_counts(tmp_path, monkeypatch):
    import numpy as np

    from lm.data.corpus import load_corpus
    from lm.models.ngram.model import NgramModel
    from lm.store.registry import load_model
    from lm.train.settings import fine_tune_settings

    monkeypatch.setenv("LM_PLAYGROUND_HOME", str(tmp_path / "home"))
    base = train(TrainSettings(family="ngram", corpus="names", order=3, name="base3", max_chars=20_000,
                               score_chars=2000))
    poems = tmp_path / "more-names.txt"
    poems.write_text("\n".join(["anna", "bob", "zed", "zelda", "zora"] * 200), encoding="utf-8")
    adapted = train(fine_tune_settings("base3", corpus=str(poems), name="adapted", adapt_weight=3, score_chars=2000))
    tokenizer = load_model("base3").tokenizer
    new_train = load_corpus(poems).split(test_every=10).train.text
    only_new = NgramModel.build(tokenizer.encode_array(new_train), tokenizer.vocab_size, order=3)
    context = tokenizer.encode("ze")
    base_counts = dict(zip(*map(np.ndarray.tolist, base.model.counts_after(context))))
    new_counts = dict(zip(*map(np.ndarray.tolist, only_new.counts_after(context))))
    got = dict(zip(*map(np.ndarray.tolist, adapted.model.counts_after(context))))
    assert got == {t: base_counts.get(t, 0) + 3 * new_counts.get(t, 0) for t in set(base_counts) | set(new_counts)}
    report = adapted.metrics["adaptation"]
    assert report["new_text"]["after"] < report["new_text"]["before"]
    assert report["original_text"]["before"] == pytest.approx(base.metrics["valid_bits_per_char"], abs=0.05)


def test_every_knob_is_a_cli_option_with_the_same_help():
    from lm.cli import build_parser
    from lm.train.knobs import KNOBS, settings_from

    train_parser = build_parser()._subparsers._group_actions[0].choices["train"]
    options = {action.dest: action for action in train_parser._actions}
    for knob in KNOBS:
        assert options[knob.name].help == knob.help and knob.flag in options[knob.name].option_strings
    assert settings_from({"family": "gru", "batch_size": None, "lr": 0.01}).lr == 0.01
    assert train_parser.parse_args(["--name", "x", "--batch-size", "full"]).batch_size == "full"


def test_cli_train_needs_a_family_or_a_base_model(tmp_path, monkeypatch, capsys):
    from lm.cli import main

    monkeypatch.setenv("LM_PLAYGROUND_HOME", str(tmp_path))
    assert main(["train", "--name", "no-family", "--steps", "5"]) == 2
    err = capsys.readouterr().err
    assert "needs --family (or --init-from MODEL" in err and err.strip().count("\n") == 0
    assert main(["train", "--init-from", "no-such-model", "--name", "x"]) == 2
    assert "no model named 'no-such-model'" in capsys.readouterr().err
