"""Benchmark of the n-gram family (a script, not a test): speed against NLTK, and held-out bits per character.

    python bench/bench_ngram.py            # full Shakespeare (about 5 minutes on 2 cores, NLTK included)
    python bench/bench_ngram.py --quick    # a smaller corpus, fewer tokens (about a minute)
    python bench/bench_ngram.py --out docs/bench_ngram.md

Prints markdown tables:
1. char-level 5-gram interpolated Kneser-Ney on the Shakespeare training split: build time, scoring tokens/s
   (`target_logprobs`, log-probs and ranks, over the validation split) and sampling tokens/s at batch 1
   (a loop of `step()` + drawing a token from the softmax with a torch.Generator);
2. the same model against `nltk.lm.KneserNeyInterpolated(order=5)` on the same first 500k characters of the
   training text, in the same run (NLTK scores only a few hundred tokens: it is slow);
3. held-out bits per character for orders 1..7 x every smoothing, all from ONE build at order 7;
4. when KenLM's Python module is installed (`MAX_ORDER=7 pip install --no-binary kenlm kenlm`): the order-5
   and order-7 Kneser-Ney views exported as ARPA files (`lm.store.arpa`) and scored by KenLM on the same
   validation text in the same run: tokens/s of `full_scores` and `score` against `logprob_of_targets` and
   `lm.run.metrics.score` (also with every rank read), the size and load time of our checkpoint (and of
   KenLM's probing binary when `build_binary` is on the PATH), both bits per character (they must agree),
   and the same rates side by side as ratios, NLTK's included.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from lm.data.corpus import load_corpus
from lm.run.generate import generate
from lm.models.ngram.model import SMOOTHINGS, NgramModel
from lm.models.ngram.storage import format1_tensors
from lm.run.sampling import MAX_NEW_TOKENS, SamplingSettings, as_rows, draw_one
from lm.data.tokenizer import Tokenizer


def best_of(repeats: int, fn):
    """(fastest seconds, last result) of `repeats` calls (the machine is shared: the minimum is the signal)."""
    best, result = math.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def sampling_rate(model: NgramModel, n: int, first: int, method: str, seed: int = 0) -> tuple[float, list[int]]:
    """(tokens/s, the tokens) of generating `n` tokens at batch 1: step() then draw from softmax(logits)."""
    g = torch.Generator().manual_seed(seed)
    V = model.vocab_size
    state, token = model.start(1), torch.tensor([first])
    drawn = []
    start = time.perf_counter()
    for _ in range(n):
        logits, state = model.step(token, state)
        probs = torch.softmax(logits, dim=-1)
        if method == "lm":  # the project's own draw, as `generate` makes it when no knob is set
            u = float(torch.rand(1, generator=g, dtype=torch.float64))
            token = torch.tensor([draw_one(as_rows(logits)[0], u)[0]])
        elif method == "multinomial":
            token = torch.multinomial(probs, 1, generator=g)[:, 0]
        else:  # inverse CDF: one uniform draw and a binary search (torch.multinomial alone costs ~25 us)
            u = torch.rand(1, 1, generator=g)
            token = torch.searchsorted(probs.cumsum(-1), u).clamp_(max=V - 1)[:, 0]
        drawn.append(token)
    return n / (time.perf_counter() - start), drawn


def generate_rate(model: NgramModel, tokenizer, n: int) -> float:
    """Tokens/s of the full `lm.run.generate.generate` loop (ranks, top alternatives, streaming text)."""
    settings = SamplingSettings(max_new_tokens=min(n, MAX_NEW_TOKENS), seed=0)
    start = time.perf_counter()
    count = sum(1 for _ in generate(model, tokenizer, "ROMEO:", settings))
    return count / (time.perf_counter() - start)


def step_rate(model: NgramModel, tokens: list[torch.Tensor], first: int) -> float:
    """Tokens/s of step() alone, replaying already drawn tokens (the model's share of sampling)."""
    state, token = model.start(1), torch.tensor([first])
    start = time.perf_counter()
    for nxt in tokens:
        _, state = model.step(token, state)
        token = nxt
    return len(tokens) / (time.perf_counter() - start)


def bits_per_token(model: NgramModel, x: torch.Tensor) -> float:
    lp = model.logprob_of_targets(x)
    return float(-lp.sum() / lp.numel() / math.log(2))


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def fmt_rate(v: float) -> str:
    return f"{v:,.0f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller corpus and fewer tokens")
    ap.add_argument("--out", help="also write the markdown to this file")
    ap.add_argument("--no-nltk", action="store_true", help="skip the NLTK comparison")
    ap.add_argument("--no-kenlm", action="store_true", help="skip the KenLM comparison")
    args = ap.parse_args()
    out: list[str] = []

    def emit(text: str = "") -> None:
        print(text, flush=True)
        out.append(text)

    max_chars = 1_000_000 if args.quick else None
    nltk_chars = 100_000 if args.quick else 500_000
    nltk_score = 100 if args.quick else 300
    n_sample = 10_000 if args.quick else 50_000
    repeats = 1 if args.quick else 3

    corpus = load_corpus("shakespeare", max_chars=max_chars)
    split = corpus.split()
    tok = Tokenizer.char(split.train.text)
    V = tok.vocab_size
    docs = [tok.encode_array(d.text) for d in split.train.documents]
    valid = torch.from_numpy(tok.encode_array(split.valid.text)).long()[None]
    train_tokens = int(sum(d.size for d in docs))
    first = tok.encode("\n")[0]

    emit(f"## N-gram benchmark{' (--quick)' if args.quick else ''}")
    emit()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    emit(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores "
         f"(load average {load:.1f} at start, shared with other work), Python {platform.python_version()}, "
         f"numpy {np.__version__}, torch {torch.__version__}. Timings are the best of {repeats} run(s).")
    emit()
    emit(f"Corpus: Shakespeare, character tokenizer (V = {V}); training split {train_tokens:,} characters in "
         f"{len(docs)} documents (plays; n-grams never cross two), validation split {valid.shape[1]:,} characters.")
    emit()

    # -- 1. our 5-gram on the full training split ---------------------------------------------------------
    build_s, model = best_of(repeats, lambda: NgramModel.build(None, V, 5, "kneser_ney", documents=docs))
    score_s, (lp, _) = best_of(repeats, lambda: model.target_logprobs(valid))
    fast_s, _ = best_of(repeats, lambda: model.logprob_of_targets(valid))
    n_scored = valid.shape[1] - 1
    bpc = float(-lp.double().sum() / n_scored / math.log(2))
    view = model.with_settings()  # a fresh view has empty caches
    cold, drawn = sampling_rate(view, n_sample, first, "cdf")
    warm = max(sampling_rate(view, n_sample, first, "cdf")[0] for _ in range(repeats))  # same seed: cached
    step_cold = step_rate(model.with_settings(), drawn, first)
    step_warm = max(step_rate(view, drawn, first) for _ in range(repeats))
    # cold-cache figures: each repeat gets a fresh view (empty caches); the best of the repeats is kept,
    # since on a shared machine the slowest runs measure the neighbours, not the code
    multi = max(sampling_rate(model.with_settings(), n_sample, first, "multinomial")[0] for _ in range(repeats))
    ours = max(sampling_rate(model.with_settings(), n_sample, first, "lm")[0] for _ in range(repeats))
    full = max(generate_rate(model.with_settings(), tok, n_sample) for _ in range(repeats))
    emit("### Char-level 5-gram interpolated Kneser-Ney (full training split)")
    emit()
    emit(table(["measure", "value"], [
        ["build (count orders 1-5, derive statistics)", f"{build_s:.2f} s ({train_tokens / build_s:,.0f} chars/s)"],
        ["stored n-gram entries", f"{model.num_parameters():,}"],
        ["scoring, `target_logprobs` (log-prob + rank)", f"{fmt_rate(n_scored / score_s)} tokens/s"],
        ["scoring, `logprob_of_targets` (log-prob only)", f"{fmt_rate(n_scored / fast_s)} tokens/s"],
        ["sampling, batch 1, cold caches (step + inverse-CDF draw)", f"{fmt_rate(cold)} tokens/s"],
        ["sampling, batch 1, warm caches (same run again)", f"{fmt_rate(warm)} tokens/s"],
        ["sampling, batch 1, cold caches (step + torch.multinomial)", f"{fmt_rate(multi)} tokens/s"],
        ["sampling, batch 1, cold caches (step + `lm.run.sampling.draw_one`)", f"{fmt_rate(ours)} tokens/s"],
        ["full `lm.run.generate.generate` loop (with ranks, alternatives, text)", f"{fmt_rate(full)} tokens/s"],
        ["`step()` alone on the sampled tokens, cold caches", f"{fmt_rate(step_cold)} tokens/s"],
        ["`step()` alone on the sampled tokens, warm caches", f"{fmt_rate(step_warm)} tokens/s"],
        ["held-out bits per character (validation split)", f"{bpc:.4f}"],
    ]))
    emit()

    # -- 2. against NLTK on the same 500k characters -------------------------------------------------------
    nltk_rate = None
    if not args.no_nltk:
        from nltk.lm import KneserNeyInterpolated
        from nltk.lm.preprocessing import padded_everygram_pipeline

        text = split.train.text[:nltk_chars]
        ids = tok.encode_array(text)
        ours_build, ours = best_of(repeats, lambda: NgramModel.build(ids, V, 5, "kneser_ney"))
        ours_score, _ = best_of(repeats, lambda: ours.target_logprobs(valid))
        ours_rate = n_scored / ours_score

        def nltk_build():
            grams, vocab = padded_everygram_pipeline(5, [list(text)])
            lm = KneserNeyInterpolated(order=5)
            lm.fit(grams, vocab)
            return lm

        start = time.perf_counter()
        nltk_lm = nltk_build()
        nltk_build_s = time.perf_counter() - start
        vtext = split.valid.text
        positions = range(4, 4 + nltk_score)
        start = time.perf_counter()
        nltk_lp = [nltk_lm.logscore(vtext[i], list(vtext[i - 4:i])) for i in positions]
        nltk_rate = nltk_score / (time.perf_counter() - start)
        ours_lp = ours.logprob_of_targets(valid[:, :4 + nltk_score])[0, 3:].double() / math.log(2)
        nltk_bits = -float(np.mean(nltk_lp))
        ours_bits = -float(ours_lp.mean())
        emit(f"### Against NLTK: char 5-gram Kneser-Ney on the first {len(text):,} training characters")
        emit()
        emit(table(["measure", "lm (this repo)", "nltk.lm.KneserNeyInterpolated(5)", "ratio (ours / nltk)"], [
            ["build", f"{ours_build:.3f} s", f"{nltk_build_s:.1f} s", (f"{ours_build / nltk_build_s:.4f}x time "
                                                                          f"({nltk_build_s / ours_build:,.0f}x faster)")],
            ["scoring", f"{fmt_rate(ours_rate)} tokens/s", f"{fmt_rate(nltk_rate)} tokens/s",
             f"{ours_rate / nltk_rate:,.0f}x"],
            [f"bits/char on the {nltk_score} tokens NLTK scored", f"{ours_bits:.3f}", f"{nltk_bits:.3f}", "-"],
        ]))
        emit()
        emit("Ours is interpolated *modified* Kneser-Ney (three discounts per order from count-of-counts, "
             "no sentence padding); NLTK's is single-discount (0.1) Kneser-Ney over padded text, so the "
             "bits/char differ (lower is better). Ours scores the whole validation split (log-prob and "
             f"rank of every token); NLTK scores {nltk_score} tokens one `logscore` call at a time.")
        emit()

    # -- 3. held-out bits per character, one build at order 7 ---------------------------------------------
    build7_s, big = best_of(1, lambda: NgramModel.build(None, V, 7, "kneser_ney", documents=docs))
    emit(f"### Held-out bits per character (validation split), orders 1-7 from one order-7 build "
         f"({build7_s:.2f} s, {big.num_parameters():,} entries)")
    emit()
    header = ["order"] + [s if s != "stupid_backoff" else "stupid_backoff (renormalised)" for s in SMOOTHINGS]
    rows = []
    eval_start = time.perf_counter()
    zero_share = {}
    for order in range(1, 8):
        row = [str(order)]
        for smoothing in SMOOTHINGS:
            view = big.with_settings(order=order, smoothing=smoothing)
            bits = bits_per_token(view, valid)
            if smoothing == "mle" and not math.isfinite(bits):
                lp = view.logprob_of_targets(valid)
                zero_share[order] = float(torch.isinf(lp).double().mean())
                row.append(f"inf ({zero_share[order]:.1%} zeros)")
            else:
                row.append(f"{bits:.3f}")
        rows.append(row)
    emit(table(header, rows))
    emit()
    emit(f"All 28 evaluations of {n_scored:,} tokens took {time.perf_counter() - eval_start:.1f} s. "
         f"MLE gives probability 0 to a character never seen after the longest seen context, so its "
         f"held-out bits are infinite from the order where that happens; add-k uses k = {big.config.k} at "
         f"the longest seen context; stupid back-off (alpha = {big.config.backoff_alpha}) scores are "
         f"renormalised per position before taking logs (they are not probabilities).")
    emit()
    if not args.no_kenlm:
        kenlm_section(big, tok, split.valid.text, repeats, emit, nltk_rate)
    if args.out:
        Path(args.out).write_text("\n".join(out) + "\n", encoding="utf-8")


