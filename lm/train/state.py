"""Resume state of a gradient-training run: `<checkpoint>.resume/`, written atomically as a complete sibling
directory and swapped into place. It holds the model, the best model so far and the optimizer state as
safetensors, and every scalar (step, counters, optimizer hyper-parameters, loss history) as JSON. No pickle.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from lm.errors import LMError
from lm.data.tokenizer import Tokenizer
from lm.store.checkpoint import _swap_into_place, load_tensors, save_tensors_atomic, write_json_atomic

RESUME_SUFFIX = ".resume"
RESUME_FORMAT = "lm-playground-resume/1"


def resume_dir_for(checkpoint_dir: Path) -> Path:
    checkpoint_dir = Path(checkpoint_dir)
    return checkpoint_dir.parent / f"{checkpoint_dir.name}{RESUME_SUFFIX}"


def _flatten_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Optimizer state as (tensors for safetensors, everything else as JSON-able data)."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{key}"] = value.detach().cpu().clone()
            else:
                scalars.setdefault(str(index), {})[key] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in state["param_groups"]]
    return tensors, {"scalars": scalars, "param_groups": groups}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], data: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    for index, entries in data.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(entries)
    groups = []
    for group in data["param_groups"]:
        group = dict(group)
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
        groups.append(group)
    return {"state": state, "param_groups": groups}


def _load_into(model: torch.nn.Module, tensors: dict[str, torch.Tensor], where: str) -> None:
    """Copy saved tensors into `model` (a tied head may be absent: it shares the embedding's storage)."""
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    tied = {"lm_head.weight"} if getattr(model.config, "tie_embeddings", False) else set()
    if unexpected or set(missing) - tied:
        raise LMError(f"{where} does not match the model (missing {sorted(set(missing) - tied)[:3]}, "
                      f"unexpected {sorted(unexpected)[:3]})")


def _save_resume(resume_dir: Path, model, optimizer, best_tensors, tokenizer, state: dict[str, Any]) -> None:
    """Write the resume state as a complete sibling directory, then swap it into place."""
    resume_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=resume_dir.parent, prefix=f".{resume_dir.name}.saving-"))
    try:
        save_tensors_atomic(staging / "model.safetensors", model.state_tensors())
        if best_tensors is not None:
            save_tensors_atomic(staging / "best.safetensors", best_tensors)
        opt_tensors, opt_data = _flatten_optimizer(optimizer)
        save_tensors_atomic(staging / "optimizer.safetensors", opt_tensors)
        tokenizer.save(staging / "tokenizer.json")
        write_json_atomic(staging / "state.json", {**state, "format": RESUME_FORMAT, "optimizer": opt_data})
        _swap_into_place(staging, resume_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _read_resume(resume_dir: Path) -> dict[str, Any] | None:
    state_file = resume_dir / "state.json"
    if not state_file.is_file():
        return None
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise LMError(f"{resume_dir.name}: state.json is damaged; delete {resume_dir} to start over") from None
    if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT:
        raise LMError(f"{resume_dir.name}: not a resume state of this version; delete it to start over")
    state["model_tensors"] = load_tensors(resume_dir / "model.safetensors")
    state["optimizer_tensors"] = load_tensors(resume_dir / "optimizer.safetensors")
    best = resume_dir / "best.safetensors"
    state["best_tensors"] = load_tensors(best) if best.is_file() else None
    state["tokenizer_obj"] = Tokenizer.load(resume_dir / "tokenizer.json")
    return state
