"""Training settings: the presets, the allowed choices, `TrainSettings` / `TrainEvent` / `TrainResult`, and
`resolve_settings`, which checks every setting and fills in the preset's defaults before any work is done.

The one-line help of every setting is `KNOBS` (lm/train/knobs.py): the CLI's `train` options and the Train
page are both built by looping over it. `OPTIMIZERS` says what each optimizer choice is in `torch.optim`.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lm.data.tokenizer import MAX_BPE_VOCAB, MIN_BPE_VOCAB, TOKENIZER_KINDS
from lm.errors import LMError
from lm.models import FAMILIES, SIZES, VARIANTS, family_classes, spec_for_variant
from lm.store.registry import user_models_dir, validate_name
from lm.train.base import BaseModel, base_options, read_base

FAMILY_CHOICES = tuple(VARIANTS)  # what `family` accepts: a family or one of its variants (lstm, gru, ...)
PRESET_CHOICES = SIZES
PRECISION_CHOICES = ("auto", "fp32", "bf16")  # what lm/train/step.py does with each: its docstring
FULL_BATCH = "full"  # batch_size for batch gradient descent: every training window in every step


@dataclasses.dataclass(frozen=True)
class OptimizerSpec:
    """One optimizer choice: the `torch.optim` class and its defaults (None: the preset's lr / not used)."""

    torch_class: str  # a class of torch.optim
    label: str
    lr: float | None  # default peak learning rate; None: the preset's (tuned for Adam-like optimizers)
    momentum: float | None  # default momentum (Adam/AdamW: beta1); None: the optimizer has none
    decays: bool  # weight decay on by default (the project's AdamW / SGD recipes); else 0 unless asked


# The lesson's optimizers, all from torch.optim. SGD keeps the project's momentum 0.9 (momentum 0 = plain SGD).
OPTIMIZERS = {
    "adamw": OptimizerSpec("AdamW", "AdamW (Adam, decoupled weight decay)", None, 0.9, True),
    "adam": OptimizerSpec("Adam", "Adam", None, 0.9, False),
    "sgd": OptimizerSpec("SGD", "SGD (momentum 0.9; momentum 0: plain SGD)", 0.3, 0.9, True),
    "nesterov": OptimizerSpec("SGD", "SGD with Nesterov momentum", 0.3, 0.9, True),
    "rmsprop": OptimizerSpec("RMSprop", "RMSprop", None, 0.0, False),
    "adagrad": OptimizerSpec("Adagrad", "Adagrad", 0.05, None, False),
}
OPTIMIZER_CHOICES = tuple(OPTIMIZERS)
SMOOTHING_CHOICES = FAMILIES["ngram"].choices["smoothing"]
VALID_SCORE_CHARS = 200_000  # held-out characters scored for a checkpoint's recorded metrics
PRESETS = {name: spec.presets for name, spec in FAMILIES.items()}  # family -> size -> values


# -- settings, events, result ---------------------------------------------------------------------------
@dataclasses.dataclass
class TrainSettings:
    """Everything a training run needs. `None` means: take it from the family's preset."""

    family: str = "transformer"  # a family or a variant: ngram | rnn | gru | lstm | transformer
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
    batch_size: int | str | None = None  # windows per step, or "full": batch gradient descent
    lr: float | None = None
    optimizer: str = "adamw"  # one of OPTIMIZERS
    momentum: float | None = None  # SGD / Nesterov / RMSprop momentum, Adam(W)'s beta1 (default: OPTIMIZERS)
    weight_decay: float | None = None  # on weight matrices only
    warmup: int | None = None  # linear warm-up steps, then cosine decay to 10% of lr
    grad_clip: float = 1.0  # max global gradient norm (0 = off)
    eval_every: int | None = None  # steps between held-out evaluations
    eval_windows: int = 64  # fixed held-out windows per evaluation
    log_every: int = 10  # steps between progress events
    save_every: int | None = None  # steps between resume-state saves (also every `save_minutes`)
    save_minutes: float = 5.0
    score_chars: int = VALID_SCORE_CHARS  # held-out characters scored for the final recorded metrics
    seed: int = 0
    test_every: int | None = 10  # hold out every n-th training document as the test split (0 / None: none)
    sample_tokens: int = 80  # tokens sampled at every evaluation (0 = none)
    sample_prompt: str = ""  # what the samples continue ("": the start of a line)
    init_from: str | None = None  # fine-tune this model (a name or a checkpoint directory) on `corpus`
    adapt_weight: int = 1  # n-gram fine-tuning: the new text's counts count this many times
    threads: int | None = None
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    precision: str = "auto"  # auto (bf16 autocast on a CPU with native bf16) | fp32 | bf16 (lm/train/step.py)
    resume: bool = False  # continue from <checkpoint>.resume if it exists (else start fresh)
    keep_resume_state: bool = False  # keep <checkpoint>.resume after a run that finished
    should_stop: Any = None  # a threading.Event-like object: `.is_set()` true -> stop cleanly
    control: Any = None  # an lm.train.control.PauseGate: pause, resume, run to the next evaluation

    def to_json(self) -> dict[str, Any]:
        """The settings that describe the run (runtime-only fields left out)."""
        skip = {"should_stop", "control", "threads", "device", "resume", "keep_resume_state", "out"}
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in skip}
        out["corpus"] = os.fspath(out["corpus"]) if isinstance(out["corpus"], os.PathLike) else out["corpus"]
        return out


