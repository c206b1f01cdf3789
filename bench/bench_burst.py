"""The classroom burst: N students press Generate in the same second. A script, not a test:

    python bench/bench_burst.py [--sessions 40] [--tokens 100] [--bursts 3] [--out FILE]
    (also: python bench/bench_load.py --burst 40)

One `streamlit run app.py` (the README's start command; `--replicas N`: `python -m lm.app.serve`), the shipped `shakespeare-char-lstm`, prompt
"ROMEO:", seed 7, the Playground's default knobs (temperature 0.8, top-p 0.95: every knob is in the page's URL and in
the in-process reference, and the server must write the reference's text). Measured in one run, side by side with the
in-process reference:

1. overhead: server CPU for one Playground Generate (one session, one at a time) against the CPU of the same
   `lm.run.generate.generate` call in this process, and server CPU to open a page (target ≤ 1.5x, ≤ 40 ms);
2. the burst: N websocket sessions (`bench/ws_client.py`) open the Playground, then all click Generate at
   once; latency per session from the click until its page is idle; p95 over `--bursts` bursts, against
   the ideal N x (in-process generate time) / cores (target ≤ 2.5x);
3. the same burst while one training runs (started from the Train page, in its worker process):
   p95 with training / p95 without (target ≤ 1.1);
4. memory: server RSS after every burst (flat: no growth from burst to burst).
Every session's generated text must be the same text (same prompt, settings and seed).
"""

from __future__ import annotations

import argparse
import asyncio
import html
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]
from app_server import free_port, launch, stop, wait_healthy  # noqa: E402
from bench_load import TAG, pct, text_of  # noqa: E402
from ws_client import StreamlitSession  # noqa: E402

MODEL = "shakespeare-char-lstm"
TIMEOUT = 300.0


def process_cpu(pids) -> float:
    """CPU seconds (user + system) of the server processes (the replicas), from /proc."""
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def process_rss(pids) -> int:
    return sum(int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[21]) for pid in pids) \
        * os.sysconf("SC_PAGE_SIZE")


PROMPT = "ROMEO:\n"


def knobs(tokens: int) -> dict:
    """The Playground's default sampling knobs (ui/widgets.py), seed 7 and `tokens` new tokens."""
    from ui.widgets import SAMPLING_DEFAULTS

    return {**SAMPLING_DEFAULTS, "seed": 7, "max_new_tokens": tokens}


def page_query(tokens: int) -> dict[str, str]:
    """The Playground's URL for exactly the reference's work: the model, the prompt and every knob."""
    return {"model": MODEL, "prompt": PROMPT, **{key: str(value) for key, value in knobs(tokens).items()}}


def in_process_reference(tokens: int, repeats: int = 20) -> tuple[float, float, str]:
    """(median CPU seconds, median wall seconds, the text as the page shows it) of the Playground's generate call
    with the page's settings, in this process."""
    from lm.device import set_inference_threads
    from lm.run.generate import generate
    from lm.run.sampling import SamplingSettings
    from lm.store.registry import load_model
    from lm.viz.tokens import gltr_html, rank_bins

    set_inference_threads(1)
    loaded = load_model(MODEL)
    settings = SamplingSettings(**knobs(tokens))
    cpu, wall = [], []
    for _ in range(repeats + 2):
        c, w = time.process_time(), time.perf_counter()
        written = list(generate(loaded.model, loaded.tokenizer, PROMPT, settings))
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    shown = gltr_html(PROMPT, written, rank_bins(loaded.tokenizer.vocab_size))
    return statistics.median(cpu[2:]), statistics.median(wall[2:]), html.unescape(TAG.sub("", shown))


async def overhead(base: str, pid, tokens: int, repeats: int = 10) -> tuple[float, float]:
    """(server CPU per Generate, server CPU per page open), one session, one action at a time."""
    session = await StreamlitSession.connect(base, timeout=TIMEOUT)
    query = page_query(tokens)
    try:
        await session.open("playground", query)
        await session.click("generate")  # the first of each is not counted (first-use work, if any)
        opens, gens = [], []
        for _ in range(repeats):
            before = process_cpu(pid)
            await session.open("playground", query)
            opens.append(process_cpu(pid) - before)
            before = process_cpu(pid)
            await session.click("generate")
            gens.append(process_cpu(pid) - before)
    finally:
        await session.close()
    return statistics.mean(gens), statistics.mean(opens)


