"""Load test: does one app server serve a class? A bounded script, not a test.

    python bench/bench_load_browser.py [--sessions 20] [--seconds 120] [--tokens 100] [--out FILE]

One `streamlit run app.py` on loopback, one headless Chromium with --sessions browser contexts (students),
each looping for --seconds, with no think time, over: generate (Playground), compare (Compare, the default
lineup), move a slider (Attention) and move the "Unit" slider (RNN), in an order rotated per session, each
after a change to its page within the tab. One extra context starts a training job on the Train page (tiny
LSTM, built-in "names" corpus, a time budget of --seconds), so the server trains while the class clicks.

Recorded: failed and timed-out actions (> 120 s), pages showing a Streamlit exception or an `st.error`
alert, p50/p95/max latency per action (browser clock, from the click or key press until the app's script
is idle again), RSS and CPU of the server's process group (and the browser's CPU) every 2 s, and a
determinism check: every generation uses the same model, prompt, knobs and seed, so all texts must be
identical (else random state bleeds between sessions).

Before the clock: one context visits every page once (model loads, the n-gram build from its recipe), then
the contexts open the app two at a time. The server gets a temporary $LM_PLAYGROUND_HOME (the zoo in
assets/ is still listed), so the training job writes nothing into your model directory. The load phase has
a hard deadline of --seconds + 180 s; the server is always stopped and the browser closed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from app_server import CHROMIUM, CHROMIUM_ARGS, IDLE, free_port, launch, stop  # noqa: E402
from playwright.async_api import TimeoutError as PlaywrightTimeout  # noqa: E402

VIEWPORT = {"width": 1280, "height": 800}  # a laptop's screen: less for the browser to paint than a projector's
ACTIONS = ("generate", "compare", "attention slider", "rnn slider")
TIMEOUT_MS = 120_000  # a 30 s action is slow, not broken: only past two minutes is it a timeout error
GRACE_S, WARM_UP_S, ARRIVE_S = 180, 300, 600  # the load phase's hard deadline is --seconds + GRACE_S
SEED, PROMPTS = 7, {"shakespeare": "ROMEO:\n", "names": "ma"}
THINK_S = 20  # assumed seconds a student spends reading between actions (for the estimate only)

# Records every change of the app's script state with the page's clock, so a run is timed from the user's
# action to its end however short its "running" phase is (polling could miss it).
OBSERVER = """() => { const app = document.querySelector('.stApp'); window.__states = window.__states || [];
  if (window.__app === app) return; window.__app = app;
  new MutationObserver(() => window.__states.push([app.getAttribute('data-test-script-state'), performance.now()]))
    .observe(app, {attributes: true, attributeFilter: ['data-test-script-state']}); }"""
END_AFTER = """(t0) => { let ran = false; for (const [state, t] of window.__states || []) {
  if (t < t0) continue; if (state === 'running') ran = true; else if (ran) return t - t0; } return null; }"""
# What each kind of run changes on the page (see `timed`): the page title; the Playground's "N tokens in
# X s" caption; Compare's tokens/s metrics; the subheaders naming the token (Attention) or unit (RNN) shown,
# or the training job (Train).
_TEXTS = "[...document.querySelectorAll(\"[data-testid='stMain'] {}\")].map(e => e.innerText).join('|')"
SHOWS = {"page": _TEXTS.format("h1"), "generate": _TEXTS.format("[data-testid='stCaptionContainer']"),
         "compare": _TEXTS.format("[data-testid='stMetricValue']"), "slider": _TEXTS.format("h3"),
         "train": _TEXTS.format("h3")}
# What a page looked like when its run never ended: for the timeout message.
DIAGNOSE = """(t0) => { const a = document.querySelector('.stApp'); return JSON.stringify({url: location.pathname,
  same_app: a === window.__app, connection: a.getAttribute('data-test-connection-state'), script: a.getAttribute(
  'data-test-script-state'), states: window.__states.filter(s => s[1] >= t0).map(s => [s[0], s[1] - t0 | 0])}); }"""
# An exception box is drawn as an error alert too, so alerts inside one are not counted twice.
PROBLEMS = """() => { const ex = [...document.querySelectorAll("[data-testid='stException']")];
  const err = [...document.querySelectorAll("[data-testid='stAlertContentError']")]
    .filter(e => !e.closest("[data-testid='stException']"));
  return [ex.map(e => e.innerText.slice(0, 300)), err.map(e => e.innerText.slice(0, 300))]; }"""
# Change page the way Streamlit handles the Back button: same tab, same Streamlit session, and the page reruns
# with the query string of the new URL (a sidebar click does the same rerun, but drops the query string).
# Reloading instead would cost the browser, which shares the cores with the server, 2-3 s of CPU a time.
NAVIGATE = "(url) => { history.pushState(null, '', url); window.dispatchEvent(new PopStateEvent('popstate')); }"


class Stats:
    """Everything the sessions record; shared by the asyncio tasks (one thread, so no locks)."""

    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)  # action, page change, first load -> seconds
        self.done: Counter = Counter()  # session index -> actions completed
        self.failed: list[str] = []  # "action (session): why" for actions that raised or showed no output
        self.timeouts: list[str] = []  # actions (or page loads) longer than TIMEOUT_MS
        self.exceptions: list[str] = []  # pages that showed a Streamlit exception
        self.alerts: list[str] = []  # pages that showed an st.error alert
        self.texts: list[str] = []  # every Playground generation, for the determinism check
        self.samples: list[tuple] = []  # (t, server RSS, server CPU s, browser CPU s, machine CPU s, load)
        self.training: dict = {"status": "not started"}
        self.cut_off = 0  # sessions still in an action at the hard deadline
        self.by_content = 0  # runs whose end was seen by their new content, not by the script state

    def fault(self, where: str, exc: Exception) -> None:
        bucket = self.timeouts if isinstance(exc, PlaywrightTimeout) else self.failed
        bucket.append(f"{where}: {type(exc).__name__}: {str(exc).splitlines()[0][:400]}")


# -- measuring processes (from /proc) ---------------------------------------------------------------------
def proc_stats() -> list[tuple[int, int, int, float, int]]:
    """(pid, parent, process group, CPU seconds, RSS bytes) of every process."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it just exited
        # after the command name: [1] parent, [2] process group, [11]/[12] user/system ticks, [21] RSS pages
        out.append((int(pid), int(f[1]), int(f[2]), (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK"),
                    int(f[21]) * os.sysconf("SC_PAGE_SIZE")))
    return out


def browser_group() -> int:
    """Process group of the Chromium that Playwright's driver (a child of this process) started; -1 if none."""
    procs = proc_stats()
    drivers = {p[0] for p in procs if p[1] == os.getpid()}
    return next((p[2] for p in procs if p[1] in drivers and p[2] == p[0]), -1)


def machine_busy() -> float:
    """CPU seconds all cores have been busy (not idle, not waiting for I/O) since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


async def monitor(stats: Stats, server: int, browser: int, t0: float) -> None:
    """Every 2 s: RSS of the server's process group; CPU seconds of it, of the browser's, of the machine."""
    cpu: dict[int, dict[int, float]] = {server: {}, browser: {}}  # group -> pid -> CPU s, kept after it exits
    while True:
        rss = 0
        for pid, _, group, seconds, size in proc_stats():
            if group in cpu:
                cpu[group][pid] = seconds
            rss += size if group == server else 0
        stats.samples.append((time.monotonic() - t0, rss, sum(cpu[server].values()), sum(cpu[browser].values()),
                              machine_busy(), os.getloadavg()[0]))
        await asyncio.sleep(2)


# -- driving pages ----------------------------------------------------------------------------------------
async def timed(page, act, shows: str, stats: Stats) -> float:
    """Seconds from `act()` (a click, a key press, a page change) to the end of the app run it triggers.

    `shows` is a JS expression for what the run changes on the page: the fallback for runs whose "running"
    state the browser never draws (a starved browser may handle a run's first and last messages in one go).
    New content on an idle app then means the run is over; it is timed when noticed.
    """
    await page.evaluate(OBSERVER)
    before = await page.evaluate(f"() => {shows}")
    t0 = await page.evaluate("() => performance.now()")
    await act()
    done = f"""([t0, before]) => {{ if (({END_AFTER})(t0) !== null) return [({END_AFTER})(t0), false];
        if (({IDLE})() && ({shows}) !== before) return [performance.now() - t0, true]; return false; }}"""
    try:  # the observer keeps the exact end time: polling only has to notice it, so it can be slow and cheap
        handle = await page.wait_for_function(done, arg=[t0, before], timeout=TIMEOUT_MS, polling=500)
    except PlaywrightTimeout as exc:
        raise PlaywrightTimeout(f"no run ended in {TIMEOUT_MS // 1000} s: {await page.evaluate(DIAGNOSE, t0)}") from exc
    milliseconds, by_content = await handle.json_value()
    stats.by_content += by_content
    return milliseconds / 1000.0


async def visit(page, url: str, stats: Stats) -> None:
    """Show the page `url` (its settings in the query string): a first load, then changes within the tab."""
    if page.url.startswith("http"):
        stats.latency["page change"].append(await timed(page, lambda: page.evaluate(NAVIGATE, url), SHOWS["page"], stats))
        return
    start = time.monotonic()
    await page.goto(url)
    await page.wait_for_selector("[data-testid='stMain'] h1")
    await page.wait_for_function(IDLE, polling=500)
    stats.latency["first page load"].append(time.monotonic() - start)


async def act(page, action: str, cfg: dict, stats: Stats) -> float:
    """Go to the action's page and do it; returns the seconds the action itself took."""
    await visit(page, cfg["urls"][action], stats)
    main = page.locator("[data-testid='stMain']")
    if action in ("generate", "compare"):
        seconds = await timed(page, page.get_by_role("button", name=action.capitalize()).click, SHOWS[action], stats)
        texts = main.locator(".gltr")  # drawn a moment after the run ends (much later on a starved browser)
        await texts.nth(len(cfg["lineup"]) - 1 if action == "compare" else 0).wait_for()
        if action == "generate":
            stats.texts.append(await texts.first.inner_text())
        return seconds
    slider = (main.locator("input[type='range']").first if action == "attention slider"
              else page.get_by_role("slider", name="Unit"))  # react-aria sliders: arrow keys move them
    at_max = float(await slider.input_value()) >= float(await slider.get_attribute("max"))
    return await timed(page, lambda: slider.press("ArrowLeft" if at_max else "ArrowRight"), SHOWS["slider"], stats)


async def new_tab(browser):
    context = await browser.new_context(viewport=VIEWPORT, reduced_motion="reduce")
    context.set_default_timeout(TIMEOUT_MS)
    return await context.new_page()


async def problems(page, stats: Stats, where: str) -> None:
    exceptions, alerts = await page.evaluate(PROBLEMS)
    if exceptions:
        stats.exceptions.append(f"{where}: {exceptions[0]}")
    if alerts:
        stats.alerts.append(f"{where}: {alerts[0]}")


async def arrive(browser, url: str, stats: Stats, gate: asyncio.Semaphore, who: str):
    """A new browser context with `url` loaded: a student opening the app's link (a tab, even if it failed)."""
    async with gate:
        page = await new_tab(browser)
        try:
            await visit(page, url, stats)
        except Exception as exc:  # noqa: BLE001 — counted; the session carries on and may recover
            stats.fault(f"first page load ({who})", exc)
        return page


async def student(index: int, page, cfg: dict, stats: Stats, end: float) -> None:
    """One student (browser context) doing actions back to back until the duration is over."""
    order = ACTIONS[index % 4:] + ACTIONS[:index % 4]
    step = 0
    while time.monotonic() < end:
        action, where = order[step % 4], f"{order[step % 4]} (session {index})"
        step += 1
        try:
            stats.latency[action].append(await act(page, action, cfg, stats))
            stats.done[index] += 1
        except Exception as exc:  # noqa: BLE001 — any failure is what this test counts
            stats.fault(where, exc)
        try:
            await problems(page, stats, where)
        except Exception:  # noqa: BLE001 — the page may be broken after a failure, which is counted already
            pass


def job_record() -> dict:
    """The training job's record as the server keeps it ($LM_PLAYGROUND_HOME/jobs/<id>.json); {} if none yet."""
    files = sorted((Path(os.environ["LM_PLAYGROUND_HOME"]) / "jobs").glob("*.json"))
    try:
        return json.loads(files[-1].read_text()) if files else {}
    except (OSError, ValueError):
        return {}  # being rewritten: read it again next time


async def trainer(page, stats: Stats, end: float) -> None:
    """Start the training job on the (loaded) Train page and keep the page open: it polls the job every second."""
    info = stats.training
    try:
        await timed(page, page.get_by_role("button", name="Start training").click, SHOWS["train"], stats)
        while True:  # the server's record, not the page, says how the job goes: a starved page lags
            record = job_record()
            progress = record.get("progress", {})
            info.update(status=record.get("status", "?"), error=record.get("error"),
                        progress=f"{progress.get('step', 0):,} steps in {progress.get('elapsed', 0):.0f} s")
            # the time budget ends with the test; saving takes a little longer
            if info["status"] not in ("queued", "running", "?") or time.monotonic() > end + 60:
                break
            await asyncio.sleep(3)
        await problems(page, stats, "train")
    except Exception as exc:  # noqa: BLE001
        info["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"


async def load_test(args, cfg: dict, server: int, stats: Stats) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            start = time.monotonic()  # warm up: one visit to every page loads the models before the clock
            page = await new_tab(browser)
            for action in ACTIONS:
                await asyncio.wait_for(act(page, action, cfg, Stats()), WARM_UP_S - (time.monotonic() - start))
            await page.context.close()
            cfg["warm_up"] = time.monotonic() - start
            # The class arrives: every context loads its first page, two at a time. A first load costs the
            # browser ~3 s of CPU (Streamlit's scripts, compiled anew in every context) and the server little;
            # all at once they would measure the browser's compiler, not the app.
            gate, start = asyncio.Semaphore(2), time.monotonic()
            pages = await asyncio.wait_for(asyncio.gather(
                arrive(browser, cfg["urls"]["train"], stats, gate, "train"),
                *[arrive(browser, cfg["base"], stats, gate, f"session {i}") for i in range(args.sessions)]), ARRIVE_S)
            cfg["arrival"] = time.monotonic() - start
            t0 = time.monotonic()
            end, hard_end = t0 + args.seconds, t0 + args.seconds + GRACE_S
            watch = asyncio.create_task(monitor(stats, server, browser_group(), t0))
            tasks = [asyncio.create_task(trainer(pages[0], stats, end))]
            tasks += [asyncio.create_task(student(i, page, cfg, stats, end)) for i, page in enumerate(pages[1:])]
            _, pending = await asyncio.wait(tasks, timeout=hard_end - time.monotonic())
            stats.cut_off = sum(1 for t in pending if t is not tasks[0])
            for task in (watch, *pending):
                task.cancel()
            await asyncio.gather(watch, *tasks, return_exceptions=True)
            cfg["elapsed"] = time.monotonic() - t0
        finally:
            try:
                await asyncio.wait_for(browser.close(), 30)
            except Exception:  # noqa: BLE001 — the Playwright driver takes the browser with it when it exits
                pass


# -- setup and report -------------------------------------------------------------------------------------
def choose_models(base: str, args) -> dict:
    """The models and page URLs: the shipped zoo, else the tiny test models built in $LM_PLAYGROUND_HOME."""
    from lm.app.compare import default_lineup
    from lm.store.registry import list_models

    infos, source = list_models(), "shipped zoo (assets/)"
    if not {"ngram", "rnn", "transformer"} <= {m.family for m in infos if m.source == "zoo"}:
        from app_fixtures import build_tiny_zoo

        build_tiny_zoo(os.environ["LM_PLAYGROUND_HOME"])
        infos = [m for m in list_models() if m.source == "user"]
        source = "tiny test models (tests/app_fixtures.py): no complete zoo in assets/"
    lineup = default_lineup(infos)
    by_name = {m.name: m for m in infos}
    family = lambda f: next(n for n in lineup + list(by_name) if by_name[n].family == f)  # noqa: E731
    playground = "shakespeare-char-lstm" if "shakespeare-char-lstm" in by_name else family("rnn")
    knobs = {"prompt": PROMPTS.get(by_name[playground].corpus, ""), "seed": SEED, "max_new_tokens": args.tokens,
             "temperature": 0.8, "top_p": 0.95}
    q = urllib.parse.urlencode
    train = {"tr_source": "Built-in corpus", "tr_corpus": "names", "tr_family": "lstm", "tr_preset": "tiny",
             "tr_steps": 100_000, "tr_minutes": max(0.1, args.seconds / 60)}  # the time budget ends it
    return {"source": source, "lineup": lineup, "playground": playground, "attention": family("transformer"),
            "rnn": family("rnn"), "prompt": knobs["prompt"], "base": base, "urls": {
                "generate": f"{base}/playground?{q({'model': playground, **knobs})}",
                "compare": f"{base}/compare?{q({'models': ','.join(lineup), **knobs})}",
                "attention slider": f"{base}/attention?{q({'att_model': family('transformer')})}",
                "rnn slider": f"{base}/rnn?{q({'rnn_model': family('rnn')})}", "train": f"{base}/train?{q(train)}"}}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]  # nearest rank


def report(args, cfg: dict, stats: Stats, log_text: str, load_start: tuple) -> str:
    s, n, duration = stats.samples, sum(stats.done.values()), cfg.get("elapsed", args.seconds)
    span = s[-1][0] - s[0][0] if len(s) > 1 else 1.0
    server_cpu, browser_cpu, machine = ((s[-1][i] - s[0][i]) for i in (2, 3, 4)) if len(s) > 1 else (0.0,) * 3
    peak_rss = max((x[1] for x in s), default=0)
    peak_cpu = max((100 * (b[2] - a[2]) / (b[0] - a[0]) for a, b in zip(s, s[1:])), default=0)
    distinct, train = Counter(stats.texts), stats.training
    tracebacks = log_text.count("Traceback (most recent call last)")
    per_session = f"{min(stats.done.values(), default=0)}–{max(stats.done.values(), default=0)}"
    rows = [  # (measure, target, measured, met: True / False / None for no target)
        ("Sessions × duration", "", f"{args.sessions} × {args.seconds} s, + 1 training; ran {duration:.0f} s", None),
        ("Actions done", "", f"{n}: " + ", ".join(f"{a} {len(stats.latency[a])}" for a in ACTIONS)
         + f"; {per_session} per session", None),
        ("Failed actions (error, no output)", "0", str(len(stats.failed)), not stats.failed),
        ("Timed-out actions (> 120 s, or cut at the hard deadline)", "0", str(len(stats.timeouts) + stats.cut_off),
         not stats.timeouts and not stats.cut_off),
        ("Pages showing a Streamlit exception", "0", str(len(stats.exceptions)), not stats.exceptions),
        ("Pages showing an st.error alert", "0", str(len(stats.alerts)), not stats.alerts),
        ("Tracebacks in the server log", "0", str(tracebacks), tracebacks == 0),
        ("Determinism: Playground texts (same prompt, knobs, seed)", "1 distinct",
         f"{len(stats.texts)} generations, {len(distinct)} distinct texts", len(distinct) == 1),
        ("Training job in the server meanwhile", "finished", f"{train['status']} ({train.get('progress', '')})"
         + (f": {train['error']}" if train.get("error") else ""), train["status"] == "finished" and not train.get("error")),
        ("Server RSS, peak", "≤ 1.5 GB", f"{peak_rss / 2**30:.2f} GB", peak_rss <= 1.5 * 2**30),
        ("Server CPU, mean / peak 2 s (% of one core)", "", f"{100 * server_cpu / span:.0f} % / {peak_cpu:.0f} %", None),
        ("Browser CPU, mean (% of one core, same machine)", "", f"{100 * browser_cpu / span:.0f} %", None),
        ("Other work on the machine, mean (% of one core)", "", f"{100 * (machine - server_cpu - browser_cpu) / span:.0f} %"
         f" of {100 * os.cpu_count()} %", None),
        ("Runs never drawn as running (end seen by new content, ≤ 0.5 s late)", "", str(stats.by_content), None)]
    out = [f"## Load test: {args.sessions} sessions × {args.seconds} s, one training job\n",
           f"Models: {cfg['source']}. Playground: {cfg['playground']} (prompt {cfg['prompt']!r}, seed {SEED}, "
           f"{args.tokens} tokens); Compare: {', '.join(cfg['lineup'])} ({args.tokens} tokens each); Attention: "
           f"{cfg['attention']}; RNN: {cfg['rnn']}. Before the clock: warm-up (every page once) "
           f"{cfg.get('warm_up', 0):.0f} s; arrival ({args.sessions + 1} contexts open the app, 2 at a time) "
           f"{cfg.get('arrival', 0):.0f} s.\n",
           f"Machine: {os.cpu_count()} cores; load average {load_start[0]:.2f} at the start, {os.getloadavg()[0]:.2f} "
           "at the end. The browser shares the cores with the server (and with any other work on the machine).\n",
           "| Measure | Target | Measured | Met? |", "|---|---|---|---|"]
    out += [f"| {m} | {t} | {v} | {'' if ok is None else '✅' if ok else '❌'} |" for m, t, v, ok in rows]
    out += ["", "Latency (browser clock) from the click or key press until the app is idle again; a page change "
            "(within the tab, before every action) until its run has ended; a first load until the page is idle:\n",
            "| Action | n | p50 | p95 | max |", "|---|---|---|---|---|"]
    for action in (*ACTIONS, "page change", "first page load"):
        v = stats.latency[action]
        cells = [f"{pct(v, p):.2f} s" for p in (50, 95, 100)] if v else ["—"] * 3
        out.append(f"| {action} | {len(v)} | {' | '.join(cells)} |")
    out += ["", "Over time, every 10 s (CPU in % of one core over the interval; other: the rest of the machine):\n",
            "| t | server RSS | server CPU | browser CPU | other CPU | load avg |", "|---|---|---|---|---|---|"]
    for a, b in zip(s[::5], s[5::5]):
        cpu = [100 * (b[i] - a[i]) / (b[0] - a[0]) for i in (2, 3, 4)]
        out.append(f"| {b[0]:.0f} s | {b[1] / 2**20:.0f} MB | {cpu[0]:.0f} % | {cpu[1]:.0f} % | "
                   f"{cpu[2] - cpu[0] - cpu[1]:.0f} % | {b[5]:.2f} |")
    rate, per_action = n / max(duration, 1e-9), server_cpu / max(n, 1)
    p50 = pct([x for a in ACTIONS for x in stats.latency[a]], 50) if n else 0.0
    out += ["", f"**Sessions per replica (estimate):** {args.sessions} sessions with no think time got {rate:.2f} "
            f"actions/s from the server at a median action latency of {p50:.1f} s. A student who reads ~{THINK_S} s "
            f"between actions (an assumption) asks for one action per {THINK_S} s + latency, so the same load and "
            f"about the same latencies come from ≈ {rate:.2f} × ({THINK_S} + {p50:.1f}) ≈ **{rate * (THINK_S + p50):.0f}"
            f" students per replica on this machine** (Little's law; valid near this load only, and for the "
            f"{100 * server_cpu / span:.0f} % of a core the server got here on average). The server "
            f"spent {per_action:.2f} CPU s per action (page changes and the training job included); a replica with "
            f"a core of its own at 70 % busy would serve ≈ 0.7 × {THINK_S} / {per_action:.2f} ≈ "
            f"{0.7 * THINK_S / max(per_action, 1e-9):.0f} such students (CPU bound only; latencies not measured "
            "there)."]
    for title, items in (("Failed actions", stats.failed), ("Timed-out actions", stats.timeouts),
                         ("Streamlit exceptions", stats.exceptions), ("st.error alerts", stats.alerts)):
        if items:
            out += ["", f"{title} (first 5 of {len(items)}):", *[f"- `{x}`" for x in items[:5]]]
    if len(distinct) > 1:
        out += ["", "Distinct generated texts:", *[f"- {k}× `{t[:80]!r}`" for t, k in distinct.most_common(5)]]
    if tracebacks:
        first = log_text[log_text.index("Traceback (most recent call last)"):][:1500]
        out += ["", "First traceback in the server log:", "```", first, "```"]
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--tokens", type=int, default=100, help="new tokens per generation and per Compare column")
    parser.add_argument("--out", help="also write the markdown report to this file")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"error: {CHROMIUM} is missing (apt-get install -y chromium)")
    load_start = os.getloadavg()
    home = tempfile.mkdtemp(prefix="lm-load-home-")  # the training job and the n-gram cache go here, not to ~
    os.environ["LM_PLAYGROUND_HOME"] = home
    port = free_port()
    cfg = choose_models(f"http://127.0.0.1:{port}", args)
    log_path = Path(home) / "server.log"
    log = open(log_path, "wb")
    proc = launch(port, {**os.environ, "PYTHONUNBUFFERED": "1"}, log)
    # Bounded: server start <= 60 s, warm-up, arrival, the load phase's hard deadline, closing <= 30 s;
    # past that (something blocked outside asyncio) a watchdog stops the server and exits, and Playwright's
    # driver, whose parent is gone, takes the browser with it.
    limit = 60 + WARM_UP_S + ARRIVE_S + args.seconds + GRACE_S + 30
    watchdog = threading.Timer(limit + 60, lambda: (print("watchdog: giving up", file=sys.stderr), stop(proc),
                                                   os._exit(3)))
    watchdog.daemon = True
    watchdog.start()
    stats, started = Stats(), time.monotonic()
    try:
        while True:  # the server answers its health check
            try:
                with urllib.request.urlopen(f"{cfg['base']}/_stcore/health", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() - started > 60:
                    sys.exit(f"error: the server did not start; see {log_path}")
                time.sleep(0.2)
        asyncio.run(asyncio.wait_for(load_test(args, cfg, proc.pid, stats), limit - (time.monotonic() - started)))
    except asyncio.TimeoutError:
        print("time limit reached (warm-up, arrival or hard deadline): the test was torn down", file=sys.stderr)
    finally:
        stop(proc)
        log.close()
        watchdog.cancel()
    text = report(args, cfg, stats, log_path.read_text(errors="replace"), load_start)
    if "Traceback" in log_path.read_text(errors="replace"):
        print(f"the server log is kept: {log_path}", file=sys.stderr)
    else:
        shutil.rmtree(home, ignore_errors=True)
    print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
