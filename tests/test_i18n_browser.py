"""The Chinese interface in a real browser: `streamlit run app.py`, headless Chromium at 1280 x 800 (a projector).

Every page of app.py's PAGES opened with `?lang=zh` shows a Chinese title, no exception, and nothing cut off:
no metric, widget label, button, tab or table (tests/app_server.py's check), nor a page name in the sidebar's
menu. The Playground and Compare are checked again after a click, when their metrics and result lines are
drawn. A page change keeps the language in the URL. Screenshots go to a temporary folder (fonts-noto-cjk
draws the Chinese; CI installs it).

Locally the test is skipped (with a message) when /usr/bin/chromium is missing; under CI it fails instead.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from app_fixtures import app_home  # noqa: E402,F401
from app_server import app_pages, no_exception, nothing_clipped, require_chromium, serve, settle, shoot  # noqa: E402
from test_browser import browser, page  # noqa: E402,F401  (fixtures: Chromium, a 1280 x 800 tab)
from test_i18n import QUERIES, _chinese  # noqa: E402  (the tiny model each page opens on)

# What tests/app_server.py does not look at, cut off: a page name in the sidebar's menu, a sidebar label, the chosen
# option of a select box on the page (a translated model family in a half-width column, say).
MORE_CLIPPED = """() => [...document.querySelectorAll("[data-testid='stSidebarNav'] a, [data-testid='stSidebar'] "
        + "[data-testid='stWidgetLabel'], [data-testid='stMain'] [data-testid='stSelectbox'] input")]
    .filter(e => e.offsetParent && [e, ...e.querySelectorAll('*')]
        .some(p => p.clientWidth > 0 && p.scrollWidth > p.clientWidth + 1))
    .map(e => (e.value || e.innerText).trim().slice(0, 60))"""


@pytest.fixture(scope="module")
def server(app_home):
    require_chromium()
    with serve(app_home, app_home / "server-i18n.log") as (url, _proc):
        yield url


def check(tab, where: str, folder: Path) -> None:
    no_exception(tab, where)
    nothing_clipped(tab, where)
    cut = tab.evaluate(MORE_CLIPPED)
    assert cut == [], f"{where}: text cut off at {tab.viewport_size}: {cut}"
    shoot(tab, folder / f"{where}-zh.png")


def open_zh(tab, server: str, url_path: str) -> None:
    query = "&".join(f"{k}={v}" for k, v in {"lang": "zh", **QUERIES.get(url_path, {})}.items())
    tab.goto(f"{server}/{'' if url_path == 'home' else url_path}?{query}")
    settle(tab)


def test_every_page_in_chinese_fits_a_projector(server, page, tmp_path):
    pages = app_pages()
    assert len(pages) >= 8
    for file, _title, url_path in pages:
        open_zh(page, server, url_path)
        if url_path != "home":  # Home's title is the product's name
            heading = page.locator("[data-testid='stMain'] h1").first.inner_text()
            assert _chinese(heading), f"{url_path}: {heading!r}"
        menu = page.locator("[data-testid='stSidebarNav'] a").all_inner_texts()
        assert sum(map(_chinese, menu)) == len(pages), menu  # the page menu is translated too
        assert "lang=zh" in page.url, page.url
        check(page, url_path, tmp_path)


def test_every_model_family_fits_its_select_box_in_chinese(server, page):
    """The Train page's half-width family and tokenizer boxes, with each family's translated name chosen."""
    from lm.models import VARIANTS

    for family in VARIANTS:
        page.goto(f"{server}/train?lang=zh&tr_family={family}&tr_tokenizer=bpe")
        settle(page)
        cut = page.evaluate(MORE_CLIPPED)
        assert cut == [], f"train with {family}: text cut off at {page.viewport_size}: {cut}"


def test_results_in_chinese_fit_and_a_page_change_keeps_the_language(server, page, tmp_path):
    open_zh(page, server, "playground")
    page.get_by_role("button", name="生成").click()
    settle(page)
    page.locator(".gltr").first.wait_for()
    assert page.get_by_text("个词元").count() > 0  # the result's line, in Chinese
    check(page, "playground-result", tmp_path)
    page.goto(f"{server}/compare?lang=zh&models=tiny-char-ngram,tiny-char-lstm,tiny-char-transformer&chars=120")
    settle(page)
    page.get_by_role("button", name="比较").click()
    settle(page)
    page.locator(".gltr").nth(2).wait_for()
    assert page.locator("[data-testid='stMetricLabel']").count() >= 9  # three metrics in each of three columns
    check(page, "compare-result", tmp_path)
    page.locator("[data-testid='stSidebarNav'] a", has_text="训练模型").click()
    settle(page)
    page.wait_for_function("() => location.pathname.endsWith('/train') && location.search.includes('lang=zh')")
    assert page.locator("[data-testid='stMain'] h1").first.inner_text().strip() == "训练模型"
