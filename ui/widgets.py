"""Widgets shared by the pages: the sampling-knob sidebar, the model picker, GLTR-coloured tokens, downloads.

GLTR colours (Gehrmann et al., 2019): a generated token is coloured by the rank the model gave it — top-10
green, top-100 yellow, top-1000 red, anything rarer purple. Every piece of model or user text that goes into
HTML is escaped first; newlines become a visible "↵" plus a line break, so the HTML never contains a blank
line (which would end Streamlit's HTML block and turn the rest into markdown).
"""

from __future__ import annotations

import csv
import html
import io
from typing import TYPE_CHECKING, Iterable, Sequence

import streamlit as st

from lm.errors import LMError
from ui.state import init_from_query

if TYPE_CHECKING:  # importing torch (through lm.run.sampling) is left to the pages that generate
    from lm.store.registry import ModelInfo
    from lm.run.sampling import SamplingSettings

# -- page chrome ---------------------------------------------------------------------------------------
def compact_layout() -> None:
    """Less empty space above each page's title: a projector has few vertical pixels to spare."""
    st.html("<style>[data-testid='stMainBlockContainer']{padding-top:2.5rem;padding-bottom:3rem}</style>")


# -- sampling knobs -----------------------------------------------------------------------------------
SAMPLING_DEFAULTS = {
    "temperature": 0.8,
    "top_k": 0,
    "top_p": 0.95,
    "min_p": 0.0,
    "repetition_penalty": 1.0,
    "max_new_tokens": 200,
    "seed": 0,
    "samples": 1,
}
SAMPLING_KEYS = tuple(SAMPLING_DEFAULTS)
_RANGES = {  # key -> (low, high): URL values outside are clamped, so a hand-edited link never breaks a page
    "temperature": (0.0, 2.0), "top_k": (0, 200), "top_p": (0.05, 1.0), "min_p": (0.0, 0.5),
    "repetition_penalty": (1.0, 2.0), "max_new_tokens": (1, 1000), "seed": (0, 10**9), "samples": (1, 8),
}


def clamp_state(ranges: dict[str, tuple[float, float]]) -> None:
    """Clamp numeric session-state values into their widget's range (values may come from the URL)."""
    for key, (low, high) in ranges.items():
        if key in st.session_state and isinstance(st.session_state[key], (int, float)):
            value = st.session_state[key]
            st.session_state[key] = type(value)(min(max(value, low), high))


def sampling_sidebar(show_samples: bool = True, max_tokens_default: int | None = None) -> SamplingSettings | None:
    """The sampling knobs in the sidebar (values from the URL or defaults); None (and an error) if invalid."""
    from lm.run.sampling import SamplingSettings

    defaults = dict(SAMPLING_DEFAULTS)
    if max_tokens_default is not None:
        defaults["max_new_tokens"] = max_tokens_default
    init_from_query(defaults)
    clamp_state(_RANGES)
    side = st.sidebar
    side.subheader("Sampling knobs")
    side.slider("Temperature", 0.0, 2.0, step=0.05, key="temperature",
                help="Divide the logits by T: low = safe and repetitive, high = wild. 0 = always the top token.")
    side.slider("Top-k", 0, 200, step=1, key="top_k", help="Keep only the k most likely tokens (0 = off).")
    side.slider("Top-p (nucleus)", 0.05, 1.0, step=0.05, key="top_p",
                help="Keep the smallest set of likely tokens whose probability adds up to p (1 = off).")
    side.slider("Max new tokens", 1, 1000, step=1, key="max_new_tokens")
    cols = side.columns(2 if show_samples else 1)
    cols[0].number_input("Seed", 0, 10**9, step=1, key="seed", help="Same seed + same settings = same text.")
    if show_samples:
        cols[1].number_input("Samples", 1, 8, step=1, key="samples", help="Continuations generated side by side.")
    with side.expander("Advanced"):
        st.slider("Min-p", 0.0, 0.5, step=0.01, key="min_p",
                  help="Drop tokens less likely than min-p x the top token's probability (0 = off).")
        st.slider("Repetition penalty", 1.0, 2.0, step=0.05, key="repetition_penalty",
                  help="Make tokens already in the text less likely (1 = off).")
    try:
        return SamplingSettings(**{k: st.session_state[k] for k in SAMPLING_KEYS if k != "samples"},
                                samples=st.session_state["samples"] if show_samples else 1)
    except LMError as exc:
        st.error(str(exc))
        return None


# -- model picker ---------------------------------------------------------------------------------------
def model_label(info: ModelInfo) -> str:
    bpc = f", {info.valid_bits_per_char:.2f} bits/char" if info.valid_bits_per_char is not None else ""
    return f"{info.name}  ({info.variant}, {info.tokenizer}{bpc})"


