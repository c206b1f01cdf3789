"""Page settings that live in the URL query string, so a shared link reproduces the same view.

Usage on a page:

    init_from_query({"temperature": 0.8, "prompt": "ROMEO:", "seed": 1})   # before the widgets
    st.slider("Temperature", 0.0, 2.0, key="temperature")                  # widgets use the same keys
    write_query(["temperature", "prompt", "seed"])                          # after the widgets

A value in the URL that cannot be cast to the default's type (or is out of a widget's range) is ignored
and the default is used, so a hand-edited link never breaks a page.
"""

from __future__ import annotations

from typing import Any, Iterable

import streamlit as st


def _cast(raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        return raw.lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    if isinstance(default, (list, tuple)):
        return [item for item in raw.split(",") if item]
    return raw


def init_from_query(defaults: dict[str, Any], allowed: dict[str, Iterable] | None = None) -> None:
    """Seed `st.session_state` from the URL (or the defaults) for keys not yet set in this session.

    `allowed` optionally maps a key to its valid choices (for selectboxes); other values fall back.
    """
    allowed = allowed or {}
    for key, default in defaults.items():
        if key in st.session_state:
            continue
        value = default
        if key in st.query_params:
            try:
                value = _cast(st.query_params[key], default)
            except (TypeError, ValueError):
                value = default
            if key in allowed:
                choices = list(allowed[key])
                if isinstance(value, list):
                    value = [v for v in value if v in choices] or default
                elif value not in choices:
                    value = default
        st.session_state[key] = value


# A value longer than this stays out of the URL: 30,000 "é" made a 180,000-character address that a reload
# answered with "400 Invalid HTTP request". A shared link then carries the settings but not that text.
MAX_URL_VALUE_CHARS = 2_000


def write_query(keys: Iterable[str]) -> None:
    """Mirror the current values of `keys` into the URL query string (long texts left out, see above)."""
    for key in keys:
        if key not in st.session_state:
            continue
        value = st.session_state[key]
        text = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
        if len(text) > MAX_URL_VALUE_CHARS:
            if key in st.query_params:
                del st.query_params[key]
        elif st.query_params.get(key) != text:
            st.query_params[key] = text
