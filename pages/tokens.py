"""Tokenizers: the same text cut into tokens by character and BPE tokenizers, and what vocabulary size buys.

Thin page: tokenizers come from the available models or are trained here on a built-in corpus (cached per
corpus and vocabulary size); `lm.inspect.text` counts tokens and `lm.viz` draws the coloured boundaries and chart.
"""

import streamlit as st

from lm import viz
from lm.data.corpus import BUILTIN_CORPORA, load_corpus
from lm.errors import LMError
from lm.inspect import bpe_training_text, token_counts
from lm.data.tokenizer import Tokenizer
from ui.loaders import available_models, cached_model
from ui.state import init_from_query, write_query

TEXT = ("ROMEO:\nBut soft, what light through yonder window breaks?\nIt is the east, and Juliet is the sun.\n"
        "Unbelievably, the café's naïve robot said: \"tokenization!\" 😀")
LADDER = (256, 512, 1024, 2048, 4096)


@st.cache_resource(max_entries=4, show_spinner="Loading the corpus…")
def training_text(corpus: str) -> str:
    return bpe_training_text(corpus)


@st.cache_resource(max_entries=32, show_spinner="Training a BPE tokenizer (a few seconds, once)…")
def trained_bpe(corpus: str, vocab_size: int) -> Tokenizer:
    return Tokenizer.bpe(training_text(corpus), vocab_size)


@st.cache_resource(max_entries=4, show_spinner=False)
def corpus_chars(corpus: str) -> Tokenizer:
    return Tokenizer.char(load_corpus(corpus).text)  # every character of the corpus, as the models' tokenizers


def show_tokens(label: str, tok: Tokenizer, text: str) -> None:
    ids, replaced = tok.encode_report(text)
    st.markdown(f"**{label}** — {len(ids):,} tokens ({len(text) / max(len(ids), 1):.2f} characters per token), "
                f"vocabulary of {tok.vocab_size:,}")
    st.markdown(viz.token_boundaries_html(tok.token_strings(ids), ids), unsafe_allow_html=True)
    if replaced:
        st.caption("Characters unknown to this tokenizer (they all become one 'unknown' token �): "
                   + " ".join(repr(c) for c in replaced))
    with st.expander("Token ids"):
        st.code(" ".join(map(str, ids)), language=None, wrap_lines=True)


def main() -> None:
    st.title("Tokenizers")
    st.caption("A model never sees letters: it sees token ids. The same text becomes a different sequence under "
               "each tokenizer. Alternating colours mark token boundaries; hover a token for its id.")
    models = [m for m in available_models() if m.tokenizer in ("char", "bpe")]
    by_name = {m.name: m for m in models}
    defaults: list[str] = []
    for kind in ("char", "bpe"):  # one model of each tokenizer kind to start with
        defaults += [m.name for m in models if m.tokenizer == kind][:1]
    init_from_query({"tok_text": TEXT, "tok_models": defaults, "tok_corpus": "shakespeare", "tok_vocab": 1024,
                     "tok_train": True},
                    allowed={"tok_models": list(by_name), "tok_corpus": BUILTIN_CORPORA, "tok_vocab": LADDER})
    st.text_area("Text", key="tok_text", height=120)
    cols = st.columns([3, 1, 1, 1], vertical_alignment="bottom")
    cols[0].multiselect("Tokenizers of these models", list(by_name), key="tok_models",
                        format_func=lambda n: f"{n} ({by_name[n].tokenizer})")
    cols[1].toggle("Train a BPE here", key="tok_train")
    cols[2].selectbox("on corpus", BUILTIN_CORPORA, key="tok_corpus", disabled=not st.session_state["tok_train"])
    cols[3].select_slider("vocabulary size", LADDER, key="tok_vocab", disabled=not st.session_state["tok_train"])
    write_query(["tok_text", "tok_models", "tok_corpus", "tok_vocab", "tok_train"])
    text, corpus = st.session_state["tok_text"], st.session_state["tok_corpus"]
    if not text:
        st.info("Type some text to tokenize.")
        return
    shown: dict[str, Tokenizer] = {}
    try:
        for name in st.session_state["tok_models"]:
            shown[f"{name} ({by_name[name].tokenizer})"] = cached_model(name).tokenizer
        if st.session_state["tok_train"]:
            shown[f"characters of {corpus}"] = corpus_chars(corpus)
            shown[f"BPE {st.session_state['tok_vocab']} trained on {corpus}"] = trained_bpe(corpus, st.session_state["tok_vocab"])
    except LMError as exc:
        st.error(str(exc))
        return
    if not shown:
        st.info("Pick a model's tokenizer or switch on 'Train a BPE here'.")
        return
    for label, tok in shown.items():
        show_tokens(label, tok, text)
    st.dataframe([{"tokenizer": c.label, "kind": c.kind, "vocabulary": c.vocab_size, "tokens": c.tokens,
                   "characters per token": round(c.chars_per_token, 2)} for c in token_counts(text, shown)],
                 key="tok_counts", hide_index=True)
    if st.session_state["tok_train"]:
        st.subheader("Vocabulary size against sequence length")
        ladder = token_counts(text, {str(v): trained_bpe(corpus, v) for v in LADDER})
        st.plotly_chart(viz.vocab_length_chart([(c.vocab_size, c.tokens) for c in ladder],
                                               char_tokens=len(corpus_chars(corpus).encode(text))),
                        key="tok_ladder", width="stretch", theme=None)
        st.caption(f"Byte-level BPE tokenizers trained on the start of {corpus}. 256 tokens is the byte "
                   "alphabet (one token per byte, so an accented letter or emoji takes several); every merge "
                   "learned after that makes common text shorter, at the price of a bigger embedding table.")


main()
