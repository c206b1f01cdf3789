"""Benchmark: the app as a student sees it, in a real (headless Chromium) browser.

A script, not a test:  python bench/bench_app.py [--home DIR] [--repeats 3] [--tokens 200]

Measured against `streamlit run app.py` on a free local port:
  (a) first page rendered after the server process starts (home page title visible, script idle);  <= 5 s
  (b) a slider moved on the Attention page and on the RNN page until the page has re-rendered;     <= 0.5 s
  (c) Compare: 3 models x --tokens tokens (the default lineup), click to fully re-rendered page;    <= 2 s
  (d) server resident memory after every model of the zoo has been loaded (each opened once in the
      Playground, plus the runs above);                                                              <= 1.5 GB

Models: the shipped zoo when `assets/` holds models (with the user directory of $LM_PLAYGROUND_HOME or
--home); otherwise the tiny test models of tests/app_fixtures.py, built in a temporary directory (the
table says which). Timings are taken with the browser's clock from the click/key press to the moment the
app's script state goes from "running" back to idle; each is the median of --repeats tries.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from app_server import CHROMIUM, CHROMIUM_ARGS, IDLE, free_port, launch, stop  # noqa: E402

# Records every change of the app's script state with the page's clock, so a re-render can be timed from
# the user's action to the end of the run, however short the "running" phase is.
OBSERVER = """() => {
  window.__states = [];
  const app = document.querySelector('.stApp');
  new MutationObserver(() => window.__states.push([app.getAttribute('data-test-script-state'), performance.now()]))
    .observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}"""
DONE_AFTER = """(t0) => { const s = window.__states || []; let ran = false;
  for (const [state, t] of s) { if (t < t0) continue; if (state === 'running') ran = true;
    else if (ran) return true; } return false; }"""
END_AFTER = """(t0) => { const s = window.__states; let ran = false, end = null;
  for (const [state, t] of s) { if (t < t0) continue; if (state === 'running') ran = true; else if (ran) end = t; }
  return end - t0; }"""


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and its children (from /proc)."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the server process has used so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settle(tab, timeout: float = 120_000) -> None:
    tab.wait_for_selector("[data-testid='stMain'] h1", timeout=timeout)
    tab.wait_for_timeout(300)
    tab.wait_for_function(IDLE, timeout=timeout)


SERVER_PID = 0
CPU: list[float] = []  # server CPU seconds of each timed action, in order


def timed(tab, action, timeout: float = 120_000) -> float:
    """Seconds from `action()` to the end of the app run it triggers (server CPU time goes to CPU)."""
    tab.evaluate(OBSERVER)
    t0 = tab.evaluate("() => performance.now()")
    cpu0 = cpu_seconds(SERVER_PID)
    action()
    tab.wait_for_function(DONE_AFTER, arg=t0, timeout=timeout)
    CPU.append(cpu_seconds(SERVER_PID) - cpu0)
    return tab.evaluate(END_AFTER, t0) / 1000.0


def slider_seconds(tab, base: str, path: str, repeats: int) -> tuple[float | None, str]:
    """Median re-render time after moving the page's first slider (else stepping its first number input)."""
    tab.goto(f"{base}/{path}")
    settle(tab)
    del CPU[:]
    try:  # the page's widgets may still be arriving
        tab.wait_for_selector("[data-testid='stMain'] input[type='range'], "
                              "[data-testid='stMain'] [data-testid='stNumberInputStepUp']", timeout=30_000)
    except Exception:  # noqa: BLE001 — playwright's TimeoutError: the page has neither
        pass
    sliders = tab.locator("[data-testid='stMain'] input[type='range']")  # react-aria sliders
    if sliders.count() == 0:
        steppers = tab.locator("[data-testid='stMain'] [data-testid='stNumberInputStepUp']")
        if steppers.count() == 0:
            return None, "no slider"
        times = []
        for _ in range(repeats):
            times.append(timed(tab, steppers.first.click))
            settle(tab)
        return statistics.median(times), "number input +1; the page has no slider"
    slider = sliders.first
    times = []
    for _ in range(repeats):
        slider.focus()
        at_max = float(slider.input_value()) >= float(slider.get_attribute("max"))
        key = "ArrowLeft" if at_max else "ArrowRight"  # a key that changes the value, so the page reruns
        times.append(timed(tab, lambda key=key: slider.press(key)))
        settle(tab)
    return statistics.median(times), "slider"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", help="LM_PLAYGROUND_HOME to serve (default: $LM_PLAYGROUND_HOME, or tiny models)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--tiny", action="store_true", help="use the tiny test models even when a zoo is shipped")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"error: {CHROMIUM} is missing (apt-get install -y chromium)")

    from lm.store.registry import ASSETS_DIR

    from lm.store.registry import list_models

    families = {m.family for m in list_models() if m.source == "zoo"}
    zoo = not args.tiny and {"ngram", "rnn", "transformer"} <= families  # a zoo the pages can show off
    home = args.home or os.environ.get("LM_PLAYGROUND_HOME")
    if not zoo and not args.home:
        from app_fixtures import build_tiny_zoo

        home = tempfile.mkdtemp(prefix="lm-bench-home-")
        print(f"no complete zoo in {ASSETS_DIR} (or --tiny): building the tiny test models in {home}",
              file=sys.stderr)
        build_tiny_zoo(home)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if home:
        env["LM_PLAYGROUND_HOME"] = str(home)
        os.environ["LM_PLAYGROUND_HOME"] = str(home)
    from lm.app.compare import default_lineup

    infos = [m for m in list_models() if zoo or m.source == "user"]
    models = [m.name for m in infos]
    lineup = default_lineup(infos)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tempfile.NamedTemporaryFile(prefix="bench-app-server-", suffix=".log", delete=False)
    started = time.perf_counter()
    proc = launch(port, env, log)
    global SERVER_PID
    SERVER_PID = proc.pid
    rows = []

    def cpu_note() -> str:
        return f"{statistics.median(CPU):.2f} s" if CPU else "—"

    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            tab = browser.new_page(viewport={"width": 1600, "height": 1000})
            while True:  # (a) poll until the server answers, then load the home page
                try:
                    with urllib.request.urlopen(f"{base}/_stcore/health", timeout=1):
                        break
                except OSError:
                    if proc.poll() is not None:
                        sys.exit(f"error: the server exited; see {log.name}")
                    time.sleep(0.05)
            tab.goto(base)
            tab.wait_for_selector("[data-testid='stMain'] h1", timeout=120_000)
            tab.wait_for_function(IDLE, timeout=120_000)
            first = time.perf_counter() - started
            rows.append(("First page rendered after server start", "≤ 5 s", f"{first:.2f} s",
                         f"{cpu_seconds(proc.pid):.2f} s", first <= 5))

            for label, path in (("Attention", "attention"), ("RNN", "rnn")):  # (b)
                seconds, how = slider_seconds(tab, base, path, args.repeats)
                rows.append((f"Slider change re-rendered ({label} page)", "≤ 0.5 s",
                             how if seconds is None else f"{seconds:.2f} s" + ("" if how == "slider" else f" ({how})"),
                             cpu_note(), seconds is not None and seconds <= 0.5))

            tab.goto(f"{base}/compare?max_new_tokens={args.tokens}&seed=0&models={','.join(lineup)}")  # (c)
            settle(tab)
            button = tab.get_by_role("button", name="Compare")
            times = []
            del CPU[:]
            for _ in range(args.repeats):
                times.append(timed(tab, button.click))
            compare = statistics.median(times)
            rows.append((f"Compare {len(lineup)} models × {args.tokens} tokens (click to page done)", "≤ 2 s",
                         f"{compare:.2f} s (first {times[0]:.2f} s)", cpu_note(), compare <= 2))

            for name in models:  # (d) every model loaded once
                tab.goto(f"{base}/playground?model={name}")
                settle(tab)
            rss = rss_bytes(proc.pid)
            rows.append((f"Server RSS with all {len(models)} models loaded", "≤ 1.5 GB", f"{rss / 2**30:.2f} GB",
                         "", rss <= 1.5 * 2**30))
            browser.close()
    finally:
        stop(proc)
        log.close()

    print(f"Models: {'shipped zoo + user models' if zoo else 'tiny test models (no complete zoo in assets/)'}: "
          f"{', '.join(models)}; Compare lineup: {', '.join(lineup)}\n")
    load = os.getloadavg()[0]
    print(f"Machine: {os.cpu_count()} CPUs, load average {load:.1f} at the end. Wall times include waiting "
          "for the CPU; 'server CPU' is the CPU time the server itself spent (median), what an idle machine "
          "would roughly need.\n")
    print("| Measure | Target | Measured (wall) | Server CPU | |")
    print("|---|---|---|---|---|")
    for measure, target, value, cpu, ok in rows:
        print(f"| {measure} | {target} | {value} | {cpu} | {'✅' if ok else '❌'} |")


if __name__ == "__main__":
    main()
