"""Refresh the committed screenshots in docs/screenshots/ (1280 x 800, a projector's window): `python tools/screenshots.py`.

A deliberate command, never run by the tests (they take their own screenshots in a temporary folder). It starts
the app on the shipped zoo with a fresh user directory, opens every page in headless Chromium as a teacher's
first click would, waits until every chart is drawn, checks that nothing is cut off, and saves full-page shots.
Needs Chromium at /usr/bin/chromium, like the browser test.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from app_server import VIEWPORT, chromium, no_exception, nothing_clipped, require_chromium, serve, settle, shoot  # noqa: E402

TARGET = ROOT / "docs" / "screenshots"
# (file, URL path and query, the button a teacher presses first, or None)
SHOTS = [
    ("home", "", None),
    ("playground", "playground?model=shakespeare-char-lstm&prompt=ROMEO:%0A&seed=7", "Generate"),
    ("playground-step", "playground?model=shakespeare-char-transformer&prompt=ROMEO:&step_mode=true&temperature=1.2",
     None),
    ("compare", "compare?seed=7", "Compare"),
    ("attention", "attention", None),
    ("rnn", "rnn", None),
    ("ngram", "ngram", None),
    ("explain", "explain", None),
    ("tokenizers", "tokenizers", None),
    ("train", "train", None),
]


def main() -> int:
    require_chromium()
    TARGET.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="lm-screenshots-home-"))
    with serve(home, home / "server.log") as (url, _proc), chromium() as browser:
        context = browser.new_context(viewport=VIEWPORT)
        tab = context.new_page()
        tab.set_default_timeout(120_000)
        for name, path, button in SHOTS:
            tab.goto(f"{url}/{path}")
            settle(tab)
            if button:
                tab.get_by_role("button", name=button, exact=True).first.click()
                settle(tab)
            no_exception(tab, name)
            nothing_clipped(tab, name)
            shoot(tab, TARGET / f"{name}.png")
            print(f"{name}.png", flush=True)
    print(f"screenshots refreshed in {TARGET.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
