"""The multi-core class server (`python -m lm.app.serve`): replicas behind HAProxy with sticky sessions.

Skipped locally (with a message) where haproxy is not installed; under CI (CI=true) .ci/run installs it and a
missing haproxy fails the test.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import os
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path
from unittest import mock

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(proxy URL, replica processes, what start() asked `warm` and what it answered)."""
    if shutil.which("haproxy") is None:
        message = "haproxy is not installed (apt-get install haproxy)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the multi-core server test cannot run in CI: {message}")
        pytest.skip(message)
    from lm.app import serve

    home = tmp_path_factory.mktemp("serve-home")
    previous = {k: os.environ.get(k) for k in ("LM_PLAYGROUND_HOME", "LM_WARMUP")}
    os.environ.update(LM_PLAYGROUND_HOME=str(home), LM_WARMUP="0")
    port = serve.free_port()
    warmed = []

    def recording_warm(ports, *args, **kwargs):
        warmed.append((list(ports), serve_warm(ports, *args, **kwargs)))
        return warmed[-1][1]

    serve_warm = serve.warm
    with mock.patch.object(serve, "warm", recording_warm):
        procs = serve.start(2, port, tmp_path_factory.mktemp("serve-logs"), bind="127.0.0.1")
    try:
        yield f"http://127.0.0.1:{port}", procs[:-1], warmed
    finally:
        serve.stop(procs)
        for key, value in previous.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


@pytest.fixture(scope="module")
def served(server):
    return server[0]


def _replica(opener, url: str) -> str:
    with opener.open(url, timeout=10) as response:
        return response.headers["X-LM-Replica"]


def test_new_browsers_spread_over_replicas_and_each_sticks_to_its_own(served):
    fresh = {_replica(urllib.request.build_opener(), f"{served}/_stcore/health") for _ in range(6)}
    assert fresh == {"r0", "r1"}  # round robin for browsers without the cookie
    for _ in range(2):
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        first = _replica(browser, f"{served}/")
        assert {_replica(browser, f"{served}/_stcore/health") for _ in range(5)} == {first}


def test_a_page_runs_through_the_proxy_over_the_websocket(served):
    from ws_client import StreamlitSession

    async def visit():
        session = await StreamlitSession.connect(served, timeout=120)
        try:
            return await session.open("", {})  # the default page (Home) is at the root
        finally:
            await session.close()

    result = asyncio.run(visit())
    assert result.ok, (result.status, result.exceptions, result.errors)
    assert result.markdown and not result.exceptions  # the Home page drew its text, through the proxy


def test_every_replica_runs_the_app_once_at_start_and_the_proxy_refuses_that_endpoint(server):
    from lm.app.serve import SCRIPT_RUN_PATH, free_port, warm

    url, replicas, warmed = server
    ports = [int(p.args[p.args.index("--server.port") + 1]) for p in replicas]
    assert warmed == [(ports, [])]  # start() ran app.py in each replica (which starts its warm-up) and each ran clean
    (problem,) = warm([free_port()], timeout=5)  # nothing listening: one line, not an exception
    assert "no script run at start" in problem
    for path in (SCRIPT_RUN_PATH, SCRIPT_RUN_PATH.replace("-", "%2D"), SCRIPT_RUN_PATH.upper()):
        with pytest.raises(urllib.error.HTTPError) as refused:  # students cannot make a replica run app.py
            urllib.request.urlopen(f"{url}{path}", timeout=10)
        assert refused.value.code == 403, path
