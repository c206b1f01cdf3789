"""Benchmark (a script, not a test): training tokens/s of `lm.train.loop.train` against a minimal plain-PyTorch loop.

    python bench/bench_train.py [--steps 10] [--repeats 3] [--threads 1] [--device cpu]

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


def plain_loop(case: dict, train_ids: torch.Tensor, vocab_size: int, steps: int, device: torch.device) -> float:
    """Tokens/s of the textbook loop on the model `lm.train.loop` would build for `case`."""
    from lm.models import family_classes
    from lm.train.settings import TrainSettings, resolve_settings

    plan = resolve_settings(TrainSettings(name="bench", preset="small", dropout=DROPOUT, batch_size=BATCH, **case))
    config = plan.config(vocab_size)
    _, model_cls = family_classes(plan.family)
    model = model_cls(config, generator=torch.Generator().manual_seed(0)).to(device).train()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": plan.weight_decay},
                                   {"params": other, "weight_decay": 0.0}], lr=LR, betas=(0.9, 0.99))
    T = plan.context
    data = train_ids.to(device)
    offsets = torch.arange(T + 1, device=device)
    gen = torch.Generator().manual_seed(0)

    def step() -> torch.Tensor:
        starts = torch.randint(0, len(data) - T - 1, (BATCH, 1), generator=gen).to(device)
        batch = data[starts + offsets]
        logits = model(batch[:, :-1])
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


def project_loop(case: dict, steps: int, device: str, out: Path) -> tuple[float, float]:
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
                             score_chars=2000, **case)  # final scoring is not part of the loop: keep it short
    train(settings, callback=callback)
    tokens = steps * BATCH * settings.context
    (wall0, cpu0), (wall1, cpu1) = marks[0], marks[-1]
    return tokens / (wall1 - wall0), tokens / (cpu1 - cpu0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="timed steps per run (a multiple of 5)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: CPU time then measures work, not waiting on a busy machine)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
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

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, case in CASES.items():
            plain, ours = [], []
            for _ in range(args.repeats):
                plain.append(plain_loop(case, train_ids, tokenizer.vocab_size, args.steps, device))
                ours.append(project_loop(case, args.steps, str(device), Path(tmp)))
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
