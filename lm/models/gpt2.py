"""Import and export Hugging Face GPT-2-family checkpoints as our `TransformerModel`.

A GPT-2 directory holds `config.json`, `model.safetensors` (optionally sharded, with an index) and usually
`tokenizer.json`. Only safetensors are read: `pytorch_model.bin` is a pickle, and unpickling runs arbitrary
code, so such a checkpoint is refused with a message saying how to convert it.

GPT-2 stores its projections as `Conv1D` layers whose weights are [in, out], the transpose of `nn.Linear`'s
[out, in]; the mapping below transposes them on the way in and on the way out. Everything else is a rename.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, NamedTuple

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from lm.errors import LMError
from lm.models.transformer.model import TransformerConfig, TransformerModel

# HF activation_function -> our TransformerConfig.activation
_HF_ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu", "relu": "relu"}
_OUR_ACTIVATIONS = {"gelu_tanh": "gelu_new", "gelu": "gelu", "relu": "relu"}
_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")  # stored [in, out]
DOWNLOAD_FILES = ["config.json", "model.safetensors", "model.safetensors.index.json", "tokenizer.json"]


class GPT2Checkpoint(NamedTuple):
    """What `load_gpt2` returns; unpacks as `model, tokenizer, meta`."""

    model: TransformerModel
    tokenizer: Any  # lm.data.tokenizer.Tokenizer from the checkpoint's tokenizer.json (None if it has none)
    meta: dict[str, Any]  # {"format": "hf-gpt2", "model": our config, "tokenizer": {...}, "hf_config": raw}


# -- config ---------------------------------------------------------------------------------------
def config_from_hf(hf: dict[str, Any]) -> TransformerConfig:
    """Our TransformerConfig for a GPT-2 `config.json`; LMError for variants this model cannot reproduce."""
    model_type = hf.get("model_type", "gpt2")
    if model_type != "gpt2":
        raise LMError(f"checkpoint is a {model_type!r} model; only GPT-2-family ('gpt2') checkpoints load")
    act = hf.get("activation_function", "gelu_new")
    if act not in _HF_ACTIVATIONS:
        raise LMError(f"GPT-2 activation {act!r} is not supported (known: {', '.join(_HF_ACTIVATIONS)})")
    d_model = int(hf.get("n_embd", 768))
    n_inner = hf.get("n_inner")
    if n_inner is not None and int(n_inner) != 4 * d_model:
        raise LMError(f"GPT-2 n_inner={n_inner} is not supported (only 4 * n_embd = {4 * d_model})")
    for flag, wanted in (("scale_attn_weights", True), ("scale_attn_by_inverse_layer_idx", False),
                         ("add_cross_attention", False)):
        if bool(hf.get(flag, wanted)) != wanted:
            raise LMError(f"GPT-2 option {flag}={hf[flag]!r} is not supported")
    try:
        return TransformerConfig(
            vocab_size=int(hf["vocab_size"]),
            context_length=int(hf.get("n_positions", hf.get("n_ctx", 1024))),
            n_layers=int(hf.get("n_layer", 12)),
            n_heads=int(hf.get("n_head", 12)),
            d_model=d_model,
            dropout=0.0,  # imported for inference
            bias=True,
            layer_norm_eps=float(hf.get("layer_norm_epsilon", 1e-5)),
            tie_embeddings=bool(hf.get("tie_word_embeddings", True)),
            activation=_HF_ACTIVATIONS[act],
        )
    except KeyError as exc:
        raise LMError(f"GPT-2 config.json lacks {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        raise LMError(f"GPT-2 config.json has an invalid value: {exc}") from None


def config_to_hf(config: TransformerConfig) -> dict[str, Any]:
    """A `config.json` that `transformers.GPT2LMHeadModel.from_pretrained` accepts for these weights."""
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": config.vocab_size,
        "n_positions": config.context_length,
        "n_ctx": config.context_length,
        "n_embd": config.d_model,
        "n_layer": config.n_layers,
        "n_head": config.n_heads,
        "n_inner": None,
        "activation_function": _OUR_ACTIVATIONS[config.activation],
        "layer_norm_epsilon": config.layer_norm_eps,
        "resid_pdrop": config.dropout,
        "embd_pdrop": config.dropout,
        "attn_pdrop": config.dropout,
        "tie_word_embeddings": config.tie_embeddings,
        "scale_attn_weights": True,
        "use_cache": True,
        "bos_token_id": None,  # our vocabularies have no special tokens: generation never stops early
        "eos_token_id": None,
    }


# -- tensors --------------------------------------------------------------------------------------
def tensors_from_hf(hf: dict[str, torch.Tensor], config: TransformerConfig) -> dict[str, torch.Tensor]:
    """GPT-2 tensor names/layouts -> `TransformerModel.state_tensors()` names/layouts (float32)."""
    out: dict[str, torch.Tensor] = {}
    for name, tensor in hf.items():
        key = name.removeprefix("transformer.")
        if key.endswith((".attn.bias", ".attn.masked_bias")) and tensor.dim() != 1:
            continue  # old checkpoints store the causal mask as a buffer; we build our own
        if key.endswith(_CONV1D):
            tensor = tensor.t()  # Conv1D [in, out] -> Linear [out, in]
        if tensor.is_floating_point():
            tensor = tensor.float()
        out[key] = tensor.contiguous()
    if config.tie_embeddings:
        out.pop("lm_head.weight", None)  # tied: the head is wte.weight
    return out


def tensors_to_hf(model: TransformerModel) -> dict[str, torch.Tensor]:
    """Our weights under GPT-2's names and Conv1D layouts (missing biases written as zeros)."""
    config = model.config
    ours = model.state_tensors()
    out: dict[str, torch.Tensor] = {}
    for name in model.state_dict():
        if name == "lm_head.weight":
            if not config.tie_embeddings:
                out[name] = ours[name].float().contiguous()
            continue
        tensor = ours[name].float()
        if name.endswith(_CONV1D):
            tensor = tensor.t()  # Linear [out, in] -> Conv1D [in, out]
        out["transformer." + name] = tensor.contiguous()
    if not config.bias:  # GPT-2 always has biases; zeros compute the same function
        d = config.d_model
        for i in range(config.n_layers):
            for part, size in (("ln_1", d), ("ln_2", d), ("attn.c_attn", 3 * d), ("attn.c_proj", d),
                               ("mlp.c_fc", 4 * d), ("mlp.c_proj", d)):
                out[f"transformer.h.{i}.{part}.bias"] = torch.zeros(size)
        out["transformer.ln_f.bias"] = torch.zeros(d)
    return out


