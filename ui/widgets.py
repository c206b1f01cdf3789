"""Widgets shared by the pages: the sampling-knob sidebar, the model picker, GLTR-coloured tokens, one token's
alternatives, downloads, and user text shown literally.

GLTR colours (Gehrmann et al., 2019): a generated token is coloured by the rank the model gave it, in bins
scaled to the model's vocabulary (`lm.viz.tokens.rank_bins`). Every piece of model or user text that goes
into HTML is escaped first (`lm.viz.tokens`); text that goes into a Markdown body (errors, captions) passes
through `md_literal`, so a link, an image, `:red[...]` or `$maths$` typed by a student shows as typed.
"""

from __future__ import annotations

import csv
import io
import re
from typing import TYPE_CHECKING, Iterable, Sequence

import streamlit as st

from lm.errors import LMError
from ui.i18n import _, option_labels
from ui.state import init_from_query

if TYPE_CHECKING:  # importing torch (through lm.run.sampling) is left to the pages that generate
    from lm.store.registry import ModelInfo
    from lm.run.sampling import SamplingSettings

# -- page chrome ---------------------------------------------------------------------------------------
def compact_layout() -> None:
    """Less empty space above each page's title: a projector has few vertical pixels to spare."""
    st.html("<style>[data-testid='stMainBlockContainer']{padding-top:2.5rem;padding-bottom:3rem}</style>")


# -- user text in Markdown bodies ------------------------------------------------------------------------
# The ASCII marks that can start Markdown (CommonMark, GFM, Streamlit's :colour[] and $maths$); quotes, commas and
# the like are left alone, so "unknown: 'Z'" stays readable.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>:$~^&=])")


# Streamlit's Markdown also links bare addresses ("http://…", "www.…", e-mail) after the escapes are read (seen
# in a real browser): an invisible word joiner (U+2060) after "http"/"www" and before "@" keeps them apart.
_AUTOLINK = re.compile(r"(?i)(?<![\w\u2060])(https?|ftp|www)(?=[:.])|(?=@)")


def md_literal(text) -> str:
    """`text` for a Markdown body (st.error, st.caption, ...) that shows exactly as written: links, images,
    `:red[...]`, `$maths$`, HTML tags and emphasis are backslash-escaped, bare addresses are not linked, line
    breaks are shown as ↵."""
    text = _AUTOLINK.sub(lambda match: (match.group(1) or "") + "\u2060", str(text))
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text).replace("\r", "").replace("\n", " ↵ ")


def show_text(text: str, style: str = "font-size:0.875rem;color:rgba(49,51,63,0.6)") -> None:
    """User, model or corpus text as it is (escaped HTML, never Markdown); by default in the look of a caption."""
    from lm.viz.tokens import plain_html  # plotly and torch: see rank_bins_for

    st.markdown(plain_html(text, style), unsafe_allow_html=True)


def show_error(message) -> None:
    """A one-line error that may echo what the user typed: shown literally (see `md_literal`), in the session's
    language when it is one of the catalog's fixed messages (ui/i18n.py)."""
    st.error(md_literal(_(str(message))))


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
    "chars": (20, 1000),
}
CHARS_DEFAULT = 300  # characters each model writes on the Compare page


def clamp_state(ranges: dict[str, tuple[float, float]]) -> None:
    """Clamp numeric session-state values into their widget's range (values may come from the URL)."""
    for key, (low, high) in ranges.items():
        if key in st.session_state and isinstance(st.session_state[key], (int, float)):
            value = st.session_state[key]
            st.session_state[key] = type(value)(min(max(value, low), high))


