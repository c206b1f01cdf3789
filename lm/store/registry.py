"""Where models live and how a name becomes a model.

Two places hold models: the shipped zoo in the project's `assets/` and the user's own directory
(`$LM_PLAYGROUND_HOME`, default `~/.lm-playground`, models under `models/`). A zoo entry is either a full
checkpoint or a *recipe* (`recipe.json`): n-gram count tables are large but quick to rebuild, so the zoo
ships the recipe and the first load builds the model and caches it under the user directory's `cache/`.

Names are validated before they become paths (`[a-z0-9][a-z0-9._-]*`, no `..`), so no name can reach
outside its directory. A model can also be named by a path to a checkpoint directory, or (for `load_model`)
as a GPT-2 on the Hugging Face Hub: "hf:NAME", or "OWNER/NAME" when no such local directory exists.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

from lm.errors import LMError
from lm.store.paths import (  # noqa: F401  re-exported: callers name a model's home through the registry
    ASSETS_DIR, CONFIG_FILE, RECIPE_FILE, TOKENIZER_FILE, cache_dir, home_dir, is_valid_name, user_models_dir,
    validate_name,
)

if TYPE_CHECKING:  # listing models must stay cheap: torch is imported only when a model is loaded
    from lm.store.checkpoint import LoadedModel

_build_lock = threading.Lock()


@dataclasses.dataclass
class ModelInfo:
    name: str
    source: str  # "zoo" or "user"
    path: Path
    family: str
    variant: str  # ngram | rnn | gru | lstm | transformer | gpt2 (see lm.models.VARIANTS)
    tokenizer: str  # char | bpe
    corpus: str
    parameters: int | None
    valid_bits_per_char: float | None
    description: str

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["path"] = str(self.path)
        return out


def _info(path: Path, source: str) -> ModelInfo | None:
    """Describe a model directory from its config.json or recipe.json without loading tensors."""
    recipe = path / RECIPE_FILE
    file = recipe if recipe.is_file() else path / CONFIG_FILE
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(meta, dict):
        return None
    model = meta.get("model", {}) if isinstance(meta.get("model"), dict) else {}
    if meta.get("model_type") == "gpt2":  # a Hugging Face GPT-2 directory
        model = {"family": "transformer", "cell": "gpt2"}
        meta = {"tokenizer": {"kind": "bpe"}, "corpus": {"name": "webtext (GPT-2)"}}
    family = str(model.get("family", "?"))
    metrics = meta.get("metrics", {}) if isinstance(meta.get("metrics"), dict) else {}
    bpc = metrics.get("valid_bits_per_char")
    return ModelInfo(
        name=path.name, source=source, path=path, family=family,
        variant=str(model.get("cell") or family), tokenizer=str(meta.get("tokenizer", {}).get("kind", "?")),
        corpus=str(meta.get("corpus", {}).get("name", "?")), parameters=meta.get("parameters"),
        valid_bits_per_char=float(bpc) if isinstance(bpc, (int, float)) else None,
        description=str(meta.get("description", "")),
    )


def list_models() -> list[ModelInfo]:
    """Every model the app can load: the zoo first, then the user's own, each sorted by name."""
    found: list[ModelInfo] = []
    for source, root in (("zoo", ASSETS_DIR), ("user", user_models_dir())):
        if not root.is_dir():
            continue
        for path in sorted(root.iterdir()):
            if path.is_dir() and is_valid_name(path.name):
                info = _info(path, source)
                if info is not None:
                    found.append(info)
    return found


def resolve(name_or_path: str) -> Path:
    """The directory of a model given by registry name or by a path to a checkpoint directory."""
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise LMError("no model given")
    looks_like_path = os.sep in name_or_path or name_or_path.startswith(".") or (os.altsep or "\0") in name_or_path
    if looks_like_path:
        path = Path(name_or_path).expanduser()
        if path.is_dir():
            return path
        raise LMError(f"no model directory at {name_or_path}")
    name = validate_name(name_or_path)
    for root in (user_models_dir(), ASSETS_DIR):
        if (root / name).is_dir():
            return root / name
    known = ", ".join(m.name for m in list_models()) or "none"
    raise LMError(f"no model named {name!r} (known: {known})")


def load_model(name_or_path: str, device: str | None = None) -> LoadedModel:
    """Load a model by name, by path, or a GPT-2 from the Hugging Face Hub ("hf:gpt2", "owner/name");
    a zoo recipe is built once and cached.

    `device` ("auto", "cpu", "cuda", "cuda:N", "mps"; None = the CPU) places a neural model's weights; an
    n-gram model is NumPy tables and always runs on the CPU.
    """
    from lm.store.checkpoint import load_checkpoint  # torch: listing models stays cheap
    from lm.models.gpt2 import HUB_PREFIX, download_gpt2, hub_name  # torch: as above

    repo = hub_name(name_or_path) if isinstance(name_or_path, str) else None  # "hf:gpt2", "owner/name"
    if repo is None:
        path = resolve(name_or_path)
    elif name_or_path.strip().startswith(HUB_PREFIX):
        path = download_gpt2(repo)
    else:  # "owner/name" with no such directory here: perhaps a mistyped path, so say both
        try:
            path = download_gpt2(repo)
        except LMError as exc:
            raise LMError(f"no model directory at {name_or_path}, and {exc}") from None
    if (path / RECIPE_FILE).is_file():
        loaded = _load_recipe(path)
    else:
        loaded = load_checkpoint(path, name=repo or path.name)
    if device is not None and hasattr(loaded.model, "to"):
        from lm.device import pick_device  # torch: as above

        target = pick_device(device)
        if target.type != "cpu":
            loaded.model.to(target)
    return loaded


def _load_recipe(path: Path) -> LoadedModel:
    # recipes count tables with NumPy and save them with torch: imported on first load, not on listing
    from lm.store.checkpoint import load_checkpoint  # torch: listing models stays cheap
    from lm.store.recipe import build_from_recipe, read_recipe, recipe_settings  # torch: as above

    cached = cache_dir() / path.name
    with _build_lock:  # two sessions asking at once build it once
        if (cached / CONFIG_FILE).is_file():
            try:
                loaded = load_checkpoint(cached, name=path.name)
                if recipe_settings(loaded.meta.get("recipe", {})) == recipe_settings(read_recipe(path)):
                    return loaded
            except LMError:
                pass  # a stale or damaged cache is rebuilt below
        return build_from_recipe(path, cached)
