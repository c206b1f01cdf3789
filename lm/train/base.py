"""The model a fine-tuning run starts from (`TrainSettings.init_from`), read from its config.json (or a zoo
recipe.json) without loading any weights: its family and variant, its model shape, its tokenizer, and the
corpus (with its recorded character limit) it was trained on, whose held-out part measures forgetting.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from lm.errors import LMError
from lm.models import FAMILIES
from lm.store.paths import RECIPE_FILE
from lm.store.registry import resolve


@dataclasses.dataclass(frozen=True)
class BaseModel:
    name: str
    path: Path
    variant: str  # what `TrainSettings.family` must be: ngram | rnn | gru | lstm | transformer
    model: dict[str, Any]  # the config.json "model" section (no vocab_size for a recipe)
    tokenizer: str  # char | bpe
    vocab_size: int | None
    corpus: str  # what `load_corpus` takes to rebuild its corpus: a built-in name or a file path
    max_chars: int | None
    settings: dict[str, Any]  # the training settings it recorded ({} for a recipe)


def read_base(name_or_path: str) -> BaseModel:
    """What fine-tuning needs to know about `name_or_path` (a registry name or a checkpoint directory)."""
    if not isinstance(name_or_path, (str, Path)) or not str(name_or_path).strip():
        raise LMError("init_from must name a model (a registry name or a checkpoint directory)")
    path = resolve(str(name_or_path))
    meta_file = path / RECIPE_FILE if (path / RECIPE_FILE).is_file() else path / "config.json"
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        raise LMError(f"{path.name} has no readable config.json to fine-tune from") from None
    model = meta.get("model") if isinstance(meta, dict) else None
    family = model.get("family") if isinstance(model, dict) else None
    if family not in FAMILIES:
        raise LMError(f"{path.name} is not a model this project can fine-tune (family {family!r})")
    spec = FAMILIES[family]
    variant = model.get(spec.variant_field) if spec.variant_field else family
    training = meta.get("training") if isinstance(meta.get("training"), dict) else {}
    settings = training.get("settings") if isinstance(training.get("settings"), dict) else {}
    corpus = settings.get("corpus") or (meta.get("corpus") or {}).get("name") or ""
    tokenizer = meta.get("tokenizer") if isinstance(meta.get("tokenizer"), dict) else {}
    return BaseModel(path.name, path, str(variant), model, str(tokenizer.get("kind", "char")),
                     tokenizer.get("vocab_size"), str(corpus), settings.get("max_chars"), settings)


def base_options(base: BaseModel) -> dict[str, Any]:
    """`TrainSettings` fields that reproduce the base model's shape and tokenizer (what fine-tuning keeps)."""
    spec = FAMILIES[base.model["family"]]
    values: dict[str, Any] = {"family": base.variant, "tokenizer": base.tokenizer}
    if base.tokenizer == "bpe":
        values["vocab_size"] = base.vocab_size
    for option, field in spec.options.items():
        if field in base.model:
            values[option] = base.model[field]
    if "context" not in values and base.settings.get("context"):  # an RNN's truncated-BPTT window
        values["context"] = base.settings["context"]
    return values
