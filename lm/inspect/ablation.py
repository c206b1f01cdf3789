"""Ablation: switch off Transformer heads, a layer's attention or MLP, or RNN units, per request.

The shared, cached model is never written to (no hooks, no attribute writes, no in-place weight edits):

- a Transformer keeps its weights; `AblatedTransformer` runs them through the one block function of
  `lm.models.transformer.block` with a `BlockAblation` per layer (multipliers on the heads, on the attention's
  write, on the MLP's write). A switched-off head writes nothing into its layer's output projection; a
  switched-off attention or MLP adds nothing to the residual stream (biases included);
- an RNN unit is switched off by zeroing every weight that reads its hidden state (its own layer's recurrent
  weights, the next layer's input weights or the head), which is exactly h = 0 for that unit wherever it is
  read. That happens in a model of its own built from a copy of the weights (`rnn_without_units`: 13-20 ms
  for the shipped LSTMs), so every path of the RNN, the fused ones included, runs on it unchanged.

Either way the result is a `LanguageModel`, so generation, scoring and attribution run on it as on any model,
and switching off nothing gives exactly the model's own numbers. The helpers `embed`, `run_blocks` and
`unembed` are the Transformer's forward pass in pieces, shared by attribution, the logit lens and ablation.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Sequence

import torch

from lm.device import check_ids
from lm.errors import LMError
from lm.i18n import N_, _
from lm.models import FAMILIES
from lm.models.base import LanguageModel
from lm.models.transformer.block import BlockAblation, cached_attention, causal_attention, torch_block
from lm.models.transformer.model import KVCache


@dataclasses.dataclass(frozen=True)
class Ablation:
    """What to switch off: Transformer heads (layer, head), whole attentions or MLPs (layer), RNN units
    (layer, unit). Hashable and ordered, so equal sets are equal ablations."""

    heads: tuple[tuple[int, int], ...] = ()
    attention: tuple[int, ...] = ()
    mlp: tuple[int, ...] = ()
    units: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        for name in ("heads", "attention", "mlp", "units"):
            object.__setattr__(self, name, tuple(sorted(set(getattr(self, name)))))

    def __bool__(self) -> bool:
        return bool(self.heads or self.attention or self.mlp or self.units)

    def describe(self) -> str:
        """One line for captions and the CLI ("nothing" when empty)."""
        parts = []
        if self.heads:
            parts.append("heads " + ", ".join(f"{layer}.{head}" for layer, head in self.heads))
        if self.attention:
            parts.append("attention of layer " + ", ".join(map(str, self.attention)))
        if self.mlp:
            parts.append("MLP of layer " + ", ".join(map(str, self.mlp)))
        if self.units:
            parts.append("units " + ", ".join(f"{layer}.{unit}" for layer, unit in self.units))
        return "; ".join(parts) or "nothing"

    def to_json(self) -> dict[str, Any]:
        return {"heads": [list(h) for h in self.heads], "attention": list(self.attention), "mlp": list(self.mlp),
                "units": [list(u) for u in self.units]}


def family_label(model) -> str:
    """How messages name a model's family ("n-gram", "RNN", "Transformer")."""
    return FAMILIES[model.family].label if model.family in FAMILIES else model.family


_ITEM = re.compile(r"^\s*(\d+)\s*\.\s*(\d+|attn|mlp)\s*$")
_UNREADABLE = {  # what `_items` says of an item it cannot read, by what it reads
    "head": N_("cannot read {item} as a head: write LAYER.HEAD (or LAYER.attn, LAYER.mlp for a whole attention or "
               "MLP), e.g. 0.1 (both counted from 0)"),
    "unit": N_("cannot read {item} as a unit: write LAYER.UNIT, e.g. 0.1 (both counted from 0)")}


def _items(spec: str, what: str, parts: bool) -> list[tuple[int, int | str]]:
    """(layer, index) of every "L.I" in a comma-separated `spec` (`what`: "head" or "unit"); with `parts`, also
    (layer, "attn" | "mlp")."""
    out: list[tuple[int, int | str]] = []
    for item in spec.split(","):
        if not item.strip():
            continue
        match = _ITEM.match(item)
        if not match or (not parts and not match.group(2).isdigit()):
            raise LMError(_UNREADABLE[what], item=repr(item.strip()))
        index = match.group(2)
        out.append((int(match.group(1)), int(index) if index.isdigit() else index))
    return out