@dataclasses.dataclass
class TrainEvent:
    """One progress report. `phase`: setup | train | eval | pause | resume | save | done."""

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
    tokens_seen: int | None = None  # training tokens so far (across resumes)
    sample: str | None = None  # eval: what the model writes now (settings.sample_prompt continued)


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
        raise LMError("{setting} must be a whole number >= {low}, not {value}", setting=name, low=low,
                      value=repr(value))
    return int(value)


def _number(name: str, value: Any, low: float = 0.0, strict: bool = False, high: float | None = None) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    ok = ok and (value > low if strict else value >= low) and (high is None or value < high)
    if not ok:
        bound = f"> {low}" if strict else f">= {low}"
        if high is not None:
            raise LMError("{setting} must be a number {bound} and < {high}, not {value}", setting=name, bound=bound,
                          high=high, value=repr(value))
        raise LMError("{setting} must be a number {bound}, not {value}", setting=name, bound=bound, value=repr(value))
    return float(value)


@dataclasses.dataclass
class _Plan:
    """Settings with every preset default filled in and checked."""

    variant: str  # what the user picked: ngram | rnn | gru | lstm | transformer
    family: str  # its config family: ngram | rnn | transformer
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
    model_args: dict[str, Any]  # fields of the family's config (no vocab_size yet)
    full_batch: bool = False  # batch gradient descent: `batch_size` is then the micro-batch of one pass
    momentum: float | None = None

    def config(self, vocab_size: int):
        """The family's config for this plan; its own checks raise a one-line LMError."""
        config_cls, _ = family_classes(self.family)
        try:
            return config_cls(vocab_size=vocab_size, **self.model_args)
        except TypeError as exc:
            raise LMError("invalid {family} settings: {error}", family=self.family, error=str(exc)) from None

    def describe(self, settings: TrainSettings, corpus_name: str) -> str:
        if settings.description:
            return settings.description
        return f"{self.config(2).describe()} trained on {corpus_name} ({settings.tokenizer} tokens)"


def emit(callback: Callback | None, event: TrainEvent) -> bool:
    """Send an event; True when the callback asks the run to stop."""
    return bool(callback(event)) if callback is not None else False


