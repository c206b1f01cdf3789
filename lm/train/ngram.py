"""Training an n-gram model: counting, as a zoo recipe is counted, plus the held-out evaluation and the
settings record every trained checkpoint carries."""

from __future__ import annotations

import time

from lm.run.metrics import held_out_metrics
from lm.store.checkpoint import save_checkpoint
from lm.store.recipe import count_ngram
from lm.train.settings import Callback, TrainEvent, TrainResult, TrainSettings, _Plan, emit


def train_ngram(settings: TrainSettings, plan: _Plan, callback: Callback | None) -> TrainResult:
    started = time.perf_counter()
    emit(callback, TrainEvent(0, 1, None, None, 0.0, 0.0, 0.0, "setup", message="counting n-grams"))
    recipe = {"corpus": settings.corpus, "tokenizer": settings.tokenizer, "vocab_size": settings.vocab_size,
              "order": plan.model_args["order"], "smoothing": plan.model_args["smoothing"],
              "max_chars": settings.max_chars}
    model, tokenizer, meta, split = count_ngram(recipe)
    meta["metrics"] = held_out_metrics(model, tokenizer, split.valid.text, max_chars=settings.score_chars)
    meta["name"] = plan.name
    meta["description"] = plan.describe(settings, meta["corpus"]["name"])
    meta["training"].update({"settings": settings.to_json(), "device": "cpu", "tokens_seen": meta["training"]["tokens"]})
    save_checkpoint(plan.directory, model, tokenizer, meta)
    seconds = time.perf_counter() - started
    emit(callback, TrainEvent(1, 1, None, None, 0.0, 0.0, seconds, "done",
                              valid_bits_per_char=meta["metrics"]["valid_bits_per_char"],
                              message=f"saved {plan.directory}"))
    return TrainResult(plan.name, plan.directory, model, tokenizer, meta, 1, seconds, False, {})
