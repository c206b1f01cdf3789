"""Recurrent language models (Elman RNN, GRU, LSTM) behind the `LanguageModel` contract.

One set of weights, two ways to run it:

- the fast path uses PyTorch's fused `nn.RNN` / `nn.GRU` / `nn.LSTM` (one call for a whole batch of
  sequences in training and scoring, one call per token in generation, where the state carries everything
  the model remembers, so a step never re-reads the prompt);
- the inspection path, `trace`, re-runs the same `weight_ih_l{k}` / `weight_hh_l{k}` / biases one time step
  at a time with every gate written out, in PyTorch's documented gate order (LSTM: i, f, g, o; GRU: r, z, n).
  The tests check that both paths agree, so what the app shows is what the model computes.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from lm.device import build_with_weights, check_ids, module_device
from lm.errors import LMError
from lm.models.base import LanguageModel, ModelConfig
from lm.models.trace import RecurrentTrace

CELLS = ("rnn", "gru", "lstm")
_FUSED = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
# ATen's single-step kernels over the same weights. A one-token call of the fused CPU module goes through a
# oneDNN primitive whose per-call setup costs milliseconds; these cells take microseconds.
_CELL = {"rnn": torch.rnn_tanh_cell, "gru": torch.gru_cell, "lstm": torch.lstm_cell}
_FUSED_PREFILL_MIN = 8  # shorter prompts are cheaper to step through than one fused call's fixed setup
STATE_NAMES = {  # what `trace` reports per cell, in this order
    "rnn": ("hidden",),
    "gru": ("reset", "update", "candidate", "hidden"),
    "lstm": ("input", "forget", "cell_candidate", "output", "cell", "hidden"),
}


def _whole(name: str, value: Any, low: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise LMError(f"{name} must be a whole number >= {low}, not {value!r}")


@dataclasses.dataclass
class RNNConfig(ModelConfig):
    """Embedding -> `n_layers` recurrent layers of `d_hidden` units -> linear head over the vocabulary."""

    family: ClassVar[str] = "rnn"
    cell: str = "lstm"  # "rnn" (Elman, tanh) | "gru" | "lstm"
    n_layers: int = 2
    d_embed: int = 64
    d_hidden: int = 256
    dropout: float = 0.0  # on the embeddings, between layers and before the head; training only

    def __post_init__(self) -> None:
        _whole("vocab_size", self.vocab_size)
        if self.cell not in CELLS:
            raise LMError(f"unknown RNN cell {self.cell!r} (choose from {', '.join(CELLS)})")
        _whole("n_layers", self.n_layers)
        _whole("d_embed", self.d_embed)
        _whole("d_hidden", self.d_hidden)
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)):
            raise LMError(f"dropout must be a number in [0, 1), not {self.dropout!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise LMError(f"dropout must be in [0, 1), not {self.dropout!r}")
        self.dropout = float(self.dropout)

    def describe(self) -> str:
        return f"{self.cell.upper()} {self.n_layers}x{self.d_hidden}"


class RNNModel(nn.Module, LanguageModel):
    """A recurrent LM. State for `step`: h [layers, B, hidden] (LSTM: the tuple (h, c)), owned by the caller.

    Models are built in eval mode (they are served read-only); a trainer calls `.train()` itself. Weights are
    drawn from `generator` when one is given, so a seeded run is reproducible without any global seed.
    """

    def __init__(self, config: RNNConfig, generator: torch.Generator | None = None):
        super().__init__()
        if not isinstance(config, RNNConfig):
            raise LMError(f"RNNModel needs an RNNConfig, not {type(config).__name__}")
        self.config = config
        c = config
        extra = {"nonlinearity": "tanh"} if c.cell == "rnn" else {}
        self.embed = nn.Embedding(c.vocab_size, c.d_embed)
        self.rnn = _FUSED[c.cell](
            c.d_embed, c.d_hidden, num_layers=c.n_layers, batch_first=True,
            dropout=c.dropout if c.n_layers > 1 else 0.0, **extra,
        )
        self.drop = nn.Dropout(c.dropout)
        self.head = nn.Linear(c.d_hidden, c.vocab_size)
        self.reset_parameters(generator)
        self.eval()

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """PyTorch's default scheme (uniform +-1/sqrt(hidden) for the recurrent and head weights), seeded."""
        bound = 1.0 / math.sqrt(self.config.d_hidden)
        self.embed.weight.normal_(0.0, 1.0, generator=generator)
        for param in [*self.rnn.parameters(), *self.head.parameters()]:
            param.uniform_(-bound, bound, generator=generator)

    # -- plumbing ---------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return module_device(self)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.logits(ids)

    def _layer_weights(self, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """weight_ih, weight_hh, bias_ih, bias_hh of layer k (a plain dict lookup: this runs every step)."""
        params = self.rnn._parameters
        return tuple(params[f"{name}_l{k}"] for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))

    # -- full-sequence path -----------------------------------------------------------------------
    def logits(self, ids: torch.Tensor) -> torch.Tensor:
        ids = check_ids(ids, self.config.vocab_size, dims=2)
        x = self.drop(self.embed(ids))  # [B, T, E]
        out, _ = self.rnn(x)  # [B, T, H]: top layer's hidden state at every step
        return self.head(self.drop(out))  # [B, T, V]

    # -- incremental path -------------------------------------------------------------------------
    @torch.inference_mode()
    def start(self, batch_size: int) -> Any:
        _whole("batch_size", batch_size)
        c = self.config
        param = self.head.weight
        h = torch.zeros(c.n_layers, batch_size, c.d_hidden, dtype=param.dtype, device=param.device)
        return (h, h.clone()) if c.cell == "lstm" else h

    @torch.inference_mode()
    def step(self, tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """One token per row through every layer's cell (the fused module's weights, one time step)."""
        cell = _CELL[self.config.cell]
        x = F.embedding(tokens, self.embed.weight)  # [B, E]
        if self.config.cell == "lstm":
            h, c = state  # each [L, B, H]
            hs, cs = [], []
            for k in range(self.config.n_layers):
                x, c_k = cell(x, (h[k], c[k]), *self._layer_weights(k))  # each [B, H]
                hs.append(x)
                cs.append(c_k)
            new_state = (torch.stack(hs), torch.stack(cs))  # each [L, B, H]
        else:
            hs = []
            for k in range(self.config.n_layers):
                x = cell(x, state[k], *self._layer_weights(k))  # [B, H]
                hs.append(x)
            new_state = torch.stack(hs)  # [L, B, H]
        return F.linear(x, self.head.weight, self.head.bias), new_state  # [B, V]

    @torch.inference_mode()
    def prefill(self, ids: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        ids = check_ids(ids, self.config.vocab_size, dims=2)
        if ids.shape[1] < _FUSED_PREFILL_MIN:
            return super().prefill(ids, state)  # one step per token
        out, state = self.rnn(self.embed(ids), state)  # out [B, T, H]: the whole prompt in one fused call
        return self.head(out[:, -1]), state  # [B, V]

    # -- inspection path --------------------------------------------------------------------------
    @torch.inference_mode()
    def trace(self, ids: torch.Tensor) -> RecurrentTrace:
        """Every gate of every layer at every step, from the fused module's own weights (no dropout)."""
        ids = check_ids(ids, self.config.vocab_size, dims=1)
        run_layer = {"rnn": _trace_rnn, "gru": _trace_gru, "lstm": _trace_lstm}[self.config.cell]
        x = self.embed(ids)  # [T, E]
        per_layer: list[dict[str, torch.Tensor]] = []
        for k in range(self.config.n_layers):
            states = run_layer(x, *self._layer_weights(k))  # name -> [T, H]
            per_layer.append(states)
            x = states["hidden"]  # this layer's h is the next layer's input
        logits = self.head(x)  # [T, V]
        names = STATE_NAMES[self.config.cell]
        stacked = {n: torch.stack([layer[n] for layer in per_layer]).cpu() for n in names}  # [L, T, H]
        return RecurrentTrace(cell=self.config.cell, states=stacked, logits=logits.float().cpu())

    # -- persistence ------------------------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {k: v.detach() for k, v in self.state_dict().items()}

    @classmethod
    def from_state(cls, config: ModelConfig, tensors: dict[str, torch.Tensor]) -> RNNModel:
        if not isinstance(config, RNNConfig):
            raise LMError(f"RNNModel needs an RNNConfig, not {type(config).__name__}")
        return build_with_weights(cls, config, tensors)


# -- the recurrences written out, one layer at a time -----------------------------------------------
# Each takes the layer input x [T, in] and PyTorch's weights (w_ih [G*H, in], w_hh [G*H, H], biases [G*H])
# and returns name -> [T, H]. Input projections for all steps are one matmul; only the recurrence loops.


def _trace_lstm(x, w_ih, w_hh, b_ih, b_hh) -> dict[str, torch.Tensor]:
    hidden = w_hh.shape[1]
    xp = F.linear(x, w_ih, b_ih + b_hh)  # [T, 4H]: W_i x_t + b_i + b_h for every t at once
    h = x.new_zeros(hidden)
    c = x.new_zeros(hidden)
    pre, cs, hs = [], [], []
    for t in range(x.shape[0]):
        z = torch.addmv(xp[t], w_hh, h)  # [4H] pre-activations, gate order i, f, g, o
        act = torch.sigmoid(z)  # i, f, o use sigmoid (the g slice is replaced by tanh below)
        i, f, o = act[:hidden], act[hidden:2 * hidden], act[3 * hidden:]
        g = torch.tanh(z[2 * hidden:3 * hidden])
        c = torch.addcmul(f * c, i, g)  # c_t = f * c_{t-1} + i * g
        h = o * torch.tanh(c)  # h_t = o * tanh(c_t)
        pre.append(z)
        cs.append(c)
        hs.append(h)
    z = torch.stack(pre)  # [T, 4H]
    zi, zf, zg, zo = z.chunk(4, dim=1)  # each [T, H]
    return {
        "input": torch.sigmoid(zi), "forget": torch.sigmoid(zf), "cell_candidate": torch.tanh(zg),
        "output": torch.sigmoid(zo), "cell": torch.stack(cs), "hidden": torch.stack(hs),
    }


def _trace_gru(x, w_ih, w_hh, b_ih, b_hh) -> dict[str, torch.Tensor]:
    hidden = w_hh.shape[1]
    xp = F.linear(x, w_ih, b_ih)  # [T, 3H]: W_ir x + b_ir | W_iz x + b_iz | W_in x + b_in
    h = x.new_zeros(hidden)
    rs, zs, ns, hs = [], [], [], []
    for t in range(x.shape[0]):
        hp = torch.addmv(b_hh, w_hh, h)  # [3H]: W_hr h + b_hr | W_hz h + b_hz | W_hn h + b_hn
        rz = torch.sigmoid(xp[t, :2 * hidden] + hp[:2 * hidden])  # [2H]: reset r, update z
        r, z = rz[:hidden], rz[hidden:]
        n = torch.tanh(torch.addcmul(xp[t, 2 * hidden:], r, hp[2 * hidden:]))  # n = tanh(.. + r * (W_hn h + b_hn))
        h = torch.lerp(n, h, z)  # h_t = (1 - z) * n + z * h_{t-1}
        rs.append(r)
        zs.append(z)
        ns.append(n)
        hs.append(h)
    return {"reset": torch.stack(rs), "update": torch.stack(zs), "candidate": torch.stack(ns),
            "hidden": torch.stack(hs)}


def _trace_rnn(x, w_ih, w_hh, b_ih, b_hh) -> dict[str, torch.Tensor]:
    xp = F.linear(x, w_ih, b_ih + b_hh)  # [T, H]
    h = x.new_zeros(w_hh.shape[1])
    hs = []
    for t in range(x.shape[0]):
        h = torch.tanh(torch.addmv(xp[t], w_hh, h))  # h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
        hs.append(h)
    return {"hidden": torch.stack(hs)}


__all__ = ["CELLS", "STATE_NAMES", "RNNConfig", "RNNModel"]
