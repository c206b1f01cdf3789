"""Text painted token by token, as HTML: colour by a value (attention, a unit's activation), by boundary, or by
the rank the model gave each token (GLTR).

Every piece of text is escaped (`html.escape`), so a token like "<script>" is shown, never run; a line
break shows as ↵ and never leaves a blank line in the HTML (Streamlit's markdown would end the block there).

GLTR colours (Gehrmann et al., 2019) paint a token by the rank the model gave it. The original bins (top 10,
100, 1000) suit a vocabulary of tens of thousands; a character model of 28-80 symbols never reaches rank 100,
so `rank_bins` scales the bins to the vocabulary (`RANK_LADDER`): every model's text uses all four colours.

A generated token's byte markers (``<0xE5>``: a byte of a byte-level model that forms no valid UTF-8
character, `lm.run.generate.GeneratedToken.segments`) are drawn apart from text (class `lm-byte`: dashed frame,
muted colour, a tooltip saying what they are), escaped like every other piece; text a person typed that happens
to read "<0xE5>" is text. Tooltips and legends are in the current language (`lm.i18n`).
"""

from __future__ import annotations

import html
import dataclasses
from typing import Sequence

import numpy as np

from lm.i18n import _
from lm.inspect import SIGMOID_STATES
from lm.viz.style import NEGATIVE_RGB, PASTELS, POSITIVE_RGB, SEQUENTIAL_RGB, _arr, _diverging_range, visible


def _rgba(rgb: tuple[int, int, int], alpha: float) -> str:
    return f"rgba({rgb[0]},{rgb[1]},{rgb[2]},{max(0.0, min(1.0, alpha)):.3f})"


def _piece_html(piece: str) -> str:
    """Escaped text of one token on one HTML line: a line break shows as ↵ then <br>, '$' is not maths.

    The HTML must never contain a raw blank line: Streamlit's markdown would end the HTML block there and
    render the rest as markdown.
    """
    out = html.escape(piece, quote=True).replace("$", "&#36;").replace("\r", "")
    return out.replace("\n", '<span style="opacity:.45">↵</span><br>')


def _attr(text: str) -> str:
    return html.escape(text, quote=True).replace("\n", "&#10;").replace("\r", "").replace("$", "&#36;")


def tokens_html(pieces: Sequence[str], values: Sequence[float] | None = None, mode: str = "sequential",
                vmax: float | None = None, highlight: int | None = None, titles: Sequence[str] | None = None) -> str:
    """The text as coloured token spans (an HTML string; every piece is escaped).

    mode "sequential": background alpha = value / vmax (attention weights, probabilities);
    "diverging": red for positive, blue for negative, alpha = |value| / vmax (tanh states);
    "alternate": alternating pastel backgrounds that show token boundaries (values ignored).
    `highlight` frames one token; `titles` become hover tooltips.
    """
    if mode not in ("sequential", "diverging", "alternate"):
        raise ValueError(f"unknown mode {mode!r}")
    vals = None if values is None or mode == "alternate" else _arr(values)
    if vals is not None and len(vals) != len(pieces):
        raise ValueError(f"{len(pieces)} tokens but {len(vals)} values")
    if vals is not None and vmax is None:
        vmax = float(np.nanmax(np.abs(vals))) if len(vals) else 1.0
    vmax = vmax or 1.0
    parts = []
    shown = 0
    for t, piece in enumerate(pieces):
        if not piece:
            continue  # part of a multi-byte character: its text is drawn with the token that completes it
        if mode == "alternate":
            bg = PASTELS[shown % 2 * 2]  # two alternating pastels read best as boundaries
        elif vals is None:
            bg = "transparent"
        else:
            v = float(vals[t])
            rgb = SEQUENTIAL_RGB if mode == "sequential" else (POSITIVE_RGB if v >= 0 else NEGATIVE_RGB)
            bg = _rgba(rgb, abs(v) / vmax * 0.9)
        style = f"background:{bg};border-radius:3px;padding:1px 0"
        if t == highlight:
            style += ";outline:2px solid #1c7ed6;outline-offset:1px"
        title = f' title="{_attr(titles[t])}"' if titles is not None else ""
        parts.append(f'<span style="{style}"{title}>{_piece_html(piece)}</span>')
        shown += 1
    body = "".join(parts)
    return ('<div class="lm-tokens" style="font-family:ui-monospace,SFMono-Regular,Menlo,monospace;'
            f'font-size:1.15rem;line-height:1.9;white-space:pre-wrap;word-break:break-word">{body}</div>')


