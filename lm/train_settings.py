"""Training settings: the presets, the allowed choices, `TrainSettings` / `TrainEvent` / `TrainResult`, and
`resolve_settings`, which checks every setting and fills in the preset's defaults before any work is done.

`lm.train` re-exports every public name here; import them from there.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lm.errors import LMError

VALID_SCORE_CHARS = 200_000  # held-out characters scored for the recorded metrics
FAMILY_CHOICES = ("ngram", "rnn", "gru", "lstm", "transformer")
PRESET_CHOICES = ("tiny", "small", "medium", "large")
OPTIMIZER_CHOICES = ("adamw", "sgd")
SMOOTHING_CHOICES = ("mle", "addk", "kneser_ney", "stupid_backoff")

# Per family and size: model shape and the training settings that suit it. Any of these can be overridden
# one by one (--layers, --width, --lr, ...). Sizes follow nanoGPT's / char-rnn's small character models.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "ngram": {
        "tiny": {"order": 3}, "small": {"order": 5}, "medium": {"order": 6}, "large": {"order": 8},
    },
    "recurrent": {
        "tiny": {"layers": 1, "width": 64, "embed": 32, "context": 32, "dropout": 0.0, "lr": 3e-3,
                 "batch_size": 16, "steps": 300},
        "small": {"layers": 2, "width": 256, "embed": 64, "context": 128, "dropout": 0.1, "lr": 2e-3,
                  "batch_size": 32, "steps": 3000},
        "medium": {"layers": 2, "width": 512, "embed": 128, "context": 256, "dropout": 0.2, "lr": 2e-3,
                   "batch_size": 64, "steps": 5000},
        "large": {"layers": 3, "width": 1024, "embed": 256, "context": 256, "dropout": 0.25, "lr": 1e-3,
                  "batch_size": 64, "steps": 10000},
    },
    "transformer": {
        "tiny": {"layers": 2, "heads": 2, "width": 64, "context": 64, "dropout": 0.0, "lr": 3e-3,
                 "batch_size": 16, "steps": 300},
        "small": {"layers": 4, "heads": 4, "width": 128, "context": 128, "dropout": 0.1, "lr": 1e-3,
                  "batch_size": 32, "steps": 3000},
        "medium": {"layers": 6, "heads": 6, "width": 192, "context": 256, "dropout": 0.2, "lr": 1e-3,
                   "batch_size": 64, "steps": 5000},
        "large": {"layers": 8, "heads": 8, "width": 512, "context": 512, "dropout": 0.2, "lr": 6e-4,
                  "batch_size": 64, "steps": 10000},
    },
}


# -- settings, events, result ---------------------------------------------------------------------------
@dataclasses.dataclass
class TrainSettings:
    """Everything a training run needs. `None` means: take it from the family's preset."""

    family: str = "transformer"  # ngram | rnn | gru | lstm | transformer
    corpus: str = "shakespeare"  # a built-in corpus name or a path to a UTF-8 text file
    tokenizer: str = "char"  # char | bpe
    vocab_size: int | None = None  # BPE vocabulary size (default 2048)
    name: str = "my-model"
    out: str | os.PathLike | None = None  # checkpoint directory (default: the user's models dir / name)
    preset: str = "small"
    description: str = ""
    max_chars: int | None = None  # use only the first characters of the corpus
    # model shape
    layers: int | None = None
    width: int | None = None  # RNN hidden units / Transformer d_model
    embed: int | None = None  # RNN embedding size
    heads: int | None = None
    context: int | None = None  # Transformer block size / RNN truncated-BPTT window, in tokens
    dropout: float | None = None
    order: int | None = None  # n-gram
    smoothing: str = "kneser_ney"  # n-gram
    # optimisation
    steps: int | None = None  # optimizer steps (default: the preset's), or
    minutes: float | None = None  # a wall-clock budget (with both, whichever ends first)
    batch_size: int | None = None
    lr: float | None = None
    optimizer: str = "adamw"
    weight_decay: float | None = None  # AdamW / SGD decay, on weight matrices only
    warmup: int | None = None  # linear warm-up steps, then cosine decay to 10% of lr
    grad_clip: float = 1.0  # max global gradient norm (0 = off)
    eval_every: int | None = None  # steps between held-out evaluations
    eval_windows: int = 64  # fixed held-out windows per evaluation
    log_every: int = 10  # steps between progress events
    save_every: int | None = None  # steps between resume-state saves (also every `save_minutes`)
    save_minutes: float = 5.0
    score_chars: int = VALID_SCORE_CHARS  # held-out characters scored for the final recorded metrics
    seed: int = 0
    threads: int | None = None
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    resume: bool = False  # continue from <checkpoint>.resume if it exists (else start fresh)
    keep_resume_state: bool = False  # keep <checkpoint>.resume after a run that finished
    should_stop: Any = None  # a threading.Event-like object: `.is_set()` true -> stop cleanly

    def to_json(self) -> dict[str, Any]:
        """The settings that describe the run (runtime-only fields left out)."""
        skip = {"should_stop", "threads", "device", "resume", "keep_resume_state", "out"}
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in skip}
        out["corpus"] = os.fspath(out["corpus"]) if isinstance(out["corpus"], os.PathLike) else out["corpus"]
        return out


