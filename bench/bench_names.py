"""Benchmark (a script, not a test): do the names models write names in alphabetical runs?

    python bench/bench_names.py                 # 400 tokens from each names model, seed 1
    python bench/bench_names.py --samples 10    # ten 400-token samples each: ~10x the names, less noise

The names corpus was once sorted, and the models trained on it learned the order: "thena thendis thendra …".
The measure is the share of adjacent generated names (within one sample) that share their first two
letters. A model that learned names, not their order, lands near the reference: the same share for adjacent
names of the (shuffled) corpus, which is also about the chance that two names drawn at random share their
first two letters (printed too, with the sorted corpus's share for scale).

Every zoo model trained on the names corpus is measured, with the default sampling settings (temperature 1,
no top-k/top-p) and an empty prompt (the start of a new line); the same seed always gives the same text.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# A fresh user directory: the n-gram recipe is counted from the corpus as it is now, not read from a cache
# counted from an older corpus. Set before lm is imported.
os.environ["LM_PLAYGROUND_HOME"] = tempfile.mkdtemp(prefix="bench-names-")

from lm.data.corpus import load_corpus
from lm.run.generate import collect, generate
from lm.run.sampling import SamplingSettings
from lm.store.registry import list_models, load_model


def adjacent_share(names: list[list[str]]) -> tuple[float, int]:
    """(share of adjacent pairs sharing their first two letters, number of pairs), over several lists."""
    pairs = [(a, b) for row in names for a, b in zip(row, row[1:])]
    same = sum(a[:2] == b[:2] for a, b in pairs)
    return (same / len(pairs) if pairs else float("nan")), len(pairs)


def chance_share(names: list[str]) -> float:
    """The chance that two different names drawn at random share their first two letters."""
    counts, n = Counter(name[:2] for name in names), len(names)
    return sum(c * (c - 1) for c in counts.values()) / (n * (n - 1))


def generated_names(text: str) -> list[str]:
    """The complete names of a generated text: one per line, the last (cut off by the budget) dropped."""
    lines = text.split("\n")
    if not text.endswith("\n"):
        lines = lines[:-1]
    return [line for line in lines if line]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokens", type=int, default=400, help="tokens generated per sample")
    ap.add_argument("--samples", type=int, default=1, help="samples per model (pairs never span two samples)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    corpus = [d.title for d in load_corpus("names").documents]
    settings = SamplingSettings(max_new_tokens=args.tokens, seed=args.seed, samples=args.samples)
    print(f"{args.samples} sample(s) x {args.tokens} tokens per model, seed {args.seed}\n")
    print("| text | names | adjacent pairs | share sharing the first two letters |")
    print("| --- | ---: | ---: | ---: |")
    examples = {}
    for info in list_models():
        if info.source != "zoo" or info.corpus != "names":
            continue
        loaded = load_model(info.name)
        done = collect(generate(loaded.model, loaded.tokenizer, "", settings), settings.samples)
        rows = [generated_names(t) for t in done.texts]
        share, pairs = adjacent_share(rows)
        print(f"| `{info.name}` | {sum(map(len, rows))} | {pairs} | {100 * share:.1f} % |")
        examples[info.name] = " ".join(rows[0][:10])
    share, pairs = adjacent_share([corpus])
    print(f"| names corpus, shuffled (reference) | {len(corpus)} | {pairs} | {100 * share:.1f} % |")
    print(f"| two names drawn at random (chance) | – | – | {100 * chance_share(corpus):.1f} % |")
    sorted_share, _ = adjacent_share([sorted(corpus)])
    print(f"| names corpus, sorted (for scale) | {len(corpus)} | {pairs} | {100 * sorted_share:.1f} % |")
    print()
    for name, text in examples.items():
        print(f"- `{name}`: {text} …")


if __name__ == "__main__":
    try:
        main()
    finally:
        shutil.rmtree(os.environ["LM_PLAYGROUND_HOME"], ignore_errors=True)
