"""Home: what LM Playground is, the model zoo, and a guided tour of the other pages."""

from pathlib import Path

import streamlit as st

from lm.models import variant_label
from lm.store.registry import list_models

ROOT = Path(__file__).resolve().parent.parent
TOUR = [
    ("pages/playground.py", ":material/edit_note:", "1 · Playground",
     "Type a prompt and let a model continue it. Turn **temperature**, **top-k** and **top-p** and watch the "
     "colours: green tokens were the model's top-10 guesses, purple ones were long shots. Switch on "
     "**step mode** to see what each knob does to the next-token distribution."),
    ("pages/compare.py", ":material/view_column:", "2 · Compare models",
     "The same prompt, settings and seed through an n-gram, an LSTM and a Transformer. Which one copies its "
     "training text? Which one is surprised by the others' writing?"),
    ("pages/attention.py", ":material/hub:", "3 · Attention",
     "Where does each Transformer head look when it predicts the next character?"),
    ("pages/rnn.py", ":material/memory:", "4 · Memory",
     "What an LSTM's gates open and close as it reads."),
    ("pages/ngram.py", ":material/table_chart:", "5 · Counting",
     "An n-gram model is a table of counts: see the back-off path behind every prediction."),
    ("pages/tokens.py", ":material/segment:", "6 · Tokenizers",
     "Characters or BPE pieces: how the text is cut up before any model sees it."),
    ("pages/train.py", ":material/model_training:", "7 · Train your own",
     "Pick a corpus (or upload a .txt), a model size and a time budget, and watch the loss fall."),
]


def zoo_table() -> None:
    models = list_models()
    if not models:
        st.info("No models yet: train one on the **Train a model** page (or count an n-gram with "
                "`python -m lm ngram`).")
        return
    rows = [{
        "Model": m.name,
        "Bits/char": "—" if m.valid_bits_per_char is None else f"{m.valid_bits_per_char:.3f}",
        "Kind": variant_label(m.variant), "Tokens": m.tokenizer, "Corpus": m.corpus,
        "Parameters": "—" if not m.parameters else f"{m.parameters:,}",
        "From": "zoo" if m.source == "zoo" else "yours",
    } for m in models]
    st.dataframe(rows, hide_index=True, width="stretch", key="zoo_table", column_config={
        "Model": st.column_config.TextColumn(width="medium"),
        "Bits/char": st.column_config.TextColumn(
            help="Bits per character on held-out text of the model's corpus: lower is better."),
    })
    if any(m.valid_bits_per_char is None for m in models):
        st.caption("— : not measured yet (zoo n-grams are counted, and measured, the first time they are used).")


def main() -> None:
    st.title("LM Playground")
    st.markdown(
        "Small language models you can poke at. Each one learned to **predict the next character (or piece "
        "of a word)** from a corpus — Shakespeare, first names, Python code — and writes by doing that "
        "over and over. The models are tiny and trained right here, so you can see *everything* they do.")
    left, right = st.columns([5, 3], gap="large")
    with left:
        st.subheader("The model zoo")
        zoo_table()
        st.caption("Bits/char: how surprised the model is by text it never saw, in bits per character "
                   "(8 would be random bytes; lower is better). Comparable across tokenizers.")
    with right:
        st.subheader("Guided tour")
        for file, icon, title, text in TOUR:
            if (ROOT / file).is_file():
                st.page_link(file, label=title, icon=icon)
                st.caption(text)


main()
