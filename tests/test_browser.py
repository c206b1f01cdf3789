"""The real thing: `streamlit run app.py` on a free port, driven by headless Chromium through Playwright.

Visits every page listed in app.py's `PAGES` (read with `ast`, so a new page is visited without touching
this file), checks none shows an exception, and saves a screenshot of each to docs/screenshots/<page>.png.
Then moves a slider, generates text, uploads a small corpus, trains a tiny model to completion and finds
it in the Playground's model picker.

Locally the test is skipped (with a message) when /usr/bin/chromium is missing; under CI (env CI=true) a
missing browser is a failure. The server runs in its own process group and is always killed.
"""

from __future__ import annotations

import ast
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
from app_server import CHROMIUM, CHROMIUM_ARGS, IDLE, serve  # noqa: E402

SCREENSHOTS = ROOT / "docs" / "screenshots"
VIEWPORT = {"width": 1600, "height": 1000}  # a classroom projector's worth of pixels


def app_pages() -> list[tuple[str, str, str]]:
    """(file, title, url_path) of every page in app.py's PAGES whose file exists."""
    tree = ast.parse((ROOT / "app.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "PAGES" for t in node.targets):
            pages = ast.literal_eval(node.value)
            return [(file, title, url) for _, file, title, _, url in pages if (ROOT / file).is_file()]
    raise AssertionError("app.py has no PAGES list")


def require_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    message = f"{CHROMIUM} is missing (apt-get install -y chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser test cannot run in CI: {message}")
    pytest.skip(f"no browser: {message}")


@pytest.fixture(scope="module")
def server(app_home):
    require_chromium()
    with serve(app_home, app_home / "server.log") as (url, _proc):
        yield url


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=VIEWPORT)
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    try:
        yield tab
    finally:
        context.close()


def settle(tab, timeout: float = 60_000) -> None:
    """Wait until the app has finished its current run and shows a page title."""
    tab.wait_for_selector("[data-testid='stApp']", timeout=timeout)
    tab.wait_for_timeout(400)  # let a rerun triggered by the last action start
    tab.wait_for_function(IDLE, timeout=timeout)
    tab.wait_for_selector("[data-testid='stMain'] h1", timeout=timeout)


def no_exception(tab, where: str) -> None:
    errors = tab.locator("[data-testid='stException']")
    assert errors.count() == 0, f"{where}: {errors.first.inner_text()[:500]}"


CHARTS_DRAWN = """() => [...document.querySelectorAll("[data-testid='stPlotlyChart']")]
    .every(chart => chart.querySelector('.main-svg'))"""


def shoot(tab, name: str) -> None:
    """Screenshot the whole page: Streamlit scrolls inside its main block, so grow the viewport to fit it."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = tab.evaluate("() => document.querySelector(\"[data-testid='stMain']\").scrollHeight")
    tab.set_viewport_size({"width": VIEWPORT["width"], "height": max(VIEWPORT["height"], min(int(height), 3000))})
    tab.wait_for_function(CHARTS_DRAWN, timeout=60_000)  # every Plotly chart has drawn its SVG
    tab.wait_for_timeout(1000)  # charts re-layout to the new size
    tab.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
    tab.set_viewport_size(VIEWPORT)


OWN_TESTS = ("playground", "compare", "train")  # visited (and screenshotted) by the tests below


def test_every_page_renders(server, page):
    pages = app_pages()
    assert set(OWN_TESTS) | {"home"} <= {url for _, _, url in pages}
    for _, _title, url_path in pages:
        if url_path in OWN_TESTS:
            continue
        started = time.perf_counter()
        page.goto(f"{server}/" + ("" if url_path == "home" else url_path))
        settle(page)
        no_exception(page, url_path)
        assert page.locator("[data-testid='stMain'] h1").first.inner_text().strip(), url_path
        shoot(page, url_path)
        print(f"{url_path}: {time.perf_counter() - started:.1f} s")


def test_playground_slider_and_generation(server, page):
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
    no_exception(page, "playground")
    shoot(page, "playground")
    page.get_by_text("Step mode").click()
    settle(page)
    page.locator("[data-testid='stPlotlyChart']").first.wait_for()
    no_exception(page, "playground step mode")
    shoot(page, "playground-step")


def test_compare_runs_three_models(server, page):
    page.goto(f"{server}/compare?max_new_tokens=120&models=tiny-char-ngram,tiny-char-lstm,tiny-char-transformer")
    settle(page)
    page.get_by_role("button", name="Compare").click()
    settle(page)
    page.locator(".gltr").nth(2).wait_for()
    assert page.locator("[data-testid='stPlotlyChart']").count() == 2
    no_exception(page, "compare")
    shoot(page, "compare")


def test_upload_train_and_find_the_model(server, page, tmp_path):
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
    no_exception(page, "train")
    shoot(page, "train")
    page.goto(f"{server}/playground?model=browser-rhymes")
    settle(page)
    assert page.get_by_role("combobox", name="Model").input_value().startswith("browser-rhymes")


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
