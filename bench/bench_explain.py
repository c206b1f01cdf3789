"""Benchmark: what the "Why this token?" page computes, for the shipped models on a 128-token text.

A script, not a test:  python bench/bench_explain.py [--threads 1] [--repeats 3] [--positions 8]

Per model, one CPU thread (the app's default, LM_THREADS=1), medians of --repeats runs:
  - occlusion matrix: every position's occlusion at once (T occluded texts of T tokens in batches), computed
    once per (model, text, ablation); a slider move then only reads a row;
  - slider move: what the page's fragment recomputes when the position changes — the row painted as HTML,
    the next-token probability, integrated gradients at that position (neural models) and, for a
    Transformer, the step-by-step of one head (the logit lens is per text, like occlusion);   target <= 0.5 s
  - integrated gradients alone: the median and the worst position, with the gradient steps the adaptive rule
    took and its completeness error (the issue's check: <= 5 %);
  - logit lens (per text) and the ablated continuation (60 tokens, all heads / 8 units off);
  - the page itself (`--page`): views/explain.py headless (Streamlit's AppTest, the server side of a real
    session) with the Compare lineup on the 128-character text: the first view, then slider moves, with
    integrated gradients on and off.
The BPE Transformer's context is 64 tokens, so its text is 64 tokens.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lm.app.explain import continuation, next_distribution  # noqa: E402
from lm.device import set_inference_threads  # noqa: E402
from lm.inspect.ablation import parse_ablation  # noqa: E402
from lm.inspect.attribution import integrated_gradients, neutral_token, occlusion_matrix  # noqa: E402
from lm.inspect.lens import logit_lens, transformer_steps  # noqa: E402
from lm.store.registry import load_model  # noqa: E402
from lm.viz.explain import attribution_html  # noqa: E402

MODELS = ("shakespeare-char-5gram", "shakespeare-char-lstm", "shakespeare-char-transformer", "shakespeare-bpe-4gram",
          "shakespeare-bpe-lstm", "shakespeare-bpe-transformer")
TEXT = ("ROMEO:\nBut soft, what light through yonder window breaks?\nIt is the east, and Juliet is the sun.\n"
        "Arise, fair sun, and kill the envious moon,\nWho is already sick and pale with grief,\nThat thou her "
        "maid art far more fair than she:\nBe not her maid, since she is envious;\nHer vestal livery is but "
        "sick and green\nAnd none but fools do wear it; cast it off.\n")


class Clock:
    """Wall time and this process's CPU time (on a machine shared with other work, CPU time is what an idle
    core would take: one thread, nothing to wait for)."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        return False


def timed(fn, repeats: int):
    """(median wall seconds, median CPU seconds, the last result) of `repeats` calls."""
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        with Clock() as clock:
            out = fn()
        walls.append(clock.wall)
        cpus.append(clock.cpu)
    return statistics.median(walls), statistics.median(cpus), out


def bench(name: str, repeats: int, positions: int) -> None:
    loaded = load_model(name)
    model, tok = loaded.model, loaded.tokenizer
    cap = min(128, model.context_length or 128) if model.family == "transformer" else 128
    ids = tok.encode(TEXT)[:cap]
    pieces = [tok.decode([i]) for i in ids]
    neutral = neutral_token(tok)
    occlusion_matrix(model, ids[:8], neutral)  # warm-up: first calls allocate
    wall, cpu, matrix = timed(lambda: occlusion_matrix(model, ids, neutral), repeats)
    print(f"{name:30} T={len(ids):3d}  occlusion matrix (once per text): {wall:.3f} s wall, {cpu:.3f} s CPU",
          flush=True)
    picks = sorted({max(1, round(len(ids) * (k + 1) / positions)) - 1 for k in range(positions)} - {0})
    first, igs = [], []
    for pos in picks:
        with Clock() as move:  # what the page shows at once: the row painted, p(token), the step-by-step
            attribution_html(pieces, matrix[pos, :pos], pos)
            next_distribution(model, ids, pos)
            if model.family == "transformer":
                transformer_steps(model, ids, pos - 1, 0, 0)
        first.append(move)
        if model.family != "ngram":
            with Clock() as clock:
                ig = integrated_gradients(model, ids, pos, neutral)
            igs.append((clock, ig.steps, ig.completeness_error))
    print(f"{'':30} slider move, occlusion and steps: median {statistics.median(c.wall for c in first):.3f} s wall, "
          f"{statistics.median(c.cpu for c in first):.3f} s CPU; worst {max(c.cpu for c in first):.3f} s CPU",
          flush=True)
    if igs:
        cpus = [c.cpu for c, _, _ in igs]
        errors = [e for _, _, e in igs]
        print(f"{'':30} + integrated gradients: median {statistics.median(c.wall for c, _, _ in igs):.3f} s wall, "
              f"{statistics.median(cpus):.3f} s CPU, worst {max(cpus):.3f} s CPU; {min(s for _, s, _ in igs)}-"
              f"{max(s for _, s, _ in igs)} gradient steps; completeness error median {statistics.median(errors):.1%}, "
              f"worst {max(errors):.1%}", flush=True)
    if model.family == "transformer":
        wall, cpu, _ = timed(lambda: logit_lens(model, ids), repeats)
        print(f"{'':30} logit lens (once per text): {wall:.3f} s wall, {cpu:.3f} s CPU", flush=True)
        off, what = parse_ablation(model, heads="all"), "every head"
    elif model.family == "rnn":
        off, what = parse_ablation(model, units=",".join(f"0.{u}" for u in range(8))), "8 units"
    else:
        return
    wall, cpu, _ = timed(lambda: continuation(loaded, TEXT[:60], 0, off), repeats)
    print(f"{'':30} 60-token continuation with {what} off: {wall:.3f} s wall, {cpu:.3f} s CPU", flush=True)


def bench_page(moves: int) -> None:
    from streamlit.testing.v1 import AppTest  # only for --page: Streamlit is the app's, not the library's

    for ig in (True, False):  # one process: the second page finds the first one's occlusion and models cached
        at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "views" / "explain.py"), default_timeout=600)
        at.query_params["xp_text"] = TEXT[:128]
        at.query_params["xp_ig"] = str(ig)
        with Clock() as first:
            at.run()
        assert not at.exception, at.exception
        names = at.multiselect(key="xp_models").value
        times = []
        for k in range(moves):
            with Clock() as clock:
                at.select_slider(key="xp_pos").set_value(20 + k * (100 // max(1, moves))).run()
            times.append(clock)
        print(f"page ({', '.join(names)}; integrated gradients {'on' if ig else 'off'}): first view "
              f"{first.wall:.2f} s wall; slider move median {statistics.median(c.wall for c in times):.3f} s wall, "
              f"{statistics.median(c.cpu for c in times):.3f} s CPU, worst {max(c.cpu for c in times):.3f} s CPU",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--positions", type=int, default=8, help="slider positions timed per model")
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--page", action="store_true", help="time the page too (AppTest, slider moves)")
    args = parser.parse_args()
    set_inference_threads(args.threads)
    for name in args.models:
        bench(name, args.repeats, args.positions)
    if args.page:
        bench_page(args.positions)


if __name__ == "__main__":
    main()