async def burst(base: str, n: int, tokens: int) -> tuple[list[float], list[str], int]:
    """(latencies, texts, problems) of n sessions clicking Generate at the same moment."""
    sessions = await asyncio.gather(*(StreamlitSession.connect(base, timeout=TIMEOUT) for _ in range(n)))
    try:
        query = page_query(tokens)
        await asyncio.gather(*(s.open("playground", query) for s in sessions))
        results = await asyncio.gather(*(s.click("generate") for s in sessions))
    finally:
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
    texts = [t for r in results for t in text_of(r)]
    return [r.seconds for r in results], texts, sum(not r.ok for r in results)


async def start_training(base: str) -> None:
    session = await StreamlitSession.connect(base, timeout=TIMEOUT)
    try:
        await session.open("train", {"tr_corpus": "shakespeare", "tr_family": "lstm", "tr_preset": "small",
                                     "tr_steps": "100000", "tr_minutes": "30"})
        await session.set_value("tr_name", "burst-bench-lstm")
        await session.click("tr_start")
    finally:
        await session.close()


def training_step(home: Path) -> int:
    import json

    steps = [json.loads(p.read_text()).get("progress", {}).get("step", 0) for p in (home / "jobs").glob("*.json")]
    return max(steps, default=0)


async def wait_warm(logs: list[Path], timeout: float) -> tuple[float, int]:
    """(seconds waited, servers warm): until every server's log says its warm-up is done, at most `timeout` s."""
    from lm.app.warmup import WARM_DONE

    started = time.monotonic()

    def warm() -> int:
        return sum(WARM_DONE in p.read_text(encoding="utf-8", errors="replace") for p in logs if p.exists())

    while warm() < len(logs) and time.monotonic() - started < timeout:
        await asyncio.sleep(0.5)
    return time.monotonic() - started, warm()


async def run(args, base: str, pid, home: Path, logs: list[Path]) -> dict:
    out: dict = {"rss": []}
    # The teacher opens the app first. One `streamlit run` starts its background warm-up (lm/app/warmup.py) at this
    # first request; `python -m lm.app.serve` has warmed every replica at start already. Then wait until each says
    # it is warm, so no row measures a cold server.
    teacher = await StreamlitSession.connect(base, timeout=TIMEOUT)
    await teacher.open("", {})  # Home, at the root
    await teacher.close()
    out["warm_wait"], out["warm"] = await wait_warm(logs, args.warm_seconds)
    out["servers"] = len(logs)
    out["generate_cpu"], out["open_cpu"] = await overhead(base, pid, args.tokens)
    for label in ("alone", "training"):
        if label == "training":
            await start_training(base)
            deadline = time.monotonic() + 120
            while training_step(home) == 0 and time.monotonic() < deadline:
                await asyncio.sleep(1.0)
            out["training_step_before"] = training_step(home)
        latencies, texts, problems = [], [], 0
        for _ in range(args.bursts):
            lat, txt, bad = await burst(base, args.sessions, args.tokens)
            latencies += lat
            texts += txt
            problems += bad
            out["rss"].append((label, process_rss(pid)))
        out[label] = {"p50": pct(latencies, 50), "p95": pct(latencies, 95), "max": max(latencies),
                      "distinct": len(set(texts)), "texts": len(texts), "problems": problems,
                      "as_reference": sum(t == args.reference_text for t in texts)}
    out["training_step_after"] = training_step(home)
    return out


