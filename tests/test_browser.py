"""The real thing: `streamlit run app.py` on a free port, driven by headless Chromium through Playwright.

Visits every page listed in app.py's `PAGES` at 1280 x 800 (a projector's window), checks none shows an
exception or cuts off a metric, a label or a table, and takes a screenshot of each. Then moves a slider,
generates text, uploads a small corpus, trains a tiny model to completion and finds it in the Playground's
model picker; and opens a shared link as a fresh server's very first request.

Screenshots of the tiny test zoo go to a temporary folder, or to $LM_SCREENSHOTS when set, so a test run leaves
the checkout as it found it; the committed ones (the shipped zoo) are refreshed by `python tools/screenshots.py`.

Locally the test is skipped (with a message) when /usr/bin/chromium is missing; under CI (env CI=true) a
missing browser is a failure. The server runs in its own process group and is always killed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from app_fixtures import app_home  # noqa: E402,F401
from app_server import (  # noqa: E402
    VIEWPORT, app_pages, chromium, no_exception, nothing_clipped, require_chromium, serve, settle, shoot,
)

SCREENSHOTS_ENV = "LM_SCREENSHOTS"


@pytest.fixture(scope="module")
def server(app_home):
    require_chromium()
    with serve(app_home, app_home / "server.log") as (url, _proc):
        yield url


@pytest.fixture(scope="module")
def browser(server):
    with chromium() as browser_:
        yield browser_


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=VIEWPORT)
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    try:
        yield tab
    finally:
        context.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    """Where this run's screenshots go: $LM_SCREENSHOTS, else a temporary folder."""
    return Path(os.environ.get(SCREENSHOTS_ENV) or tmp_path_factory.mktemp("screenshots"))


def check_and_shoot(tab, where: str, folder: Path) -> None:
    no_exception(tab, where)
    nothing_clipped(tab, where)
    shoot(tab, folder / f"{where}.png")


OWN_TESTS = ("playground", "compare", "train")  # visited (and screenshotted) by the tests below


def test_every_page_renders(server, page, screenshots):
    pages = app_pages()
    assert set(OWN_TESTS) | {"home"} <= {url for _, _, url in pages}
    for _, _title, url_path in pages:
        if url_path in OWN_TESTS:
            continue
        started = time.perf_counter()
        page.goto(f"{server}/" + ("" if url_path == "home" else url_path))
        settle(page)
        assert page.locator("[data-testid='stMain'] h1").first.inner_text().strip(), url_path
        check_and_shoot(page, url_path, screenshots)
        print(f"{url_path}: {time.perf_counter() - started:.1f} s")


def test_playground_slider_and_generation(server, page, screenshots):
    page.goto(f"{server}/playground?model=tiny-char-transformer&prompt=ma")
    settle(page)
    slider = page.get_by_role("slider", name="Temperature")  # react-aria: a visually hidden range input
    slider.focus()
    slider.press("ArrowRight")
    settle(page)
    page.wait_for_function("() => location.search.includes('temperature=0.85')")
    page.get_by_role("button", name="Generate").click()
    settle(page)
    text = page.locator(".gltr").first
    text.wait_for()
    assert len(text.inner_text()) > 10
    assert page.locator(".gltr span[title^='rank']").count() > 5
    check_and_shoot(page, "playground", screenshots)
    page.get_by_text("Step mode").click()
    settle(page)
    page.locator("[data-testid='stPlotlyChart']").first.wait_for()
    check_and_shoot(page, "playground-step", screenshots)


def test_compare_runs_three_models(server, page, screenshots):
    page.goto(f"{server}/compare?max_new_tokens=120&models=tiny-char-ngram,tiny-char-lstm,tiny-char-transformer")
    settle(page)
    page.get_by_role("button", name="Compare").click()
    settle(page)
    page.locator(".gltr").nth(2).wait_for()
    assert page.locator("[data-testid='stPlotlyChart']").count() == 2
    check_and_shoot(page, "compare", screenshots)


def test_upload_train_and_find_the_model(server, page, tmp_path, screenshots):
    corpus = tmp_path / "rhymes.txt"
    corpus.write_text("\n".join(["twinkle twinkle little star", "how I wonder what you are",
                                 "up above the world so high", "like a diamond in the sky"] * 40), encoding="utf-8")
    page.goto(f"{server}/train?tr_source=Upload+a+.txt&tr_family=lstm&tr_preset=tiny&tr_steps=40")
    settle(page)
    page.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(corpus))
    settle(page)
    page.get_by_role("textbox", name="Model name").fill("browser-rhymes")
    page.get_by_role("textbox", name="Model name").press("Enter")
    settle(page)
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("is ready and listed in every model picker").wait_for(timeout=120_000)
    settle(page)  # the page reruns once when the job ends, to stop polling
    page.locator("[data-testid='stPlotlyChart']").first.wait_for()  # the loss curves
    page.get_by_text("is ready and listed in every model picker").wait_for()
    check_and_shoot(page, "train", screenshots)
    page.goto(f"{server}/playground?model=browser-rhymes")
    settle(page)
    assert page.get_by_role("combobox", name="Model").input_value().startswith("browser-rhymes")


