"""Model families behind one contract (`lm.models.base.LanguageModel`), each described once.

`FAMILIES` is the one place that says what a family is: its config and model classes (imported lazily, so
listing models or loading an n-gram never imports the Transformer code), the trace its `trace()` returns,
the variants a user can pick (`--family lstm` is the `rnn` family with `cell="lstm"`), the internals page
that opens it, the CLI commands that apply to it, and its training sizes and options. The CLI, the training
settings, the inspection code and the pages loop over these specs instead of repeating lists.

Adding a family: a new module with a `ModelConfig` and a `LanguageModel`, and one `FamilySpec` entry here.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import TYPE_CHECKING, Any

from lm.errors import LMError

if TYPE_CHECKING:  # the specs are plain data: reading them (CLI choices, page lists) must not import torch
    from lm.models.base import LanguageModel, ModelConfig


@dataclasses.dataclass(frozen=True)
class FamilySpec:
    """What one model family is, as data (no torch import needed to read it)."""

    name: str  # the `family` of a config.json
    label: str  # how the pages name the family
    module: str  # where `config_class` and `model_class` live
    config_class: str
    model_class: str
    trace_type: str  # the dataclass in lm.models.trace that `trace()` returns
    variants: dict[str, str]  # what a user picks (`--family`) -> its label; the variant field is `variant_field`
    variant_field: str | None  # the config field a variant sets ("cell" for the rnn family), None: one variant
    page: str  # the internals page that opens this family's trace
    exports: tuple[str, ...]  # formats `python -m lm export` writes for it ("arpa": KenLM, "hf": transformers)
    gradient: bool  # trained by gradient descent (else counted)
    options: dict[str, str]  # training option (TrainSettings field) -> config field
    choices: dict[str, tuple[str, ...]]  # options with a fixed set of values -> the values
    presets: dict[str, dict[str, Any]]  # size -> option values and training defaults

    def classes(self) -> tuple[type[ModelConfig], type[LanguageModel]]:
        module = importlib.import_module(self.module)
        return getattr(module, self.config_class), getattr(module, self.model_class)

    def config_args(self, variant: str, values: dict[str, Any]) -> dict[str, Any]:
        """Config fields (no vocab_size) from training option values (see `options`) and a variant."""
        args = {field: values[option] for option, field in self.options.items()}
        if self.variant_field is not None:
            args[self.variant_field] = variant
        return args


SIZES = ("tiny", "small", "medium", "large")

# Sizes follow nanoGPT's / char-rnn's small character models; any value can be overridden one by one.
_RECURRENT_PRESETS = {
    "tiny": {"layers": 1, "width": 64, "embed": 32, "context": 32, "dropout": 0.0, "lr": 3e-3,
             "batch_size": 16, "steps": 300},
    "small": {"layers": 2, "width": 256, "embed": 64, "context": 128, "dropout": 0.1, "lr": 2e-3,
              "batch_size": 32, "steps": 3000},
    "medium": {"layers": 2, "width": 512, "embed": 128, "context": 256, "dropout": 0.2, "lr": 2e-3,
               "batch_size": 64, "steps": 5000},
    "large": {"layers": 3, "width": 1024, "embed": 256, "context": 256, "dropout": 0.25, "lr": 1e-3,
              "batch_size": 64, "steps": 10000},
}
_TRANSFORMER_PRESETS = {
    "tiny": {"layers": 2, "heads": 2, "width": 64, "context": 64, "dropout": 0.0, "lr": 3e-3,
             "batch_size": 16, "steps": 300},
    "small": {"layers": 4, "heads": 4, "width": 128, "context": 128, "dropout": 0.1, "lr": 1e-3,
              "batch_size": 32, "steps": 3000},
    "medium": {"layers": 6, "heads": 6, "width": 192, "context": 256, "dropout": 0.2, "lr": 1e-3,
               "batch_size": 64, "steps": 5000},
    "large": {"layers": 8, "heads": 8, "width": 512, "context": 512, "dropout": 0.2, "lr": 6e-4,
              "batch_size": 64, "steps": 10000},
}

FAMILIES: dict[str, FamilySpec] = {spec.name: spec for spec in (
    FamilySpec(
        name="ngram", label="n-gram", module="lm.models.ngram.model", config_class="NgramConfig",
        model_class="NgramModel", trace_type="NgramTrace", variants={"ngram": "n-gram (counting)"},
        variant_field=None, page="ngram", exports=("arpa",), gradient=False,
        options={"order": "order", "smoothing": "smoothing"},
        choices={"smoothing": ("mle", "addk", "kneser_ney", "stupid_backoff")},
        presets={"tiny": {"order": 3}, "small": {"order": 5}, "medium": {"order": 6}, "large": {"order": 8}},
    ),
    FamilySpec(
        name="rnn", label="RNN", module="lm.models.rnn", config_class="RNNConfig", model_class="RNNModel",
        trace_type="RecurrentTrace", variants={"lstm": "LSTM", "gru": "GRU", "rnn": "Plain RNN"},
        variant_field="cell", page="rnn", exports=(), gradient=True,
        options={"layers": "n_layers", "embed": "d_embed", "width": "d_hidden", "dropout": "dropout"},
        choices={},
        presets=_RECURRENT_PRESETS,
    ),
    FamilySpec(
        name="transformer", label="Transformer", module="lm.models.transformer.model",
        config_class="TransformerConfig", model_class="TransformerModel", trace_type="AttentionTrace",
        variants={"transformer": "Transformer"}, variant_field=None, page="attention", exports=("hf",),
        gradient=True,
        options={"context": "context_length", "layers": "n_layers", "heads": "n_heads", "width": "d_model",
                 "dropout": "dropout"},
        choices={}, presets=_TRANSFORMER_PRESETS,
    ),
)}

EXPORT_FORMATS = tuple(dict.fromkeys(f for spec in FAMILIES.values() for f in spec.exports))

# every variant a user can pick, in the order pages offer them -> its family
VARIANTS: dict[str, str] = {variant: spec.name for spec in FAMILIES.values() for variant in spec.variants}


def family_spec(family: str) -> FamilySpec:
    if family not in FAMILIES:
        raise LMError(f"unknown model family {family!r} (known: {', '.join(sorted(FAMILIES))})")
    return FAMILIES[family]


def spec_for_variant(variant: str) -> FamilySpec:
    """The family of a user's pick ("lstm" -> the rnn family); LMError naming the choices otherwise."""
    if variant not in VARIANTS:
        raise LMError(f"unknown model family {variant!r} (choose from {', '.join(VARIANTS)})")
    return FAMILIES[VARIANTS[variant]]


def variant_label(variant: str) -> str:
    return FAMILIES[VARIANTS[variant]].variants[variant] if variant in VARIANTS else variant


def families_for_page(page: str) -> tuple[str, ...]:
    return tuple(name for name, spec in FAMILIES.items() if spec.page == page)


def family_classes(family: str) -> tuple[type[ModelConfig], type[LanguageModel]]:
    return family_spec(family).classes()


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


__all__ = ["EXPORT_FORMATS", "FAMILIES", "SIZES", "VARIANTS", "FamilySpec", "build_model",
           "config_from_dict", "families_for_page", "family_classes", "family_spec", "spec_for_variant",
           "variant_label"]