def attention_text_html(pieces: Sequence[str], weights, chosen: int) -> str:
    """The attention FROM token `chosen` painted on the text (alpha = weight relative to the largest)."""
    w = _arr(weights)
    line = _("token {token}: weight {weight:.3f}")
    titles = [line.format(token=t, weight=w[t]) for t in range(len(pieces))]
    return tokens_html(pieces, w, "sequential", vmax=float(w.max()) if len(w) else 1.0, highlight=chosen,
                       titles=titles)


def unit_text_html(pieces: Sequence[str], values, name: str, unit: int) -> str:
    """One unit's activation as colour on the text: diverging for tanh states, sequential for gates."""
    v = _arr(values)
    titles = [f"{name}[{unit}] = {x:+.3f}" for x in v]
    if name in SIGMOID_STATES:
        return tokens_html(pieces, v, "sequential", vmax=1.0, titles=titles)
    return tokens_html(pieces, v, "diverging", vmax=_diverging_range(v, None), titles=titles)


def token_boundaries_html(pieces: Sequence[str], ids: Sequence[int]) -> str:
    """Token boundaries as alternating pastel backgrounds; hovering a token shows its id."""
    line = _("id {id}")
    return tokens_html(pieces, mode="alternate", titles=[line.format(id=i) for i in ids])


# -- GLTR: tokens coloured by their rank ---------------------------------------------------------------------
GLTR_COLOURS = ("#ADFF80", "#FFEA80", "#FF9280", "#E5B0FF")  # green, yellow, red, purple: likely to rare
# The upper rank limits of the first three bins, widest first; a vocabulary gets the widest whose last limit
# leaves at least half of it for the fourth bin ("rarer"), so that bin can occur at all.
RANK_LADDER = ((10, 100, 1000), (3, 30, 300), (1, 3, 10))
TEXT_STYLE = ("font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:1.05rem;"
              "line-height:1.7;white-space:pre-wrap;word-break:break-word")
PROMPT_TAIL_CHARS = 600  # of a long prompt the output shows only the end: a page is never resent the whole prompt
BYTE_STYLE = "border:1px dashed #868e96;border-radius:3px;color:#6c757d;padding:0 1px"  # a byte marker's frame


@dataclasses.dataclass(frozen=True)
class RankBin:
    low: int  # first rank in the bin (1 = the model's top choice)
    high: int | None  # last rank in the bin; None: every rarer rank
    colour: str

    @property
    def label(self) -> str:
        if self.high is None:
            return _("rank {low:,}+").format(low=self.low)
        if self.low == self.high:
            return _("rank {low:,}").format(low=self.low)
        return _("rank {low:,}–{high:,}").format(low=self.low, high=self.high)


def rank_bins(vocab_size: int) -> tuple[RankBin, ...]:
    """The four GLTR bins for a model of `vocab_size` tokens: 1-10/11-100/101-1000/rest for a large BPE
    vocabulary, 1/2-3/4-10/rest for a character model (see `RANK_LADDER`)."""
    limits = next((step for step in RANK_LADDER if 2 * step[-1] <= vocab_size), RANK_LADDER[-1])
    lows = (1, *(limit + 1 for limit in limits))
    highs = (*limits, None)
    return tuple(RankBin(low, high, colour) for low, high, colour in zip(lows, highs, GLTR_COLOURS))


def rank_bin(rank: int, bins: Sequence[RankBin]) -> int:
    """Index of the bin `rank` falls in."""
    for i, b in enumerate(bins):
        if b.high is None or rank <= b.high:
            return i
    return len(bins) - 1


