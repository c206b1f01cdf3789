"""Model families behind one contract (`lm.models.base.LanguageModel`).

`FAMILIES` maps the `family` field of a `config.json` to the module that implements it; modules are imported
lazily so that loading an n-gram model never imports the Transformer code.
"""

from __future__ import annotations

import importlib
from typing import Any

from lm.errors import LMError
from lm.models.base import LanguageModel, ModelConfig

# family name -> (module, config class, model class)
FAMILIES: dict[str, tuple[str, str, str]] = {
    "ngram": ("lm.models.ngram", "NgramConfig", "NgramModel"),
    "rnn": ("lm.models.rnn", "RNNConfig", "RNNModel"),
    "transformer": ("lm.models.transformer", "TransformerConfig", "TransformerModel"),
}


def family_classes(family: str) -> tuple[type[ModelConfig], type[LanguageModel]]:
    if family not in FAMILIES:
        raise LMError(f"unknown model family {family!r} (known: {', '.join(sorted(FAMILIES))})")
    module_name, config_name, model_name = FAMILIES[family]
    module = importlib.import_module(module_name)
    return getattr(module, config_name), getattr(module, model_name)


def config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """Rebuild a family's config from the `model` section of a config.json."""
    if not isinstance(data, dict) or "family" not in data:
        raise LMError("config.json has no model family")
    config_cls, _ = family_classes(str(data["family"]))
    try:
        return config_cls.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise LMError(f"config.json has invalid {data['family']} settings: {exc}") from None


def build_model(config: ModelConfig, tensors: dict | None = None) -> LanguageModel:
    """A model of `config`'s family: fresh (neural families, randomly initialised) or from saved tensors."""
    _, model_cls = family_classes(config.family)
    if tensors is not None:
        return model_cls.from_state(config, tensors)
    return model_cls(config)


__all__ = ["FAMILIES", "LanguageModel", "ModelConfig", "build_model", "config_from_dict", "family_classes"]
