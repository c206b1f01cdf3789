"""What a run measures besides its training loss: the sample it writes at every evaluation (Karpathy's "samples
at each stage of training"), the test split scored once at the end, and a fine-tuned model's before/after
report — bits per character on the new text's held-out part and on the base corpus's (how much it forgot).
"""

from __future__ import annotations

from typing import Any

import torch

from lm.data.corpus import load_corpus
from lm.errors import LMError
from lm.run.generate import collect, generate
from lm.run.metrics import score
from lm.run.sampling import SamplingSettings
from lm.train.base import BaseModel

SAMPLE_TEMPERATURE = 0.8  # char-rnn's favourite: recognisable words without the greedy loops of T = 0


def sample_text(model, tokenizer, prompt: str, tokens: int, seed: int) -> str:
    """What `model` writes after `prompt` now: fixed seed and temperature, so samples of one run (and of
    runs in a race) differ only because the model did."""
    training = bool(getattr(model, "training", False))
    if hasattr(model, "eval"):
        model.eval()
    try:
        with torch.no_grad():
            settings = SamplingSettings(temperature=SAMPLE_TEMPERATURE, max_new_tokens=tokens, seed=seed)
            return collect(generate(model, tokenizer, prompt, settings)).texts[0]
    finally:
        if training:
            model.train()


def _bits(model, tokenizer, text: str, max_chars: int) -> float | None:
    return round(score(model, tokenizer, text[:max_chars]).bits_per_char, 4) if text.strip() else None


def score_test_split(model, tokenizer, split, max_chars: int) -> dict[str, Any]:
    """The test split's score, recorded apart from the validation numbers (nothing when there is none)."""
    if split.test is None:
        return {}
    result = score(model, tokenizer, split.test.text[:max_chars])
    return {"test_bits_per_char": round(result.bits_per_char, 4), "test_nats_per_char": round(result.nats_per_char, 4),
            "test_chars_scored": result.characters}


def base_valid_text(base: BaseModel) -> str | None:
    """The held-out part of the corpus `base` was trained on (None: that corpus cannot be read any more)."""
    try:
        return load_corpus(base.corpus, max_chars=base.max_chars).split().valid.text
    except LMError:
        return None


def adaptation_report(base: BaseModel, before, after, tokenizer, new_valid: str, max_chars: int) -> dict[str, Any]:
    """Bits per character before (the base model) and after fine-tuning, on the new text's held-out part and
    on the base corpus's held-out part; `forgot` is how much worse the tuned model is on the latter."""
    original = base_valid_text(base)
    report: dict[str, Any] = {
        "base": base.name, "base_corpus": base.corpus, "chars_scored": max_chars,
        "new_text": {"before": _bits(before, tokenizer, new_valid, max_chars),
                     "after": _bits(after, tokenizer, new_valid, max_chars)},
        "original_text": None,
    }
    if original is not None:
        b, a = _bits(before, tokenizer, original, max_chars), _bits(after, tokenizer, original, max_chars)
        report["original_text"] = {"before": b, "after": a}
        report["forgot_bits_per_char"] = None if a is None or b is None else round(a - b, 4)
    new = report["new_text"]
    report["gained_bits_per_char"] = round(new["before"] - new["after"], 4) if None not in new.values() else None
    return report


def adaptation_lines(report: dict[str, Any]) -> list[str]:
    """The before/after report as a small text table (the CLI prints it; the page draws a chart); no lines
    for an empty report (a run that fine-tuned nothing)."""
    if not report:
        return []
    rows = [("new text, held-out part", report.get("new_text"))]
    rows.append((f"{report.get('base_corpus') or 'original corpus'}, held-out part", report.get("original_text")))
    width = max(len(label) for label, _ in rows)
    lines = [f"{'bits per character':{width}}  {'before':>7} {'after':>7}   ({report.get('base')} -> fine-tuned)"]
    for label, pair in rows:
        if pair is None:
            lines.append(f"{label:{width}}  (that corpus cannot be read any more)")
        else:
            cells = ["-" if pair.get(k) is None else f"{pair[k]:.3f}" for k in ("before", "after")]
            lines.append(f"{label:{width}}  {cells[0]:>7} {cells[1]:>7}")
    return lines