def _shown(piece: str) -> str:
    """An alternative in a tooltip: a piece of nothing but whitespace made visible (␣, ↵), others as is."""
    return visible(piece, None) if piece.strip() == "" else piece


def token_details(token) -> str:
    """Plain text (not yet escaped) of a token's rank, probability and top alternatives."""
    alts = "\n".join(f"{_shown(p)}  {q:.1%}" for p, q in getattr(token, "top", ()) or ())
    line = _("rank {rank} · p = {p:.2%}").format(rank=token.rank, p=token.prob)
    return line + ("\n" + _("top alternatives:") + f"\n{alts}" if alts else "")


def token_text_html(token) -> str:
    """A token's text as escaped HTML, its byte markers (a generated token's `segments()`) framed apart."""
    if not getattr(token, "marks", ()) or not callable(getattr(token, "segments", None)):
        return _piece_html(token.text)
    title = _attr(_("a byte that is not valid UTF-8 on its own"))
    return "".join(f"<span class='lm-byte' title='{title}' style='{BYTE_STYLE}'>{_piece_html(text)}</span>"
                   if is_byte else _piece_html(text) for text, is_byte in token.segments())


def gltr_html(prompt: str, tokens: Sequence, bins: Sequence[RankBin] | None = None, highlight: int | None = None,
              details: bool = True, prompt_tail: int = PROMPT_TAIL_CHARS) -> str:
    """The prompt (grey, only its last `prompt_tail` characters) and the tokens on GLTR colours, one HTML line.

    `tokens` have .text, .rank, .prob and (optionally) .top; `bins` default to the large-vocabulary bins.
    `highlight` frames the token at that index; `details` adds each token's rank and alternatives as a tooltip
    (left out while streaming, to keep the redraws small).
    """
    bins = bins or rank_bins(10**6)
    cut = len(prompt) - prompt_tail
    head = ("<span style='opacity:.6'>" + _attr(_("… {count:,} earlier characters … ").format(count=cut))
            + "</span>") if cut > 0 else ""
    parts = [f"<div class='gltr' style='{TEXT_STYLE}'>",
             f"<span style='color:#555'>{head}{_piece_html(prompt[max(0, cut):])}</span>"]
    for i, token in enumerate(tokens):
        if not token.text:
            continue
        title = f" title='{_attr(token_details(token))}'" if details else ""
        frame = ";outline:3px solid #1c7ed6;outline-offset:1px" if i == highlight else ""
        parts.append(f"<span{title} style='background:{bins[rank_bin(token.rank, bins)].colour};"
                     f"border-radius:3px{frame}'>{token_text_html(token)}</span>")
    parts.append("</div>")
    return "".join(parts)


def plain_html(text: str, style: str = "") -> str:
    """Any text as one escaped HTML block (no Markdown, no tags, line breaks as ↵): for user and corpus text."""
    return f"<div style='{_attr(style)}'>{_piece_html(text)}</div>"


def gltr_legend_html(bins: Sequence[RankBin], vocab_size: int | None = None, name: str | None = None) -> str:
    """What each colour means for this model: its rank bins, out of how many tokens."""
    chips = " ".join(f"<span style='background:{b.colour};padding:2px 8px;border-radius:3px;white-space:nowrap'>"
                     f"{html.escape(b.label)}</span>" for b in bins)
    if vocab_size:
        what = (_("Rank {model} gave each token (1 = its first choice, out of {count:,} tokens):") if name else
                _("Rank the model gave each token (1 = its first choice, out of {count:,} tokens):"))
    else:
        what = (_("Rank {model} gave each token (1 = its first choice):") if name else
                _("Rank the model gave each token (1 = its first choice):"))
    text = what.format(model=html.escape(name or ""), count=vocab_size or 0)  # the model's name is escaped
    return f"<div style='font-size:0.9rem;line-height:1.9'>{text} {chips}</div>"
