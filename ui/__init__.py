"""Shared Streamlit helpers for the pages: cached model loading, pickers, URL query-string state.

Importing `ui` (every page and app.py do, once per server process) also sets torch's CPU threads for
inference: one per request unless $LM_THREADS says otherwise. Tiny models step fastest on one thread, and
a classroom server runs many requests at once on few cores (two threads each made generation ten times
slower on a busy 2-core machine).

Importing `ui` also makes sure app.py does the routing. Streamlit treats an app with a `pages/` folder as a
legacy multipage app until app.py first calls `st.navigation`; so when the very first request after a server
start is a deep link (say a shared `/playground?...` URL), Streamlit would run pages/playground.py on its
own — no wide layout, no page menu, the file names as navigation. Every page imports `ui`, so here
we switch Streamlit to app.py's routing and rerun once; the rerun keeps the URL and lands on the same page.
"""


def _configure_threads() -> None:
    import os
    import sys

    wanted = os.environ.get("LM_THREADS", "").strip() or "1"
    if "torch" in sys.modules:  # a page imported lm (and torch) before ui: set it directly
        from lm.device import set_inference_threads

        try:
            set_inference_threads(int(wanted))
        except ValueError:
            pass  # a bad LM_THREADS: keep torch's default rather than break every page
    else:  # torch reads this when it is first imported
        os.environ.setdefault("OMP_NUM_THREADS", wanted)


def _route_through_app() -> None:
    try:
        from streamlit.runtime.pages_manager import PagesManager
        from streamlit.runtime.scriptrunner import get_script_run_ctx
    except ImportError:  # another Streamlit layout: nothing to fix
        return
    if PagesManager.uses_pages_directory and get_script_run_ctx() is not None:
        import streamlit as st

        PagesManager.uses_pages_directory = False  # what st.navigation itself does on its first call
        st.rerun()


_configure_threads()
_route_through_app()
