"""Where models live and how a name becomes a model.

Two places hold models: the shipped zoo in the project's `assets/` and the user's own directory
(`$LM_PLAYGROUND_HOME`, default `~/.lm-playground`, models under `models/`). A zoo entry is either a full
checkpoint or a *recipe* (`recipe.json`): n-gram count tables are large but quick to rebuild, so the zoo
ships the recipe and the first load builds the model and caches it under the user directory's `cache/`.

Names are validated before they become paths (`[a-z0-9][a-z0-9._-]*`, no `..`), so no name can reach
outside its directory. An ARPA file (`NAME.arpa`, `NAME.arpa.gz`, see `lm.store.arpa`) in a models folder
or the working directory is a model too, and so is a path to one. A model can also be named by a path to a
checkpoint directory, or (for `load_model`) as a GPT-2 on the Hugging Face Hub: "hf:NAME", or "OWNER/NAME"
when no such local directory exists.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

from lm.errors import LMError
from lm.models import FAMILIES
from lm.store.arpa import arpa_description, arpa_header, is_arpa_file, load_arpa
from lm.store.paths import (  # noqa: F401  re-exported: callers name a model's home through the registry
    ASSETS_DIR, CONFIG_FILE, RECIPE_FILE, TOKENIZER_FILE, cache_dir, home_dir, is_valid_name, user_models_dir,
    validate_name,
)

if TYPE_CHECKING:  # listing models must stay cheap: torch is imported only when a model is loaded
    from lm.store.checkpoint import LoadedModel

_build_lock = threading.Lock()
_log = logging.getLogger(__name__)
MAX_CONFIG_BYTES = 4 * 2**20  # a config.json is a few kB; a larger one is not read (memory, parse time)


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


def _text_field(section: Any, key: str, default: str = "?") -> str:
    value = section.get(key) if isinstance(section, dict) else None
    return value if isinstance(value, str) else default


def _info(path: Path, source: str) -> ModelInfo | None:
    """Describe a model directory from its config.json or recipe.json without loading tensors; None (with a
    logged warning) for a file that is missing, malformed or hostile, so one bad entry never breaks a page."""
    recipe = path / RECIPE_FILE
    file = recipe if recipe.is_file() else path / CONFIG_FILE
    try:
        if file.stat().st_size > MAX_CONFIG_BYTES:
            raise ValueError(f"larger than {MAX_CONFIG_BYTES} bytes")
        meta = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        _log.warning("skipping model %s: unreadable %s (%s)", path.name, file.name, str(exc)[:200])
        return None
    if not isinstance(meta, dict):
        _log.warning("skipping model %s: %s is not a JSON object", path.name, file.name)
        return None
    model = meta.get("model") if isinstance(meta.get("model"), dict) else {}
    if meta.get("model_type") == "gpt2":  # a Hugging Face GPT-2 directory
        model = {"family": "transformer", "cell": "gpt2"}
        meta = {"tokenizer": {"kind": "bpe"}, "corpus": {"name": "webtext (GPT-2)"}}
    family = _text_field(model, "family")
    if family not in FAMILIES:
        _log.warning("skipping model %s: %s names no known model family", path.name, file.name)
        return None
    metrics = meta.get("metrics") if isinstance(meta.get("metrics"), dict) else {}
    bpc, params = metrics.get("valid_bits_per_char"), meta.get("parameters")
    number = (int, float)
    return ModelInfo(
        name=path.name, source=source, path=path, family=family,
        variant=_text_field(model, "cell", family), tokenizer=_text_field(meta.get("tokenizer"), "kind"),
        corpus=_text_field(meta.get("corpus"), "name"),
        parameters=params if isinstance(params, int) and not isinstance(params, bool) and params >= 0 else None,
        valid_bits_per_char=float(bpc) if isinstance(bpc, number) and not isinstance(bpc, bool) else None,
        description=meta.get("description") if isinstance(meta.get("description"), str) else "",
    )


def _arpa_info(path: Path, source: str) -> ModelInfo | None:
    """An ARPA file in a models folder, described from its header (None, logged, if it is not one)."""
    try:
        counts, kind = arpa_header(path)
    except (LMError, ValueError) as exc:
        _log.warning("skipping model %s: %s", path.name, str(exc)[:200])
        return None
    return ModelInfo(name=path.name, source=source, path=path, family="ngram", variant="ngram", tokenizer=kind,
                     corpus="ARPA file", parameters=sum(counts), valid_bits_per_char=None,
                     description=arpa_description(counts, kind))


def list_models() -> list[ModelInfo]:
    """Every model the app can load: the zoo first, then the user's own, each sorted by name."""
    found: list[ModelInfo] = []
    for source, root in (("zoo", ASSETS_DIR), ("user", user_models_dir())):
        if not root.is_dir():
            continue
        for path in sorted(root.iterdir()):
            if path.is_dir() and is_valid_name(path.name):
                info = _info(path, source)
            elif is_arpa_file(path) and is_valid_name(path.name):
                info = _arpa_info(path, source)
            else:
                continue
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
        if path.is_dir() or is_arpa_file(path):
            return path
        raise LMError("no model directory at {path}", path=name_or_path)
    name = validate_name(name_or_path)
    for root in (user_models_dir(), ASSETS_DIR):
        if (root / name).is_dir() or is_arpa_file(root / name):
            return root / name
    if is_arpa_file(Path(name)):  # `-m model.arpa` in the working directory
        return Path(name)
    known = ", ".join(m.name for m in list_models())
    if not known:
        raise LMError("no model named {name!r} (known: none)", name=name)
    raise LMError("no model named {name!r} (known: {known})", name=name, known=known)


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
            # the Hub's error as a value: an LMError too, so it is shown in the language of whoever shows this one
            raise LMError("no model directory at {path}, and {reason}", path=name_or_path, reason=exc) from None
    if is_arpa_file(path):
        loaded = load_arpa(path, name=path.name)
    elif (path / RECIPE_FILE).is_file():
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
    from lm.store.recipe import build_from_recipe, read_recipe  # torch: as above

    cached = cache_dir() / path.name
    with _build_lock:  # two sessions asking at once build it once
        if (cached / CONFIG_FILE).is_file():
            try:
                loaded = load_checkpoint(cached, name=path.name)
                if loaded.meta.get("recipe") == read_recipe(path):  # the whole recipe: a recount (new corpus
                    # order, new metrics) must not be served from an old cache
                    return loaded
            except LMError:
                pass  # a stale or damaged cache is rebuilt below
        return build_from_recipe(path, cached)


