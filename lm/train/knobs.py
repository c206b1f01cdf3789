"""Every training setting a person can turn, with its one-line help, in one table.

`python -m lm train` builds its options by looping over `KNOBS` (lm/cli.py), and the Train page builds its
widgets from the same entries (`page=True` ones), so the help a student reads on the page is the help the CLI
prints. The defaults are not repeated here: a knob left unset is the `TrainSettings` default or the preset's
value (`lm.train.settings.resolve_settings`), and `help` says what that is.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from lm.data.tokenizer import TOKENIZER_KINDS
from lm.i18n import N_
from lm.train.settings import (
    FAMILY_CHOICES, FULL_BATCH, OPTIMIZER_CHOICES, PRECISION_CHOICES, PRESET_CHOICES, SMOOTHING_CHOICES,
    TrainSettings, fine_tune_settings,
)

GROUPS = ("data", "model shape", "optimisation", "watching", "fine-tuning", "running")


@dataclasses.dataclass(frozen=True)
class Knob:
    name: str  # the TrainSettings field; the CLI option is --name-with-dashes
    group: str  # one of GROUPS
    kind: str  # int | float | str | bool | choice | batch (a whole number or "full")
    help: str  # one line (a page knob's marked N_: the catalog translates it for the page)
    choices: tuple[str, ...] = ()
    page: bool = True  # the Train page offers it (runtime and file-system settings are CLI-only)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


KNOBS: tuple[Knob, ...] = (
    Knob("family", "data", "choice", N_("what learns: ngram (counting), rnn (Elman), gru, lstm or transformer"),
         FAMILY_CHOICES),
    Knob("corpus", "data", "str", N_("shakespeare, names, python, or a UTF-8 text file (default shakespeare)")),
    Knob("tokenizer", "data", "choice", N_("how text becomes tokens (default char: one per character; bpe: "
         "byte-level BPE)"), TOKENIZER_KINDS),
    Knob("vocab_size", "data", "int", N_("BPE vocabulary size (default 2048)")),
    Knob("max_chars", "data", "int", N_("use only the first characters of the corpus (a slice, e.g. for full-batch)")),
    Knob("test_every", "data", "int", N_("hold out every n-th training document as the test split, scored once "
         "at the end (default 10; 0 = none)")),
    Knob("name", "data", "str", N_("name in your model directory")),
    Knob("out", "data", "str", "save to this checkpoint directory instead", page=False),
    Knob("description", "data", "str", N_("one line for the model list (default: made from the settings)")),
    Knob("preset", "model shape", "choice", N_("model size and training defaults; the options below override "
         "single values (default small)"), PRESET_CHOICES),
    Knob("layers", "model shape", "int", N_("layers (default: the preset's)")),
    Knob("width", "model shape", "int", N_("RNN hidden units / Transformer d_model (default: the preset's)")),
    Knob("embed", "model shape", "int", N_("RNN embedding size (default: the preset's)")),
    Knob("heads", "model shape", "int", N_("Transformer attention heads; width must divide by them")),
    Knob("context", "model shape", "int", N_("Transformer context / RNN truncated-BPTT window, in tokens")),
    Knob("dropout", "model shape", "float", N_("dropout probability while training (default: the preset's)")),
    Knob("order", "model shape", "int", N_("n-gram order (default: the preset's, 3-8)")),
    Knob("smoothing", "model shape", "choice", N_("n-gram smoothing (default kneser_ney)"), SMOOTHING_CHOICES),
    Knob("steps", "optimisation", "int", N_("optimizer steps (default: the preset's)")),
    Knob("minutes", "optimisation", "float", N_("wall-clock budget (with steps: whichever ends first)")),
    Knob("batch_size", "optimisation", "batch", f"windows per step, or {FULL_BATCH}: batch gradient descent, "
         "every window of the training text in every step"),
    Knob("lr", "optimisation", "float", N_("peak learning rate (default: the preset's; SGD 0.3, Adagrad 0.05)")),
    Knob("optimizer", "optimisation", "choice", N_("a torch.optim optimizer (default adamw)"), OPTIMIZER_CHOICES),
    Knob("momentum", "optimisation", "float", N_("SGD / Nesterov / RMSprop momentum, Adam's beta1 (0.9; "
         "RMSprop 0; 0 with sgd = plain SGD)")),
    Knob("weight_decay", "optimisation", "float", N_("on weight matrices only (AdamW/SGD 0.1 Transformer, "
         "0.01 RNN; others 0)")),
    Knob("warmup", "optimisation", "int", N_("linear warm-up steps, then cosine decay to a tenth (default min(200, "
         "steps/10))")),
    Knob("grad_clip", "optimisation", "float", N_("maximum global gradient norm (default 1.0; 0 = off)")),
    Knob("eval_every", "optimisation", "int", N_("steps between held-out evaluations (and samples)")),
    Knob("save_every", "optimisation", "int", "steps between resume-state saves (default 1000)", page=False),
    Knob("seed", "optimisation", "int", N_("initial weights, batch order, dropout and samples (default 0)")),
    Knob("score_chars", "optimisation", "int", "held-out characters scored for the recorded bits/char "
         "(default 200000)", page=False),
    Knob("sample_tokens", "watching", "int", N_("tokens the model writes at every evaluation (default 80; 0 = none)")),
    Knob("sample_prompt", "watching", "str", N_("the text those samples continue (default: a new line)")),
    Knob("init_from", "fine-tuning", "str", N_("fine-tune this model (name or directory) on the corpus, keeping "
         "its tokenizer and shape")),
    Knob("adapt_weight", "fine-tuning", "int", N_("n-gram fine-tuning: the new text's counts count this many "
         "times (default 1)")),
    Knob("threads", "running", "int", "CPU threads for torch", page=False),
    Knob("device", "running", "str", "auto, cpu, cuda, cuda:N or mps (default auto)", page=False),
    Knob("precision", "running", "choice", "auto (bf16 autocast on a CPU with native bf16: faster), fp32 or bf16",
         PRECISION_CHOICES, page=False),
    Knob("resume", "running", "bool", "continue from NAME.resume if it exists", page=False),
    Knob("keep_resume_state", "running", "bool", "keep NAME.resume after a finished run (to train on later)",
         page=False),
)
HELP = {knob.name: knob.help for knob in KNOBS}
_FIELDS = {f.name for f in dataclasses.fields(TrainSettings)}
assert all(knob.name in _FIELDS and knob.group in GROUPS for knob in KNOBS)  # the table names real fields


def parse_batch(value: str) -> int | str:
    """A batch size as typed: a whole number, or "full" (batch gradient descent)."""
    text = str(value).strip().lower()
    return FULL_BATCH if text == FULL_BATCH else int(text)


def settings_from(values: dict[str, Any]) -> TrainSettings:
    """`TrainSettings` from knob values (None = not set: the default applies); with `init_from`, the base
    model's family, tokenizer and shape fill what is not set (`fine_tune_settings`)."""
    chosen = {k: v for k, v in values.items() if v is not None and k in _FIELDS}
    if chosen.get("init_from"):
        return fine_tune_settings(chosen.pop("init_from"), **chosen)
    return TrainSettings(**chosen)
