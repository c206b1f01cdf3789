"""LM Playground — the Streamlit entry point. It only routes: each page lives in views/ (not pages/: see ui/__init__.py).

`PAGES` is the one list of pages (section, file, title, icon, URL path); tests read it with `ast` to visit
every page, and tools/i18n.py to put its sections and titles in the catalog (shown through `_()`).
"""

import os

import streamlit as st

from lm.app.warmup import start_background_warmup
from ui.i18n import _, language_picker
from ui.loaders import model_cache
from ui.widgets import compact_layout  # importing ui also sets torch's inference threads (see ui/__init__.py)

PAGES = [
    ("Start", "views/home.py", "Home", ":material/home:", "home"),
    ("Generate", "views/playground.py", "Playground", ":material/edit_note:", "playground"),
    ("Generate", "views/compare.py", "Compare models", ":material/view_column:", "compare"),
    ("Look inside", "views/attention.py", "Attention (Transformer)", ":material/hub:", "attention"),
    ("Look inside", "views/rnn.py", "Memory (RNN / LSTM)", ":material/memory:", "rnn"),
    ("Look inside", "views/ngram.py", "Counting (n-gram)", ":material/table_chart:", "ngram"),
    ("Look inside", "views/explain.py", "Why this token?", ":material/psychology_alt:", "explain"),
    ("Look inside", "views/tokens.py", "Tokenizers", ":material/segment:", "tokenizers"),
    ("Make your own", "views/train.py", "Train a model", ":material/model_training:", "train"),
]

# Once per process: load and exercise the zoo in the background, then freeze the start-up heap (lm/app/warmup.py).
if os.environ.get("LM_WARMUP", "1").strip() != "0":
    start_background_warmup(model_cache().get)  # the cache itself: no spinner outside a page run

st.set_page_config(page_title="LM Playground", page_icon="🎭", layout="wide")
compact_layout()
language_picker()  # before routing: the page it routes to reads the session's language
sections: dict[str, list] = {}
for section, file, title, icon, url_path in PAGES:
    sections.setdefault(_(section), []).append(
        st.Page(file, title=_(title), icon=icon, url_path=url_path, default=url_path == "home"))
st.navigation(sections).run()