def sampling_sidebar(show_samples: bool = True, max_tokens_default: int | None = None,
                     characters: bool = False) -> SamplingSettings | None:
    """The sampling knobs in the sidebar (values from the URL or defaults); None (and an error) if invalid.

    With `characters` the length knob is "Characters per model" (key `chars`) instead of a token budget, and
    the settings' max_new_tokens holds that number of characters: the page derives each model's token budget
    from it (`lm.app.compare.token_budget`), so every model writes the same amount of text.
    """
    from lm.run.sampling import SamplingSettings  # torch: app.py imports this module for compact_layout only

    defaults = dict(SAMPLING_DEFAULTS, chars=CHARS_DEFAULT)
    if max_tokens_default is not None:
        defaults["max_new_tokens"] = max_tokens_default
    init_from_query(defaults)
    clamp_state(_RANGES)
    side = st.sidebar
    side.subheader(_("Sampling knobs"))
    side.slider(_("Temperature"), 0.0, 2.0, step=0.05, key="temperature",
                help=_("Divide the logits by T: low = safe and repetitive, high = wild. 0 = always the top token."))
    side.slider(_("Top-k"), 0, 200, step=1, key="top_k", help=_("Keep only the k most likely tokens (0 = off)."))
    side.slider(_("Top-p (nucleus)"), 0.05, 1.0, step=0.05, key="top_p",
                help=_("Keep the smallest set of likely tokens whose probability adds up to p (1 = off)."))
    if characters:
        side.slider(_("Characters per model"), *_RANGES["chars"], step=10, key="chars",
                    help=_("Every model writes this many characters, however many tokens that takes, so "
                           "lengths, distinct-n and speed compare like for like."))
    else:
        side.slider(_("Max new tokens"), 1, 1000, step=1, key="max_new_tokens")
    cols = side.columns(2 if show_samples else 1)
    cols[0].number_input(_("Seed"), 0, 10**9, step=1, key="seed", help=_("Same seed + same settings = same text."))
    if show_samples:
        cols[1].number_input(_("Samples"), 1, 8, step=1, key="samples",
                             help=_("Continuations of the same prompt, drawn together and shown one under another, "
                                    "each in its own numbered box."))
    with side.expander(_("Advanced")):
        st.slider(_("Min-p"), 0.0, 0.5, step=0.01, key="min_p",
                  help=_("Drop tokens less likely than min-p x the top token's probability (0 = off)."))
        st.slider(_("Repetition penalty"), 1.0, 2.0, step=0.05, key="repetition_penalty",
                  help=_("Make tokens already in the text less likely (1 = off)."))
    try:
        values = {k: st.session_state[k] for k in SAMPLING_KEYS if k != "samples"}
        if characters:
            values["max_new_tokens"] = st.session_state["chars"]
        return SamplingSettings(**values, samples=st.session_state["samples"] if show_samples else 1)
    except LMError as exc:
        show_error(exc)
        return None


def prompts_follow(corpus: str, seen_key: str, text_key: str) -> None:
    """When the model's corpus changes, an untouched default prompt (key "prompt") and sample text (`text_key`)
    follow it, so a names model is not handed "ROMEO:"; what the user wrote stays. The corpus last seen is kept
    under `seen_key`: a shared link's first run changes nothing."""
    from lm.app.playground import follow_corpus, follow_sample_text  # torch: see sampling_sidebar

    seen = st.session_state.get(seen_key)
    if seen is not None and seen != corpus:
        st.session_state["prompt"] = follow_corpus(st.session_state["prompt"], corpus)
        st.session_state[text_key] = follow_sample_text(st.session_state[text_key], corpus)
    st.session_state[seen_key] = corpus


# -- model picker ---------------------------------------------------------------------------------------
def model_label(info: ModelInfo) -> str:
    bpc = _(", {bpc:.2f} bits/char").format(bpc=info.valid_bits_per_char) if info.valid_bits_per_char is not None \
        else ""
    return f"{info.name}  ({info.variant}, {info.tokenizer}{bpc})"


def preferred_models(models: Sequence[ModelInfo], families: Iterable[str] = ("transformer",)) -> list[str]:
    """Names to default to: char Shakespeare first, then any char model, in the order of `families`."""
    families = list(families)

    def rank(m: ModelInfo) -> tuple:
        return (m.corpus != "shakespeare", m.tokenizer != "char",
                families.index(m.family) if m.family in families else len(families), m.source != "zoo", m.name)

    return [m.name for m in sorted(models, key=rank)]


def model_picker(models: Sequence[ModelInfo], key: str, families: Iterable[str] = ("transformer",),
                 empty: str | None = None) -> ModelInfo | None:
    """The sidebar's model selectbox under `key` (from the URL, else the preferred model); the chosen model.

    With no models to pick from it shows `empty` (translated by the caller; by default: train one) and returns None.
    """
    if not models:
        st.info(empty or _("No models yet — train one on the Train page."))
        return None
    infos = {m.name: m for m in models}
    init_from_query({key: preferred_models(models, families)[0]}, allowed={key: list(infos)})
    if st.session_state[key] not in infos:  # a model deleted since, or a crafted widget value
        st.session_state[key] = preferred_models(models, families)[0]
    st.sidebar.selectbox(_("Model"), list(infos), key=key,
                         format_func=option_labels(infos, lambda n: model_label(infos[n])))
    return infos[st.session_state[key]]


