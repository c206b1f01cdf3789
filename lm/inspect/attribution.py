"""Attribution: how much each earlier token mattered to a model's log-probability of the token at a position.

Two methods, both answering in nats of log p(target | context), one value per context token, oldest first:

- **occlusion** (every family): replace one context token at a time by the neutral token and record how much
  the log-probability of the target drops (positive: the token made the target more likely). All the occluded
  copies of the text run as one batch, and since one pass over a whole text predicts every position, the
  same batch answers every position at once (`occlusion_matrix`): a page computes it once per text and a
  slider only reads a row. An n-gram model of order n reads only the last n-1 tokens, so every token further
  back gets exactly 0 — the model's own definition, shown next to the neural models' long reach.
- **integrated gradients** (Sundararajan et al. 2017; neural families): the gradient of the log-probability
  with respect to the input embeddings, integrated along the straight line from a baseline to the text, times
  (embedding - baseline), summed over each token's embedding. The baseline is the text with every context
  token replaced by the neutral token (so both methods measure against the same reference, and a neutral
  token in the text gets 0 from both). The integral is a Gauss-Legendre rule on intervals of the path that
  are halved where the rule misses most (`integrated_gradients` says how it knows). Completeness, the check:
  the attributions add up to log p(text) - log p(baseline); `completeness_error` reports how far they miss.

The neutral token (`neutral_token`) is a single space: the most common character of running text and the one
that says least, so replacing a token by it removes what the token says while the text keeps its length and
every other token its position. A tokenizer with no space token (the names models: one name per line) uses its
unknown token instead, which such a model never saw. Occluding a space by a space changes nothing, so spaces
get exactly 0 from occlusion (and from integrated gradients, whose baseline is the same): a known blind spot.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Sequence

import numpy as np
import torch

from lm.device import check_ids
from lm.errors import LMError
from lm.inspect.ablation import Ablation, AblatedTransformer, ablated, embed, family_label, run_blocks, unembed
from lm.models.transformer.block import cached_attention

NODES = 4  # Gauss-Legendre nodes per interval of the integrated-gradients path
DEFAULT_STEPS = 16  # gradients taken at first (four intervals); each is one forward + backward pass in a batch
MAX_STEPS = 256  # the most gradients the adaptive refinement may take
TOLERANCE = 0.03  # refine until the attributions miss completeness by at most this share
_GRADIENT_BATCH = 32  # path points per forward + backward batch
COMPLETENESS_FLOOR = 0.05  # nats: a smaller log-prob difference counts as this much in the relative error
_BATCH_FLOATS = 1 << 22  # logits held at once by the n-gram's occlusion batches ([rows, T, V] floats)
OCCLUSION_BLOCK = 16  # occluded copies per batch of a neural model: they share the text before the first one


def neutral_token(tokenizer) -> int:
    """The id that stands in for a removed token: a space if it is one token, else the unknown token (id 0)."""
    ids = tokenizer.encode(" ")
    if len(ids) == 1:
        return int(ids[0])
    unk = getattr(tokenizer, "unk_id", None)
    return int(unk) if unk is not None else 0


def check_position(ids: Sequence[int], position: int | None) -> int:
    """The position whose token is explained (default: the last); LMError unless 1 <= position < len(ids)."""
    if len(ids) < 2:
        raise LMError("explaining a token needs a text of at least two tokens (one to predict from)")
    if position is None:
        return len(ids) - 1
    if isinstance(position, bool) or not isinstance(position, (int, np.integer)) or not 1 <= position < len(ids):
        raise LMError(f"position must be a token index from 1 to {len(ids) - 1} (the first token has no "
                      f"context), not {position!r}")
    return int(position)


def _target_logprobs(model, batch: torch.Tensor) -> np.ndarray:
    """log p(batch[:, t+1] | batch[:, :t+1]) as float64 [B, T-1], in chunks of rows that keep memory flat."""
    fast = getattr(model, "logprob_of_targets", None)  # n-gram: no ranks, no rows of the vocabulary
    rows = max(1, _BATCH_FLOATS // max(1, batch.shape[1] * model.vocab_size))
    out = []
    with torch.inference_mode():
        for start in range(0, batch.shape[0], rows):
            chunk = batch[start:start + rows]
            lp = fast(chunk) if fast is not None else model.target_logprobs(chunk)[0]
            out.append(lp.double().cpu().numpy())
    return np.concatenate(out)


def target_logprob(model, ids: Sequence[int], position: int, ablation: Ablation | None = None) -> float:
    """log p(ids[position] | ids[:position]) under `model` with `ablation` switched off."""
    position = check_position(ids, position)
    batch = torch.tensor([list(ids)[:position + 1]], dtype=torch.long, device=model.device)
    return float(_target_logprobs(ablated(model, ablation), batch)[0, -1])


def _from_prefix(m, ids: list[int]):
    """For a neural model: run(batch [K, T], s) -> log p of batch[:, t+1] for t = s .. T-2 ([K, T-1-s] float64),
    where every row of the batch equals `ids` before position s. The rows start from the text's own state at s
    (a Transformer's keys and values, an RNN's (h, c)), so a block of occluded copies recomputes only the
    positions from its first occluded token on: about half the work of running every copy whole. None for an
    n-gram, whose batched scoring reads only n-1 tokens back anyway."""
    device = m.device
    if isinstance(m, AblatedTransformer):
        base, c = m.base, m.config
        T, H = len(ids), c.n_heads
        check_ids(torch.tensor([ids]), c.vocab_size, dims=2, max_length=c.context_length)
        kv = [torch.zeros(1, 2, H, T, c.d_model // H, dtype=base.wte.weight.dtype, device=device) for _ in base.h]
        run_blocks(base, embed(base, torch.tensor([ids], device=device)), cached_attention(H, 0), kv, m.masks)

        def run(batch: torch.Tensor, s: int) -> torch.Tensor:
            cache = [buffer.expand(batch.shape[0], -1, -1, -1, -1).clone() for buffer in kv]  # the shared prefix
            x = run_blocks(base, embed(base, batch[:, s:-1], s), cached_attention(H, s), cache, m.masks)
            return unembed(base, x)
    elif m.family == "rnn":
        def run(batch: torch.Tensor, s: int) -> torch.Tensor:
            state = None
            if s:
                _, state = m.rnn(m.embed(batch[:1, :s]))  # the text's own state after s tokens, [L, 1, H]
                expand = lambda h: h.expand(-1, batch.shape[0], -1).contiguous()  # noqa: E731
                state = tuple(map(expand, state)) if isinstance(state, tuple) else expand(state)
            out, _ = m.rnn(m.embed(batch[:, s:-1]), state)
            return m.head(out)
    else:
        return None

    def logprobs(batch: torch.Tensor, s: int) -> np.ndarray:
        with torch.inference_mode():
            lp = torch.log_softmax(run(batch, s).float(), dim=-1).gather(-1, batch[:, s + 1:, None])[..., 0]
        return lp.double().cpu().numpy()

    return logprobs


def occlusion_matrix(model, ids: Sequence[int], neutral: int, ablation: Ablation | None = None) -> np.ndarray:
    """[T, T] float64: entry [p, j] (j < p) is log p(ids[p] | ids[:p]) minus the same with ids[j] replaced by
    `neutral`; zero where j >= p (no context there) and where ids[j] already is the neutral token.

    The occluded texts run in batches through `model` with `ablation` switched off, each batch with the text
    itself as its first row (every difference is taken between rows of one batch), a neural model's in blocks
    of `OCCLUSION_BLOCK` that share what comes before their first occluded token (`_from_prefix`). Where both
    log-probabilities are -inf (an MLE n-gram that never saw the target) the change is 0.
    """
    ids = [int(i) for i in ids]
    T = len(ids)
    out = np.zeros((T, T), dtype=np.float64)
    if T < 2:
        return out
    m = ablated(model, ablation)
    occluded = [j for j in range(T - 1) if ids[j] != neutral]  # occluding the last token changes no prediction
    prefix = _from_prefix(m, ids)
    size = OCCLUSION_BLOCK if prefix is not None else max(1, len(occluded))
    text = torch.tensor(ids, dtype=torch.long, device=model.device)
    for start in range(0, len(occluded), size):
        block = occluded[start:start + size]
        batch = text.repeat(len(block) + 1, 1)
        batch[torch.arange(1, len(block) + 1), torch.tensor(block)] = neutral
        s = block[0] if prefix is not None else 0
        lp = prefix(batch, s) if prefix is not None else _target_logprobs(m, batch)  # column t: token s + t + 1
        with np.errstate(invalid="ignore"):
            diff = lp[0] - lp[1:]  # [len(block), T - 1 - s]
        diff[np.isnan(diff)] = 0.0
        for r, j in enumerate(block):
            out[j + 1:, j] = diff[r, j - s:]  # targets j+1 .. T-1 are the ones that had token j in their context
    return out


def occlusion(model, ids: Sequence[int], position: int, neutral: int, ablation: Ablation | None = None) -> np.ndarray:
    """Occlusion attribution of each context token of `position` (oldest first): one row of `occlusion_matrix`."""
    position = check_position(ids, position)
    return occlusion_matrix(model, list(ids)[:position + 1], neutral, ablation)[position, :position]


@dataclasses.dataclass
class IntegratedGradients:
    """Integrated gradients of log p(target) over the input embeddings, one value per context token."""

    attribution: np.ndarray  # [position] nats, oldest first
    logprob: float  # log p(target | the text's context)
    baseline_logprob: float  # log p(target | every context token replaced by the neutral token)
    steps: int  # gradients taken (path points)

    @property
    def completeness_error(self) -> float:
        """|sum of attributions - (logprob - baseline_logprob)|, relative to that difference (at least
        `COMPLETENESS_FLOOR` nats, so that a near-zero difference does not blow a tiny gap up)."""
        delta = self.logprob - self.baseline_logprob
        gap = abs(float(self.attribution.sum()) - delta)
        return gap / max(abs(delta), COMPLETENESS_FLOOR) if math.isfinite(delta) else math.nan


def _embedding_path(m):
    """(input embedding table [V, E], x [S, T, E] -> logits [S, V] after the last position) of a neural model."""
    if isinstance(m, AblatedTransformer):
        return m.base.wte.weight, lambda x: unembed(m.base, m.forward_embeddings(x)[:, -1])
    if m.family == "rnn":
        return m.embed.weight, lambda x: m.head(m.rnn(x)[0][:, -1])
    raise LMError(f"integrated gradients need a neural model (an LSTM or a Transformer); {family_label(m)} models have "
                  "no embeddings to follow")


def integrated_gradients(model, ids: Sequence[int], position: int, neutral: int, ablation: Ablation | None = None,
                         steps: int = DEFAULT_STEPS, max_steps: int = MAX_STEPS,
                         tolerance: float = TOLERANCE) -> IntegratedGradients:
    """Integrated gradients for the token at `position` from the neutral-token baseline (see the module).

    The path [0, 1] starts as `steps` // `NODES` intervals of `NODES` Gauss-Legendre nodes each. Completeness
    holds on every piece of the path too (a piece's attributions add up to the log-prob difference between its
    ends, which a forward pass gives), so the pieces that miss most are halved, while the total miss exceeds
    `tolerance` and fewer than `max_steps` gradients were taken. A smooth path (most Transformer texts) needs
    no refinement; an LSTM whose gates flip somewhere along the path gets its nodes where they flip.
    """
    position = check_position(ids, position)
    for name, value, low in (("steps", steps, NODES), ("max_steps", max_steps, steps)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 4096:
            raise LMError(f"{name} must be a whole number from {low} to 4096, not {value!r}")
    table, forward = _embedding_path(ablated(model, ablation))
    context = torch.tensor(list(ids)[:position], dtype=torch.long, device=table.device)
    target = int(ids[position])
    x = table[context].detach()  # [P, E]
    base = table[neutral].detach().expand_as(x)
    nodes, weights = np.polynomial.legendre.leggauss(NODES)
    nodes, weights = (nodes + 1) / 2, weights / 2  # on [0, 1]

    def values(alphas: Sequence[float]) -> list[float]:
        a = torch.tensor(list(alphas), dtype=x.dtype, device=x.device)[:, None, None]
        with torch.inference_mode():
            return torch.log_softmax(forward(base + a * (x - base)).float(), dim=-1)[:, target].double().tolist()

    def pieces(intervals: list[tuple[float, float]]) -> list[np.ndarray]:
        """Each interval's attributions [P]: the rule's weighted gradients times (embedding - baseline)."""
        alphas = [a + (b - a) * n for a, b in intervals for n in nodes]
        scale = [(b - a) * w for a, b in intervals for w in weights]
        out = []
        for start in range(0, len(alphas), _GRADIENT_BATCH):
            a = torch.tensor(alphas[start:start + _GRADIENT_BATCH], dtype=x.dtype, device=x.device)[:, None, None]
            with torch.inference_mode(False), torch.enable_grad(), _no_cudnn(x):
                path = (base + a * (x - base)).requires_grad_(True)  # [S, P, E]
                logprob = torch.log_softmax(forward(path).float(), dim=-1)[:, target]  # [S]
                (grads,) = torch.autograd.grad(logprob.sum(), path)  # only the input's gradient: no weight is touched
            out.append(((grads * (x - base)).sum(-1)).double().cpu().numpy())  # [S, P]
        per_node = np.concatenate(out) * np.array(scale)[:, None]
        return list(per_node.reshape(len(intervals), NODES, -1).sum(1))

    count = max(1, steps // NODES)
    edges = [i / count for i in range(count + 1)]
    at = dict(zip(edges, values(edges)))  # log-prob at every interval end
    intervals = list(zip(edges[:-1], edges[1:]))
    parts = dict(zip(intervals, pieces(intervals)))
    used = count * NODES
    scale = max(abs(at[1.0] - at[0.0]), COMPLETENESS_FLOOR)
    while True:
        miss = {iv: abs(float(parts[iv].sum()) - (at[iv[1]] - at[iv[0]])) for iv in parts}
        worst = sorted(miss, key=miss.get, reverse=True)
        room = (max_steps - used) // (2 * NODES)
        if sum(miss.values()) <= tolerance * scale or room < 1 or not math.isfinite(scale):
            break
        split = [iv for iv in worst[:room] if miss[iv] >= miss[worst[0]] / 2]
        middles = [(a + b) / 2 for a, b in split]
        at.update(zip(middles, values(middles)))
        halves = [h for (a, b), mid in zip(split, middles) for h in ((a, mid), (mid, b))]
        for iv in split:
            del parts[iv]
        parts.update(zip(halves, pieces(halves)))
        used += len(halves) * NODES
    attribution = np.sum(list(parts.values()), axis=0)
    return IntegratedGradients(attribution, at[1.0], at[0.0], used)


def _no_cudnn(tensor: torch.Tensor):
    """cuDNN's fused RNN backward runs only in training mode; the models are in eval mode, so it sits out."""
    return torch.backends.cudnn.flags(enabled=False) if tensor.device.type == "cuda" else contextlib.nullcontext()


__all__ = ["COMPLETENESS_FLOOR", "DEFAULT_STEPS", "MAX_STEPS", "NODES", "OCCLUSION_BLOCK", "TOLERANCE",
           "IntegratedGradients", "check_position", "integrated_gradients", "neutral_token", "occlusion",
           "occlusion_matrix", "target_logprob"]