# -- directories ----------------------------------------------------------------------------------
def _read_safetensors(directory: Path) -> dict[str, torch.Tensor]:
    single, index = directory / "model.safetensors", directory / "model.safetensors.index.json"
    try:
        if single.is_file():
            return load_file(str(single))
        if index.is_file():  # sharded checkpoint: the index maps each tensor to its shard file
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
            tensors: dict[str, torch.Tensor] = {}
            for shard in shards:
                if Path(shard).name != shard:
                    raise LMError(f"safetensors index names a shard outside the directory: {shard!r}")
                tensors.update(load_file(str(directory / shard)))
            return tensors
    except (SafetensorError, OSError, ValueError, KeyError) as exc:
        raise LMError(f"cannot read the safetensors weights in {directory}: {exc}") from None
    pickles = sorted(p.name for p in directory.glob("*.bin")) + sorted(p.name for p in directory.glob("*.pt*"))
    if pickles:
        raise LMError(
            f"{directory} has only {pickles[0]}, a pickle file, which is never loaded (unpickling can run "
            "code); convert it to model.safetensors first (e.g. save_pretrained(..., safe_serialization=True))"
        )
    raise LMError(f"{directory} has no model.safetensors")


def load_gpt2_dir(directory: str | Path, *, need_tokenizer: bool = True) -> GPT2Checkpoint:
    """Load a local GPT-2 checkpoint directory (config.json + model.safetensors + tokenizer.json).

    Without a tokenizer.json: LMError when `need_tokenizer`, else the tokenizer is None.
    """
    directory = Path(directory)
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise LMError(f"{directory} has no config.json: not a Hugging Face checkpoint directory")
    try:
        hf_config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LMError(f"cannot read {config_path}: {exc}") from None
    if not isinstance(hf_config, dict):
        raise LMError(f"{config_path} is not a JSON object")
    config = config_from_hf(hf_config)
    tokenizer = None
    if (directory / "tokenizer.json").is_file():
        # imported here: exporting needs no tokenizer machinery
        from lm.data.tokenizer import Tokenizer

        tokenizer = Tokenizer.load(directory / "tokenizer.json")
        if tokenizer.vocab_size > config.vocab_size:  # fewer is fine: GPT-2 variants pad the embedding
            raise LMError(f"{directory.name}: tokenizer.json has {tokenizer.vocab_size} tokens but the model "
                          f"only {config.vocab_size}; they do not belong together")
    elif need_tokenizer:
        raise LMError(f"{directory} has no tokenizer.json, so its text cannot be encoded")
    model = TransformerModel.from_state(config, tensors_from_hf(_read_safetensors(directory), config))
    model.requires_grad_(False)  # imported for inference
    meta = {
        "format": "hf-gpt2",
        "model": config.to_dict(),
        "tokenizer": {"kind": tokenizer.kind, "vocab_size": tokenizer.vocab_size} if tokenizer else None,
        "hf_config": hf_config,
    }
    return GPT2Checkpoint(model, tokenizer, meta)


