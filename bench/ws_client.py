"""A browser tab at the protocol level: an asyncio client for Streamlit's websocket, for load tests.

Twenty headless Chromium tabs on a 2-core machine measure Chromium, not the app server. This client sends
what a tab sends and times what the browser load test timed (from the request until the app is idle again)
for a few milliseconds of CPU per action. It needs only what Streamlit installs: `websockets` (a Streamlit
dependency since its server moved to Starlette/uvicorn; tornado is no longer installed) and `protobuf`.

Protocol facts it relies on, read in Streamlit 1.67.0 (web/server/starlette/starlette_websocket.py,
runtime/app_session.py, runtime/pages_manager.py, elements/widgets/*.py, the frontend bundle), checked here:
- Connect to ws://host/_stcore/stream with subprotocol "streamlit" (the frontend lists "streamlit", then an
  XSRF token and a session id to resume). XSRF only gates reading auth cookies: no token needed. No Origin
  header is sent, which the server allows. Frames are binary protobufs: BackMsg up, ForwardMsg down.
- Nothing runs until the client sends BackMsg.rerun_script (a ClientState). A page's first request carries
  page_name = its URL path ("playground") and no page_script_hash; st.navigation matches it to an st.Page's
  url_path (unknown: a page_not_found message). Later reruns carry the hash from the `navigation` message.
- ClientState.cached_message_hashes lists the messages the tab has cached: we send none, so the server
  never answers with `ref_hash` references (it only makes them for hashes the client listed).
- A run sends new_session, session_status_changed, deltas (new_element / add_block at metadata.delta_path;
  new_transient for spinners), page_info_changed (the app's query string: sent back on later reruns, like
  the URL) and script_finished. FINISHED_EARLY_FOR_RERUN means another run follows (st.rerun()): an action
  ends at any other status.
- Widget ids are "$$ID-<hash>-<user key>" ("None" when unkeyed). Each rerun carries the states of all live
  widgets, like the frontend's WidgetStateManager: a widget's first state is its proto's default (set on
  mount), replaced by the proto's value when set_value is true (the script assigned st.session_state); a
  finished full run drops the states of widgets it did not draw. A button press is trigger_value=true for
  one rerun. Value fields (register_widget's value_type): slider double_array_value; select_slider and
  multiselect string_array_value of option labels; selectbox and radio string_value (the label);
  number_input int_value (INT) or double_value; text string_value; checkbox and toggle bool_value.
- Fragments: a delta's fragment_id names the @st.fragment that drew it; changing a widget in it sends that
  fragment_id and only the fragment reruns (FINISHED_FRAGMENT_RUN_SUCCESSFULLY). A fragment may draw into a
  container made outside it (the Playground's Generate button sits in the page's button row): Streamlit wraps
  those elements in a transparent block, re-sent with each fragment run, and the widget still carries the id. run_every arrives as
  auto_rerun messages, kept in `auto_reruns` and cleared when a full run starts (as the frontend does); its
  timer is not emulated: call `rerun(fragment_id, auto=True)` to poll like a tab would.
Not emulated (this app needs none): forms, file uploads, chat input, plotly/dataframe selections.
"""

from __future__ import annotations

import asyncio
import html
import re
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import streamlit
from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import connect as ws_connect

FINISHED = ForwardMsg.ScriptFinishedStatus
WIDGETS = {"slider", "number_input", "selectbox", "radio", "multiselect", "text_area", "text_input",
           "checkbox", "button", "download_button"}
TRIGGERS = {"button", "download_button"}  # trigger_value widgets: no state kept between reruns


@dataclass
class RunResult:
    seconds: float  # from sending the request until the last script run of the action finished
    status: str  # the last run's ScriptFinishedStatus name (or "TIMEOUT")
    exceptions: list[str] = field(default_factory=list)  # st.exception deltas and compile errors
    errors: list[str] = field(default_factory=list)  # st.error alerts (and a page_not_found)
    warnings: list[str] = field(default_factory=list)  # st.warning alerts and warning-style exceptions
    markdown: list[str] = field(default_factory=list)  # final bodies of the last run's markdown elements
    elements: Counter = field(default_factory=Counter)  # element kind -> count in the last run
    runs: int = 0  # script runs in this action (2 when the script called st.rerun() once)

    @property
    def plotly_charts(self) -> int:
        return self.elements["plotly_chart"]

    @property
    def ok(self) -> bool:
        return (not self.exceptions and not self.errors
                and self.status in ("FINISHED_SUCCESSFULLY", "FINISHED_FRAGMENT_RUN_SUCCESSFULLY"))


@dataclass
class _Widget:
    id: str
    kind: str  # the Element oneof name: "slider", "selectbox", ...
    proto: Any  # the widget's element proto as last drawn
    fragment_id: str  # "" outside fragments


