"""Cached, read-only model loading and inspection, shared by every session and thread.

`st.cache_resource` keeps one object per model for the whole server: pages must treat it as read-only
(the `lm` contract guarantees inference never mutates it) and take randomness from a per-request
`torch.Generator`.
"""

from __future__ import annotations

import os

import streamlit as st

from lm.app.model_cache import ModelCache
from lm.errors import LMError
from lm.inspect import Inspection, inspect_text
from lm.store.checkpoint import LoadedModel
from lm.store.registry import ModelInfo, list_models, load_model
from ui.i18n import _, lazy_gettext


def _load(name: str) -> LoadedModel:
    # $LM_DEVICE (default auto: CUDA, then Apple MPS, else the CPU) places the neural models' weights
    return load_model(name, device=os.environ.get("LM_DEVICE", "").strip() or "auto")


@st.cache_resource
def model_cache() -> ModelCache:
    """The server's one model cache, bounded by memory (LM_MODEL_CACHE_MB, lm/app/model_cache.py)."""
    return ModelCache(_load)


def cached_model(name: str) -> LoadedModel:
    cache = model_cache()
    if name in cache.names():
        return cache.get(name)
    with st.spinner(_("Loading model…")):
        return cache.get(name)


def available_models(families: tuple[str, ...] | None = None, variants: tuple[str, ...] | None = None) -> list[ModelInfo]:
    """Models from the registry, optionally only some families (ngram/rnn/transformer) or variants (lstm, gru…)."""
    models = list_models()
    if families:
        models = [m for m in models if m.family in families]
    if variants:
        models = [m for m in models if m.variant in variants]
    return models


def get_model(name: str) -> LoadedModel | None:
    """Load `name` through the cache; show a one-line error and return None if it cannot be loaded."""
    try:
        return cached_model(name)
    except LMError as exc:
        st.error(_(str(exc)))
        return None


@st.cache_resource(max_entries=16, show_spinner=lazy_gettext("Running the model on the text…"))
def inspection(model_name: str, text: str) -> Inspection:
    """A text's trace through a model, kept per (model, text), so moving a page's slider only re-slices it."""
    return inspect_text(cached_model(model_name), text)


def get_inspection(model_name: str, text: str) -> Inspection | None:
    """`inspection` for a page: a one-line error and None if it fails, the trace's note (a cut text) as a caption."""
    if get_model(model_name) is None:
        return None
    try:
        ins = inspection(model_name, text)
    except LMError as exc:
        st.error(_(str(exc)))
        return None
    if ins.note:
        st.caption(ins.note)
    return ins