def preferred_models(models: Sequence[ModelInfo], families: Iterable[str] = ("transformer",)) -> list[str]:
    """Names to default to: char Shakespeare first, then any char model, in the order of `families`."""
    families = list(families)

    def rank(m: ModelInfo) -> tuple:
        return (m.corpus != "shakespeare", m.tokenizer != "char",
                families.index(m.family) if m.family in families else len(families), m.source != "zoo", m.name)

    return [m.name for m in sorted(models, key=rank)]


# -- GLTR colouring ------------------------------------------------------------------------------------
GLTR_BINS = ((10, "#ADFF80", "top 10"), (100, "#FFEA80", "top 100"), (1000, "#FF9280", "top 1000"),
             (None, "#E5B0FF", "rarer"))
TEXT_STYLE = ("font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 1.05rem; "
              "line-height: 1.7; white-space: pre-wrap; word-break: break-word;")


def gltr_colour(rank: int) -> str:
    for limit, colour, _ in GLTR_BINS:
        if limit is None or rank <= limit:
            return colour
    return GLTR_BINS[-1][1]


def escape_text(text: str) -> str:
    """HTML-escape text for a one-line HTML block: newlines visible as ↵, '$' not read as maths."""
    out = html.escape(text, quote=True).replace("$", "&#36;")
    return out.replace("\r", "").replace("\n", "<span style='opacity:.35'>↵</span><br>")


def _attr(text: str) -> str:
    """Escape text for an HTML attribute; newlines become entities so the HTML stays on one line."""
    return html.escape(text, quote=True).replace("\n", "&#10;").replace("\r", "").replace("$", "&#36;")


def _shown(piece: str) -> str:
    return piece.replace("\n", "↵").replace("\t", "⇥").replace(" ", "␣") if piece.strip() == "" else piece


def token_title(token) -> str:
    """Hover text of a generated token: its rank and probability, and the model's top alternatives."""
    alts = "&#10;".join(f"{_attr(_shown(p))!s}  {q:.1%}" for p, q in token.top)
    return f"rank {token.rank} · p = {token.prob:.2%}&#10;top alternatives:&#10;{alts}"


def gltr_html(prompt: str, tokens: Sequence) -> str:
    """The prompt (plain) followed by the generated tokens on GLTR colours, with hover details."""
    parts = [f"<div class='gltr' style='{TEXT_STYLE}'>", f"<span style='color:#555'>{escape_text(prompt)}</span>"]
    for token in tokens:
        if not token.text:
            continue
        parts.append(f"<span title='{token_title(token)}' style='background:{gltr_colour(token.rank)};"
                     f"border-radius:3px'>{escape_text(token.text)}</span>")
    parts.append("</div>")
    return "".join(parts)


def plain_html(text: str) -> str:
    return f"<div style='{TEXT_STYLE}'>{escape_text(text)}</div>"


def gltr_legend() -> None:
    chips = " ".join(f"<span style='background:{c};padding:2px 8px;border-radius:3px'>{label}</span>"
                     for _, c, label in GLTR_BINS)
    st.markdown(f"<div style='font-size:0.9rem'>Rank the model gave each token: {chips} "
                f"· hover a token for its top alternatives</div>", unsafe_allow_html=True)


# -- downloads -----------------------------------------------------------------------------------------
def tokens_csv(tokens_per_sample: Sequence[Sequence]) -> str:
    """CSV of every generated token: sample, index, token, prob, rank."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["sample", "index", "token", "prob", "rank"])
    for tokens in tokens_per_sample:
        for t in tokens:
            writer.writerow([t.sample, t.index, t.piece, f"{t.prob:.6g}", t.rank])
    return buffer.getvalue()


def download_buttons(texts: Sequence[str], tokens_per_sample: Sequence[Sequence], key: str) -> None:
    """Download the generated text (.txt) and the per-token table (.csv)."""
    joined = "\n\n----\n\n".join(texts) if len(texts) > 1 else (texts[0] if texts else "")
    cols = st.columns([1, 1, 3])
    cols[0].download_button("Text (.txt)", joined, file_name="generated.txt", mime="text/plain",
                            key=f"{key}_txt", on_click="ignore", icon=":material/download:",
                            width="stretch", help="The generated text")
    cols[1].download_button("Tokens (.csv)", tokens_csv(tokens_per_sample), file_name="tokens.csv",
                            mime="text/csv", key=f"{key}_csv", on_click="ignore", icon=":material/download:",
                            width="stretch", help="One row per generated token: token, probability, rank")