def checkpoint_figures(view: NgramModel, folder: Path) -> tuple[float, float, float]:
    """(compact checkpoint MB, format-1 MB, seconds to load the compact one) of a view's model.safetensors."""
    compact, old = folder / "compact.safetensors", folder / "format1.safetensors"
    save_file(view.state_tensors(), str(compact))
    tensors = format1_tensors(view._t.primary, view.config.order)  # noqa: SLF001 - the counted tables
    save_file(tensors, str(old))
    start = time.perf_counter()
    NgramModel.from_state(view.config, load_file(str(compact)))
    load_s = time.perf_counter() - start
    return compact.stat().st_size / 1e6, old.stat().st_size / 1e6, load_s


def kenlm_section(big: NgramModel, tok, valid_text: str, repeats: int, emit, nltk_rate: float | None) -> None:
    """Section 4: the same Kneser-Ney models in KenLM (skipped, with a line saying so, without the module)."""
    try:
        import kenlm
    except ImportError:
        emit("### Against KenLM: skipped (KenLM's Python module is not installed)")
        return
    import shutil
    import subprocess
    import tempfile

    from lm.run.metrics import score
    from lm.store.arpa import export_arpa, token_words

    words, _ = token_words(tok)
    ids = tok.encode_array(valid_text)
    sentence = " ".join(words[i] for i in ids.tolist())
    x = torch.from_numpy(ids)[None]
    n = ids.size - 1  # KenLM also scores the first character (after <s>); the rates count the same n tokens
    rows, side = [], []
    build_binary = shutil.which("build_binary")
    with tempfile.TemporaryDirectory() as tmp:
        for order in (5, 7):
            view = big.with_settings(order=order)
            path = Path(tmp) / f"{order}.arpa"
            export_s, _ = best_of(1, lambda: export_arpa(view, tok, path))
            load_s, model = best_of(1, lambda: kenlm.Model(str(path)))
            probing = "not measured (no `build_binary`)"
            if build_binary:
                binary = Path(tmp) / f"{order}.probing"
                subprocess.run([build_binary, "probing", str(path), str(binary)], check=True, capture_output=True)
                probing = f"{binary.stat().st_size / 1e6:.1f} MB"
            compact_mb, old_mb, ckpt_load_s = checkpoint_figures(view, Path(tmp))
            view.logprob_of_targets(x[:, :1000])  # first use builds the hash indexes
            ours_s, lp = best_of(repeats, lambda: view.logprob_of_targets(x))
            metrics_s, _ = best_of(repeats, lambda: score(view, tok, valid_text))
            ranked_s, _ = best_of(repeats, lambda: sum(t.rank for t in score(view, tok, valid_text).tokens))
            full_s, total = best_of(repeats, lambda: sum(s[0] for s in model.full_scores(sentence, eos=False)))
            quick_s, _ = best_of(repeats, lambda: model.score(sentence, eos=False))
            ours_bits = float(-lp.sum() / math.log(2) / n)
            kenlm_bits = float(-(total - next(model.full_scores(sentence, eos=False))[0]) * math.log2(10) / n)
            rows.append([str(order), f"{export_s:.1f} s / {path.stat().st_size / 2**20:.0f} MB / {load_s:.1f} s",
                         fmt_rate(n / ours_s), fmt_rate(n / metrics_s), fmt_rate(n / ranked_s),
                         fmt_rate(n / full_s), fmt_rate(n / quick_s),
                         f"{compact_mb:.1f} MB (format 1: {old_mb:.1f} MB), loads in {ckpt_load_s:.2f} s", probing,
                         f"{ours_bits:.4f} / {kenlm_bits:.4f}"])
            nltk = f"{n / ours_s / nltk_rate:,.0f}x" if (nltk_rate and order == 5) else "–"
            side.append([str(order), f"{full_s / ours_s:.2f}x", f"{full_s / metrics_s:.2f}x",
                         f"{full_s / ranked_s:.2f}x", f"{full_s / quick_s:.2f}x", nltk])
    emit("### Against KenLM: the same Kneser-Ney models, exported as ARPA and scored by KenLM's Python module")
    emit()
    emit(table(["order", "export / ARPA size / KenLM load", "`logprob_of_targets` tokens/s",
                "`lm.run.metrics.score` tokens/s", "`score` + every rank read, tokens/s",
                "KenLM `full_scores` tokens/s", "KenLM `score` tokens/s", "our checkpoint (model.safetensors)",
                "KenLM probing binary", "bits/char ours / KenLM"], rows))
    emit()
    emit("Side by side, as ratios (higher = the project is faster; NLTK: order 5 only, from the NLTK section's "
         "`logscore` rate):")
    emit()
    emit(table(["order", "`logprob_of_targets` / KenLM `full_scores`", "`metrics.score` / `full_scores`",
                "`score` + ranks / `full_scores`", "KenLM `score` / `full_scores`",
                "`logprob_of_targets` / NLTK"], side))
    emit()
    emit(f"Both score the {n:,} validation characters after the first; KenLM starts the text with <s>, which "
         "is how the export spells the start of a text. `lm.run.metrics.score` returns every token's log-prob "
         "and rank; for an n-gram model the ranks (which need every next-token distribution, KenLM has none) "
         "are computed when first read, which the `score` + ranks column times. The checkpoint is the compact "
         "format (the n-gram tables only, narrow integer types); format 1 is what checkpoints held before.")


if __name__ == "__main__":
    main()
