"""Shared Streamlit helpers for the pages: cached model loading, pickers, URL query-string state.

Importing `ui` (every page and app.py do, once per server process) also sets torch's CPU threads for
inference: one per request unless $LM_THREADS says otherwise. Tiny models step fastest on one thread, and
a classroom server runs many requests at once on few cores (two threads each made generation ten times
slower on a busy 2-core machine).

The pages live in views/, not pages/: Streamlit treats an app with a `pages/` folder beside the entry
point as a legacy multipage app until app.py has called `st.navigation` once, so a shared deep link opened
as a fresh server's first request ran that file on its own and landed on Home (a rerun from here did not fix
it). Without such a folder app.py routes every request, the first one included.

And it sends the library's warnings (a hostile entry skipped in the user directory, ...) to the server log.
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


def _log_library_warnings() -> None:
    import logging

    log = logging.getLogger("lm")
    if not any(getattr(h, "_lm_server", False) for h in log.handlers):
        handler = logging.StreamHandler()  # stderr: the server log
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler._lm_server = True
        log.addHandler(handler)
        log.setLevel(logging.WARNING)


_configure_threads()
_log_library_warnings()