STALE_STAGING_SECONDS = 3600.0  # a save takes seconds; a staging folder this old was left by a killed process


def delete_model(name: str) -> Path:
    """Delete the user model `name` (and its resume state); the zoo cannot be deleted. Atomic: the directory
    is renamed out of the models folder first, so no reader ever sees half a model; a session that already
    holds the model in memory keeps using it until it lets go."""
    name = validate_name(name)
    path = user_models_dir() / name
    if not path.is_dir():
        if (ASSETS_DIR / name).is_dir():
            raise LMError("{name!r} is part of the shipped zoo and cannot be deleted", name=name)
        raise LMError("no user model named {name!r}", name=name)
    doomed = path.parent / f".{name}.deleting-{uuid.uuid4().hex[:8]}"
    os.replace(path, doomed)
    shutil.rmtree(doomed, ignore_errors=True)
    shutil.rmtree(path.parent / f"{name}.resume", ignore_errors=True)
    return path


def clean_stale_staging(root: Path | None = None, max_age: float = STALE_STAGING_SECONDS) -> list[Path]:
    """Remove half-written saves (`.NAME.saving-*`) and interrupted deletes left by a killed process in `root`
    (default: the user models directory)."""
    removed = []
    root = user_models_dir() if root is None else root
    if not root.is_dir():
        return removed
    now = time.time()
    for path in root.glob(".*"):
        if (".saving-" in path.name or ".deleting-" in path.name) and path.is_dir():
            try:
                old = now - path.stat().st_mtime > max_age or ".deleting-" in path.name
            except OSError:
                continue
            if old:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    return removed
