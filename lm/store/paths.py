"""Where things live on disk: the shipped zoo, the user directory and its parts, the checkpoint's file names,
and the one rule that turns a user-chosen name into a safe directory name. No torch: cheap to import."""

from __future__ import annotations

import os
import re
from pathlib import Path

from lm.errors import LMError

# The shipped zoo; $LM_PLAYGROUND_ASSETS points elsewhere (tests use it to run the app on tiny models only).
ASSETS_DIR = Path(os.environ.get("LM_PLAYGROUND_ASSETS") or Path(__file__).resolve().parents[2] / "assets")
CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE = "config.json", "model.safetensors", "tokenizer.json"
RECIPE_FILE = "recipe.json"
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def home_dir() -> Path:
    return Path(os.environ.get("LM_PLAYGROUND_HOME") or Path.home() / ".lm-playground").expanduser()


def user_models_dir() -> Path:
    return home_dir() / "models"


def cache_dir() -> Path:
    return home_dir() / "cache"


def is_valid_name(name: object) -> bool:
    return isinstance(name, str) and bool(_NAME.match(name)) and ".." not in name


def validate_name(name: str) -> str:
    """Return `name` if it is safe to use as a directory name, else raise LMError."""
    if not is_valid_name(name):
        raise LMError("invalid model name {name!r}: use 1-64 lowercase letters, digits, '.', '_' or '-', "
                      "starting with a letter or digit", name=name)
    return name
