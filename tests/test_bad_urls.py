"""Crafted URL values for every key every page keeps in its URL: each page must render (no exception), keep its
widgets within range and write nothing to disk, whatever a shared link or a crafted request says.

The values: a very long text (the page never copies it back into the URL, where a reload would fail), a number
no widget takes, markup, and a path that tries to climb out of the models folder. (What a page does with a long
text when asked to work on it — a one-line refusal or a cut — is tested with each page.) Counted in the test report's robustness cases.
"""

from __future__ import annotations

import pytest

from app_fixtures import app_home  # noqa: F401  the tiny zoo, as the other page tests use it
from test_bad_input import app_page, snapshot
from ui.state import MAX_URL_VALUE_CHARS

PAGE_KEYS = {
    "playground": ["model", "prompt", "step_mode", "colour_mode", "temperature", "top_k", "top_p", "min_p",
                   "repetition_penalty", "max_new_tokens", "samples", "seed", "pg_text"],
    "compare": ["models", "prompt", "cmp_text", "chars"],
    "attention": ["att_model", "att_text", "att_layer", "att_head", "att_token"],
    "rnn": ["rnn_model", "rnn_text", "rnn_layer", "rnn_state", "rnn_unit"],
    "ngram": ["ng_model", "ng_context", "ng_order", "ng_smoothing"],
    "tokens": ["tok_text", "tok_models", "tok_corpus", "tok_vocab", "tok_train", "tok_script"],
    "explain": ["xp_models", "xp_text", "xp_pos", "xp_off", "xp_heads", "xp_units", "xp_layer", "xp_head"],
    "train": ["tr_source", "tr_corpus", "tr_tokenizer", "tr_vocab", "tr_family", "tr_preset", "tr_steps",
              "tr_minutes", "tr_mode", "tr_race_setting", "tr_race_values", "tr_base", "tr_race_axis", "race", "job",
              "tr_k_lr", "tr_k_optimizer", "tr_k_batch_size", "tr_k_sample_prompt", "tr_k_full_batch"],
}
VALUES = {
    "long": "é" * 30_000,
    "number": "-1e309",
    "markup": "![t](http://127.0.0.1:9/x.png) <b>x</b> :red[x] $x$",
    "path": "../../../etc/passwd",
}
CASES = [pytest.param(page, key, kind, id=f"{page}-{key}-{kind}")
         for page, keys in PAGE_KEYS.items() for key in keys for kind in VALUES]


def user_files(home) -> dict:
    """Everything under the user directory but the cache (a zoo n-gram counted on first use lands there)."""
    return {k: v for k, v in snapshot(home).items() if k != str(home) and not k.startswith(str(home / "cache"))}


@pytest.mark.parametrize("page, key, kind", CASES)
def test_a_crafted_url_value_never_breaks_a_page(page, key, kind, app_home):
    before = user_files(app_home)
    at = app_page(page, {key: VALUES[kind]})
    assert user_files(app_home) == before  # nothing written for anyone
    written = {k: v for k, v in at.query_params.items() if not (k == key and v == VALUES[kind])}
    assert all(len(v) <= MAX_URL_VALUE_CHARS for v in written.values()), written.keys()  # a reload still works
    for slider in at.slider:  # numbers stay inside their widget's range
        values = slider.value if isinstance(slider.value, tuple) else (slider.value,)
        assert all(slider.min <= v <= slider.max for v in values if isinstance(v, (int, float))), slider.key
