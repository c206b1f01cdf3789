"""Load test: a class of students on one server — N sessions generating, comparing and inspecting at once,
while one model trains in the same server.

A script, not a test:  python bench/bench_load.py [--sessions 20] [--seconds 120] [--tokens 100] [--out FILE]

Each session is a websocket-level client (`bench/ws_client.py`): it sends what a browser tab sends and
times each action from the request until the app is idle again, for a few milliseconds of client CPU, so
the two cores measure the server and not twenty Chromiums (`bench/bench_load_browser.py` drives real
Chromium tabs; on this machine the browsers took most of the CPU). Every session loops, with no pause,
over four actions — Playground generate, Compare three models, move the Attention page's token slider, move
the RNN page's unit slider — each time opening the page first, as a student switching pages does.

Recorded: errors (failed runs, exceptions and st.error alerts on any page; the target is 0), p50/p95/max
latency per action, server RSS and CPU over time, and the determinism check: every Playground generation in
every session uses the same prompt, settings and seed, so all their texts must be one text. The test is
bounded: the sessions stop at --seconds, anything still running is cut at a hard deadline, and the server
(with the training job) is always stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
from app_server import free_port, launch, stop, wait_healthy  # noqa: E402
from ws_client import RunResult, StreamlitSession  # noqa: E402

ACTIONS = ("generate", "compare", "attention slider", "rnn slider")
ACTION_TIMEOUT = 180.0  # an action slower than this counts as an error (a slow action is not one)
TAG = re.compile(r"<[^>]+>")


class Stats:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = {a: [] for a in (*ACTIONS, "page open")}
        self.problems: list[str] = []  # failed or timed-out runs, exceptions, st.error alerts
        self.texts: list[str] = []  # every Playground generation's text
        self.samples: list[tuple[float, int, float, float]] = []  # (t, RSS bytes, server CPU %, load average)


def text_of(result: RunResult) -> list[str]:
    """The generated texts on a page (GLTR-coloured HTML inside markdown elements), tags stripped."""
    return [html.unescape(TAG.sub("", m)) for m in result.markdown if "class='gltr'" in m]


def check(result: RunResult, what: str, stats: Stats) -> bool:
    if result.ok:
        return True
    detail = (result.exceptions or result.errors or [result.status])[0]
    stats.problems.append(f"{what}: {str(detail).splitlines()[0][:160]}")
    return False


async def act(session: StreamlitSession, action: str, cfg: dict, stats: Stats, turn: int) -> None:
    page, query = cfg["pages"][action]
    opened = await session.open(page, query)
    if not check(opened, f"open {page}", stats):
        return
    stats.latency["page open"].append(opened.seconds)
    if action == "generate":
        result = await session.click("generate")
        texts = text_of(result)
        if check(result, action, stats) and len(texts) != 1:
            stats.problems.append(f"{action}: {len(texts)} texts on the page")
        stats.texts.extend(texts)
    elif action == "compare":
        result = await session.click("compare")
        if check(result, action, stats) and len(text_of(result)) != len(cfg["lineup"]):
            stats.problems.append(f"{action}: {len(text_of(result))} of {len(cfg['lineup'])} columns")
    elif action == "attention slider":
        options = session.widget("att_token").proto.options
        result = await session.set_value("att_token", turn % len(options))
        check(result, action, stats)
    else:
        top = int(session.widget("rnn_unit").proto.max)
        result = await session.set_value("rnn_unit", (turn * 7) % (top + 1))
        check(result, action, stats)
    if result.ok:
        stats.latency[action].append(result.seconds)


async def student(index: int, base: str, cfg: dict, stats: Stats, end: float) -> None:
    session = await StreamlitSession.connect(base, timeout=ACTION_TIMEOUT)
    try:
        turn = index
        while time.monotonic() < end:
            await act(session, ACTIONS[turn % len(ACTIONS)], cfg, stats, turn)
            turn += 1
    finally:
        await session.close()


async def start_training(base: str, minutes: float, stats: Stats) -> None:
    """One teacher starts a small model training on the Train page; it runs in the server meanwhile."""
    session = await StreamlitSession.connect(base, timeout=ACTION_TIMEOUT)
    try:
        query = {"tr_corpus": "names", "tr_family": "lstm", "tr_preset": "small", "tr_steps": "100000",
                 "tr_minutes": f"{minutes:.1f}"}
        check(await session.open("train", query), "open train", stats)
        check(await session.set_value("tr_name", "load-test-lstm"), "name the training", stats)
        check(await session.click("tr_start"), "start training", stats)
    finally:
        await session.close()


def group_usage(pgid: int) -> tuple[int, float]:
    """(RSS bytes, CPU seconds) of every process in a process group, from /proc."""
    rss, cpu, tick, page = 0, 0.0, os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # field 5, process group
            cpu += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
            rss += int(fields[21]) * page
    return rss, cpu


async def monitor(pgid: int, stats: Stats, t0: float) -> None:
    last_t, last_cpu = time.monotonic(), group_usage(pgid)[1]
    while True:
        await asyncio.sleep(2.0)
        now, (rss, cpu) = time.monotonic(), group_usage(pgid)
        stats.samples.append((now - t0, rss, 100 * (cpu - last_cpu) / (now - last_t), os.getloadavg()[0]))
        last_t, last_cpu = now, cpu


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def choose(tokens: int) -> dict:
    from lm.app.compare import default_lineup
    from lm.store.registry import list_models

    infos = list_models()
    names = {m.name for m in infos}
    lineup = default_lineup(infos)
    lstm = "shakespeare-char-lstm" if "shakespeare-char-lstm" in names else next(m.name for m in infos if m.family == "rnn")
    pages = {
        "generate": ("playground", {"model": lstm, "prompt": "ROMEO:\n", "seed": "7", "max_new_tokens": str(tokens)}),
        "compare": ("compare", {"models": ",".join(lineup), "seed": "7", "max_new_tokens": str(tokens)}),
        "attention slider": ("attention", {}),
        "rnn slider": ("rnn", {}),
    }
    return {"pages": pages, "lineup": lineup, "lstm": lstm}


async def run(args, cfg: dict, base: str, pgid: int, stats: Stats) -> float:
    t0 = time.monotonic()
    watch = asyncio.create_task(monitor(pgid, stats, t0))
    await start_training(base, args.seconds / 60 + 1.0, stats)
    end = time.monotonic() + args.seconds
    students = [asyncio.create_task(student(i, base, cfg, stats, end)) for i in range(args.sessions)]
    done, pending = await asyncio.wait(students, timeout=args.seconds + 2 * ACTION_TIMEOUT)  # the hard deadline
    for task in pending:
        task.cancel()
        stats.problems.append("a session was cut at the hard deadline")
    for task in done:
        if task.exception() is not None:
            stats.problems.append(f"a session failed: {task.exception()!r}"[:200])
    watch.cancel()
    return time.monotonic() - t0


def report(args, cfg: dict, stats: Stats, wall: float, home: Path, log_text: str, load_start: float) -> str:
    jobs = [json.loads(p.read_text()) for p in (home / "jobs").glob("*.json")]
    job = jobs[0] if jobs else {}
    actions = sum(len(stats.latency[a]) for a in ACTIONS)
    tracebacks = log_text.count("Traceback")
    distinct = len(set(stats.texts))
    rss_peak = max((s[1] for s in stats.samples), default=0)
    cpu_mean = sum(s[2] for s in stats.samples) / max(1, len(stats.samples))
    rate = actions / args.seconds
    server_cpu_per_action = cpu_mean / 100 * args.seconds / max(1, actions)
    lines = [
        f"## Load test: {args.sessions} sessions × {args.seconds} s, one training job (`python bench/bench_load.py`)",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores; load average {load_start:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end. Clients: websocket-level sessions (`bench/ws_client.py`) in one "
        f"process on the same machine. Models: Playground {cfg['lstm']} (prompt 'ROMEO:', seed 7, "
        f"{args.tokens} tokens); Compare {', '.join(cfg['lineup'])} ({args.tokens} tokens each); the Attention "
        "and RNN pages' default models. The sessions never pause between actions: a worst case.",
        "",
        "| measure | target | measured | met? |",
        "|---|---|---|---|",
        f"| errors (failed runs, exceptions, st.error alerts, sessions cut) | 0 | {len(stats.problems)} | "
        f"{'yes' if not stats.problems else 'no'} |",
        f"| tracebacks in the server log | 0 | {tracebacks} | {'yes' if not tracebacks else 'no'} |",
        f"| same prompt + settings + seed in every session: distinct texts | 1 | {distinct} "
        f"(of {len(stats.texts)} generations) | {'yes' if distinct == 1 else 'no'} |",
        f"| training job meanwhile | runs | {job.get('status', 'not started')}, step "
        f"{job.get('progress', {}).get('step', 0):,} | {'yes' if job.get('progress', {}).get('step') else 'no'} |",
        f"| actions done | – | {actions} in {args.seconds} s ({rate:.2f}/s; ran {wall:.0f} s in all) | – |",
        f"| server RSS, peak | ≤ 1.5 GB | {rss_peak / 2**30:.2f} GB | {'yes' if rss_peak <= 1.5 * 2**30 else 'no'} |",
        f"| server CPU, mean (% of one core; 200 % = both cores) | – | {cpu_mean:.0f} % | – |",
        "",
        "| action | n | p50 | p95 | max |",
        "|---|---:|---:|---:|---:|",
    ]
    for action, values in stats.latency.items():
        if values:
            lines.append(f"| {action} | {len(values)} | {pct(values, 50):.2f} s | {pct(values, 95):.2f} s | "
                         f"{max(values):.2f} s |")
    lines += ["", "| t | server RSS | server CPU | load average |", "|---:|---:|---:|---:|"]
    for t, rss, cpu, load in stats.samples[::5]:
        lines.append(f"| {t:.0f} s | {rss / 2**20:.0f} MB | {cpu:.0f} % | {load:.1f} |")
    think = 20.0
    p50 = pct([v for a in ACTIONS for v in stats.latency[a]], 50) if actions else float("nan")
    lines += ["", f"**Sessions per replica.** Saturated by {args.sessions} sessions that never pause, this server "
              f"completed {rate:.2f} actions/s ({server_cpu_per_action:.2f} server CPU-seconds each, training "
              f"included). Students who read for ~{think:.0f} s between actions (an assumption, not a measurement) "
              f"each ask for one action per {think:.0f} s + latency; at this throughput and a median latency of "
              f"{p50:.1f} s that is {rate:.2f} × ({think:.0f} + {p50:.1f}) ≈ **{rate * (think + p50):.0f} "
              "students per replica** (Little's law at the measured throughput)."]
    if stats.problems:
        lines += ["", "Problems (first 10):"] + [f"- {p}" for p in stats.problems[:10]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--tokens", type=int, default=100, help="new tokens per generation and per Compare column")
    parser.add_argument("--out", help="also write the markdown to this file")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-load-home-"))  # the training writes here, not in your models
    os.environ["LM_PLAYGROUND_HOME"] = str(home)
    cfg = choose(args.tokens)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log_path = home / "server.log"
    load_start = os.getloadavg()[0]
    with open(log_path, "wb") as log:
        port = free_port()
        proc = launch(port, env, log)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_healthy(proc, base, log_path)
            stats = Stats()
            wall = asyncio.run(run(args, cfg, base, proc.pid, stats))
        finally:
            stop(proc)
    text = report(args, cfg, stats, wall, home, log_path.read_text(errors="replace"), load_start)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
