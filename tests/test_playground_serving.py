"""What one Playground Generate costs a class server (issue 13): pressing Generate reruns only the output's
fragment, not the page script, over the real websocket protocol (`bench/ws_client.py`, a live `streamlit run
app.py`); what it writes is unchanged (the same text in two sessions, the GLTR colours, stale output marked, the
URL kept); and a fast generation is sent once, finished, not once per first token.
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(Path(__file__).resolve().parent)]

from app_fixtures import app_home  # noqa: E402,F401
from app_server import serve  # noqa: E402
from lm.app.playground import REDRAW_SECONDS, Throttle  # noqa: E402

QUERY = {"model": "tiny-char-lstm", "prompt": "em", "seed": "7", "max_new_tokens": "60", "temperature": "1.2"}
FRAGMENT_RUN = "FINISHED_FRAGMENT_RUN_SUCCESSFULLY"


def test_a_waiting_throttle_draws_a_fast_stream_once_at_its_end():
    now = [0.0]
    throttle, slow = (Throttle(0.25, clock=lambda: now[0], wait_first=True) for _ in range(2))
    drawn = []
    for step in range(100):  # 100 tokens in 0.2 s: faster than one redraw interval
        now[0] = step * 0.002
        drawn.append(throttle.due(final=step == 99))
    assert drawn == [False] * 99 + [True]
    now[0] = 0.3  # a slower stream is redrawn once the interval has passed since the start
    assert slow.due() and not slow.due()
    eager = Throttle(0.25, clock=lambda: 0.0)  # the default (Compare) draws its first token at once
    assert eager.due() and not eager.due()


def gltr(result) -> list[str]:
    return [m for m in result.markdown if "class='gltr'" in m]


@pytest.fixture(scope="module")
def server(app_home, tmp_path_factory):
    with serve(app_home, tmp_path_factory.mktemp("pg-serving") / "server.log", {"LM_WARMUP": "0"}) as (url, _p):
        yield url


def test_generate_reruns_only_its_fragment_and_writes_the_same_text_in_every_session(server):
    from ws_client import StreamlitSession

    async def visit():
        first, second = [await StreamlitSession.connect(server, timeout=120) for _ in range(2)]
        try:
            opened = await first.open("playground", QUERY)
            clicked = await first.click("generate")
            pinned = await first.set_value("pg_pin", 5)  # the token slider is inside the fragment too
            moved = await first.set_value("temperature", 0.5)  # a knob outside it reruns the whole page
            await second.open("playground", QUERY)
            again = await second.click("generate")
            return opened, clicked, pinned, moved, again, first.query_string
        finally:
            await first.close()
            await second.close()

    opened, clicked, pinned, moved, again, query = asyncio.run(visit())
    for result in (opened, clicked, pinned, moved, again):
        assert result.ok, (result.status, result.exceptions, result.errors)
    assert opened.elements["slider"] >= 4 and opened.elements["selectbox"] >= 2  # the full page: sidebar and all
    assert clicked.status == FRAGMENT_RUN and pinned.status == FRAGMENT_RUN
    assert clicked.elements["selectbox"] == 0 and clicked.elements["text_area"] == 0  # no sidebar, no prompt box
    assert clicked.elements["slider"] == 1 and clicked.elements["dataframe"] == 1  # the token slider and its table
    (text,) = gltr(clicked)
    assert "title='rank " in text and "background:#" in text  # GLTR colours and their tooltips
    assert any("60 tokens in" in m for m in clicked.markdown)  # the speed caption
    assert gltr(again) == [text]  # same seed and settings, another session: the same text
    (framed,) = gltr(pinned)
    assert framed[:framed.index("outline:")].count("<span title=") == 5  # the same text, framing token 5 now
    assert moved.status == "FINISHED_SUCCESSFULLY" and gltr(moved) == [framed]  # the old text stays ...
    assert moved.elements["alert"] == 1 and clicked.elements["alert"] == 0  # ... marked "Settings changed"
    assert "temperature=0.5" in query and "model=tiny-char-lstm" in query  # the URL still follows the knobs


def test_a_fast_generation_sends_its_text_once(server):
    from ws_client import StreamlitSession

    async def visit():
        session = await StreamlitSession.connect(server, timeout=120)
        sent = []
        handle = session._handle

        def spy(msg):  # every element the server sends, in order (the reader sees each message once)
            if msg.WhichOneof("type") == "delta" and msg.delta.WhichOneof("type") == "new_element":
                element = msg.delta.new_element
                sent.append("text" if "class='gltr'" in element.markdown.body else element.WhichOneof("type"))
            handle(msg)

        try:
            await session.open("playground", QUERY)
            session._handle = spy
            result = await session.click("generate")
        finally:
            await session.close()
        return result, sent

    result, sent = asyncio.run(visit())
    assert result.ok
    (speed,) = [m for m in result.markdown if "60 tokens in" in m]
    seconds = float(re.search(r"tokens in ([0-9.\\]+) s", speed).group(1).replace("\\", ""))
    redraws = int(seconds / REDRAW_SECONDS)  # the most a stream this long may send before its end
    assert 1 <= sent.count("text") <= 1 + redraws, (seconds, sent)
    if redraws == 0:  # the usual case (a tiny model writes 60 tokens in milliseconds): the finished text only
        assert sent.count("text") == 1 and "empty" not in sent, sent
