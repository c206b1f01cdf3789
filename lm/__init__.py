"""LM Playground's library: corpora, tokenizers, three model families behind one contract, sampling, one
generation loop, scoring and metrics, inspection traces, checkpoints, training, and Plotly figures.

It never imports streamlit: everything the app shows can be reproduced from a notebook or `python -m lm`.
"""

__version__ = "0.1.0"