@dataclasses.dataclass
class TrainEvent:
    """One progress report. `phase`: setup | train | eval | save | done."""

    step: int
    total: int | None  # None when only a time budget bounds the run
    train_loss: float | None  # mean nats/token since the previous event
    valid_loss: float | None  # nats/token on the fixed held-out sample (latest evaluation)
    lr: float
    tokens_per_second: float
    elapsed: float  # seconds of training (across resumes)
    phase: str
    valid_bits_per_char: float | None = None
    message: str = ""


@dataclasses.dataclass
class TrainResult:
    name: str
    path: Path | None  # the checkpoint directory (None if stopped before any step)
    model: Any  # the best model (eval mode, CPU)
    tokenizer: Any
    meta: dict[str, Any]  # what config.json says besides the model shape
    steps: int
    seconds: float
    stopped: bool  # cancelled before the planned end
    history: dict[str, list]

    @property
    def metrics(self) -> dict[str, Any]:
        return self.meta.get("metrics", {})


Callback = Callable[[TrainEvent], Any]


# -- validation ---------------------------------------------------------------------------------------------
def _whole(name: str, value: Any, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise LMError(f"{name} must be a whole number >= {low}, not {value!r}")
    return int(value)


def _number(name: str, value: Any, low: float = 0.0, strict: bool = False, high: float | None = None) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    ok = ok and (value > low if strict else value >= low) and (high is None or value < high)
    if not ok:
        bound = f"> {low}" if strict else f">= {low}"
        raise LMError(f"{name} must be a number {bound}{f' and < {high}' if high is not None else ''}, "
                      f"not {value!r}")
    return float(value)


@dataclasses.dataclass
class _Plan:
    """Settings with every preset default filled in and checked."""

    family: str
    kind: str  # config family: ngram | rnn | transformer
    name: str
    directory: Path
    steps: int | None
    minutes: float | None
    batch_size: int
    lr: float
    weight_decay: float
    warmup: int
    eval_every: int
    save_every: int
    context: int
    model_args: dict[str, Any]  # shape keys for the family's config (no vocab_size yet)


def resolve_settings(settings: TrainSettings) -> _Plan:
    """Check every setting and fill the preset's defaults; raises a one-line LMError, touches nothing."""
    from lm.device import pick_device
    from lm.registry import user_models_dir, validate_name

    s = settings
    if s.family not in FAMILY_CHOICES:
        raise LMError(f"unknown model family {s.family!r} (choose from {', '.join(FAMILY_CHOICES)})")
    if s.tokenizer not in ("char", "bpe"):
        raise LMError(f"unknown tokenizer {s.tokenizer!r} (use 'char' or 'bpe')")
    if s.preset not in PRESET_CHOICES:
        raise LMError(f"unknown preset {s.preset!r} (choose from {', '.join(PRESET_CHOICES)})")
    if s.optimizer not in OPTIMIZER_CHOICES:
        raise LMError(f"unknown optimizer {s.optimizer!r} (choose from {', '.join(OPTIMIZER_CHOICES)})")
    if not isinstance(s.corpus, (str, os.PathLike)) or not str(s.corpus).strip():
        raise LMError("no corpus given")
    name = validate_name(s.name)
    directory = Path(s.out).expanduser() if s.out else user_models_dir() / name
    if s.vocab_size is not None:
        _whole("vocab_size", s.vocab_size, 2)
        if s.tokenizer == "bpe":
            from lm.tokenizer import MAX_BPE_VOCAB, MIN_BPE_VOCAB

            if not MIN_BPE_VOCAB <= s.vocab_size <= MAX_BPE_VOCAB:
                raise LMError(f"BPE vocabulary size must be a whole number from {MIN_BPE_VOCAB} to "
                              f"{MAX_BPE_VOCAB}, got {s.vocab_size!r}")
    if s.max_chars is not None:
        _whole("max_chars", s.max_chars, 1)
    _whole("seed", s.seed, 0)
    if s.threads is not None:
        _whole("threads", s.threads, 1)
    pick_device(s.device)  # an unknown or missing device is a settings error, found before any work

    kind = "ngram" if s.family == "ngram" else "rnn" if s.family in ("rnn", "gru", "lstm") else "transformer"
    preset = PRESETS["recurrent" if kind == "rnn" else kind][s.preset]

    def pick(key: str):
        value = getattr(s, key)
        return preset.get(key) if value is None else value

    if kind == "ngram":
        order = _whole("order", pick("order"), 1)
        if s.smoothing not in SMOOTHING_CHOICES:
            raise LMError(f"unknown smoothing {s.smoothing!r} (choose from {', '.join(SMOOTHING_CHOICES)})")
        return _Plan(s.family, kind, name, directory, None, None, 1, 0.0, 0.0, 0, 1, 1, order,
                     {"order": order, "smoothing": s.smoothing})

    steps = None if s.steps is None and s.minutes is not None else _whole("steps", pick("steps"), 1)
    minutes = None if s.minutes is None else _number("minutes", s.minutes, 0.0, strict=True)
    batch_size = _whole("batch_size", pick("batch_size"), 1)
    default_lr = 0.3 if s.optimizer == "sgd" else preset["lr"]
    lr = _number("lr", default_lr if s.lr is None else s.lr, 0.0, strict=True)
    default_wd = 0.1 if kind == "transformer" else 0.01
    weight_decay = _number("weight_decay", default_wd if s.weight_decay is None else s.weight_decay)
    if s.warmup is None:
        warmup = min(200, (steps or 2000) // 10)
    else:
        warmup = _whole("warmup", s.warmup, 0)
    _number("grad_clip", s.grad_clip)
    dropout = _number("dropout", pick("dropout"), 0.0, high=1.0)
    if s.eval_every is None:
        eval_every = min(500, max(10, steps // 20)) if steps else 250
    else:
        eval_every = _whole("eval_every", s.eval_every, 1)
    save_every = 1000 if s.save_every is None else _whole("save_every", s.save_every, 1)
    _whole("eval_windows", s.eval_windows, 1)
    _whole("log_every", s.log_every, 1)
    _number("save_minutes", s.save_minutes, 0.0, strict=True)
    _whole("score_chars", s.score_chars, 1)
    layers = _whole("layers", pick("layers"), 1)
    width = _whole("width", pick("width"), 1)
    context = _whole("context", pick("context"), 1)
    if kind == "rnn":
        model_args = {"cell": s.family, "n_layers": layers, "d_embed": _whole("embed", pick("embed"), 1),
                      "d_hidden": width, "dropout": dropout}
    else:
        heads = _whole("heads", pick("heads"), 1)
        if width % heads:
            raise LMError(f"width ({width}) must be divisible by heads ({heads})")
        model_args = {"context_length": context, "n_layers": layers, "n_heads": heads, "d_model": width,
                      "dropout": dropout}
    _config_for(kind, model_args, 2)  # the family's own checks, before any data is loaded
    return _Plan(s.family, kind, name, directory, steps, minutes, batch_size, lr, weight_decay, warmup,
                 eval_every, save_every, context, model_args)


def _config_for(kind: str, model_args: dict[str, Any], vocab_size: int):
    from lm.models import family_classes

    config_cls, _ = family_classes(kind)
    try:
        return config_cls(vocab_size=vocab_size, **model_args)
    except TypeError as exc:
        raise LMError(f"invalid {kind} settings: {exc}") from None
