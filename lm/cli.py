"""`python -m lm`: the command line over the same library the app uses.

Every command has `--help` and `--json`; bad input ends with one line on stderr (`error: ...`) and exit
status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from lm.data.corpus import read_text_file
from lm.data.tokenizer import DEFAULT_VOCAB, TOKENIZER_KINDS
from lm.errors import LMError
from lm.models import EXPORT_FORMATS, FAMILIES, family_spec
from lm.store.registry import delete_model, list_models, load_model
from lm.train.budget import memory_budget
from lm.train.knobs import GROUPS, KNOBS, Knob, parse_batch, settings_from  # the train options, torch-free
from lm.train.settings import SMOOTHING_CHOICES, TrainSettings  # torch-free: listing models stays quick

MODEL_HELP = "registry name, checkpoint directory, or a GPT-2 on the Hugging Face Hub (hf:NAME, OWNER/NAME)"


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the usage text stays behind --help)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {self.prog}: {' '.join(message.split())}\n")  # one line, like LMError's


def _emit(args: argparse.Namespace, data, text: str) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2) if args.json else text)


def _fmt(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


# -- models ---------------------------------------------------------------------------------------------
def cmd_models(args: argparse.Namespace) -> int:
    models = list_models()
    rows = [f"{'name':34} {'source':6} {'family':11} {'variant':11} {'tok':4} {'params':>10} {'bpc':>6}"]
    for m in models:
        rows.append(f"{m.name:34} {m.source:6} {m.family:11} {m.variant:11} {m.tokenizer:4} "
                    f"{_fmt(m.parameters):>10} {_fmt(m.valid_bits_per_char):>6}")
    _emit(args, [m.to_json() for m in models], "\n".join(rows) if models else "no models found")
    return 0


# -- generate -------------------------------------------------------------------------------------------
def _settings(args: argparse.Namespace):
    from lm.run.sampling import SamplingSettings  # torch: only commands that run a model

    return SamplingSettings(
        temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, min_p=args.min_p,
        repetition_penalty=args.repetition_penalty, max_new_tokens=args.max_new_tokens, seed=args.seed,
        samples=args.samples, stop=tuple(args.stop or ()), valid_utf8=not args.no_valid_utf8,
    )


def _load(args: argparse.Namespace):
    """The model of -m, on --device, with --threads (else $LM_THREADS) CPU threads for inference."""
    from lm.device import set_inference_threads  # torch: as above

    set_inference_threads(args.threads)
    return load_model(args.model, device=args.device)


def cmd_generate(args: argparse.Namespace) -> int:
    from lm.run.generate import collect, encode_prompt, generate  # torch: as above
    settings = _settings(args)  # validate the knobs before the (slower) model load
    loaded = _load(args)
    encoded = encode_prompt(loaded.tokenizer, args.prompt)
    if encoded.replaced:
        print(f"note: {loaded.name} does not know {''.join(encoded.replaced)!r}; replaced with <unk>", file=sys.stderr)
    stream = not args.json and settings.samples == 1
    if stream:
        print(args.prompt, end="", flush=True)
    done = collect(generate(loaded.model, loaded.tokenizer, args.prompt, settings), settings.samples,
                   on_token=(lambda tok, _: print(tok.text, end="", flush=True)) if stream else None)
    if stream:
        print()
    elif args.json:
        samples = [{"text": text, "tokens": [{"id": t.token_id, "piece": t.piece, "prob": t.prob, "rank": t.rank}
                                             for t in row]} for text, row in zip(done.texts, done.tokens)]
        print(json.dumps({"model": loaded.name, "prompt": args.prompt, "settings": settings.to_query(),
                          "samples": samples}, ensure_ascii=False, indent=2))
    else:
        for i, text in enumerate(done.texts):
            print(f"--- sample {i + 1} ---\n{args.prompt}{text}")
    return 0


# -- score ----------------------------------------------------------------------------------------------
def _read_text_arg(args: argparse.Namespace) -> str:
    if args.text is not None:
        return args.text
    return read_text_file(Path(args.file))


def cmd_score(args: argparse.Namespace) -> int:
    from lm.run.metrics import score  # torch: as above

    text = _read_text_arg(args)
    loaded = _load(args)
    result = score(loaded.model, loaded.tokenizer, text)
    lines = [f"{'token':>12} {'logprob':>9} {'rank':>6}"]
    lines += [f"{t.piece!r:>12} {t.logprob:9.3f} {t.rank:6d}" for t in result.tokens]
    lines.append(f"tokens {len(result.tokens)}  characters {result.characters}  total nats {result.total_nats:.2f}  "
                 f"perplexity {result.perplexity:.3f}  bits per char {result.bits_per_char:.4f}")
    if result.replaced:
        lines.append(f"note: replaced unknown characters {''.join(result.replaced)!r} with <unk>")
    _emit(args, {"model": loaded.name, **result.to_json()}, "\n".join(lines))
    return 0


# -- build an n-gram model ------------------------------------------------------------------------------
def cmd_ngram(args: argparse.Namespace) -> int:
    from lm.train.loop import train  # torch: as above

    settings = TrainSettings(family="ngram", corpus=args.corpus, tokenizer=args.tokenizer, vocab_size=args.vocab_size,
                             order=args.order, smoothing=args.smoothing, name=args.name, out=args.out,
                             test_every=0)  # counted as a zoo recipe is (train/valid only): its command reproduces it
    result = train(settings, memory_budget=memory_budget(share=0.8, cap=None))
    name, destination, meta = result.name, result.path, result.meta
    summary = {"name": name, "path": str(destination), **meta["metrics"], "seconds": meta["training"]["seconds"]}
    _emit(args, summary, f"saved {name} to {destination}: held-out {meta['metrics']['valid_bits_per_char']:.3f} "
                         f"bits/char, built in {meta['training']['seconds']:.1f} s")
    return 0


# -- delete a user model -------------------------------------------------------------------------------
def cmd_delete(args: argparse.Namespace) -> int:
    path = delete_model(args.name)
    _emit(args, {"deleted": args.name, "path": str(path)}, f"deleted {args.name} ({path})")
    return 0


# -- train ----------------------------------------------------------------------------------------------
def _progress_printer():
    """A train() callback drawing one progress line on stderr (redrawn in place on a terminal)."""
    import time as _time

    tty = sys.stderr.isatty()
    state = {"last_line": 0.0, "drawn": False}

    def clock(seconds: float) -> str:
        seconds = int(seconds)
        return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"

    def callback(event) -> None:
        if event.sample is not None:  # what the model writes now, one line per evaluation
            if state["drawn"] and tty:
                print(file=sys.stderr)
                state["drawn"] = False
            print(f"sample at step {event.step}: {event.sample[:100]!r}", file=sys.stderr, flush=True)
        if event.phase in ("setup", "save", "done") or (event.phase == "eval" and event.message.startswith("scoring")):
            if state["drawn"] and tty:
                print(file=sys.stderr)
                state["drawn"] = False
            if event.phase != "done":
                print(f"{event.phase}: {event.message}", file=sys.stderr, flush=True)
            return
        total = f"/{event.total}" if event.total else ""
        pct = f" {100 * event.step / event.total:3.0f}%" if event.total else ""
        parts = [f"step {event.step}{total}{pct}"]
        if event.train_loss is not None:
            parts.append(f"train {event.train_loss:.4f}")
        if event.valid_loss is not None:
            bpc = f" ({event.valid_bits_per_char:.3f} bits/char)" if event.valid_bits_per_char is not None else ""
            parts.append(f"valid {event.valid_loss:.4f}{bpc}")
        parts.append(f"lr {event.lr:.2e}")
        if event.tokens_per_second:
            parts.append(f"{event.tokens_per_second / 1000:.1f}k tok/s")
        parts.append(clock(event.elapsed))
        if event.total and event.step and event.phase == "train":
            remaining = event.elapsed / event.step * (event.total - event.step)
            parts.append(f"ETA {clock(remaining)}")
        line = "  ".join(parts)
        now = _time.monotonic()
        if tty:
            print("\r" + line.ljust(100), end="", file=sys.stderr, flush=True)
            state["drawn"] = True
        elif event.phase == "eval" or now - state["last_line"] >= 30:  # a log file: a line per eval / 30 s
            print(line, file=sys.stderr, flush=True)
            state["last_line"] = now

    return callback


def _add_knob(group, knob: Knob) -> None:
    """One `train` option from its entry in lm.train.knobs.KNOBS (unset: None, so the default applies)."""
    if knob.kind == "bool":
        group.add_argument(knob.flag, action="store_true", dest=knob.name, default=None, help=knob.help)
        return
    kinds = {"int": {"type": int}, "float": {"type": float}, "str": {}, "choice": {"choices": knob.choices},
             "batch": {"type": parse_batch, "metavar": "N|full"}}
    group.add_argument(knob.flag, dest=knob.name, required=knob.name == "name", help=knob.help, **kinds[knob.kind])


def cmd_train(args: argparse.Namespace) -> int:
    import dataclasses
    import signal
    import threading

    from lm.train.loop import train  # torch: as above
    from lm.train.scoring import adaptation_lines  # torch: as above

    stop = threading.Event()
    values = {knob.name: getattr(args, knob.name) for knob in KNOBS}
    if not values["family"] and not values["init_from"]:
        raise LMError("train needs --family (or --init-from MODEL to fine-tune a model)")
    settings = dataclasses.replace(settings_from(values), should_stop=stop)

    def on_signal(signum, frame):  # first Ctrl-C / SIGTERM: stop cleanly and save; a second one: abort
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("\nstopping: saving the model and the resume state (again to abort)", file=sys.stderr, flush=True)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
    try:
        result = train(settings, callback=None if args.quiet else _progress_printer(),
                       memory_budget=memory_budget(share=0.8, cap=None))  # never the whole machine
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if result.path is None:  # not the main rank of a data-parallel run, or stopped before the first step
        return 0 if not result.stopped else 130
    metrics = result.metrics
    summary = {"name": result.name, "path": str(result.path), "steps": result.steps,
               "seconds": round(result.seconds, 2), "stopped": result.stopped, **metrics}
    state = "stopped early (continue with --resume)" if result.stopped else "done"
    test = f" (test split {metrics['test_bits_per_char']:.3f})" if "test_bits_per_char" in metrics else ""
    adapted = "".join(f"\n{line}" for line in adaptation_lines(metrics.get("adaptation") or {}))
    _emit(args, summary, f"saved {result.name} to {result.path} ({state}): held-out "
                         f"{metrics.get('valid_bits_per_char', float('nan')):.3f} bits/char{test} after {result.steps} "
                         f"steps in {result.seconds:.1f} s{adapted}")
    return 130 if result.stopped else 0


# -- inspect --------------------------------------------------------------------------------------------
def cmd_inspect(args: argparse.Namespace) -> int:
    from lm.inspect import inspect_text  # torch: as above

    text = _read_text_arg(args)
    loaded = _load(args)
    found = inspect_text(loaded, text, max_tokens=args.max_tokens)
    trace = found.trace
    data = {"model": loaded.name, "family": loaded.family, "tokens": found.tokens, "ids": found.ids,
            "truncated": found.truncated, "note": found.note, "trace": trace.to_json()}
    if trace.kind == "attention":
        layers, heads, t, _ = trace.attention.shape
        summary = f"attention: {layers} layers x {heads} heads x {t} x {t} (query x key)"
    elif trace.kind == "recurrent":
        shapes = ", ".join(f"{name} {list(v.shape)}" for name, v in trace.states.items())
        summary = f"{trace.cell} states [layers, T, units]: {shapes}"
    else:
        summary = f"{trace.smoothing} {trace.order}-gram back-off rows for {len(trace.rows)} positions"
        summary += "".join(f"\n  {note}" for note in trace.notes[:10])
    tokens = " ".join(repr(t) for t in found.tokens[:40]) + (" ..." if len(found.tokens) > 40 else "")
    _emit(args, data, f"{loaded.name}: {len(found.tokens)} tokens\n{tokens}\n{summary}"
                      + (f"\nnote: {found.note}" if found.note else "")
                      + "\n(use --json for the arrays)")
    return 0


# -- explain --------------------------------------------------------------------------------------------
def cmd_explain(args: argparse.Namespace) -> int:
    from lm.inspect.ablation import parse_ablation  # torch: as above
    from lm.inspect.explain import explain  # torch: as above

    loaded = _load(args)
    ablation = parse_ablation(loaded.model, heads=args.ablate_heads, units=args.ablate_units)
    result = explain(loaded, args.text, position=args.position, ablation=ablation)
    _emit(args, result.to_json(), result.describe())
    return 0


# -- export ---------------------------------------------------------------------------------------------
def cmd_export(args: argparse.Namespace) -> int:
    from lm.models.gpt2 import export_gpt2  # torch: as above
    from lm.store.arpa import export_arpa  # only this command writes files for other tools

    loaded = load_model(args.model)
    model, out = loaded.model, Path(args.out).expanduser()
    spec = family_spec(loaded.family)
    if args.format not in spec.exports:
        owners = " and ".join(s.label for s in FAMILIES.values() if args.format in s.exports)
        raise LMError(f"{loaded.name} is a {spec.label} model: --format {args.format} exports only {owners} models")
    if args.format == "arpa":
        if args.order is not None or args.smoothing is not None:
            if loaded.family != "ngram":
                raise LMError(f"--order and --smoothing are n-gram settings; {loaded.name} is a {loaded.family}")
            model = model.with_settings(order=args.order, smoothing=args.smoothing)
        counts = export_arpa(model, loaded.tokenizer, out)
        summary = {"model": loaded.name, "format": "arpa", "path": str(out), "order": len(counts),
                   "smoothing": model.config.smoothing, "ngrams": counts}
        text = (f"wrote {out}: order-{len(counts)} ARPA back-off model ({model.config.smoothing}), "
                f"{sum(counts):,} n-grams")
    else:  # a GPT2LMHeadModel directory that `transformers` loads (and so does -m DIR)
        export_gpt2(model, out)
        loaded.tokenizer.save(out / "tokenizer.json")
        (out / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "PreTrainedTokenizerFast"}),
                                                   encoding="utf-8")
        summary = {"model": loaded.name, "format": "hf", "path": str(out),
                   "files": sorted(p.name for p in out.iterdir())}
        text = f"wrote {out}: a Hugging Face GPT2LMHeadModel directory ({', '.join(summary['files'])})"
    _emit(args, summary, text)
    return 0

def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m lm", description="LM Playground: small language models from the command line.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    def command(name: str, func, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", help="print machine-readable JSON")
        p.set_defaults(func=func)
        return p

    command("models", cmd_models, "list the shipped and your own models")

    p = command("generate", cmd_generate, "continue a prompt")
    p.add_argument("-m", "--model", required=True, help=MODEL_HELP)
    p.add_argument("-p", "--prompt", default="", help="text to continue (empty: start of a line)")
    p.add_argument("-n", "--max-new-tokens", type=int, default=200, dest="max_new_tokens")
    p.add_argument("--temperature", type=float, default=1.0, help="0 = greedy")
    p.add_argument("--top-k", type=int, default=0, dest="top_k", help="0 = off")
    p.add_argument("--top-p", type=float, default=1.0, dest="top_p", help="1 = off")
    p.add_argument("--min-p", type=float, default=0.0, dest="min_p", help="0 = off")
    p.add_argument("--repetition-penalty", type=float, default=1.0, dest="repetition_penalty", help="1 = off")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--samples", type=int, default=1)
    p.add_argument("--stop", action="append", help="stop when this text appears (repeatable)")
    p.add_argument("--no-valid-utf8", action="store_true", dest="no_valid_utf8",
                   help="byte-level models: also draw tokens that cannot continue valid UTF-8 (bytes that form "
                        "no character are printed as <0xNN>)")
    p.add_argument("--device", default="auto", help="auto (CUDA, then Apple MPS, else CPU), cpu, cuda, cuda:N or mps")
    p.add_argument("--threads", type=int, help="CPU threads for inference (default: $LM_THREADS, else torch's)")

    p = command("score", cmd_score, "per-token log-probabilities, ranks and bits per character of a text")
    p.add_argument("-m", "--model", required=True, help=MODEL_HELP)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--text")
    source.add_argument("--file", help="a UTF-8 text file")
    p.add_argument("--device", default="auto", help="auto (CUDA, then Apple MPS, else CPU), cpu, cuda, cuda:N or mps")
    p.add_argument("--threads", type=int, help="CPU threads for inference (default: $LM_THREADS, else torch's)")

    p = command("inspect", cmd_inspect, "tokens and internals: attention, gates and states, or n-gram back-off")
    p.add_argument("-m", "--model", required=True, help=MODEL_HELP)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--text")
    source.add_argument("--file", help="a UTF-8 text file")
    p.add_argument("--max-tokens", type=int, default=None, dest="max_tokens", help="trace at most this many tokens")
    p.add_argument("--device", default="auto", help="auto (CUDA, then Apple MPS, else CPU), cpu, cuda, cuda:N or mps")
    p.add_argument("--threads", type=int, help="CPU threads for inference (default: $LM_THREADS, else torch's)")

    p = command("explain", cmd_explain, "why a model gave a token its probability: attribution to every earlier "
                                        "token, ablation of heads or units, the logit lens")
    p.add_argument("-m", "--model", required=True, help=MODEL_HELP)
    p.add_argument("--text", required=True)
    p.add_argument("--position", type=int, help="index of the token to explain (default: the last)")
    p.add_argument("--ablate-heads", dest="ablate_heads", metavar="L.H,...|all",
                   help="Transformer heads to switch off (L.attn, L.mlp: a whole layer's attention or MLP)")
    p.add_argument("--ablate-units", dest="ablate_units", metavar="L.U,...", help="RNN units to switch off")
    p.add_argument("--device", default="auto", help="auto (CUDA, then Apple MPS, else CPU), cpu, cuda, cuda:N or mps")
    p.add_argument("--threads", type=int, help="CPU threads for inference (default: $LM_THREADS, else torch's)")

    p = command("ngram", cmd_ngram, "count an n-gram model from a corpus and save it")
    p.add_argument("--corpus", default="shakespeare", help="shakespeare, names, python, or a text file")
    p.add_argument("--tokenizer", choices=TOKENIZER_KINDS, default="char")
    p.add_argument("--vocab-size", type=int, default=None, dest="vocab_size",
                   help=f"BPE vocabulary size ({DEFAULT_VOCAB['bpe']}) or word vocabulary cap "
                        f"({DEFAULT_VOCAB['word']})")
    p.add_argument("--order", type=int, default=5)
    p.add_argument("--smoothing", choices=SMOOTHING_CHOICES, default="kneser_ney")
    p.add_argument("--name", required=True, help="name in your model directory")
    p.add_argument("--out", help="save to this directory instead")

    p = command("export", cmd_export, "write a model for other tools: an n-gram as an ARPA back-off file (KenLM, "
                "SRILM), a Transformer as a Hugging Face GPT-2 directory")
    p.add_argument("-m", "--model", required=True, help=MODEL_HELP)
    p.add_argument("--format", choices=EXPORT_FORMATS, required=True,
                   help="arpa: an ARPA file (.gz to compress; spaces, newlines and tabs are <sp>, <nl>, <tab>); "
                        "hf: a GPT2LMHeadModel directory (config.json, model.safetensors, tokenizer.json)")
    p.add_argument("--out", required=True, help="the file (arpa) or directory (hf) to write")
    p.add_argument("--order", type=int, help="arpa: export this order (<= the counted one)")
    p.add_argument("--smoothing", choices=SMOOTHING_CHOICES, help="arpa: export these counts with this smoothing")

    p = command("delete", cmd_delete, "delete one of your own models (the shipped zoo cannot be deleted)")
    p.add_argument("name", help="the model's name in your model directory")

    p = command("train", cmd_train, "train a model (or count an n-gram model) on a corpus and save it; "
                                    "--init-from fine-tunes a model on new text")
    groups = {name: p.add_argument_group(name) for name in GROUPS}
    for knob in KNOBS:  # every option and its help live in lm/train/knobs.py, shared with the Train page
        _add_knob(groups[knob.group], knob)
    groups["running"].add_argument("--quiet", action="store_true", help="no progress line on stderr")

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except LMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
