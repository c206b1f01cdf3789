"""Races: 2-4 training runs that differ in one setting — optimizer, learning rate, size, tokenizer, family,
... — on the same data with the same seed, so their curves (and their sample timelines) can be overlaid.

`start_race` checks every run's settings first (a bad value fails before anything starts), then submits
them to the `JobManager` with `queue=True`: runs beyond the concurrent-training cap wait as "queued" and
start as slots free (so with the app's default cap of 1 they train one after the other, and a seconds axis
then compares each run's own training time; with `LM_MAX_TRAININGS` >= the number of runs they train side by
side, sharing the CPU). Each job record carries `race` = {"id", "setting", "value", "index"}, so a race is
found again after a page reload (`race_records`, `list_races`). A race counts once in a student's quota of
trainings at a time. `lm.viz.race_figure` draws the curves.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from typing import Any, Sequence

from lm.errors import LMError
from lm.store.registry import validate_name
from lm.train.knobs import KNOBS, parse_batch
from lm.train.settings import TrainSettings, resolve_settings

RACE_SETTINGS = ("optimizer", "lr", "momentum", "batch_size", "preset", "width", "layers", "context", "dropout",
                 "tokenizer", "family", "weight_decay", "warmup")
MIN_RUNS, MAX_RUNS = 2, 4
# What a race of each setting starts with on the Train page: the lesson each one teaches at a glance.
RACE_EXAMPLES = {"optimizer": "sgd, adam", "lr": "0.0003, 0.003, 0.03", "momentum": "0, 0.9",
                 "batch_size": "4, 32, full", "preset": "tiny, small", "width": "64, 256", "layers": "1, 3",
                 "context": "16, 128", "dropout": "0, 0.3", "tokenizer": "char, bpe", "family": "rnn, gru, lstm",
                 "weight_decay": "0, 0.1", "warmup": "0, 200"}
_KNOBS = {knob.name: knob for knob in KNOBS}


@dataclasses.dataclass(frozen=True)
class Race:
    id: str
    setting: str
    values: tuple[Any, ...]
    job_ids: tuple[str, ...]  # in the order of `values`


def run_name(base: str, value: Any) -> str:
    """A model name for one runner: the base name and the value ("race-adamw", "race-0.003")."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", str(value).lower()).strip("-._") or "x"
    return validate_name(f"{base[:63 - min(len(slug), 30)]}-{slug[:30]}")


def _check_setting(setting: str) -> None:
    if setting not in RACE_SETTINGS:
        raise LMError("a race varies one of {settings}, not {setting!r}", settings=", ".join(RACE_SETTINGS),
                      setting=setting)


def parse_race_values(setting: str, text: str) -> list[Any]:
    """A race's values as typed on the page ("sgd, adam", "0.001, 0.01", "8, full"): comma-separated, each
    read as the setting's kind (lm.train.knobs); a value that is not of that kind is a one-line LMError."""
    _check_setting(setting)
    knob = _KNOBS[setting]
    read = {"int": int, "float": float, "batch": parse_batch}.get(knob.kind, str)
    values = []
    for item in (part.strip() for part in str(text).split(",")):
        if not item:
            continue
        try:
            value = read(item)
        except ValueError:
            raise LMError("{item!r} is not a value of {setting} ({help})", item=item, setting=setting,
                          help=knob.help) from None
        if knob.choices and value not in knob.choices:
            raise LMError("{item!r} is not one of the {setting} choices: {choices}", item=item, setting=setting,
                          choices=", ".join(knob.choices))
        values.append(value)
    return values


def race_settings(base: TrainSettings, setting: str, values: Sequence[Any]) -> list[TrainSettings]:
    """One `TrainSettings` per value of `setting`, everything else as in `base` (its data, its seed); each
    checked, so a bad value is a one-line LMError before any run starts."""
    _check_setting(setting)
    values = list(values)
    if not MIN_RUNS <= len(values) <= MAX_RUNS:
        raise LMError("a race has {least} to {most} runs, not {count}", least=MIN_RUNS, most=MAX_RUNS,
                      count=len(values))
    if len({repr(v) for v in values}) != len(values):
        raise LMError("the race's {setting} values must differ from each other", setting=setting)
    runs = [dataclasses.replace(base, **{setting: value}, name=run_name(base.name, value), out=None)
            for value in values]
    for run in runs:
        resolve_settings(run)
    return runs


def start_race(manager, base: TrainSettings, setting: str, values: Sequence[Any], *, owner: str | None = None) -> Race:
    """Submit the race's runs (queued within the cap); if one is refused, the ones already submitted are
    cancelled and the refusal raised."""
    runs = race_settings(base, setting, values)
    race_id = uuid.uuid4().hex[:8]
    job_ids: list[str] = []
    try:
        for index, (run, value) in enumerate(zip(runs, values)):
            tag = {"id": race_id, "setting": setting, "value": value, "index": index}
            job_ids.append(manager.submit(run, owner=owner, queue=True, race=tag))
    except LMError:
        for job_id in job_ids:
            manager.cancel(job_id, by=owner)
        raise
    return Race(race_id, setting, tuple(values), tuple(job_ids))


def race_records(manager, race_id: str) -> list[dict[str, Any]]:
    """The race's job records, in the order of its values."""
    found = [r for r in manager.list() if (r.get("race") or {}).get("id") == race_id]
    return sorted(found, key=lambda r: r["race"].get("index", 0))


def list_races(manager) -> list[dict[str, Any]]:
    """Every race the manager knows, newest first: {"id", "setting", "values", "job_ids", "created"}."""
    races: dict[str, dict[str, Any]] = {}
    for record in manager.list():  # newest first
        tag = record.get("race") or {}
        if isinstance(tag.get("id"), str) and tag["id"] not in races:
            races[tag["id"]] = {"id": tag["id"], "setting": tag.get("setting"), "created": record["created"]}
    for race in races.values():
        records = race_records(manager, race["id"])
        race.update(values=[r["race"].get("value") for r in records], job_ids=[r["id"] for r in records])
    return list(races.values())
