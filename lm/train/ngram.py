"""Training an n-gram model: counting, as a zoo recipe is counted (on the training part of a three-way split:
`test_every`), plus the held-out and test evaluations and the settings record every trained checkpoint
carries. Adapting a counted model to new text is lm/train/adapt.py."""

from __future__ import annotations

import time

from lm.i18n import N_  # job records keep the English line; the Train page translates it
from lm.run.metrics import held_out_metrics
from lm.store.checkpoint import save_checkpoint
from lm.store.recipe import count_ngram
from lm.train.scoring import score_test_split
from lm.train.settings import Callback, TrainEvent, TrainResult, TrainSettings, _Plan, emit


def train_ngram(settings: TrainSettings, plan: _Plan, callback: Callback | None) -> TrainResult:
    started = time.perf_counter()
    emit(callback, TrainEvent(0, 1, None, None, 0.0, 0.0, 0.0, "setup", message=N_("counting n-grams")))
    recipe = {"corpus": settings.corpus, "tokenizer": settings.tokenizer, "vocab_size": settings.vocab_size,
              "order": plan.model_args["order"], "smoothing": plan.model_args["smoothing"],
              "max_chars": settings.max_chars, "test_every": settings.test_every or None}
    model, tokenizer, meta, split = count_ngram(recipe)
    meta["metrics"] = held_out_metrics(model, tokenizer, split.valid.text, max_chars=settings.score_chars)
    meta["metrics"].update(score_test_split(model, tokenizer, split, settings.score_chars))
    meta["name"] = plan.name
    meta["description"] = plan.describe(settings, meta["corpus"]["name"])
    meta["training"].update({"settings": settings.to_json(), "device": "cpu", "tokens_seen": meta["training"]["tokens"]})
    save_checkpoint(plan.directory, model, tokenizer, meta)
    seconds = time.perf_counter() - started
    emit(callback, TrainEvent(1, 1, None, None, 0.0, 0.0, seconds, "done",
                              valid_bits_per_char=meta["metrics"]["valid_bits_per_char"],
                              message=f"saved {plan.directory}"))
    return TrainResult(plan.name, plan.directory, model, tokenizer, meta, 1, seconds, False, {})