def resolve_settings(settings: TrainSettings) -> _Plan:
    """Check every setting and fill the preset's defaults; raises a one-line LMError, touches nothing."""
    s = settings
    spec = spec_for_variant(s.family)
    if s.tokenizer not in TOKENIZER_KINDS:
        raise LMError("unknown tokenizer {value} (use {choices})", value=repr(s.tokenizer),
                      choices=" or ".join(map(repr, TOKENIZER_KINDS)))
    if s.preset not in PRESET_CHOICES:
        raise LMError("unknown preset {value} (choose from {choices})", value=repr(s.preset),
                      choices=", ".join(PRESET_CHOICES))
    if s.optimizer not in OPTIMIZER_CHOICES:
        raise LMError("unknown optimizer {value} (choose from {choices})", value=repr(s.optimizer),
                      choices=", ".join(OPTIMIZER_CHOICES))
    if not isinstance(s.corpus, (str, os.PathLike)) or not str(s.corpus).strip():
        raise LMError("no corpus given")
    name = validate_name(s.name)
    directory = Path(s.out).expanduser() if s.out else user_models_dir() / name
    if s.vocab_size is not None:
        _whole("vocab_size", s.vocab_size, 2)
        if s.tokenizer == "bpe" and not MIN_BPE_VOCAB <= s.vocab_size <= MAX_BPE_VOCAB:
            raise LMError("BPE vocabulary size must be a whole number from {low} to {high}, got {value}",
                          low=MIN_BPE_VOCAB, high=MAX_BPE_VOCAB, value=repr(s.vocab_size))
    if s.max_chars is not None:
        _whole("max_chars", s.max_chars, 1)
    _whole("seed", s.seed, 0)
    if s.test_every not in (None, 0):  # 0 or None: no test split (the zoo's two-part split)
        _whole("test_every", s.test_every, 2)
    _whole("sample_tokens", s.sample_tokens, 0)
    if not isinstance(s.sample_prompt, str):
        raise LMError("sample_prompt must be text")
    _whole("adapt_weight", s.adapt_weight, 1)
    base = read_base(s.init_from) if s.init_from is not None else None
    if base is not None:
        _check_base(s, base)
    if s.threads is not None:
        _whole("threads", s.threads, 1)
    from lm.device import pick_device  # torch: this module stays importable without it (CLI choices, pages)

    pick_device(s.device)  # an unknown or missing device is a settings error, found before any work
    if s.precision not in PRECISION_CHOICES:
        raise LMError("unknown precision {value} (choose from {choices})", value=repr(s.precision),
                      choices=", ".join(PRECISION_CHOICES))
    preset = spec.presets[s.preset]

    def pick(key: str):
        value = getattr(s, key)
        return preset.get(key) if value is None else value

    if not spec.gradient:
        order = _whole("order", pick("order"), 1)
        if s.smoothing not in SMOOTHING_CHOICES:
            raise LMError("unknown smoothing {value} (choose from {choices})", value=repr(s.smoothing),
                          choices=", ".join(SMOOTHING_CHOICES))
        plan = _Plan(s.family, spec.name, name, directory, None, None, 1, 0.0, 0.0, 0, 1, 1, order,
                     spec.config_args(s.family, {"order": order, "smoothing": s.smoothing}))
        plan.config(2)
        return plan

    steps = None if s.steps is None and s.minutes is not None else _whole("steps", pick("steps"), 1)
    minutes = None if s.minutes is None else _number("minutes", s.minutes, 0.0, strict=True)
    full_batch = s.batch_size == FULL_BATCH
    # batch gradient descent passes over every window in micro-batches of the preset's batch size
    batch_size = _whole("batch_size", preset["batch_size"] if full_batch else pick("batch_size"), 1)
    optimizer = OPTIMIZERS[s.optimizer]
    default_lr = preset["lr"] if optimizer.lr is None else optimizer.lr
    lr = _number("lr", default_lr if s.lr is None else s.lr, 0.0, strict=True)
    default_wd = (0.1 if spec.name == "transformer" else 0.01) if optimizer.decays else 0.0
    weight_decay = _number("weight_decay", default_wd if s.weight_decay is None else s.weight_decay)
    momentum = _momentum(s.optimizer, s.momentum)
    if s.warmup is None:
        warmup = min(200, (steps or 2000) // 10)
    else:
        warmup = _whole("warmup", s.warmup, 0)
    _number("grad_clip", s.grad_clip)
    if s.eval_every is None:
        eval_every = min(500, max(10, steps // 20)) if steps else 250
    else:
        eval_every = _whole("eval_every", s.eval_every, 1)
    save_every = 1000 if s.save_every is None else _whole("save_every", s.save_every, 1)
    _whole("eval_windows", s.eval_windows, 1)
    _whole("log_every", s.log_every, 1)
    _number("save_minutes", s.save_minutes, 0.0, strict=True)
    _whole("score_chars", s.score_chars, 1)
    context = _whole("context", pick("context"), 1)
    values = {"context": context}
    for option in spec.options:
        if option == "dropout":
            values[option] = _number("dropout", pick("dropout"), 0.0, high=1.0)
        elif option != "context":
            values[option] = _whole(option, pick(option), 1)
    if "heads" in values and values["width"] % values["heads"]:
        raise LMError("width ({width}) must be divisible by heads ({heads})", width=values["width"],
                      heads=values["heads"])
    plan = _Plan(s.family, spec.name, name, directory, steps, minutes, batch_size, lr, weight_decay, warmup,
                 eval_every, save_every, context, spec.config_args(s.family, values), full_batch, momentum)
    plan.config(2)  # the family's own checks, before any data is loaded
    if base is not None:
        _check_base_shape(plan, base)
    return plan


def _momentum(optimizer: str, value: Any) -> float | None:
    default = OPTIMIZERS[optimizer].momentum
    if default is None:
        if value is not None:
            raise LMError("{optimizer} has no momentum setting", optimizer=optimizer)
        return None
    momentum = _number("momentum", default if value is None else value, 0.0, high=1.0)
    if optimizer == "nesterov" and momentum <= 0:
        raise LMError("Nesterov momentum must be a number > 0 and < 1")
    return momentum


def _check_base(s: TrainSettings, base: BaseModel) -> None:
    """A fine-tuning run keeps the base model's family and tokenizer (`fine_tune_settings` fills them in)."""
    if s.family != base.variant:
        raise LMError("{model} is a {family} model; fine-tuning keeps its family (family={value})", model=base.name,
                      family=base.variant, value=repr(base.variant))
    if s.tokenizer != base.tokenizer or (s.vocab_size is not None and s.vocab_size != base.vocab_size):
        raise LMError("fine-tuning keeps {model}'s {tokenizer} tokenizer; leave the tokenizer settings out (or give "
                      "the base's)", model=base.name, tokenizer=base.tokenizer)
    if s.batch_size == FULL_BATCH and not FAMILIES[base.model["family"]].gradient:
        raise LMError("batch_size 'full' applies to gradient training only")


def _check_base_shape(plan: _Plan, base: BaseModel) -> None:
    if plan.family == "ngram":  # an n-gram is counted again, at any order and smoothing
        return
    wanted = {k: v for k, v in base.model.items() if k not in ("vocab_size",)}
    got = plan.config(int(base.vocab_size or 2)).to_dict()
    option_of = {field: option for option, field in FAMILIES[plan.family].options.items()}
    differ = sorted(option_of.get(k, k) for k, v in wanted.items() if got.get(k) != v)
    if differ:
        raise LMError("fine-tuning keeps {model}'s shape; these settings differ from it: {settings} (leave the "
                      "shape settings out)", model=base.name, settings=", ".join(differ))


def fine_tune_settings(init_from: str, **given: Any) -> TrainSettings:
    """`TrainSettings` for fine-tuning `init_from`: the base's family, tokenizer and shape, then `given`
    (fields left None are taken from the base, so the CLI and the page can pass what the user typed)."""
    base = read_base(init_from)
    chosen = {k: v for k, v in given.items() if v is not None}
    return TrainSettings(**{**base_options(base), **chosen, "init_from": init_from})
