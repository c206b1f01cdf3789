"""Attention summaries from `AttentionTrace.attention` [layers, heads, T, T]: per-head entropy, mean
attention distance and simple pattern shares (previous token, first token, self); which head to show first
and one sentence on what a head does (in the current language, `lm.i18n`)."""

from __future__ import annotations

import dataclasses

import numpy as np

from lm.errors import LMError
from lm.i18n import N_, _
from lm.inspect.text import as_array




# -- attention summaries ------------------------------------------------------------------------------------


def attention_entropy(attention) -> np.ndarray:
    """Mean entropy (nats) of each head's attention rows: [..., T, T] -> [...].

    A head that spreads its weight evenly over n keys has entropy log n; one that looks at a single key has 0.
    Row 0 of a causal model can only see itself (entropy 0) and is included like every other row.
    """
    a = as_array(attention)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(a > 0, -a * np.log(np.where(a > 0, a, 1.0)), 0.0)
    return terms.sum(-1).mean(-1)


def mean_attention_distance(attention) -> np.ndarray:
    """Mean |query - key| distance in tokens, weighted by attention: [..., T, T] -> [...].

    A previous-token head scores about 1, a head that looks back to the start of the text scores about T/2.
    """
    a = as_array(attention)
    T = a.shape[-1]
    pos = np.arange(T)
    dist = np.abs(pos[:, None] - pos[None, :]).astype(np.float32)  # [T, T]
    return (a * dist).sum(-1).mean(-1)


@dataclasses.dataclass
class HeadSummary:
    """One number per head ([layers, heads] each) to find heads worth a closer look."""

    entropy: np.ndarray  # mean row entropy, nats
    distance: np.ndarray  # mean attention distance, tokens
    previous: np.ndarray  # mean weight on the previous token (rows 1..T-1)
    first: np.ndarray  # mean weight on the first token (rows 1..T-1): "attention sink" heads
    self_: np.ndarray  # mean weight on the query token itself
    output_norm: np.ndarray | None  # mean L2 norm of the head's output (how much it writes), if traced

    def rows(self) -> list[dict[str, float]]:
        """One dict per head, for a table."""
        out = []
        layers, heads = self.entropy.shape
        for layer in range(layers):
            for head in range(heads):
                row = {"layer": layer, "head": head, "entropy": float(self.entropy[layer, head]),
                       "distance": float(self.distance[layer, head]),
                       "previous token": float(self.previous[layer, head]),
                       "first token": float(self.first[layer, head]), "self": float(self.self_[layer, head])}
                if self.output_norm is not None:
                    row["output norm"] = float(self.output_norm[layer, head])
                out.append(row)
        return out


def head_summary(attention, head_output_norm=None) -> HeadSummary:
    """Summaries of attention [layers, heads, T, T] (and optionally head_output_norm [layers, heads, T])."""
    a = as_array(attention)
    if a.ndim != 4 or a.shape[-1] != a.shape[-2]:
        raise LMError(f"expected attention [layers, heads, T, T], got shape {tuple(a.shape)}")
    T = a.shape[-1]
    diag = np.diagonal(a, axis1=-2, axis2=-1)  # [L, H, T]
    if T > 1:
        previous = np.diagonal(a, offset=-1, axis1=-2, axis2=-1).mean(-1)  # a[q, q-1] for q >= 1
        first = a[..., 1:, 0].mean(-1)
    else:
        previous = np.zeros(a.shape[:2], dtype=np.float32)
        first = np.ones(a.shape[:2], dtype=np.float32)
    norm = None if head_output_norm is None else as_array(head_output_norm).mean(-1)
    return HeadSummary(attention_entropy(a), mean_attention_distance(a), previous, first, diag.mean(-1), norm)


PATTERNS = (("previous", N_("the token just before it"), N_("a previous-token head")),
            ("first", N_("the first token"), N_("an attention sink")),
            ("self_", N_("itself"), N_("a self-attending head")))
PATTERN_SHARE = 0.3  # a head "has" a pattern when it puts at least this share of its attention there
FOCUSED_NATS = 1.0  # below this mean entropy a head looks at about e^1 < 3 tokens: focused, not spread


def notable_head(summary: HeadSummary) -> tuple[int, int]:
    """(layer, head) worth showing first: the strongest previous-token head (the clearest pattern to explain);
    the most focused head (lowest entropy) when no head puts `PATTERN_SHARE` on the previous token."""
    previous = summary.previous
    if previous.size and float(previous.max()) >= PATTERN_SHARE:
        layer, head = np.unravel_index(int(np.argmax(previous)), previous.shape)
    else:
        layer, head = np.unravel_index(int(np.argmin(summary.entropy)), summary.entropy.shape)
    return int(layer), int(head)


def describe_head(summary: HeadSummary, layer: int, head: int, max_entropy: float | None = None) -> str:
    """One sentence on what head (layer, head) does on this text: its strongest simple pattern, if any."""
    shares = [(float(getattr(summary, field)[layer, head]), where, name) for field, where, name in PATTERNS]
    share, where, name = max(shares)
    entropy, distance = float(summary.entropy[layer, head]), float(summary.distance[layer, head])
    fields = dict(layer=layer, head=head, share=share, where=_(where), name=_(name), entropy=entropy,
                  distance=distance, most=max_entropy or 0.0)
    if share >= PATTERN_SHARE:
        return _("Layer {layer}, head {head} puts {share:.0%} of its attention on {where}: {name}. "
                 "On average it looks {distance:.1f} tokens back.").format(**fields)
    if entropy < FOCUSED_NATS:
        return _("Layer {layer}, head {head} focuses on one or two tokens (entropy {entropy:.2f} nats), on "
                 "average {distance:.1f} tokens back, but not on the previous or the first one: the heatmap "
                 "shows which.").format(**fields)
    if max_entropy:
        return _("Layer {layer}, head {head} spreads its attention over many tokens (entropy {entropy:.2f} nats "
                 "of at most {most:.2f}), on average {distance:.1f} tokens back.").format(**fields)
    return _("Layer {layer}, head {head} spreads its attention over many tokens (entropy {entropy:.2f} nats), "
             "on average {distance:.1f} tokens back.").format(**fields)