def report(args, ref_cpu: float, ref_wall: float, r: dict) -> str:
    cores = os.cpu_count() or 1
    ideal = args.sessions * ref_wall / cores
    over = r["generate_cpu"] / ref_cpu
    slow = r["training"]["p95"] / r["alone"]["p95"]
    ratio = r["alone"]["p95"] / ideal

    def met(ok: bool) -> str:
        return "yes" if ok else "**no**"

    lines = [
        f"## Burst: {args.sessions} sessions press Generate at once (`python bench/bench_burst.py`)",
        "",
        f"Machine: {platform.machine()}, {cores} cores, {platform.python_version()}. "
        + ("One `streamlit run app.py`" if args.replicas == 1 else
           f"{args.replicas} replicas behind HAProxy (`python -m lm.app.serve`)")
        + f", `{MODEL}`, prompt 'ROMEO:', the Playground's default knobs, seed 7, {args.tokens} new tokens; "
        f"{args.bursts} bursts per row.",
        "",
        "| measure | project | reference | ratio | target | met? |",
        "|---|---:|---:|---:|---:|---|",
        f"| server CPU per Generate vs the same `lm.run.generate.generate` in-process | {r['generate_cpu'] * 1e3:.0f} ms | "
        f"{ref_cpu * 1e3:.0f} ms | {over:.2f}x | ≤ 1.5x | {met(over <= 1.5)} |",
        f"| server CPU to open the Playground | {r['open_cpu'] * 1e3:.0f} ms | – | – | ≤ 40 ms | "
        f"{met(r['open_cpu'] <= 0.040)} |",
        f"| burst p95 vs ideal ({args.sessions} x {ref_wall * 1e3:.0f} ms / {cores} cores) | {r['alone']['p95']:.2f} s | "
        f"{ideal:.2f} s | {ratio:.2f}x | ≤ 2.5x | {met(ratio <= 2.5)} |",
        f"| burst p95 with a training running vs without | {r['training']['p95']:.2f} s | {r['alone']['p95']:.2f} s | "
        f"{slow:.2f}x | ≤ 1.1x | {met(slow <= 1.1)} |",
        "",
        "| burst | p50 | p95 | max | failed | distinct texts | the reference's text |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label in ("alone", "training"):
        b = r[label]
        lines.append(f"| {label} | {b['p50']:.2f} s | {b['p95']:.2f} s | {b['max']:.2f} s | {b['problems']} | "
                     f"{b['distinct']} of {b['texts']} | {b['as_reference']} of {b['texts']} |")
    lines += ["", f"Warm before measuring: {r['warm']} of {r['servers']} server(s) after {r['warm_wait']:.0f} s. "
              f"Training steps during the training bursts: {r.get('training_step_before', 0)} → "
              f"{r.get('training_step_after', 0)}. Server RSS after each burst: "
              + ", ".join(f"{rss / 2**20:.0f} MB ({label})" for label, rss in r["rss"]) + f". Load average at the "
              f"start: {r['load']}."]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=40)
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--bursts", type=int, default=3)
    parser.add_argument("--warm-seconds", type=float, default=180.0, dest="warm_seconds",
                        help="at most this long to wait for every server's warm-up to finish")
    parser.add_argument("--replicas", type=int, default=1,
                        help="1: one `streamlit run app.py`; more: `python -m lm.app.serve` (HAProxy, sticky sessions)")
    parser.add_argument("--out", help="also write the markdown to this file")
    args = parser.parse_args(argv)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())  # before anything here runs: how busy the machine was
    ref_cpu, ref_wall, args.reference_text = in_process_reference(args.tokens)
    home = Path(tempfile.mkdtemp(prefix="bench-burst-home-"))
    env = {**os.environ, "LM_PLAYGROUND_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    log_path = home / "server.log"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    if args.replicas > 1:
        from lm.app import serve

        os.environ["LM_PLAYGROUND_HOME"] = str(home)
        procs = serve.start(args.replicas, port, home, bind="127.0.0.1")
        try:
            logs = [serve.replica_log(home, i) for i in range(args.replicas)]
            results = asyncio.run(run(args, base, [p.pid for p in procs[:-1]], home, logs))
        finally:
            serve.stop(procs)
    else:
        with open(log_path, "wb") as log:
            proc = launch(port, env, log)
            try:
                wait_healthy(proc, base, log_path)
                results = asyncio.run(run(args, base, [proc.pid], home, [log_path]))
            finally:
                stop(proc)
    results["load"] = load
    text = report(args, ref_cpu, ref_wall, results)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
