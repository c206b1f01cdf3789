"""Domain adaptation of an n-gram model: the base model's counts plus the new text's, optionally weighted.

A counted model's "training" is its counts, so adapting it means adding counts: the new model is counted
from the base's own training stream (its corpus and split, re-read exactly as it was counted) together with
the new text's training part, repeated `adapt_weight` times. Counts are additive over documents (no n-gram
spans two), so every raw count of the result is base count + weight x new count; Kneser-Ney's continuation
counts (how many distinct words precede) take the union, which repetition does not change. The tokenizer is
the base's; a character the base never saw is refused, as for a neural model (lm/train/data.py).

Neural fine-tuning needs no code of its own: the loop starts from the base weights (lm/train/loop.py).
"""

from __future__ import annotations

import time

from lm.data.corpus import load_corpus
from lm.errors import LMError
from lm.models.ngram.model import NgramModel
from lm.run.metrics import held_out_metrics
from lm.store.checkpoint import save_checkpoint
from lm.store.registry import load_model
from lm.train.base import read_base
from lm.train.data import check_known_characters
from lm.train.scoring import adaptation_report, score_test_split
from lm.train.settings import Callback, TrainEvent, TrainResult, TrainSettings, _Plan, emit


def base_training_text(base) -> str:
    """The text the base model was counted or trained on: its corpus's training part, split as it was."""
    try:
        corpus = load_corpus(base.corpus, max_chars=base.max_chars)
    except LMError as exc:
        raise LMError(f"cannot re-read {base.name}'s corpus to add counts to ({exc})") from None
    return corpus.split(test_every=base.settings.get("test_every") or None).train.text


def adapt_ngram(settings: TrainSettings, plan: _Plan, callback: Callback | None) -> TrainResult:
    started = time.perf_counter()
    emit(callback, TrainEvent(0, 1, None, None, 0.0, 0.0, 0.0, "setup", message=f"loading {settings.init_from}"))
    base = read_base(settings.init_from)
    loaded = load_model(settings.init_from)
    tokenizer = loaded.tokenizer
    corpus = load_corpus(settings.corpus, max_chars=settings.max_chars)
    check_known_characters(tokenizer, corpus.text, base.name)
    split = corpus.split(test_every=settings.test_every or None)
    emit(callback, TrainEvent(0, 1, None, None, 0.0, 0.0, time.perf_counter() - started, "setup",
                              message=f"counting {base.name}'s text and the new text (weight {settings.adapt_weight})"))
    old = tokenizer.encode_array(base_training_text(base))
    new = tokenizer.encode_array(split.train.text)
    model = NgramModel.build(None, tokenizer.vocab_size, order=plan.model_args["order"],
                             smoothing=plan.model_args["smoothing"], documents=[old] + [new] * settings.adapt_weight)
    metrics = held_out_metrics(model, tokenizer, split.valid.text, max_chars=settings.score_chars)
    metrics.update(score_test_split(model, tokenizer, split, settings.score_chars))
    metrics["adaptation"] = adaptation_report(base, loaded.model, model, tokenizer, split.valid.text,
                                              settings.score_chars)
    seconds = time.perf_counter() - started
    meta = {
        "name": plan.name, "description": plan.describe(settings, corpus.name) if settings.description
        else f"{base.name} adapted to {corpus.name} (n-gram counts added, weight {settings.adapt_weight})",
        "corpus": {"name": corpus.name, "split": split.info},
        "training": {"method": "counting", "family": "ngram", "settings": settings.to_json(), "device": "cpu",
                     "adapted_from": base.name, "adapt_weight": settings.adapt_weight, "tokens": int(old.size),
                     "new_tokens": int(new.size), "tokens_seen": int(old.size + new.size * settings.adapt_weight),
                     "seconds": round(seconds, 2)},
        "metrics": metrics,
    }
    save_checkpoint(plan.directory, model, tokenizer, meta)
    emit(callback, TrainEvent(1, 1, None, None, 0.0, 0.0, seconds, "done",
                              valid_bits_per_char=metrics["valid_bits_per_char"], message=f"saved {plan.directory}"))
    return TrainResult(plan.name, plan.directory, model, tokenizer, meta, 1, seconds, False, {})
