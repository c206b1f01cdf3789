"""Tokenizers: the same text cut into tokens by character and BPE tokenizers, what vocabulary size buys, and how
each tokenizer splits another script (bytes or characters).

Thin page: tokenizers come from the available models or are trained here on a built-in corpus (cached per
corpus and vocabulary size); `lm.inspect` counts tokens and `lm.viz` draws the coloured boundaries and chart.
The first text is one the first character tokenizer shown can read (its corpus's sample), and it follows
the tokenizers while nobody has typed their own. Texts are capped before anything is tokenized.
"""

import html

import streamlit as st

from lm import viz
from lm.data.corpus import BUILTIN_CORPORA, load_corpus
from lm.errors import LMError
from lm.inspect import MAX_TEXT_CHARS, bpe_training_text, corpus_sample, token_counts
from lm.data.tokenizer import Tokenizer
from lm.store.registry import ModelInfo
from ui.i18n import N_, _, lazy_gettext, option_labels
from ui.loaders import available_models, cached_model
from ui.state import init_from_query, write_query
from ui.texts import bound_text, follow_model, keep_valid, keep_valid_list
from ui.widgets import preferred_models

TEXTS = {  # a first text per corpus, in its alphabet: whole words, rare words and punctuation
    "shakespeare": "ROMEO:\nBut soft, what light through yonder window breaks?\nIt is the east, and Juliet is the sun.\n"
                   "Unbelievably, the robot said: \"tokenization!\"",
    "names": "emma\nolivia\nisabella\nsophia\nmaximilian\n",
    "python": "def tokenize(text):\n    return [word.lower() for word in text.split()]\n",
}
SCRIPTS = {  # other scripts, to show bytes against characters (the names are URL values, translated where shown)
    N_("Chinese"): "床前明月光，疑是地上霜。",
    N_("accents and emoji"): "café, naïve, 😀",
    N_("Cyrillic"): "Привет, мир!",
}
LADDER = (256, 512, 1024, 2048, 4096)
MAX_MODELS = 4  # model tokenizers painted at once (each one paints every token of the text)


@st.cache_resource(max_entries=4, show_spinner=lazy_gettext("Loading the corpus…"))
def training_text(corpus: str) -> str:
    return bpe_training_text(corpus)


@st.cache_resource(max_entries=32, show_spinner=lazy_gettext("Training a BPE tokenizer (a few seconds, once)…"))
def trained_bpe(corpus: str, vocab_size: int) -> Tokenizer:
    return Tokenizer.bpe(training_text(corpus), vocab_size)


@st.cache_resource(max_entries=4, show_spinner=False)
def corpus_chars(corpus: str) -> Tokenizer:
    return Tokenizer.char(load_corpus(corpus).text)  # every character of the corpus, as the models' tokenizers


@st.cache_data(max_entries=16, show_spinner=False)
def model_sample(name: str) -> str:
    """The start of a user model's held-out text ('' when its corpus cannot be found)."""
    try:
        return corpus_sample(cached_model(name))
    except LMError:
        return ""


def first_tokenizers(models: list[ModelInfo], corpus: str) -> list[str]:
    """One model of each tokenizer kind trained on `corpus` (char first): they all read its sample text.
    Neural models first: loading one is quicker than counting a zoo n-gram on its first use."""
    infos = {m.name: m for m in models}
    ranked = [infos[name] for name in preferred_models(models, ("transformer", "rnn", "ngram"))]
    picks: list[str] = []
    for kind in ("char", "bpe"):
        picks += [m.name for m in ranked if m.tokenizer == kind and m.corpus == corpus][:1]
    return picks


def sample_text(by_name: dict[str, ModelInfo]) -> tuple[str, str]:
    """(identity, text): the sample of the corpus of the first character tokenizer shown (a BPE reads any)."""
    chosen = [by_name[n] for n in st.session_state["tok_models"]]
    chars = [m for m in chosen if m.tokenizer == "char"]
    if chars and chars[0].corpus not in TEXTS:
        return chars[0].name, model_sample(chars[0].name) or TEXTS["shakespeare"]
    corpus = chars[0].corpus if chars else st.session_state["tok_corpus"] if st.session_state["tok_train"] \
        else (chosen[0].corpus if chosen and chosen[0].corpus in TEXTS else "shakespeare")
    return corpus, TEXTS[corpus]


def label_line(label: str, detail: str) -> None:
    st.html(f"<div><b>{html.escape(label)}</b> — {html.escape(detail)}</div>")


def show_tokens(label: str, tok: Tokenizer, text: str) -> None:
    ids, replaced = tok.encode_report(text)
    label_line(label, _("{tokens:,} tokens ({ratio:.2f} characters per token), vocabulary of {vocab:,}").format(
        tokens=len(ids), ratio=len(text) / max(len(ids), 1), vocab=tok.vocab_size))
    st.markdown(viz.token_boundaries_html(tok.token_strings(ids), ids), unsafe_allow_html=True)
    if replaced:  # single characters, each quoted apart: no two of them can form Markdown
        st.caption(_("Characters unknown to this tokenizer (they all become one 'unknown' token �): {chars}").format(
            chars=" ".join(repr(c) for c in replaced)))
    with st.expander(_("Token ids")):
        st.code(" ".join(map(str, ids)), language=None, wrap_lines=True)


