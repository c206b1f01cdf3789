"""A class server in a real browser: two students and a teacher, each their own browser context (own cookies,
own owner token), on one `streamlit run app.py` started with LM_TEACHER_TOKEN.

- Student A starts a training; student B, opening the same run by its link, sees it but gets no Cancel (nor
  Resume, nor Delete), and the run keeps going.
- The teacher enters the token once on the Train page's admin panel and then can cancel A's run.
- Markdown that students type or upload (a model description, an upload's file name echoed in an error) shows
  as typed: no request to the addresses in it, no <img>, no link, no maths, no colour, no dialog.

Skipped like tests/test_browser.py when /usr/bin/chromium is missing (a failure under CI).
"""

from __future__ import annotations

import json
import secrets
import shutil
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from app_fixtures import app_home  # noqa: E402,F401
from app_server import VIEWPORT, chromium, no_exception, require_chromium, serve, settle  # noqa: E402

PAYLOADS = ("![t](http://127.0.0.1:9/x.png)", "[l](http://x)", ":red[x]", "$x$")
UPLOAD_NAME = "![t](x.png) [l](x) :red[x] $x$.txt"  # a file name cannot hold the payloads' slashes
TEACHER_TOKEN = secrets.token_urlsafe(16)


@pytest.fixture(scope="module")
def class_server(app_home, tmp_path_factory):
    require_chromium()
    home = tmp_path_factory.mktemp("class") / "home"
    shutil.copytree(app_home, home, ignore=shutil.ignore_patterns("server.log", "jobs", "corpora"))
    with serve(home, home.parent / "server.log", env={"LM_TEACHER_TOKEN": TEACHER_TOKEN}) as (url, _proc):
        yield url, home


@pytest.fixture(scope="module")
def browser(class_server):
    with chromium() as browser_:
        yield browser_


class Person:
    """One browser context: its tab, every request it made and every dialog it was shown."""

    def __init__(self, browser):
        self.context = browser.new_context(viewport=VIEWPORT)
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.context.on("request", lambda request: self.requests.append(request.url))
        self.tab = self.context.new_page()
        self.tab.on("dialog", lambda dialog: (self.dialogs.append(dialog.message), dialog.dismiss()))
        self.tab.set_default_timeout(60_000)

    def rendered_nothing(self, where: str) -> None:
        """None of the payloads became an element, a request or a dialog."""
        main = self.tab.locator("[data-testid='stMain']")
        assert main.locator("img").count() == 0, where
        assert main.locator(".katex, a[href^='http://x'], a[href*='127.0.0.1:9']").count() == 0, where
        assert not [u for u in self.requests if "127.0.0.1:9/" in u or u.startswith("http://x")], where
        assert self.dialogs == [], where


def shown(text: str) -> str:
    """Text as a reader sees it: without the invisible word joiners that keep addresses from becoming links."""
    return text.replace("\u2060", "")


def job_status(home: Path, job_id: str) -> str:
    return json.loads((home / "jobs" / f"{job_id}.json").read_text())["status"]


def test_students_cannot_touch_each_other_and_markdown_stays_text(class_server, browser):
    url, home = class_server
    a, b, teacher = Person(browser), Person(browser), Person(browser)
    try:
        # A starts a long run, with every payload in its description
        a.tab.goto(f"{url}/train?tr_corpus=names&tr_family=lstm&tr_preset=tiny&tr_steps=100000&tr_minutes=10")
        settle(a.tab)
        for label, value in (("Model name", "class-a"), ("Description (optional)", " ".join(PAYLOADS))):
            a.tab.get_by_role("textbox", name=label).fill(value)  # one at a time: a rerun started by one
            a.tab.get_by_role("textbox", name=label).press("Enter")  # field must not swallow the other
            settle(a.tab)
            assert a.tab.get_by_role("textbox", name=label).input_value() == value
        a.tab.get_by_role("button", name="Start training").click()
        a.tab.get_by_text("class-a — running").wait_for(timeout=60_000)
        job_id = parse_qs(urlparse(a.tab.url).query)["job"][0]
        a.tab.get_by_role("button", name="Cancel").wait_for()  # the owner has the control
        description = shown(a.tab.get_by_text(":red[x]").first.inner_text())
        assert all(p in description for p in PAYLOADS), description
        no_exception(a.tab, "student A")
        a.rendered_nothing("student A's page")

        # B opens A's run by its link: sees it, no controls; the run goes on
        b.tab.goto(f"{url}/train?job={job_id}")
        settle(b.tab)
        b.tab.get_by_text("class-a — running").wait_for()
        b.tab.get_by_text("Started by another student").wait_for()
        assert b.tab.get_by_role("button", name="Cancel").count() == 0
        assert b.tab.get_by_role("button", name="Resume training").count() == 0
        assert b.tab.locator("[data-testid='stExpander']", has_text="Teacher").count() == 1  # locked
        b.rendered_nothing("student B viewing A's run")
        # B's upload with a Markdown file name: the error that echoes it shows it as typed
        b.tab.get_by_text("Upload a .txt").click()
        settle(b.tab)
        b.tab.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(
            {"name": UPLOAD_NAME, "mimeType": "text/plain", "buffer": b"\x00\x01binary\xff" * 40})
        settle(b.tab)
        alert = b.tab.locator("[data-testid='stAlert']").first
        alert.wait_for()
        for piece in (":red[x]", "$x$", "[l](x)", "![t](x.png)"):
            assert piece in shown(alert.inner_text()), alert.inner_text()
        b.rendered_nothing("student B's upload error")
        # a good text with a bad model name: refused before the upload is written, however often B clicks
        b.tab.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(
            {"name": "rhymes.txt", "mimeType": "text/plain", "buffer": b"twinkle twinkle little star\n" * 40})
        settle(b.tab)
        b.tab.get_by_role("textbox", name="Model name").fill("Bad Name")
        b.tab.get_by_role("textbox", name="Model name").press("Enter")
        settle(b.tab)
        for _ in range(3):
            b.tab.get_by_role("button", name="Start training").click()
            settle(b.tab)
        b.tab.get_by_text("invalid model name").first.wait_for()
        assert not list((home / "corpora").glob("*.txt"))  # nothing was written
        assert job_status(home, job_id) == "running"

        # the teacher unlocks the panel once, then may cancel A's run
        teacher.tab.goto(f"{url}/train?job={job_id}")
        settle(teacher.tab)
        assert teacher.tab.get_by_role("button", name="Cancel").count() == 0
        teacher.tab.get_by_text("Teacher", exact=True).click()
        teacher.tab.get_by_label("Teacher token").fill(TEACHER_TOKEN)
        teacher.tab.get_by_role("button", name="Unlock").click()
        settle(teacher.tab)
        teacher.tab.get_by_text("Training is on on this server").wait_for()
        deadline = time.monotonic() + 60
        while job_status(home, job_id) == "running":  # the live panel redraws every second: retry a stale click
            assert time.monotonic() < deadline, "the teacher could not cancel the run"
            teacher.tab.get_by_role("button", name="Cancel").first.click(timeout=10_000)
            time.sleep(1.0)
        assert job_status(home, job_id) in ("cancelled", "finished")
        teacher.tab.get_by_text("class-a — cancelled").wait_for(timeout=60_000)
        no_exception(teacher.tab, "teacher")
        teacher.rendered_nothing("teacher's page")
    finally:
        for person in (a, b, teacher):
            person.context.close()