def test_a_shared_link_as_the_first_request_opens_that_page(browser, app_home, tmp_path):
    """A fresh server whose very first page view is a shared link: it opens that page, with its settings and the
    app's page menu (Streamlit used to treat the app as a legacy `pages/` app until app.py had run once, and
    landed on Home with only the query string left)."""
    with serve(app_home, tmp_path / "server.log") as (url, _proc):
        context = browser.new_context(viewport=VIEWPORT)
        tab = context.new_page()
        tab.set_default_timeout(60_000)
        try:
            tab.goto(f"{url}/playground?model=tiny-char-lstm&temperature=1.3&seed=7")
            settle(tab)
            no_exception(tab, "deep link")
            assert tab.locator("[data-testid='stMain'] h1").first.inner_text().strip() == "Playground"
            assert "/playground?" in tab.url and "temperature=1.3" in tab.url, tab.url
            assert tab.get_by_role("combobox", name="Model").input_value().startswith("tiny-char-lstm")
            assert float(tab.get_by_role("slider", name="Temperature").input_value()) == 1.3
            menu = tab.locator("[data-testid='stSidebarNav'] a")
            assert menu.count() == len(app_pages()), [menu.nth(i).inner_text() for i in range(menu.count())]
        finally:
            context.close()


def test_server_restart_mid_training_marks_the_run_resumable(browser, app_home, tmp_path):
    """Kill the server (SIGKILL, as a crash or power cut would) while a model trains; start it again: the
    finished models are still listed, the run is marked interrupted and resumable, and resuming continues
    from the saved step."""
    home = tmp_path / "home"
    shutil.copytree(app_home, home, ignore=shutil.ignore_patterns("server.log", "jobs"))
    context = browser.new_context(viewport=VIEWPORT)
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    resume_dir = home / "models" / "restart-me.resume"
    try:
        with serve(home, tmp_path / "server-1.log") as (url, proc):
            tab.goto(f"{url}/train?tr_corpus=names&tr_family=lstm&tr_preset=tiny&tr_steps=100000&tr_minutes=30")
            settle(tab)
            tab.get_by_role("textbox", name="Model name").fill("restart-me")
            tab.get_by_role("textbox", name="Model name").press("Enter")
            settle(tab)
            tab.get_by_role("button", name="Start training").click()
            deadline = time.monotonic() + 120
            while not resume_dir.is_dir():  # the run has saved a resume state: now pull the plug
                assert time.monotonic() < deadline, "no resume state was saved within two minutes"
                time.sleep(0.5)
            time.sleep(1.0)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        [record] = [json.loads(p.read_text()) for p in (home / "jobs").glob("*.json")
                    if json.loads(p.read_text())["name"] == "restart-me"]
        assert record["status"] == "running"  # what the dead server left on disk
        with serve(home, tmp_path / "server-2.log") as (url, _proc):
            for finished in ("tiny-char-transformer", "tiny-char-lstm"):  # finished models are still listed
                tab.goto(f"{url}/playground?model={finished}")
                settle(tab)
                assert tab.get_by_role("combobox", name="Model").input_value().startswith(finished)
            tab.goto(f"{url}/train")
            settle(tab)
            tab.get_by_text("restart-me — interrupted").wait_for()
            no_exception(tab, "train after restart")
            saved_step = json.loads((resume_dir / "state.json").read_text())["step"]
            assert saved_step > 0
            deadline = time.monotonic() + 120
            while True:  # as with Cancel below: on a busy machine a click can land on a button being redrawn
                tab.get_by_role("button", name="Resume training").click(timeout=20_000)
                for _ in range(40):  # the record (written as "interrupted" at start-up) turns active
                    status = json.loads((home / "jobs" / f"{record['id']}.json").read_text())["status"]
                    if status in ("queued", "running"):
                        break
                    time.sleep(0.5)
                else:
                    assert time.monotonic() < deadline, "the run could not be resumed"
                    continue
                break
            tab.get_by_text("restart-me — running").wait_for(timeout=60_000)
            deadline, seen = time.monotonic() + 120, []
            while True:  # it continues from the saved step (a fresh run would count up from 0)
                rec = json.loads((home / "jobs" / f"{record['id']}.json").read_text())
                if rec["status"] == "running" and rec["progress"].get("step"):
                    seen.append(rec["progress"]["step"])
                if len(seen) >= 3 and seen[-1] > saved_step:
                    break
                assert time.monotonic() < deadline, f"the resumed run did not get past step {saved_step}: {seen}"
                time.sleep(0.3)
            assert min(seen) >= saved_step, seen
            deadline = time.monotonic() + 90
            while True:  # cancel it; the live panel redraws every second, so a click can land on a stale button
                tab.get_by_role("button", name="Cancel").click(timeout=10_000)
                for _ in range(20):
                    status = json.loads((home / "jobs" / f"{record['id']}.json").read_text())["status"]
                    if status != "running":
                        break
                    time.sleep(0.5)
                if status != "running":
                    break
                assert time.monotonic() < deadline, "the resumed run could not be cancelled"
            assert status == "cancelled"
            tab.get_by_text("restart-me — cancelled").wait_for(timeout=60_000)
    finally:
        context.close()
