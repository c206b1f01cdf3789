"""LM Playground — the Streamlit entry point. It only routes: each page lives in pages/.

`PAGES` is the one list of pages (section, file, title, icon, URL path); tests read it with `ast` to visit
every page.
"""

import os

import streamlit as st

from lm.app.warmup import start_background_warmup
from ui.loaders import cached_model
from ui.widgets import compact_layout  # importing ui also sets torch's inference threads (see ui/__init__.py)

PAGES = [
    ("Start", "pages/home.py", "Home", ":material/home:", "home"),
    ("Generate", "pages/playground.py", "Playground", ":material/edit_note:", "playground"),
    ("Generate", "pages/compare.py", "Compare models", ":material/view_column:", "compare"),
    ("Look inside", "pages/attention.py", "Attention (Transformer)", ":material/hub:", "attention"),
    ("Look inside", "pages/rnn.py", "Memory (RNN / LSTM)", ":material/memory:", "rnn"),
    ("Look inside", "pages/ngram.py", "Counting (n-gram)", ":material/table_chart:", "ngram"),
    ("Look inside", "pages/tokens.py", "Tokenizers", ":material/segment:", "tokenizers"),
    ("Make your own", "pages/train.py", "Train a model", ":material/model_training:", "train"),
]

# Once per process: load and exercise the zoo in the background, then freeze the start-up heap (lm/app/warmup.py).
if os.environ.get("LM_WARMUP", "1").strip() != "0":
    start_background_warmup(cached_model)

st.set_page_config(page_title="LM Playground", page_icon="🎭", layout="wide")
compact_layout()
sections: dict[str, list] = {}
for section, file, title, icon, url_path in PAGES:
    sections.setdefault(section, []).append(
        st.Page(file, title=title, icon=icon, url_path=url_path, default=url_path == "home"))
st.navigation(sections).run()
