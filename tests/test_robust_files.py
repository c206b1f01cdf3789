"""A hostile or damaged file in the user directory hides one entry and breaks nothing: model configs, job
records, staging folders a killed save left behind; deleting models (owners, the zoo, the CLI)."""

from __future__ import annotations

import json
import os
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lm.app.jobs import TEACHER, JobManager
from lm.cli import main
from lm.errors import LMError
from lm.store.registry import clean_stale_staging, delete_model, list_models

HOSTILE_CONFIGS = [
    '{"model": {"family": "ngram"}, "tokenizer": "char"}',  # a string where an object is expected
    '{"model": {"family": "rnn"}, "corpus": [1, 2, 3]}',
    '{"model": {"family": "transformer"}, "parameters": "lots", "metrics": {"valid_bits_per_char": "x"}}',
    "[" * 100_000 + "]" * 100_000,  # RecursionError in the JSON parser
    "\xff\xfe not utf-8",
    '{"model": "transformer", "description": 42}',
    "null",
]


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("LM_PLAYGROUND_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    return tmp_path


def _write_config(home, name, text):
    (home / "models" / name).mkdir()
    (home / "models" / name / "config.json").write_bytes(text.encode("utf-8", "surrogateescape"))


def test_hostile_configs_never_break_the_model_list(home):
    for i, text in enumerate(HOSTILE_CONFIGS):
        _write_config(home, f"bad-{i}", text)
    infos = {m.name: m for m in list_models()}
    assert any(m.source == "zoo" for m in infos.values())  # the zoo is still listed
    for info in infos.values():  # whatever is listed is well-typed
        assert isinstance(info.family, str) and isinstance(info.tokenizer, str) and isinstance(info.corpus, str)
        assert info.parameters is None or isinstance(info.parameters, int)
        assert info.valid_bits_per_char is None or isinstance(info.valid_bits_per_char, float)
    assert "bad-3" not in infos and "bad-4" not in infos and "bad-5" not in infos


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                               st.sampled_from(["model", "family", "cell", "tokenizer", "kind", "corpus", "name",
                                                "metrics", "valid_bits_per_char", "parameters", "description"]),
                               inner, max_size=5), max_leaves=20)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(json_values)
def test_list_models_survives_any_json(home, value):
    path = home / "models" / "fuzzed"
    path.mkdir(exist_ok=True)
    (path / "config.json").write_text(json.dumps(value))
    for info in list_models():
        assert isinstance(info.variant, str) and isinstance(info.description, str)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["id", "name", "status", "created", "progress", "history", "settings",
                                        "message", "result", "runs", "owner_token"]), json_values, max_size=11))
def test_the_job_loader_survives_any_record(home, record):
    jobs = home / "jobs"
    jobs.mkdir(exist_ok=True)
    for old in jobs.glob("*.json"):
        old.unlink()
    record.setdefault("id", "20250101-000000-abcdef")
    (jobs / "20250101-000000-abcdef.json").write_text(json.dumps(record))
    manager = JobManager(home, train_fn=lambda s, c: None)
    for job in manager.list():  # what the Train page reads of every record
        assert isinstance(job["name"], str) and isinstance(job["created"], (int, float))
        assert isinstance(job["progress"], dict) and isinstance(job["history"]["train"], list)


def test_stale_staging_folders_are_removed_and_fresh_ones_kept(home):
    old = home / "models" / ".victim.saving-abc123"
    fresh = home / "models" / ".other.saving-def456"
    for path in (old, fresh):
        path.mkdir()
        (path / "model.safetensors").write_bytes(b"x" * 1000)
    past = time.time() - 7200
    os.utime(old, (past, past))
    assert clean_stale_staging() == [old]
    assert not old.exists() and fresh.exists()


def test_delete_refuses_the_zoo_and_removes_a_user_model(home, capsys):
    _write_config(home, "mine", '{"model": {"family": "ngram"}}')
    (home / "models" / "mine.resume").mkdir()
    assert main(["delete", "shakespeare-char-lstm"]) == 2
    assert "shipped zoo" in capsys.readouterr().err
    assert main(["delete", "mine"]) == 0
    assert not (home / "models" / "mine").exists() and not (home / "models" / "mine.resume").exists()
    with pytest.raises(LMError, match="no user model"):
        delete_model("mine")


def test_only_owners_and_the_teacher_delete_through_the_app(home):
    _write_config(home, "alices", '{"model": {"family": "ngram"}}')
    jobs = home / "jobs"
    jobs.mkdir()
    (jobs / "20250101-000000-aaaaaa.json").write_text(json.dumps(
        {"id": "20250101-000000-aaaaaa", "name": "alices", "status": "finished", "owner_token": "alice"}))
    manager = JobManager(home, train_fn=lambda s, c: None)
    with pytest.raises(LMError, match="not made by you"):
        manager.delete_model("alices", by="bob")
    assert (home / "models" / "alices").is_dir()
    manager.delete_model("alices", by="alice")
    assert not (home / "models" / "alices").exists()
    _write_config(home, "nobodys", '{"model": {"family": "ngram"}}')
    manager.delete_model("nobodys", by=TEACHER)
    assert not (home / "models" / "nobodys").exists()
