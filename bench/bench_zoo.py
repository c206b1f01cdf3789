"""Benchmark: size of the shipped zoo and the time to load all of it.

A script, not a test:  python bench/bench_zoo.py

Each measure runs in a fresh Python process (so nothing is already imported or cached in memory), with a
fresh user directory for the cold start:
  - cold: the first load after installation, when the n-gram recipes are counted from the corpus and cached
    (each recipe must build in <= 10 s, the foundation issue's budget);
  - warm: every later start of the app or CLI (recipes come from the cache);            target <= 5 s
  - the reference: reading the same safetensors files with `safetensors.torch.load_file` and nothing else,
    which is the floor any loader of these files pays.
The size of `assets/` is checked against its 100 MB budget.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LOAD_ALL = """
import json, time
start = time.perf_counter()
from lm.store.registry import list_models, load_model
imported = time.perf_counter()
times = {}
for info in list_models():
    if info.source == "zoo":
        t = time.perf_counter()
        load_model(info.name)
        times[info.name] = time.perf_counter() - t
print(json.dumps({"import": imported - start, "models": times, "total": time.perf_counter() - start}))
"""

READ_FILES = """
import json, sys, time
start = time.perf_counter()
from safetensors.torch import load_file
imported = time.perf_counter()
for path in sys.argv[1:]:
    load_file(path)
print(json.dumps({"import": imported - start, "total": time.perf_counter() - start}))
"""


def run(code: str, home: str, *args: str) -> dict:
    env = {**os.environ, "LM_PLAYGROUND_HOME": home, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    assets = ROOT / "assets"
    size = sum(p.stat().st_size for p in assets.rglob("*") if p.is_file())
    weights = sorted(str(p) for p in assets.rglob("model.safetensors"))
    with tempfile.TemporaryDirectory(prefix="bench-zoo-home-") as home:
        cold = run(LOAD_ALL, home)
        warm = [run(LOAD_ALL, home) for _ in range(3)]
        reference = [run(READ_FILES, home, *weights) for _ in range(3)]
    warm_best = min(warm, key=lambda r: r["total"])
    ref_best = min(reference, key=lambda r: r["total"])
    load = os.getloadavg()[0]
    print("## Zoo size and load time (`python bench/bench_zoo.py`)\n")
    print(f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, load average {load:.1f}; "
          f"Python {platform.python_version()}; each figure in a fresh process, warm = best of 3.\n")
    print("| measure | lm (this project) | reference | target | met? |")
    print("|---|---:|---:|---|---|")
    print(f"| size of assets/ | {size / 1e6:.1f} MB | – | ≤ 100 MB | {'yes' if size <= 100e6 else 'no'} |")
    print(f"| load the whole zoo, warm (import + {len(warm_best['models'])} models) | {warm_best['total']:.2f} s | "
          f"{ref_best['total']:.2f} s (`load_file` of the {len(weights)} weight files) | ≤ 5 s | "
          f"{'yes' if warm_best['total'] <= 5 else 'no'} |")
    print(f"| of which importing (lm lists models without torch; the first load imports it) | "
          f"{warm_best['import']:.2f} s | {ref_best['import']:.2f} s (safetensors + torch) | – | – |")
    slowest = max(cold["models"].values())
    print(f"| first load after install (n-gram recipes counted and cached) | {cold['total']:.2f} s | – | "
          f"each recipe ≤ 10 s (slowest {slowest:.2f} s) | {'yes' if slowest <= 10 else 'no'} |")
    print("\n| model | cold (s) | warm (s) |")
    print("|---|---:|---:|")
    for name in sorted(cold["models"]):
        print(f"| {name} | {cold['models'][name]:.2f} | {warm_best['models'][name]:.2f} |")


if __name__ == "__main__":
    main()