def parse_ablation(model: LanguageModel, heads: str | None = None, units: str | None = None) -> Ablation:
    """An `Ablation` from the CLI's spellings, checked against `model` (LMError naming the first thing out of
    range, or a family with nothing of that kind): heads "L.H,L.H" or "all", where "L.attn" and "L.mlp" switch
    off layer L's whole attention or MLP; units "L.U,L.U"."""
    items: list[tuple[int, int | str]] = []
    if heads and heads.strip().lower() == "all":
        if model.family != "transformer":
            raise LMError("{family} models have no attention heads to switch off", family=_(family_label(model)))
        c = model.config
        items = [(layer, head) for layer in range(c.n_layers) for head in range(c.n_heads)]
    elif heads:
        items = _items(heads, "head", parts=True)
    ablation = Ablation(heads=tuple((layer, i) for layer, i in items if isinstance(i, int)),
                        attention=tuple(layer for layer, i in items if i == "attn"),
                        mlp=tuple(layer for layer, i in items if i == "mlp"),
                        units=tuple(_items(units or "", "unit", parts=False)))
    check_ablation(model, ablation)
    return ablation


def ablation_spec(ablation: Ablation) -> tuple[str, str]:
    """(heads, units) in the spellings `parse_ablation` reads back into the same ablation (URLs, cache keys)."""
    heads = [f"{layer}.{head}" for layer, head in ablation.heads] + [f"{layer}.attn" for layer in ablation.attention]
    heads += [f"{layer}.mlp" for layer in ablation.mlp]
    return ",".join(heads), ",".join(f"{layer}.{unit}" for layer, unit in ablation.units)


def check_ablation(model: LanguageModel, ablation: Ablation) -> None:
    """LMError if `ablation` names anything `model` does not have."""
    c = model.config
    if (ablation.heads or ablation.attention or ablation.mlp) and model.family != "transformer":
        raise LMError("{family} models have no attention heads or MLPs to switch off", family=_(family_label(model)))
    if ablation.units and model.family != "rnn":
        raise LMError("{family} models have no recurrent units to switch off", family=_(family_label(model)))
    layers = getattr(c, "n_layers", 0)
    for layer, head in ablation.heads:
        if not (0 <= layer < layers and 0 <= head < c.n_heads):
            raise LMError("head {layer}.{head} does not exist: the model has {layers} layers of {heads} heads",
                          layer=layer, head=head, layers=layers, heads=c.n_heads)
    for layer in (*ablation.attention, *ablation.mlp):
        if not 0 <= layer < layers:
            raise LMError("layer {layer} does not exist: the model has {layers} layers", layer=layer, layers=layers)
    for layer, unit in ablation.units:
        if not (0 <= layer < layers and 0 <= unit < c.d_hidden):
            raise LMError("unit {layer}.{unit} does not exist: the model has {layers} layers of {units} units",
                          layer=layer, unit=unit, layers=layers, units=c.d_hidden)


# -- the Transformer in pieces (eval mode: no dropout) ------------------------------------------------------------
def embed(model, ids: torch.Tensor, pos: int = 0) -> torch.Tensor:
    """Token plus position embeddings of ids [..., T] starting at position `pos` -> [..., T, D]."""
    return model.wte(ids) + model.wpe.weight[pos:pos + ids.shape[-1]]


def run_blocks(model, x: torch.Tensor, attend, states: Sequence | None = None,
               masks: Sequence[BlockAblation | None] | None = None, captures: Sequence[dict] | None = None,
               keep: list | None = None) -> torch.Tensor:
    """Every block over the residual stream x [..., T, D]; `states[i]`, `masks[i]`, `captures[i]` go to layer i's
    block; `keep`, when given, receives the residual stream after each layer."""
    c = model.config
    run = torch_block(c.d_model, c.layer_norm_eps, c.activation, None)
    for i, block in enumerate(model.h):
        x = run(x, block.weights(), attend, None if states is None else states[i],
                None if captures is None else captures[i], None if masks is None else masks[i])
        if keep is not None:
            keep.append(x)
    return x


def unembed(model, x: torch.Tensor) -> torch.Tensor:
    """Logits from the residual stream: the final LayerNorm, then the head."""
    return model.lm_head(model.ln_f(x))


