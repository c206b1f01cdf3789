"""Benchmark (a script, not a test): training tokens/s of `lm.train.loop.train` against a minimal plain-PyTorch
loop, and what makes the training step faster on this CPU without hurting held-out quality.

    python bench/bench_train.py [--steps 10] [--repeats 3] [--threads 1] [--device cpu]
    python bench/bench_train.py --speedups [--compile] [--thread-counts 1,2] [--quality-steps 300]

Both sides train the same model (same config, same seeded init) on the same data (Shakespeare, char tokens)
with the same batch and optimizer: AdamW (decay on matrices only), gradient clipping at 1.0, dropout 0.1.

- "plain" is the loop anyone would write: random windows from `torch.randint`, forward, cross-entropy,
  zero_grad, backward, clip, step;
- "lm.train.loop" is the project's loop as the CLI runs it: per-step seeded batch sampling (a pure function of
  seed and step, for exact resumes), a forked and seeded RNG around the forward pass (reproducible dropout),
  the LR schedule, progress events, the stop checks.

The project's figure is timed between its own progress events (the first window, which holds PyTorch's
one-off lazy imports, left out); the plain loop is timed after 3 warm-up steps. Both wall-clock tokens/s and
tokens per CPU-second are reported: on a shared machine wall-clock figures swing with other processes' load,
while CPU time (one torch thread by default) measures the work each loop does; the ratio uses CPU time.
Runs of the two sides interleave and each figure is the median of --repeats runs.
Cases: Transformer 4 layers x 4 heads x 128, context 128, batch 32; LSTM 2 x 256 (embedding 64), context
128, batch 32. Target: the project's loop costs at most 10% over plain.

`--speedups` measures, side by side with today's loop (float32, AdamW as torch runs it by default on a CPU:
a loop over the parameters; one thread): bf16 autocast of the forward pass (`precision="bf16"` of the
project's loop), AdamW's foreach and fused CPU implementations and `torch.compile` (in the plain loop;
`--compile`: compiling takes minutes), and other thread counts
(`--thread-counts`; wall clock, on a machine shared with other work). Quality: `--quality-steps` steps of
each case trained with the project's loop in float32 and in bf16 from the same seed, plus float32 from a
second seed (how much two equally good runs differ), each scored on the first 100,000 held-out characters.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

CASES = {
    "Transformer 4x4x128, ctx 128": dict(family="transformer", layers=4, heads=4, width=128, context=128),
    "LSTM 2x256, ctx 128": dict(family="lstm", layers=2, width=256, embed=64, context=128),
}
BATCH, DROPOUT, LR, LOG_EVERY = 32, 0.1, 1e-3, 5
TODAY = "today's loop (lm.train.loop, precision=fp32)"


def plain_loop(case: dict, train_ids: torch.Tensor, vocab_size: int, steps: int, device: torch.device, *,
               fused: bool = False, foreach: bool = False, compiled: bool = False) -> tuple[float, float]:
    """Tokens/s of the textbook loop on the model `lm.train.loop` would build for `case` (`fused` / `foreach`:
    AdamW's fused kernel / multi-tensor implementation instead of torch's CPU default, a loop over the
    parameters; `compiled`: the model through torch.compile, its compilation in the warm-up steps)."""
    from lm.models import family_classes
    from lm.train.settings import TrainSettings, resolve_settings

    plan = resolve_settings(TrainSettings(name="bench", preset="small", dropout=DROPOUT, batch_size=BATCH, **case))
    config = plan.config(vocab_size)
    _, model_cls = family_classes(plan.family)
    model = model_cls(config, generator=torch.Generator().manual_seed(0)).to(device).train()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": plan.weight_decay},
                                   {"params": other, "weight_decay": 0.0}], lr=LR, betas=(0.9, 0.99),
                                  **({"fused": True} if fused else {}), **({"foreach": True} if foreach else {}))
    net = torch.compile(model) if compiled else model
    T = plan.context
    data = train_ids.to(device)
    offsets = torch.arange(T + 1, device=device)
    gen = torch.Generator().manual_seed(0)

    def step() -> torch.Tensor:
        starts = torch.randint(0, len(data) - T - 1, (BATCH, 1), generator=gen).to(device)
        batch = data[starts + offsets]
        logits = net(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return loss

    for _ in range(3):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        loss = step()
    float(loss.detach())  # wait for the last step
    tokens = steps * BATCH * T
    return tokens / (time.perf_counter() - wall0), tokens / (time.process_time() - cpu0)


def project_loop(case: dict, steps: int, device: str, out: Path, precision: str = "fp32") -> tuple[float, float]:
    """Tokens per wall second and per CPU second of `lm.train.loop.train`, between its progress events (the first
    window, with PyTorch's one-off lazy imports, left out)."""
    from lm.train.settings import TrainSettings
    from lm.train.loop import train

    marks: list[tuple[float, float]] = []

    def callback(event):
        if event.phase == "train":
            marks.append((time.perf_counter(), time.process_time()))

    settings = TrainSettings(name="bench", out=str(out / "bench"), corpus="shakespeare", preset="small",
                             dropout=DROPOUT, batch_size=BATCH, lr=LR, steps=steps + LOG_EVERY,
                             eval_every=10**9, log_every=LOG_EVERY, device=device, eval_windows=8,
                             score_chars=2000, sample_tokens=0, precision=precision,
                             **case)  # final scoring is not part of the loop: keep it short
    train(settings, callback=callback)
    tokens = steps * BATCH * settings.context
    (wall0, cpu0), (wall1, cpu1) = marks[0], marks[-1]
    return tokens / (wall1 - wall0), tokens / (cpu1 - cpu0)


def quality(case: dict, steps: int, precision: str, seed: int, out: Path) -> float:
    """Held-out bits per character (first 100,000 characters) after `steps` steps of the project's loop."""
    from lm.train.loop import train
    from lm.train.settings import TrainSettings

    settings = TrainSettings(name="quality", out=str(out / f"q-{precision}-{seed}"), corpus="shakespeare",
                             preset="small", dropout=DROPOUT, batch_size=BATCH, lr=LR, steps=steps, seed=seed,
                             eval_every=10**9, device="cpu", score_chars=100_000, sample_tokens=0,
                             precision=precision, **case)
    return train(settings).metrics["valid_bits_per_char"]


def speedups(args, train_ids: torch.Tensor, vocab_size: int, device: torch.device) -> None:
    """Each speed-up's tokens per CPU-second against today's loop, and the quality check (module docstring)."""
    with tempfile.TemporaryDirectory() as tmp:
        if not args.quality_only:
            print("| model | variant | tok/s (wall) | tok/CPU-s | vs today's loop (CPU) |\n|---|---|---:|---:|---:|")
        for label, case in CASES.items() if not args.quality_only else ():
            rows: dict[str, list] = {}
            for _ in range(args.repeats):
                rows.setdefault(TODAY, []).append(
                    project_loop(case, args.steps, str(device), Path(tmp)))
                rows.setdefault("bf16 autocast (lm.train.loop precision=bf16)", []).append(
                    project_loop(case, args.steps, str(device), Path(tmp), precision="bf16"))
                rows.setdefault("plain loop, AdamW as torch's CPU default (for-loop)", []).append(
                    plain_loop(case, train_ids, vocab_size, args.steps, device))
                rows.setdefault("plain loop, foreach AdamW", []).append(
                    plain_loop(case, train_ids, vocab_size, args.steps, device, foreach=True))
                rows.setdefault("plain loop, fused AdamW", []).append(
                    plain_loop(case, train_ids, vocab_size, args.steps, device, fused=True))
            if args.compile:
                rows["plain loop, torch.compile"] = [plain_loop(case, train_ids, vocab_size, args.steps, device,
                                                                compiled=True)]
            for threads in args.thread_counts:
                if threads != torch.get_num_threads():
                    previous = torch.get_num_threads()
                    torch.set_num_threads(threads)
                    rows[f"today's loop, {threads} threads"] = [project_loop(case, args.steps, str(device), Path(tmp))]
                    torch.set_num_threads(previous)
            base = statistics.median(x[1] for x in rows[TODAY])
            for name, runs in rows.items():
                wall, cpu = (statistics.median(x[i] for x in runs) for i in (0, 1))
                print(f"| {label} | {name} | {wall:,.0f} | {cpu:,.0f} | {cpu / base:.2f} |", flush=True)
        if args.quality_steps:
            print(f"\n| model | held-out bits/char after {args.quality_steps} steps: fp32 seed 0 | bf16 seed 0 | "
                  "fp32 seed 1 |\n|---|---:|---:|---:|")
            for label, case in CASES.items():
                scores = [quality(case, args.quality_steps, p, seed, Path(tmp))
                          for p, seed in (("fp32", 0), ("bf16", 0), ("fp32", 1))]
                print(f"| {label} | " + " | ".join(f"{v:.4f}" for v in scores) + " |", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="timed steps per run (a multiple of 5)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: CPU time then measures work, not waiting on a busy machine)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--speedups", action="store_true", help="bf16, fused AdamW, compile, threads, quality")
    parser.add_argument("--compile", action="store_true", help="with --speedups: also torch.compile (slow)")
    parser.add_argument("--thread-counts", default="1", help="with --speedups: comma-separated thread counts")
    parser.add_argument("--quality-steps", type=int, default=300, help="with --speedups: 0 skips the check")
    parser.add_argument("--quality-only", action="store_true", help="with --speedups: only the quality check")
    args = parser.parse_args()
    args.thread_counts = [int(t) for t in str(args.thread_counts).split(",") if t.strip()]
    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ.setdefault("LM_PLAYGROUND_HOME", tempfile.mkdtemp(prefix="lm-bench-home-"))
    from lm.data.corpus import load_corpus
    from lm.device import pick_device
    from lm.data.tokenizer import make_tokenizer

    device = pick_device(args.device)
    corpus = load_corpus("shakespeare")
    split = corpus.split()
    tokenizer = make_tokenizer("char", corpus.text, split.train.text)
    train_ids = torch.tensor(tokenizer.encode(split.train.text), dtype=torch.long)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"{platform.processor() or platform.machine()}, load average {os.getloadavg()[0]:.1f}\n")
    if args.speedups:
        speedups(args, train_ids, tokenizer.vocab_size, device)
        return 0

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, case in CASES.items():
            plain, ours = [], []
            for _ in range(args.repeats):
                plain.append(plain_loop(case, train_ids, tokenizer.vocab_size, args.steps, device))
                ours.append(project_loop(case, args.steps, str(device), Path(tmp)))  # fp32: as measured before
            pw, pc = (statistics.median(x[i] for x in plain) for i in (0, 1))
            ow, oc = (statistics.median(x[i] for x in ours) for i in (0, 1))
            rows.append((label, pw, ow, pc, oc))
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"{platform.processor() or platform.machine()}, load average {os.getloadavg()[0]:.1f}, batch {BATCH}, "
          f"dropout {DROPOUT}, {args.steps} timed steps x {args.repeats} repeats (median)\n")
    print("| model | plain loop tok/s (wall) | lm.train.loop tok/s (wall) | plain tok/CPU-s | lm.train.loop tok/CPU-s "
          "| lm.train.loop / plain (CPU) |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, pw, ow, pc, oc in rows:
        print(f"| {label} | {pw:,.0f} | {ow:,.0f} | {pc:,.0f} | {oc:,.0f} | {oc / pc:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