def other_scripts(shown: dict[str, Tokenizer]) -> None:
    """How each tokenizer shown splits a line of another script: bytes (BPE), characters, or unknown."""
    st.subheader(_("Other scripts: bytes or characters"))
    st.radio(_("Line"), list(SCRIPTS), key="tok_script", horizontal=True, label_visibility="collapsed",
             format_func=option_labels(SCRIPTS))
    line = SCRIPTS[st.session_state["tok_script"]]
    tokenizers = dict(shown)
    tokenizers[_("characters of this line")] = Tokenizer.char(line)
    rows = []
    for label, tok in tokenizers.items():
        ids, replaced = tok.encode_report(line)
        unknown = sum(line.count(c) for c in replaced)
        rows.append({_("tokenizer"): label, _("tokens"): len(ids),
                     _("tokens per character"): round(len(ids) / len(line), 2), _("unknown characters"): unknown})
        st.html(f"<div style='font-size:0.9rem'>{html.escape(label)}</div>"
                + viz.token_boundaries_html(tok.token_strings(ids), ids))
    st.dataframe(rows, key="tok_scripts", hide_index=True)
    st.caption(_("{chars} characters, {bytes} bytes in UTF-8. A byte-level BPE reads any text as its bytes: a "
                 "character that its merges never joined takes one token per byte (shown as \\xe5…). A character "
                 "tokenizer has one token per character it saw in training and turns every other character into its "
                 "one unknown token �, so a model of English text cannot tell them apart.").format(
        chars=len(line), bytes=len(line.encode())))


def main() -> None:
    st.title(_("Tokenizers"))
    st.caption(_("A model never sees letters: it sees token ids. The same text becomes a different sequence under "
                 "each tokenizer. Alternating colours mark token boundaries; hover a token for its id."))
    models = [m for m in available_models() if m.tokenizer in ("char", "bpe")]
    by_name = {m.name: m for m in models}
    init_from_query({"tok_models": first_tokenizers(models, "shakespeare"), "tok_corpus": "shakespeare",
                     "tok_vocab": 1024, "tok_train": True, "tok_script": next(iter(SCRIPTS))},
                    allowed={"tok_models": list(by_name), "tok_corpus": BUILTIN_CORPORA, "tok_vocab": LADDER,
                             "tok_script": list(SCRIPTS)})
    keep_valid_list("tok_models", list(by_name), MAX_MODELS)  # a crafted message, a model deleted meanwhile
    keep_valid("tok_corpus", BUILTIN_CORPORA, "shakespeare")
    keep_valid("tok_vocab", LADDER, 1024)
    keep_valid("tok_script", list(SCRIPTS), next(iter(SCRIPTS)))
    follow_model("tok_text", *sample_text(by_name))
    if bound_text("tok_text", MAX_TEXT_CHARS):
        st.caption(_("The text was cut to its first {chars:,} characters.").format(chars=MAX_TEXT_CHARS))
    st.text_area(_("Text"), key="tok_text", height=120, max_chars=MAX_TEXT_CHARS)
    cols = st.columns([5, 2, 2, 2], vertical_alignment="bottom")  # the toggle's label fits at 1280 px
    cols[0].multiselect(_("Tokenizers of these models"), list(by_name), key="tok_models", max_selections=MAX_MODELS,
                        format_func=lambda n: f"{n} ({by_name[n].tokenizer})" if n in by_name else n)
    cols[1].toggle(_("Train a BPE"), key="tok_train")
    cols[2].selectbox(_("on corpus"), BUILTIN_CORPORA, key="tok_corpus", disabled=not st.session_state["tok_train"])
    cols[3].select_slider(_("vocabulary size"), LADDER, key="tok_vocab", disabled=not st.session_state["tok_train"])
    write_query(["tok_text", "tok_models", "tok_corpus", "tok_vocab", "tok_train", "tok_script"])
    text, corpus = st.session_state["tok_text"], st.session_state["tok_corpus"]
    if not text:
        st.info(_("Type some text to tokenize."))
        return
    shown: dict[str, Tokenizer] = {}
    try:
        for name in st.session_state["tok_models"]:
            shown[f"{name} ({by_name[name].tokenizer})"] = cached_model(name).tokenizer
        if st.session_state["tok_train"]:
            shown[_("characters of {corpus}").format(corpus=corpus)] = corpus_chars(corpus)
            shown[_("BPE {vocab} trained on {corpus}").format(vocab=st.session_state["tok_vocab"], corpus=corpus)] = \
                trained_bpe(corpus, st.session_state["tok_vocab"])
    except LMError as exc:
        st.error(_(str(exc)))
        return
    if not shown:
        st.info(_("Pick a model's tokenizer or switch on 'Train a BPE'."))
        return
    for label, tok in shown.items():
        show_tokens(label, tok, text)
    st.dataframe([{_("tokenizer"): c.label, _("kind"): c.kind, _("vocabulary"): c.vocab_size, _("tokens"): c.tokens,
                   _("characters per token"): round(c.chars_per_token, 2)} for c in token_counts(text, shown)],
                 key="tok_counts", hide_index=True)
    if st.session_state["tok_train"]:
        st.subheader(_("Vocabulary size against sequence length"))
        ladder = token_counts(text, {str(v): trained_bpe(corpus, v) for v in LADDER})
        st.plotly_chart(viz.vocab_length_chart([(c.vocab_size, c.tokens) for c in ladder],
                                               char_tokens=len(corpus_chars(corpus).encode(text))),
                        key="tok_ladder", width="stretch", theme=None)
        st.caption(_("Byte-level BPE tokenizers trained on the start of {corpus}. 256 tokens is the byte alphabet (one "
                     "token per byte, so an accented letter or emoji takes several); every merge learned after that "
                     "makes common text shorter, at the price of a bigger embedding table.").format(corpus=corpus))
    other_scripts(shown)


main()