def block_ablations(model, ablation: Ablation) -> list[BlockAblation | None]:
    """One `BlockAblation` per layer (None where the layer keeps everything), on the model's device and dtype."""
    c = model.config
    w = model.wte.weight
    masks: list[BlockAblation | None] = []
    for layer in range(c.n_layers):
        off = [head for lay, head in ablation.heads if lay == layer]
        if not off and layer not in ablation.attention and layer not in ablation.mlp:
            masks.append(None)
            continue
        keep = torch.ones(c.n_heads, c.d_model // c.n_heads, dtype=w.dtype, device=w.device)
        keep[off] = 0.0
        masks.append(BlockAblation(keep.reshape(c.d_model), 0.0 if layer in ablation.attention else 1.0,
                                   0.0 if layer in ablation.mlp else 1.0))
    return masks


class AblatedTransformer(LanguageModel):
    """A Transformer with some heads, attentions or MLPs switched off, on the shared model's own weights.

    Its state is a `KVCache` without the NumPy step (which knows no masks); a step is a prefill of one token.
    """

    def __init__(self, model, ablation: Ablation):
        check_ablation(model, ablation)
        self.base, self.ablation, self.config = model, ablation, model.config
        self.masks = block_ablations(model, ablation)

    @property
    def device(self) -> torch.device:
        return self.base.device

    @property
    def context_length(self) -> int:
        return self.base.context_length

    @property
    def state_capacity(self) -> int:
        return self.base.state_capacity

    def forward_embeddings(self, x: torch.Tensor) -> torch.Tensor:
        """The residual stream after the last block for token embeddings x [..., T, D] (positions added here)."""
        return run_blocks(self.base, x + self.base.wpe.weight[:x.shape[-2]], causal_attention(self.config.n_heads, 0.0),
                          masks=self.masks)

    def logits(self, ids: torch.Tensor) -> torch.Tensor:
        ids = check_ids(ids, self.config.vocab_size, dims=2, max_length=self.config.context_length)
        return unembed(self.base, self.forward_embeddings(self.base.wte(ids)))

    def start(self, batch_size: int) -> KVCache:
        return KVCache(self.base.start(batch_size).kv, 0)

    @torch.inference_mode()
    def prefill(self, ids: torch.Tensor, cache: KVCache) -> tuple[torch.Tensor, KVCache]:
        ids = check_ids(ids, self.config.vocab_size, dims=2)
        pos = self.base._check_room(cache, ids.shape[1])
        x = run_blocks(self.base, embed(self.base, ids, pos), cached_attention(self.config.n_heads, pos), cache.kv,
                       self.masks)
        cache.position = pos + ids.shape[1]
        return unembed(self.base, x[:, -1]), cache  # [B, V]

    def step(self, tokens: torch.Tensor, cache: KVCache) -> tuple[torch.Tensor, KVCache]:
        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 1:
            raise LMError("step needs one token id per row")
        return self.prefill(tokens[:, None], cache)

    def trace(self, ids: torch.Tensor):
        raise LMError("trace the model itself: an ablated view only runs it (see lm.inspect.lens for its layers)")

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return self.base.state_tensors()

    @classmethod
    def from_state(cls, config, tensors):
        raise LMError("an ablated view is made from a loaded model with `ablated(model, ablation)`")


def rnn_without_units(model, units: Sequence[tuple[int, int]]) -> LanguageModel:
    """A model of its own whose units `(layer, unit)` are silent: every weight reading their hidden state is
    zero (the layer's recurrent weights for all gates, the next layer's input weights or the head). The shared
    model's tensors are only read: the changed matrices are zeroed in copies, and the new model copies all."""
    c = model.config
    tensors, copied = dict(model.state_tensors()), set()
    for layer, unit in units:
        reader = f"rnn.weight_ih_l{layer + 1}" if layer + 1 < c.n_layers else "head.weight"
        for name in (f"rnn.weight_hh_l{layer}", reader):
            if name not in copied:  # state_tensors() shares the model's memory: write only into a copy
                tensors[name] = tensors[name].clone()
                copied.add(name)
            tensors[name][:, unit] = 0.0
    copy = type(model).from_state(c, tensors).to(model.device)
    copy.requires_grad_(False)
    return copy


def ablated(model: LanguageModel, ablation: Ablation | None) -> LanguageModel:
    """`model` with `ablation` switched off, as a `LanguageModel` (the model itself for an n-gram, which has
    nothing to switch off, and for an empty ablation of an RNN: its copy would equal it bit for bit)."""
    ablation = ablation or Ablation()
    check_ablation(model, ablation)
    if isinstance(model, AblatedTransformer):
        raise LMError("ablate the model itself, not an ablated view of it")
    if model.family == "transformer":
        return AblatedTransformer(model, ablation)
    if model.family == "rnn" and ablation.units:
        return rnn_without_units(model, ablation.units)
    return model


__all__ = ["Ablation", "AblatedTransformer", "ablated", "ablation_spec", "block_ablations", "check_ablation", "embed",
           "family_label", "parse_ablation", "rnn_without_units", "run_blocks", "unembed"]