def _label(options, value) -> str:
    """A select-like widget's option: a label as given, or an int as an index into the options."""
    if isinstance(value, str):
        if value not in options:
            raise ValueError(f"{value!r} is not one of {list(options)[:20]}")
        return value
    return options[int(value)]


def _drawn(w: _Widget) -> Any:
    """The value a freshly drawn widget shows: the script's (set_value) or the default, labels for select-likes."""
    p = w.proto
    if w.kind == "slider" and p.type == p.SELECT_SLIDER:
        return list(p.raw_value) if p.set_value else [p.options[int(i)] for i in p.default]
    if w.kind == "slider":
        return list(p.value if p.set_value else p.default)
    if w.kind in ("selectbox", "radio"):
        if p.set_value:
            return p.raw_value if p.HasField("raw_value") else None
        return p.options[p.default] if p.HasField("default") and p.options else None
    if w.kind == "multiselect":
        return list(p.raw_values) if p.set_value else [p.options[i] for i in p.default]
    if w.kind == "checkbox":
        return p.value if p.set_value else p.default
    # number_input, text_area, text_input: an optional value (set by the script) over an optional default
    return p.value if p.HasField("value") else (p.default if p.HasField("default") else None)


def _state(w: _Widget, value: Any, check: bool = True) -> WidgetState | None:
    """The WidgetState the frontend sends for `w` showing `value` (None: no value, e.g. an empty selectbox)."""
    if value is None:
        return None
    p, s = w.proto, WidgetState(id=w.id)
    label = (lambda v: _label(p.options, v)) if check else str  # drawn values are labels already
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if (w.kind == "slider" and p.type == p.SELECT_SLIDER) or w.kind == "multiselect":
        s.string_array_value.data.extend(label(v) for v in values)
    elif w.kind == "slider":
        s.double_array_value.data.extend(float(v) for v in values)
    elif w.kind in ("selectbox", "radio"):
        s.string_value = label(value)
    elif w.kind == "number_input" and p.data_type == p.INT:
        s.int_value = int(value)
    elif w.kind == "number_input":
        s.double_value = float(value)
    elif w.kind in ("text_area", "text_input"):
        s.string_value = str(value)
    elif w.kind == "checkbox":
        s.bool_value = bool(value)
    else:  # buttons: a trigger, true for one rerun
        s.trigger_value = True
    return s


