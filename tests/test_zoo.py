"""The shipped zoo in assets/: size, completeness, and each model's recorded score re-checked.

Every zoo model records `check_bits_per_char`, its bits per character on the first `check_chars` characters
of its corpus's held-out split. The test recomputes that number from the shipped files: a checkpoint whose
weights, tokenizer or config disagree with what it claims fails here.
"""

import json

import pytest

from lm.data.corpus import load_corpus
from lm.run.metrics import score
from lm.store.registry import ASSETS_DIR, RECIPE_FILE, list_models, load_model

ZOO = [m.path for m in list_models() if m.source == "zoo"]


def test_assets_fit_the_size_budget():
    total = sum(f.stat().st_size for f in ASSETS_DIR.rglob("*") if f.is_file())
    assert total <= 100 * 1024 * 1024, f"assets/ holds {total / 2**20:.1f} MB"


def test_every_zoo_directory_is_a_listed_model():
    listed = {p.name for p in ZOO}
    on_disk = {p.name for p in ASSETS_DIR.iterdir() if p.is_dir()}
    assert on_disk == listed, "assets/ should hold only complete models (no leftovers such as .resume states)"


def test_zoo_has_the_n_gram_recipes_and_lists_them():
    names = {m.name for m in list_models() if m.source == "zoo"}
    assert {"shakespeare-char-5gram", "shakespeare-char-7gram", "shakespeare-bpe-4gram", "names-char-5gram"} <= names


@pytest.mark.parametrize("path", ZOO, ids=[p.name for p in ZOO])
def test_recorded_score_matches_a_re_evaluation(path):
    meta_file = path / RECIPE_FILE if (path / RECIPE_FILE).is_file() else path / "config.json"
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    metrics = meta["metrics"]
    loaded = load_model(path.name)
    valid = load_corpus(loaded.meta["corpus"]["name"]).split().valid.text
    check = score(loaded.model, loaded.tokenizer, valid[:metrics["check_chars"]])
    assert check.bits_per_char == pytest.approx(metrics["check_bits_per_char"], abs=2e-3)
    assert 0 < metrics["valid_bits_per_char"] < 8
