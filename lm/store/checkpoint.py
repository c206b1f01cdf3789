"""One checkpoint format for every family: a directory with config.json, model.safetensors, tokenizer.json.

config.json holds everything but the tensors:

    {"format": "lm-playground/1", "name": ..., "model": {"family": ..., hyper-parameters},
     "tokenizer": {"kind": "char" | "bpe", "vocab_size": ...},
     "corpus": {"name": ..., "split": {...}}, "training": {...}, "metrics": {"valid_bits_per_char": ...}}

No pickle anywhere: tensors go through safetensors, everything else is JSON. A save writes a complete
sibling directory first and then swaps it into place, so a crash mid-save never leaves a half-written model
under the final name. Hugging Face GPT-2 directories (config.json with model_type "gpt2") load too.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from lm.errors import LMError
from lm.data.textio import write_json_atomic
from lm.models import build_model, config_from_dict
from lm.models.base import LanguageModel
from lm.store.paths import CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE
from lm.data.tokenizer import Tokenizer

FORMAT = "lm-playground/1"


@dataclasses.dataclass
class LoadedModel:
    """A model with everything needed to use and describe it."""

    name: str
    model: LanguageModel
    tokenizer: Any  # lm.data.tokenizer.Tokenizer
    meta: dict[str, Any]  # the whole config.json
    path: Path | None

    @property
    def family(self) -> str:
        return self.model.family


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LMError(f"{path.parent.name}: missing {path.name}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LMError(f"{path.parent.name}: {path.name} is not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise LMError(f"{path.parent.name}: {path.name} is not a JSON object")
    return data


def save_tensors_atomic(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        try:
            save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp, metadata=metadata)
        except SafetensorError as exc:  # safetensors reports a full disk as "... I/O error: ... (os error 28)"
            code = re.search(r"os error (\d+)", str(exc))
            raise (OSError(int(code.group(1)), os.strerror(int(code.group(1)))) if code else OSError(str(exc))) from None
        with open(tmp, "rb+") as handle:  # on disk before the rename, as every other atomic write here
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; a checkpoint is meant to be shared read-only
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not Path(path).is_file():
        raise LMError(f"{Path(path).parent.name}: missing {Path(path).name}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise LMError(f"{Path(path).parent.name}: {Path(path).name} is corrupt or not a safetensors file "
                      f"({first_line[:120]})") from None


def save_checkpoint(directory: Path | str, model: LanguageModel, tokenizer, meta: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint directory atomically (a complete copy is built beside it, then swapped in)."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    if tokenizer.vocab_size != model.vocab_size:
        raise LMError(f"tokenizer has {tokenizer.vocab_size} tokens but the model expects {model.vocab_size}")
    meta = dict(meta or {})
    meta.update({
        "format": FORMAT,
        "name": meta.get("name", directory.name),
        "model": model.config.to_dict(),
        "tokenizer": {"kind": tokenizer.kind, "vocab_size": tokenizer.vocab_size},
        "parameters": model.num_parameters(),
    })
    try:
        staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.saving-"))
        os.chmod(staging, 0o755)
    except OSError as exc:
        raise LMError(f"could not save {directory.name}: {exc.strerror or exc}") from None
    try:
        save_tensors_atomic(staging / WEIGHTS_FILE, model.state_tensors(), {"format": FORMAT})
        tokenizer.save(staging / TOKENIZER_FILE)
        write_json_atomic(staging / CONFIG_FILE, meta)
        _swap_into_place(staging, directory)
    except OSError as exc:  # a full disk, a permission problem: the previous checkpoint stays as it was
        shutil.rmtree(staging, ignore_errors=True)
        raise LMError(f"could not save {directory.name}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def _swap_into_place(staging: Path, directory: Path) -> None:
    """Replace `directory` by `staging`; the old copy is only removed once the new one is in place."""
    if not directory.exists():
        os.replace(staging, directory)
        return
    retired = directory.parent / f".{directory.name}.old-{os.getpid()}"
    shutil.rmtree(retired, ignore_errors=True)
    os.replace(directory, retired)
    try:
        os.replace(staging, directory)
    except BaseException:
        os.replace(retired, directory)  # put the previous checkpoint back
        raise
    shutil.rmtree(retired, ignore_errors=True)


def is_hf_gpt2_dir(directory: Path) -> bool:
    config = directory / CONFIG_FILE
    if not config.is_file():
        return False
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and data.get("model_type") == "gpt2" and "format" not in data


def load_checkpoint(directory: Path | str, name: str | None = None) -> LoadedModel:
    """Load a checkpoint directory (ours, or a Hugging Face GPT-2 snapshot), or raise a one-line LMError."""
    directory = Path(directory)
    if not directory.is_dir():
        raise LMError(f"no model directory at {directory}")
    name = name or directory.name
    if is_hf_gpt2_dir(directory):
        from lm.models.gpt2 import load_gpt2  # only for GPT-2 directories: keeps the Hub client out

        model, tokenizer, meta = load_gpt2(directory)
        return LoadedModel(name, model, tokenizer, meta, directory)
    meta = _read_json(directory / CONFIG_FILE)
    if meta.get("format") != FORMAT:
        raise LMError(f"{directory.name}: config.json is not an LM Playground checkpoint (format {meta.get('format')!r})")
    config = config_from_dict(meta.get("model", {}))
    tokenizer = Tokenizer.load(directory / TOKENIZER_FILE)
    if tokenizer.vocab_size != config.vocab_size:
        raise LMError(f"{directory.name}: tokenizer.json has {tokenizer.vocab_size} tokens but the model was "
                      f"built for {config.vocab_size}; they do not belong together")
    tensors = load_tensors(directory / WEIGHTS_FILE)
    try:
        model = build_model(config, tensors)
    except LMError as exc:
        raise LMError(f"{directory.name}: {exc}") from None
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise LMError(f"{directory.name}: model.safetensors does not match config.json "
                      f"({str(exc).splitlines()[0][:160] if str(exc) else exc.__class__.__name__})") from None
    if isinstance(model, torch.nn.Module):
        model.eval()
        model.requires_grad_(False)
    return LoadedModel(name, model, tokenizer, meta, directory)