class StreamlitSession:
    """One browser-tab-equivalent session over Streamlit's websocket (/_stcore/stream)."""

    def __init__(self, ws, timeout: float):
        self.ws, self.timeout = ws, timeout
        self.query_string = ""  # the URL's query, kept current from page_info_changed like the browser's
        self.page_name, self.page_hash = "", ""  # the page asked for / the page st.navigation ran
        self.widgets: dict[str, _Widget] = {}  # user key (or id when unkeyed) -> widget as last drawn
        self.states: dict[str, WidgetState] = {}  # widget id -> the state the next rerun sends
        self.auto_reruns: dict[str, float] = {}  # fragment id -> run_every seconds (not fired by us)
        self._seen: set[str] = set()  # widget ids drawn in the current run
        self._tree: dict[tuple, tuple[str, Any]] = {}  # delta path -> (kind, proto) of the current run
        self._result: RunResult | None = None
        self._done: asyncio.Future | None = None
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, base_url: str, timeout: float = 180.0) -> StreamlitSession:
        url = base_url.rstrip("/").replace("https://", "wss://").replace("http://", "ws://") + "/_stcore/stream"
        # max_size=None: one plotly figure can exceed websockets' 1 MiB default frame limit.
        ws = await ws_connect(url, subprotocols=["streamlit"], max_size=None, open_timeout=60, ping_timeout=None)
        return cls(ws, timeout)

    async def close(self) -> None:
        self._reader.cancel()
        await self.ws.close()

    # ---- actions: each sends one rerun_script and waits until the app is idle again ----

    async def open(self, page: str, query: dict[str, str] | str = "") -> RunResult:
        """Like typing http://host/<page>?<query> into this tab: a fresh page, no widget states yet."""
        self.page_name, self.page_hash = page.strip("/"), ""
        self.query_string = query if isinstance(query, str) else urllib.parse.urlencode(query)
        self.widgets, self.states, self.auto_reruns = {}, {}, {}
        return await self._rerun()

    async def click(self, key: str) -> RunResult:
        """Press the button whose user key (or label) is `key`."""
        w = self.widget(key)
        if w.kind not in TRIGGERS:
            raise TypeError(f"{key!r} is a {w.kind}, not a button")
        return await self._rerun({w.id: _state(w, True)}, w.fragment_id)

    async def set_value(self, key: str, value: Any) -> RunResult:
        """Change a widget like a user would. Select-like widgets take an option label or an int index."""
        w = self.widget(key)
        if w.kind in TRIGGERS:
            raise TypeError(f"{key!r} is a button: click() it")
        self.states[w.id] = _state(w, value)
        return await self._rerun(fragment_id=w.fragment_id)

    async def rerun(self, fragment_id: str = "", auto: bool = False) -> RunResult:
        """A plain rerun ("R" key), or one tick of a run_every fragment (auto=True)."""
        return await self._rerun(fragment_id=fragment_id, auto=auto)

    def widget(self, key: str) -> _Widget:
        if key in self.widgets:
            return self.widgets[key]
        by_label = [w for w in self.widgets.values() if getattr(w.proto, "label", None) == key]
        if len(by_label) == 1:
            return by_label[0]
        raise KeyError(f"no widget {key!r} on page {self.page_name!r}; keys: {sorted(self.widgets)}")

    async def _rerun(self, extra: dict[str, WidgetState] | None = None, fragment_id: str = "",
                     auto: bool = False) -> RunResult:
        if self._done is not None:
            raise RuntimeError("one action at a time per session (a tab cannot click while it waits either)")
        if self._reader.done():
            raise ConnectionError("the websocket is closed")
        states = {**self.states, **(extra or {})}
        client = ClientState(query_string=self.query_string, page_script_hash=self.page_hash,
                             page_name="" if self.page_hash else self.page_name,
                             fragment_id=fragment_id, is_auto_rerun=auto)
        client.widget_states.widgets.extend(s for s in states.values() if s is not None)
        self._result, self._done = RunResult(0.0, "RUNNING"), asyncio.get_running_loop().create_future()
        start = time.perf_counter()
        try:
            await self.ws.send(BackMsg(rerun_script=client).SerializeToString())
            await asyncio.wait_for(asyncio.shield(self._done), self.timeout)
        except TimeoutError:
            self._result.status = "TIMEOUT"
        finally:
            self._done = None
        result, self._result = self._result, None
        result.seconds = time.perf_counter() - start
        return result

    # ---- the reader: every ForwardMsg, in order, as the frontend would handle it ----

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                self._handle(ForwardMsg.FromString(frame))
            exc: Exception = ConnectionError("websocket closed by the server")
        except Exception as error:  # noqa: BLE001 -- a dead socket (or a bug here) fails the action, never hangs it
            exc = error
        if self._done is not None and not self._done.done():
            self._done.set_exception(exc)

    def _handle(self, msg: ForwardMsg) -> None:
        kind, r = msg.WhichOneof("type"), self._result
        if kind == "new_session":  # a run starts (full or fragment): its elements replace the last run's
            self._seen, self._tree = set(), {}
            if not msg.metadata.run.fragment_ids:  # a full run: the frontend stops every run_every timer
                self.auto_reruns = {}
            if r is not None:
                r.runs += 1
        elif kind == "navigation":
            self.page_hash = msg.navigation.page_script_hash
        elif kind == "page_info_changed":
            self.query_string = msg.page_info_changed.query_string
        elif kind == "delta":
            self._delta(msg, r)
        elif kind == "auto_rerun":
            self.auto_reruns[msg.auto_rerun.fragment_id] = msg.auto_rerun.interval
        elif kind == "stop_auto_rerun":
            for fid in msg.stop_auto_rerun.fragment_ids:
                self.auto_reruns.pop(fid, None)
        elif kind == "page_not_found" and r is not None:
            r.errors.append(f"page not found: {msg.page_not_found.page_name or self.page_name!r}")
        elif kind == "session_event" and r is not None:
            if msg.session_event.HasField("script_compilation_exception"):
                e = msg.session_event.script_compilation_exception
                r.exceptions.append(f"{e.type}: {e.message}")
        elif kind == "ref_hash" and r is not None:  # cannot happen: we list no cached messages
            r.errors.append(f"unexpected cached-message reference {msg.ref_hash}")
        elif kind == "script_finished":
            status = FINISHED.Name(msg.script_finished)
            if msg.script_finished == FINISHED.FINISHED_SUCCESSFULLY:
                # The frontend drops the states of widgets this full run did not draw (removeInactive).
                self.states = {i: s for i, s in self.states.items() if i in self._seen}
                self.widgets = {k: w for k, w in self.widgets.items() if w.id in self._seen}
            if r is not None and msg.script_finished != FINISHED.FINISHED_EARLY_FOR_RERUN:
                r.status = status
                self._finish(r)
                if self._done is not None and not self._done.done():
                    self._done.set_result(None)

    def _delta(self, msg: ForwardMsg, r: RunResult | None) -> None:
        delta, path = msg.delta, tuple(msg.metadata.delta_path)
        which = delta.WhichOneof("type")
        if which == "new_transient":
            return  # spinners and toasts: they do not replace page elements
        # A delta at `path` replaces whatever was there, children included (st.empty() slots are reused).
        for p in [p for p in self._tree if p[:len(path)] == path]:
            del self._tree[p]
        if which != "new_element":
            return
        el = delta.new_element
        kind = el.WhichOneof("type")
        proto = getattr(el, kind)
        self._tree[path] = (kind, proto)
        if r is not None:  # exceptions and errors count even when a later delta replaces them
            if kind == "exception":
                (r.warnings if proto.is_warning else r.exceptions).append(f"{proto.type}: {proto.message}")
            elif kind == "alert" and proto.format in (Alert.ERROR, Alert.WARNING):
                (r.errors if proto.format == Alert.ERROR else r.warnings).append(proto.body)
        if kind in WIDGETS:
            key = proto.id.split("-", 2)[-1] if proto.id.startswith("$$ID-") else "None"
            w = _Widget(proto.id, kind, proto, delta.fragment_id)
            self.widgets[proto.id if key == "None" else key] = w
            self._seen.add(proto.id)
            if kind not in TRIGGERS and (proto.set_value or proto.id not in self.states):
                self.states[proto.id] = _state(w, _drawn(w), check=False)

    def _finish(self, r: RunResult) -> None:
        for path in sorted(self._tree):  # path order is the page's top-to-bottom order
            kind, proto = self._tree[path]
            r.elements[kind] += 1
            if kind == "markdown":
                r.markdown.append(proto.body)


