"""Home: what LM Playground is, the model zoo, and a guided tour that says what the first click on each page shows.

The zoo table spans the page (beside the tour, its seven columns were cut off on a 1280-pixel projector); the
tour sits below it in two columns.
"""

from pathlib import Path

import streamlit as st

from lm.models import variant_label
from lm.store.registry import list_models
from ui.i18n import N_, _

ROOT = Path(__file__).resolve().parent.parent
TOUR = [  # (page file, icon, title, what the first click shows and what to try next); translated where shown
    ("views/playground.py", ":material/edit_note:", N_("1 · Playground"),
     N_("Press **Generate**: the Shakespeare model continues “ROMEO:” and every token is coloured by the rank the "
        "model gave it (green: one of its first guesses; the legend says how many). Then raise **temperature** "
        "and generate again, or switch on **step mode** to see the next-token distribution before and after "
        "temperature, top-k and top-p.")),
    ("views/compare.py", ":material/view_column:", N_("2 · Compare models"),
     N_("Press **Compare**: one prompt, the same knobs and seed, the same number of characters from an n-gram, an "
        "LSTM and a Transformer side by side. The memorisation meter shows which one copies its training text, the "
        "matrix below who is surprised by whose writing.")),
    ("views/attention.py", ":material/hub:", N_("3 · Attention"),
     N_("Opens on a line of Shakespeare: one head's attention as a heatmap, every head at once below. Move "
        "**Attention from token** along the text and watch where that token looks; change layer and head to "
        "find a head that looks back at the previous character.")),
    ("views/rnn.py", ":material/memory:", N_("4 · Memory"),
     N_("Opens on an LSTM reading a text: its cell state over time × unit. Pick a unit under **Jump to a unit "
        "that follows…** (line ends, quotes, speakers) and see it painted on the text.")),
    ("views/ngram.py", ":material/table_chart:", N_("5 · Counting"),
     N_("Opens with a context and the table of what followed it in training. Pick a next token under **Explain "
        "the probability of** to see its back-off path; slide **Order n** and watch held-out perplexity fall, "
        "then rise (over-fitting).")),
    ("views/tokens.py", ":material/segment:", N_("6 · Tokenizers"),
     N_("Opens on a line of Shakespeare cut up by a character and a BPE tokenizer: count the tokens. Switch the "
        "**Line** to another script to see bytes against characters.")),
    ("views/train.py", ":material/model_training:", N_("7 · Train your own"),
     N_("Press **Start training**: a tiny LSTM learns Shakespeare in about half a minute while its loss, in bits "
        "per character, falls on a live chart; the model then appears in every page's picker.")),
]


def zoo_table() -> None:
    models = list_models()
    if not models:
        st.info(_("No models yet: train one on the **Train a model** page (or count an n-gram with "
                  "`python -m lm ngram`)."))
        return
    bits = _("Bits/char")
    rows = [{
        _("Model"): m.name,
        bits: "—" if m.valid_bits_per_char is None else f"{m.valid_bits_per_char:.3f}",
        _("Kind"): _(variant_label(m.variant)), _("Tokens"): m.tokenizer, _("Corpus"): m.corpus,
        _("Parameters"): "—" if not m.parameters else f"{m.parameters:,}",
        _("From"): _("zoo") if m.source == "zoo" else _("yours"),
    } for m in models]
    # no fixed widths: each column fits its longest value (a fixed "medium" cut "shakespeare-char-transformer")
    st.dataframe(rows, hide_index=True, width="stretch", key="zoo_table", column_config={
        bits: st.column_config.TextColumn(
            help=_("Bits per character on held-out text of the model's corpus: lower is better.")),
    })
    if any(m.valid_bits_per_char is None for m in models):
        st.caption(_("— : not measured yet (zoo n-grams are counted, and measured, the first time they are used)."))


def main() -> None:
    st.title("LM Playground")
    st.markdown(_(
        "Small language models you can poke at. Each one learned to **predict the next character (or piece "
        "of a word)** from a corpus — Shakespeare's plays or a list of first names — and writes by doing that "
        "over and over. The models are tiny and trained right here, so you can see *everything* they do; on "
        "the Train page you can make your own from Python source or any text you upload."))
    st.subheader(_("The model zoo"))
    zoo_table()
    st.caption(_("Bits/char: how surprised the model is by text it never saw, in bits per character "
                 "(8 would be random bytes; lower is better). Comparable across tokenizers."))
    st.subheader(_("Guided tour"))
    columns = st.columns(2, gap="large")
    shown = [stop for stop in TOUR if (ROOT / stop[0]).is_file()]
    for number, (file, icon, title, text) in enumerate(shown):
        with columns[number % 2]:
            st.page_link(file, label=_(title), icon=icon)
            st.caption(_(text))


main()
