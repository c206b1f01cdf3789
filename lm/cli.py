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

from lm.errors import LMError

class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the usage text stays behind --help)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {self.prog}: {message}\n")


def _emit(args: argparse.Namespace, data, text: str) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2) if args.json else text)


def _fmt(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


# -- models ---------------------------------------------------------------------------------------------
def cmd_models(args: argparse.Namespace) -> int:
    from lm.registry import list_models

    models = list_models()
    rows = [f"{'name':34} {'source':6} {'family':11} {'kind':11} {'tok':4} {'params':>10} {'bpc':>6}"]
    for m in models:
        rows.append(f"{m.name:34} {m.source:6} {m.family:11} {m.kind:11} {m.tokenizer:4} "
                    f"{_fmt(m.parameters):>10} {_fmt(m.valid_bits_per_char):>6}")
    _emit(args, [m.to_json() for m in models], "\n".join(rows) if models else "no models found")
    return 0


# -- generate -------------------------------------------------------------------------------------------
def _settings(args: argparse.Namespace):
    from lm.sampling import SamplingSettings

    return SamplingSettings(
        temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, min_p=args.min_p,
        repetition_penalty=args.repetition_penalty, max_new_tokens=args.max_new_tokens, seed=args.seed,
        samples=args.samples, stop=tuple(args.stop or ()),
    )


def cmd_generate(args: argparse.Namespace) -> int:
    from lm.generate import encode_prompt, generate
    from lm.registry import load_model

    settings = _settings(args)  # validate the knobs before the (slower) model load
    loaded = load_model(args.model)
    encoded = encode_prompt(loaded.tokenizer, args.prompt)
    if encoded.replaced:
        print(f"note: {loaded.name} does not know {''.join(encoded.replaced)!r}; replaced with <unk>", file=sys.stderr)
    texts = [""] * settings.samples
    tokens: list[list[dict]] = [[] for _ in range(settings.samples)]
    stream = not args.json and settings.samples == 1
    if stream:
        print(args.prompt, end="", flush=True)
    for tok in generate(loaded.model, loaded.tokenizer, args.prompt, settings):
        texts[tok.sample] += tok.text
        tokens[tok.sample].append({"id": tok.token_id, "piece": tok.piece, "prob": tok.prob, "rank": tok.rank})
        if stream:
            print(tok.text, end="", flush=True)
    if stream:
        print()
    elif args.json:
        print(json.dumps({"model": loaded.name, "prompt": args.prompt, "settings": settings.to_query(),
                          "samples": [{"text": t, "tokens": k} for t, k in zip(texts, tokens)]},
                         ensure_ascii=False, indent=2))
    else:
        for i, text in enumerate(texts):
            print(f"--- sample {i + 1} ---\n{args.prompt}{text}")
    return 0


# -- score ----------------------------------------------------------------------------------------------
def _read_text_arg(args: argparse.Namespace) -> str:
    if args.text is not None:
        return args.text
    from lm.corpus import read_text_file

    return read_text_file(Path(args.file))


def cmd_score(args: argparse.Namespace) -> int:
    from lm.metrics import score
    from lm.registry import load_model

    text = _read_text_arg(args)
    loaded = load_model(args.model)
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
    from lm.checkpoint import save_checkpoint
    from lm.registry import user_models_dir, validate_name
    from lm.train import build_ngram

    name = validate_name(args.name)
    destination = Path(args.out) if args.out else user_models_dir() / name
    recipe = {"corpus": args.corpus, "tokenizer": args.tokenizer, "vocab_size": args.vocab_size,
              "order": args.order, "smoothing": args.smoothing}
    model, tokenizer, meta = build_ngram(recipe)
    meta["name"] = name
    save_checkpoint(destination, model, tokenizer, meta)
    summary = {"name": name, "path": str(destination), **meta["metrics"], "seconds": meta["training"]["seconds"]}
    _emit(args, summary, f"saved {name} to {destination}: held-out {meta['metrics']['valid_bits_per_char']:.3f} "
                         f"bits/char, built in {meta['training']['seconds']:.1f} s")
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
    p.add_argument("-m", "--model", required=True, help="registry name or checkpoint directory")
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

    p = command("score", cmd_score, "per-token log-probabilities, ranks and bits per character of a text")
    p.add_argument("-m", "--model", required=True, help="registry name or checkpoint directory")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--text")
    source.add_argument("--file", help="a UTF-8 text file")

    p = command("ngram", cmd_ngram, "count an n-gram model from a corpus and save it")
    p.add_argument("--corpus", default="shakespeare", help="shakespeare, names, python, or a text file")
    p.add_argument("--tokenizer", choices=["char", "bpe"], default="char")
    p.add_argument("--vocab-size", type=int, default=2048, dest="vocab_size", help="BPE vocabulary size")
    p.add_argument("--order", type=int, default=5)
    p.add_argument("--smoothing", choices=["mle", "addk", "kneser_ney", "stupid_backoff"], default="kneser_ney")
    p.add_argument("--name", required=True, help="name in your model directory")
    p.add_argument("--out", help="save to this directory instead")

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