# ---- smoke demo: python bench/ws_client.py (starts its own server on the shipped zoo) ----

async def _demo(url: str) -> list[str]:
    problems: list[str] = []

    def check(name: str, r: RunResult, **expect: bool) -> RunResult:
        print(f"{name:<26} {r.seconds:6.2f} s  {r.status:<35} runs={r.runs} gltr={len(gltr(r))} "
              f"plotly={r.plotly_charts} exceptions={len(r.exceptions)} errors={len(r.errors)}")
        problems.extend([f"{name}: {r}"] if not r.ok else [])  # exceptions, errors, or an unfinished run
        problems.extend(f"{name}: not {what}" for what, good in expect.items() if not good)
        return r

    def gltr(r: RunResult) -> list[str]:
        return [m for m in r.markdown if "class='gltr'" in m]

    query = {"model": "shakespeare-char-lstm", "prompt": "ROMEO:", "seed": "7", "max_new_tokens": "100"}
    texts, sessions = [], []
    for n in (1, 2):  # the same generation in two sessions: same seed, so the same text
        sessions.append(s := await StreamlitSession.connect(url))
        check(f"[{n}] open playground", await s.open("playground", query), has_button="generate" in s.widgets)
        r = await s.click("generate")
        texts.append(gltr(r))
        check(f"[{n}] click generate", r, one_text=len(texts[-1]) == 1,
              tokens_100=any("100 tokens in" in m for m in r.markdown))  # the caption under the text
    text = html.unescape(re.sub(r"<[^>]+>", "", texts[0][0] if texts[0] else ""))
    print("   same text in both sessions:", texts[0] == texts[1], "-", repr(text[:70]))
    problems.extend([] if texts[0] == texts[1] else ["the two sessions wrote different texts with one seed"])

    s = sessions[1]  # the same tab navigates on, like a student
    check("open attention", await s.open("attention"), has_slider="att_token" in s.widgets)
    check("attention: token -> #5", await s.set_value("att_token", 5))  # a select_slider inside a fragment
    r = await s.set_value("att_head", 1)  # a selectbox in the same fragment: the token must stay at #5
    check("attention: head -> 1", r, fragment_run=r.status == "FINISHED_FRAGMENT_RUN_SUCCESSFULLY",
          both_kept="att_token=5" in s.query_string and "att_head=1" in s.query_string)
    check("open rnn", await s.open("rnn"), has_slider="rnn_unit" in s.widgets)
    check("rnn: unit -> 3", await s.set_value("rnn_unit", 3), applied="rnn_unit=3" in s.query_string)
    models = "shakespeare-char-7gram,shakespeare-char-lstm,shakespeare-char-transformer"
    check("open compare", await s.open("compare", {"models": models, "max_new_tokens": "100"}))
    r = await s.click("compare")
    check("compare: click compare", r, three_texts=len(gltr(r)) == 3)
    for s in sessions:
        await s.close()
    return problems


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from app_server import serve

    print("streamlit", streamlit.__version__)
    with serve(Path(tempfile.mkdtemp()), Path(tempfile.gettempdir()) / "ws-server.log") as (base, _proc):
        found = asyncio.run(_demo(base))
    print("\n".join(found) or "all actions clean: no exceptions, no errors, every check held")
    sys.exit(1 if found else 0)
