"""Sampling knobs as pure functions on logits, and the settings object that carries them.

The knobs are applied in a fixed, documented order — the order the Playground's step mode draws them in:

    1. valid UTF-8         (byte-level tokenizers only: cut the tokens that cannot continue valid UTF-8
                            from the bytes written so far, `lm.data.utf8.Utf8Mask`; first, so that the
                            knobs below choose among tokens that can be written, and never all cut)
    2. repetition penalty  (CTRL-style: a seen token's logit is divided by the penalty if positive,
                            multiplied if negative)
    3. temperature         (logits / T; T = 0 means greedy: only the arg-max survives)
    4. top-k               (keep the k highest logits, k clamped to the vocabulary; ties at the k-th
                            value are broken by token id, as `torch.topk` does, so exactly min(k, V) survive)
    5. top-p (nucleus)     (keep the smallest set of highest-probability tokens whose mass is >= p)
    6. min-p               (drop tokens whose probability is below min_p x the top token's probability)

Every function takes logits `[..., V]` and returns logits of the same shape, with `-inf` for cut tokens, so
the softmax of the result is the distribution that is sampled. Probabilities are always computed in log
space (`log_softmax`), so tiny temperatures cannot overflow. Nothing here is random: `draw_one` takes the
uniform number, which `lm.run.generate` draws from a seeded `torch.Generator`.

The UTF-8 stage needs to know which tokens are allowed (`allowed`, bool [..., V]: what the caller's decoder
state permits); without it, or with `valid_utf8` off, the stage is skipped. If a row would have no token
with any probability left, it is left as it was: the text may then show a byte marker, but sampling never
runs out of tokens.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch

from lm.errors import LMError

MAX_NEW_TOKENS = 5000
MAX_SAMPLES = 16
MIN_TEMPERATURE = 1e-4


@dataclasses.dataclass(frozen=True)
class SamplingSettings:
    """Everything that decides what `generate` produces, validated once on creation."""

    temperature: float = 1.0
    top_k: int = 0  # 0 = off
    top_p: float = 1.0  # 1.0 = off
    min_p: float = 0.0  # 0.0 = off
    repetition_penalty: float = 1.0  # 1.0 = off
    max_new_tokens: int = 200
    seed: int = 0
    samples: int = 1
    stop: tuple[str, ...] = ()
    valid_utf8: bool = True  # byte-level models: never write bytes that cannot become valid UTF-8

    def __post_init__(self) -> None:
        def number(name: str, cast: type) -> Any:
            value = getattr(self, name)
            if isinstance(value, bool):
                raise LMError("{name} must be a number, got {value!r}", name=name, value=value)
            try:
                converted = cast(value)
                whole = cast is not int or converted == float(value)  # float() may fail too: b"1", 10**400
            except (TypeError, ValueError, OverflowError):
                raise LMError("{name} must be a number, got {value!r}", name=name, value=value) from None
            if cast is float and not math.isfinite(converted):
                raise LMError("{name} must be a finite number, got {value!r}", name=name, value=value)
            if not whole:
                raise LMError("{name} must be a whole number, got {value!r}", name=name, value=value)
            object.__setattr__(self, name, converted)
            return converted

        if not 0.0 <= number("temperature", float) <= 10.0:
            raise LMError("temperature must be between 0 and 10 (0 = greedy), got {value}", value=self.temperature)
        if number("top_k", int) < 0:
            raise LMError("top_k must be 0 (off) or a positive number of tokens, got {value}", value=self.top_k)
        if not 0.0 < number("top_p", float) <= 1.0:
            raise LMError("top_p must be in (0, 1] (1 = off), got {value}", value=self.top_p)
        if not 0.0 <= number("min_p", float) < 1.0:
            raise LMError("min_p must be in [0, 1) (0 = off), got {value}", value=self.min_p)
        if not 1.0 <= number("repetition_penalty", float) <= 10.0:
            raise LMError("repetition_penalty must be between 1 (off) and 10, got {value}",
                          value=self.repetition_penalty)
        if not 1 <= number("max_new_tokens", int) <= MAX_NEW_TOKENS:
            raise LMError("max_new_tokens must be between 1 and {most}, got {value}", most=MAX_NEW_TOKENS,
                          value=self.max_new_tokens)
        if not 0 <= number("seed", int) < 2**63:
            raise LMError("seed must be a non-negative whole number, got {value}", value=self.seed)
        if not 1 <= number("samples", int) <= MAX_SAMPLES:
            raise LMError("samples must be between 1 and {most}, got {value}", most=MAX_SAMPLES, value=self.samples)
        try:
            stop = (self.stop,) if isinstance(self.stop, str) else () if self.stop is None else tuple(self.stop)
        except TypeError:
            raise LMError("stop must be text or a list of texts, got {value!r}", value=self.stop) from None
        if any(not isinstance(s, str) or not s for s in stop):
            raise LMError("stop strings must be non-empty text")
        object.__setattr__(self, "stop", stop)
        if not isinstance(self.valid_utf8, (bool, np.bool_)):
            raise LMError("valid_utf8 must be true or false, got {value!r}", value=self.valid_utf8)
        object.__setattr__(self, "valid_utf8", bool(self.valid_utf8))

    def replace(self, **changes: Any) -> "SamplingSettings":
        return dataclasses.replace(self, **changes)

    def generator(self) -> torch.Generator:
        """A fresh generator seeded from `seed`: the only source of randomness for one request."""
        return torch.Generator().manual_seed(self.seed)

    # -- as text ----------------------------------------------------------------------------------------
    def to_query(self) -> dict[str, str]:
        """The settings that differ from the defaults, as text (the CLI's `--json` output records them)."""
        default = SamplingSettings()
        out: dict[str, str] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value != getattr(default, field.name):
                out[field.name] = _join_stops(value) if field.name == "stop" else str(value)
        return out


_STOP_SEP = "\x1f"  # joins the stop strings in one value; escaped (with "\\") inside a stop string


def _join_stops(stops: tuple[str, ...]) -> str:
    return _STOP_SEP.join(s.replace("\\", "\\\\").replace(_STOP_SEP, "\\u001f") for s in stops)


# -- the knobs, each a pure function ----------------------------------------------------------------
def apply_valid_utf8(logits: torch.Tensor, allowed: torch.Tensor | np.ndarray | None) -> torch.Tensor:
    """Cut the tokens `allowed` (bool, broadcastable to `logits`) leaves out; a row that would keep no
    finite logit is left unchanged."""
    if allowed is None:
        return logits
    if isinstance(allowed, np.ndarray):
        allowed = torch.from_numpy(allowed.copy())  # a copy: the cached masks are read-only
    allowed = allowed.to(device=logits.device, dtype=torch.bool)
    cut = logits.masked_fill(~allowed, -math.inf)
    alive = torch.isfinite(cut).any(-1, keepdim=True)
    return torch.where(alive, cut, logits)


def apply_repetition_penalty(logits: torch.Tensor, history: torch.Tensor | None, penalty: float) -> torch.Tensor:
    """Discourage tokens already in `history` (LongTensor [B, T] or [T]): CTRL's rule."""
    if penalty == 1.0 or history is None or history.numel() == 0:
        return logits
    history = history.reshape(logits.shape[:-1] + (-1,)) if logits.dim() > 1 else history.reshape(-1)
    seen = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, history.clamp(0, logits.shape[-1] - 1), True)
    penalised = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, penalised, logits)


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """logits / T; T = 0 keeps only the arg-max (greedy decoding).

    Positive temperatures below MIN_TEMPERATURE act as MIN_TEMPERATURE: dividing by a denormal would turn
    logits into inf/nan, and the distribution is already one-hot long before that.
    """
    if temperature == 0.0:
        keep = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, logits.argmax(-1, keepdim=True), True)
        return logits.masked_fill(~keep, -math.inf)
    return logits / max(temperature, MIN_TEMPERATURE)


