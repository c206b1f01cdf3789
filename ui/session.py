"""Who is asking: a browser's owner token (kept in a cookie across reloads and reconnects) and the teacher role.

A class shares one server. Every training, and the model and upload it makes, belongs to the browser that
started it: `owner_token()` is a random 128-bit token, made once per browser and stored in the `lm_owner`
cookie (SameSite=Strict, never in the URL, so a shared link never shares ownership). Only its owner, or the
teacher, may cancel, resume or delete.

The teacher role exists only when the server was started with `LM_TEACHER_TOKEN`: whoever enters that token
once (the admin panel on the Train page) may cancel any run, delete any user model or upload, switch training
on or off and see memory and disk use. Without the variable the app is a single-user laptop app, as before.
"""

from __future__ import annotations

import hmac
import os
import re
import secrets

import streamlit as st
import streamlit.components.v1 as components

from lm.app.jobs import TEACHER

COOKIE = "lm_owner"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{22,64}$")


def owner_token() -> str:
    """This browser's owner token: from its cookie, else a new one (set in the cookie for later sessions)."""
    if "lm_owner_token" not in st.session_state:
        try:
            cookie = st.context.cookies.get(COOKIE, "")
        except Exception:  # noqa: BLE001 — no request context (AppTest, bare mode): a session-only token
            cookie = ""
        cookie = cookie if isinstance(cookie, str) else ""  # AppTest's context answers with a mock
        st.session_state["lm_owner_token"] = cookie if _TOKEN.match(cookie) else secrets.token_urlsafe(16)
        st.session_state["lm_owner_cookie_set"] = cookie == st.session_state["lm_owner_token"]
    if not st.session_state.get("lm_owner_cookie_set"):
        token = st.session_state["lm_owner_token"]  # URL-safe characters only: nothing to escape in the script
        components.html(f"<script>window.parent.document.cookie = '{COOKIE}={token}; path=/; max-age=31536000; "
                        "SameSite=Strict';</script>", height=0)
        st.session_state["lm_owner_cookie_set"] = True
    return st.session_state["lm_owner_token"]


def teacher_enabled() -> bool:
    return bool(os.environ.get("LM_TEACHER_TOKEN", "").strip())


def is_teacher() -> bool:
    return teacher_enabled() and bool(st.session_state.get("lm_is_teacher"))


def try_teacher_token(entered: str) -> bool:
    """Compare an entered token with $LM_TEACHER_TOKEN (constant time); remember a match for this session."""
    expected = os.environ.get("LM_TEACHER_TOKEN", "").strip()
    ok = bool(expected) and hmac.compare_digest(entered.strip().encode(), expected.encode())
    st.session_state["lm_is_teacher"] = ok
    return ok


def acting_as() -> str:
    """The `by` of every control this session uses: the teacher, or this browser's owner token."""
    return TEACHER if is_teacher() else owner_token()