HUB_PREFIX = "hf:"  # "hf:gpt2" names a Hugging Face Hub repository explicitly
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")


def hub_name(name: str) -> str | None:
    """The Hugging Face Hub repository that `name` asks for, or None.

    "hf:ID" always means the Hub; a bare "owner/name" (e.g. "openai-community/gpt2") does when no such
    local directory exists. Anything else is a registry name or a local path.
    """
    name = str(name).strip()
    if name.startswith(HUB_PREFIX):
        repo = name[len(HUB_PREFIX):].strip()
        if not repo or not (_HUB_ID.fullmatch(repo) or re.fullmatch(r"[A-Za-z0-9][\w.-]*", repo)):
            raise LMError(f"{name!r} is not a Hugging Face Hub name (expected hf:NAME or hf:OWNER/NAME)")
        return repo
    if _HUB_ID.fullmatch(name) and not Path(name).expanduser().exists():
        return name
    return None


def _hub_error(repo: str, exc: Exception) -> LMError:
    kind = type(exc).__name__
    if "LocalEntryNotFound" in kind or "Connect" in kind or "Connect" in str(exc):
        reason = "offline or the Hub is unreachable, and it is not in the local Hugging Face cache"
    else:  # unknown repository, gated, bad name, ...
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = (lines[0].removeprefix("Got: ") if lines else kind)[:160]
    return LMError(f"cannot download {repo!r} from the Hugging Face Hub: {reason}")


def download_gpt2(repo: str) -> Path:
    """Fetch a GPT-2 repository's safetensors, config and tokenizer with `huggingface_hub` (or its cache).

    `config.json` comes first, so a repository of another architecture is refused before any weights are
    fetched (they can be gigabytes).
    """
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise LMError(f"cannot download {repo!r}: huggingface_hub is not installed "
                      "(pip install huggingface_hub, or pass a local directory)") from None
    try:
        # (snapshot_download fails at once when the Hub is unreachable; hf_hub_download retries for ~25 s)
        config_path = Path(snapshot_download(repo_id=repo, allow_patterns=["config.json"])) / "config.json"
    except Exception as exc:  # noqa: BLE001 - offline, unknown repo, bad name, ...: all mean "not available" to the user
        raise _hub_error(repo, exc) from None
    try:
        model_type = json.loads(Path(config_path).read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        raise LMError(f"{repo!r} on the Hugging Face Hub has no readable config.json") from None
    if model_type != "gpt2":
        raise LMError(f"{repo!r} is a {model_type or 'unknown'} model; only GPT-2-family checkpoints load here")
    try:
        return Path(snapshot_download(repo_id=repo, allow_patterns=DOWNLOAD_FILES + ["model-*.safetensors"]))
    except Exception as exc:  # noqa: BLE001
        raise _hub_error(repo, exc) from None


def load_gpt2(path_or_name: str | Path, *, need_tokenizer: bool = True) -> GPT2Checkpoint:
    """A local directory, else a Hugging Face Hub name fetched with `huggingface_hub` (safetensors only).

    Returns `GPT2Checkpoint(model, tokenizer, meta)`; every failure is an LMError.
    """
    path = Path(path_or_name).expanduser()
    if path.is_dir():
        return load_gpt2_dir(path, need_tokenizer=need_tokenizer)
    repo = hub_name(str(path_or_name))
    if repo is None:
        repo = str(path_or_name)
        if repo.startswith((".", "/", "~")) or "/" in repo or "\\" in repo:
            raise LMError(f"no local directory {repo!r}")
    return load_gpt2_dir(download_gpt2(repo), need_tokenizer=need_tokenizer)


def export_gpt2(model: TransformerModel, directory: str | Path) -> Path:
    """Write `config.json` + `model.safetensors` that `transformers` loads as a GPT2LMHeadModel."""
    if not isinstance(model, TransformerModel):
        raise LMError(f"only Transformer models export to GPT-2 format, not {type(model).__name__}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.cpu() for k, v in tensors_to_hf(model).items()}, str(directory / "model.safetensors"),
              metadata={"format": "pt"})
    (directory / "config.json").write_text(json.dumps(config_to_hf(model.config), indent=2), encoding="utf-8")
    return directory


__all__ = ["GPT2Checkpoint", "config_from_hf", "config_to_hf", "export_gpt2", "load_gpt2", "load_gpt2_dir",
           "tensors_from_hf", "tensors_to_hf"]