def apply_top_k(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep exactly min(k, V) highest logits (ties broken by token id); k = 0 is off."""
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    # a stable sort, not torch.topk: topk does not promise which of several equal logits it keeps
    top = torch.sort(logits, dim=-1, descending=True, stable=True).indices[..., :k]
    keep = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, top, True)
    return logits.masked_fill(~keep, -math.inf)


def apply_top_p(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose probability mass is >= p; p = 1 is off."""
    if p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True, stable=True)
    probs = torch.softmax(sorted_logits.double(), dim=-1)
    mass_before = probs.cumsum(-1) - probs  # mass of the tokens ranked above each one
    keep_sorted = mass_before < p  # the first token is always kept
    keep = torch.zeros_like(keep_sorted).scatter_(-1, order, keep_sorted)
    return logits.masked_fill(~keep, -math.inf)


def apply_min_p(logits: torch.Tensor, min_p: float) -> torch.Tensor:
    """Drop tokens with probability below min_p x the top probability; 0 is off."""
    if min_p <= 0.0:
        return logits
    logprobs = torch.log_softmax(logits.double(), dim=-1)
    threshold = logprobs.max(-1, keepdim=True).values + math.log(min_p)
    return logits.masked_fill(logprobs < threshold, -math.inf)


def _stages(logits: torch.Tensor, settings: SamplingSettings, history: torch.Tensor | None, allowed=None):
    """Yield (stage name, logits after it) in the documented order (float64, as `process_rows`)."""
    logits = logits.double()
    yield "model", logits
    if settings.valid_utf8 and allowed is not None:
        logits = apply_valid_utf8(logits, allowed)
        yield "valid UTF-8", logits
    if settings.repetition_penalty != 1.0:
        logits = apply_repetition_penalty(logits, history, settings.repetition_penalty)
        yield "repetition penalty", logits
    if settings.temperature != 1.0:
        logits = apply_temperature(logits, settings.temperature)
    yield "temperature", logits
    if settings.top_k:
        logits = apply_top_k(logits, settings.top_k)
        yield "top-k", logits
    if settings.top_p < 1.0:
        logits = apply_top_p(logits, settings.top_p)
        yield "top-p", logits
    if settings.min_p > 0.0:
        logits = apply_min_p(logits, settings.min_p)
        yield "min-p", logits


