"""Refresh the committed screenshots in docs/screenshots/ (1280 x 800, a projector's window): `python tools/screenshots.py`.

The screenshots are taken by the browser test's page visits (tests/test_browser.py: every page, a generation,
step mode, a comparison, a finished training), so the pictures show exactly what the test checked. A plain test
run writes them to a temporary folder; this command points `$LM_SCREENSHOTS` at docs/screenshots/ and runs
only the visits that take them. Needs Chromium at /usr/bin/chromium, like the browser test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "screenshots"
VISITS = "every_page or playground_slider or compare_runs or upload_train"  # the tests that take screenshots


def main() -> int:
    env = {**os.environ, "LM_SCREENSHOTS": str(TARGET)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_browser.py", "-k", VISITS]
    code = subprocess.call(command, cwd=ROOT, env=env)
    if code == 0:
        print(f"screenshots refreshed in {TARGET.relative_to(ROOT)}/")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
