"""LM Playground's library: corpora, tokenizers, three model families behind one contract, sampling, one
generation loop, scoring and metrics, inspection traces, checkpoints, training, and Plotly figures.

It never imports streamlit: everything the app shows can be reproduced from a notebook or `python -m lm`.
"""

import logging

__version__ = "0.1.0"

# A library logs, the application decides where to: skipped user-directory entries and similar warnings go
# nowhere unless the app (ui/__init__.py sends them to the server log) or a notebook configures logging.
logging.getLogger(__name__).addHandler(logging.NullHandler())