def process(logits: torch.Tensor, settings: SamplingSettings, history: torch.Tensor | None = None,
            allowed=None) -> torch.Tensor:
    """Apply every knob; the softmax of the result is the distribution that gets sampled. `allowed`: the
    tokens the UTF-8 stage keeps (bool [..., V]; None: no such stage)."""
    for _, out in _stages(logits, settings, history, allowed):
        logits = out
    return logits


def explain(logits: torch.Tensor, settings: SamplingSettings, history: torch.Tensor | None = None,
            allowed=None) -> list[tuple[str, torch.Tensor]]:
    """The distribution before and after each knob: [(stage, probabilities [..., V])], for step mode."""
    return [(name, torch.softmax(out.double(), dim=-1).float())
            for name, out in _stages(logits, settings, history, allowed)]


# -- the hot path: the same knobs on NumPy rows --------------------------------------------------------
def as_rows(logits: torch.Tensor) -> np.ndarray:
    """logits[B, V] (any device, any float dtype) as a float64 NumPy array, with one conversion."""
    logits = logits.detach()
    if logits.device.type != "cpu":
        logits = logits.cpu()
    return logits.numpy().astype(np.float64)


def process_rows(rows: np.ndarray, settings: SamplingSettings, history: np.ndarray | None = None,
                 allowed: np.ndarray | None = None) -> np.ndarray:
    """`process` on float64 NumPy logits rows[B, V]: the same knobs, order and ties, tested equal to it.

    Generation calls this once per token; at batch 1 a few NumPy operations on a vocabulary-sized row cost
    a fraction of the equivalent small torch kernels. One stable sort serves both top-k and top-p.
    """
    x = rows
    batch, vocab = x.shape
    if settings.valid_utf8 and allowed is not None:
        cut = np.where(allowed, x, -math.inf)
        x = np.where(np.isfinite(cut).any(-1, keepdims=True), cut, x)  # a row left with nothing stays whole
    if settings.repetition_penalty != 1.0 and history is not None and history.size:
        seen = np.zeros(x.shape, dtype=bool)
        seen[np.arange(batch)[:, None], np.clip(history.reshape(batch, -1), 0, vocab - 1)] = True
        penalty = settings.repetition_penalty
        x = np.where(seen, np.where(x > 0, x / penalty, x * penalty), x)
    if settings.temperature == 0.0:
        best = x.argmax(-1)
        out = np.full_like(x, -math.inf)
        out[np.arange(batch), best] = x[np.arange(batch), best]
        return out
    if settings.temperature != 1.0:
        x = x / max(settings.temperature, MIN_TEMPERATURE)
    k = settings.top_k if 0 < settings.top_k < vocab else 0
    if k and settings.top_p >= 1.0:  # top-k alone: a partition finds the k-th logit, no full sort
        kth = np.partition(x, vocab - k, axis=-1)[:, vocab - k:vocab - k + 1]  # [B, 1]
        keep = x >= kth
        if np.count_nonzero(keep) == batch * k:  # no ties at the k-th logit: done
            return _apply_min_p_rows(np.where(keep, x, -math.inf), settings.min_p)
    if k or settings.top_p < 1.0:  # one stable sort per row serves top-k (ties by id) and top-p
        out = np.full_like(x, -math.inf)
        for r in range(batch):  # per row: 1-D NumPy calls are several times cheaper than axis-wise ones
            order = np.argsort(-x[r], kind="stable")  # best first; equal logits by token id
            keep = k or vocab
            if settings.top_p < 1.0:
                ranked = x[r, order[:keep]]
                probs = np.exp(ranked - ranked[0])
                probs /= probs.sum()
                keep = int(np.count_nonzero(np.cumsum(probs) - probs < settings.top_p))  # a prefix: mass
                # ranked above a token only grows down the list
            chosen = order[:keep]
            out[r, chosen] = x[r, chosen]
        x = out
    return _apply_min_p_rows(x, settings.min_p)


def _apply_min_p_rows(x: np.ndarray, min_p: float) -> np.ndarray:
    if min_p > 0.0:  # p < min_p * p_max  <=>  logit < max logit + log(min_p): no softmax needed
        x = np.where(x < x.max(-1, keepdims=True) + math.log(min_p), -math.inf, x)
    return x


def draw_one(final: np.ndarray, u: float) -> tuple[int, np.ndarray, float]:
    """Inverse-CDF draw from one row of processed logits `final[V]` with a uniform `u` in [0, 1).

    Returns (token id, the unnormalised weights exp(final - max), their total), so a caller that needs
    the sampled distribution does not compute it twice. A cut token (-inf) has weight 0: an empty CDF step
    the uniform can never land on.
    """
    weights = np.exp(final - final.max())
    cdf = np.cumsum(weights)
    total = float(cdf[-1])
    return min(int(cdf.searchsorted(u * total, side="right")), final.shape[0] - 1), weights, total