# -- GLTR colouring ------------------------------------------------------------------------------------
def rank_bins_for(tokenizer):
    """The GLTR bins of a model with this tokenizer (`lm.viz.tokens.rank_bins` of its vocabulary size)."""
    from lm.viz.tokens import rank_bins  # plotly and torch: only the pages that paint generated text load them

    return rank_bins(tokenizer.vocab_size)


def gltr_html(prompt: str, tokens: Sequence, bins=None, highlight: int | None = None, details: bool = True) -> str:
    """The prompt (plain) followed by the generated tokens on GLTR colours (`lm.viz.tokens.gltr_html`)."""
    from lm.viz.tokens import gltr_html as paint  # plotly and torch: see rank_bins_for

    return paint(prompt, tokens, bins, highlight=highlight, details=details)


def gltr_legend(bins=None, vocab_size: int | None = None, name: str | None = None) -> None:
    """What each colour means for this model (its rank bins), and how to see one token's alternatives."""
    from lm.viz.tokens import gltr_legend_html, rank_bins  # plotly and torch: see rank_bins_for

    st.markdown(gltr_legend_html(bins or rank_bins(vocab_size or 10**6), vocab_size, name), unsafe_allow_html=True)


def pinned_index(key: str, count: int) -> int | None:
    """The token index (0-based) the slider under `key` holds, clamped to `count` tokens whatever the session held;
    readable before the slider is drawn, so the text above it can frame that token."""
    if count <= 0:
        return None
    value = st.session_state.get(key, 1)
    value = min(max(value, 1), count) if isinstance(value, int) and not isinstance(value, bool) else 1
    if st.session_state.get(key) != value:
        st.session_state[key] = value
    return value - 1


def pick_token(count: int, key: str, label: str | None = None) -> int | None:
    """A slider over token positions (works on a touch screen, unlike a tooltip); the chosen index, or None."""
    index = pinned_index(key, count)
    if count > 1:
        st.slider(label or _("Look at token"), 1, count, key=key,
                  help=_("Pick a token to pin its rank, probability and the model's top alternatives; it is framed "
                         "in the text above."))
    return index


def token_table(piece: str, rank: int, prob: float, top: Sequence[tuple[str, float]], written: int | None = None,
                where: str = "") -> None:
    """One token's rank and probability, and the model's top alternatives at its position, as a table.

    `written` is the row of `top` that is the token itself (by default the row with the same display text).
    """
    from lm.viz.tokens import visible  # plotly and torch: see rank_bins_for

    if written is None:
        written = next((i for i, (p, _q) in enumerate(top) if p == piece), None)
    st.caption(md_literal(where + _("'{piece}': rank {rank:,}, p = {prob:.2%}. What the model expected there:")
                          .format(piece=visible(piece, None), rank=rank, prob=prob)))
    import pyarrow  # (a Streamlit dependency) only the pages that show a token table load it: see rank_bins_for

    columns = {_("rank"): list(range(1, len(top) + 1)), _("token"): [visible(p, None) for p, _q in top],
               _("probability"): [f"{q:.2%}" for _p, q in top],
               "": [_("◀ the text has this one") if i == written else "" for i in range(len(top))]}
    st.dataframe(pyarrow.table(columns), hide_index=True, width="content")  # an Arrow table: no pandas step per run


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
    cols[0].download_button(_("Text (.txt)"), joined, file_name="generated.txt", mime="text/plain",
                            key=f"{key}_txt", on_click="ignore", icon=":material/download:",
                            width="stretch", help=_("The generated text"))
    cols[1].download_button(_("Tokens (.csv)"), tokens_csv(tokens_per_sample), file_name="tokens.csv",
                            mime="text/csv", key=f"{key}_csv", on_click="ignore", icon=":material/download:",
                            width="stretch", help=_("One row per generated token: token, probability, rank"))
