"""Benchmark: neural generation speed against Hugging Face `transformers`, and trace() latency.

A script, not a test:  python bench/bench_neural.py [--threads N] [--repeats R] [--tokens 200]

Batch 1, 200 new tokens, top-k 50, temperature 0.8, random weights over a ~70-character vocabulary:
  (a) Transformer 4 layers x 4 heads, d=128, context 256: our KV-cache generation vs
      `GPT2LMHeadModel.generate(do_sample=True, top_k=50, temperature=0.8)` on the same weights
      (exported with `lm.models.gpt2.export_gpt2`);            target >= 3x
  (b) the same at d=256;                                        target >= 2x
  (c) LSTM 2 x 256 tokens/s;                                     target >= 3000
  (d) trace() on a 256-token text for each of those models;     target < 150 ms
  (e) why the batch-1 step runs in NumPy: the step's matrix-vector products on the model's own weights,
      torch's F.linear (MKL here) against NumPy's matmul (OpenBLAS), microseconds per step.

"ours (app loop)" is `lm.run.generate.generate`, which also computes each token's probability, rank and top-5
alternatives and detokenizes incrementally; "ours (model only)" is a bare prefill/step + top-k/multinomial loop,
the same work HF's generate does. Each figure is the median of --repeats runs (runs of the two sides interleave,
so background load hits both alike). Everything runs under torch.inference_mode().
"""

from __future__ import annotations

import argparse
import statistics
import string
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lm.device import set_inference_threads
from lm.models.gpt2 import export_gpt2
from lm.models.rnn import RNNConfig, RNNModel
from lm.models.transformer.model import TransformerConfig, TransformerModel

TEXT = (
    "ROMEO:\nBut soft, what light through yonder window breaks? It is the east, and Juliet is the sun.\n"
    "Arise, fair sun, and kill the envious moon, who is already sick and pale with grief, that thou her maid "
    "art far more fair than she. Be not her maid, since she is envious; her vestal livery is but sick and green"
)
PROMPT = "ROMEO:\nBut soft, what light"
TOP_K, TEMPERATURE = 50, 0.8


def char_tokenizer():
    from lm.data.tokenizer import Tokenizer

    return Tokenizer.char(string.ascii_letters + string.digits + " .,;:!?'\n-")  # 71 characters + <unk>


def minimal_loop(model, prompt_ids: torch.Tensor, new_tokens: int, generator: torch.Generator) -> int:
    """Model-only generation: prefill, then step + temperature + top-k + multinomial per token."""
    logits, state = model.prefill(prompt_ids, model.start(1))
    for _ in range(new_tokens):
        top, index = torch.topk(logits / TEMPERATURE, TOP_K)  # [1, k]
        pick = torch.multinomial(torch.softmax(top, dim=-1), 1, generator=generator)  # [1, 1]
        logits, state = model.step(index.gather(-1, pick)[:, 0], state)
    return new_tokens


def app_loop(model, tokenizer, new_tokens: int) -> int:
    from lm.run.generate import generate
    from lm.run.sampling import SamplingSettings

    settings = SamplingSettings(temperature=TEMPERATURE, top_k=TOP_K, max_new_tokens=new_tokens, seed=1)
    return sum(1 for _ in generate(model, tokenizer, PROMPT, settings))


def hf_loop(hf_model, prompt_ids: torch.Tensor, new_tokens: int) -> int:
    out = hf_model.generate(
        prompt_ids, attention_mask=torch.ones_like(prompt_ids), do_sample=True, top_k=TOP_K,
        temperature=TEMPERATURE, max_new_tokens=new_tokens, pad_token_id=0,
    )
    return out.shape[1] - prompt_ids.shape[1]


def timed(fn) -> tuple[float, float]:
    """(tokens per wall-clock second, tokens per CPU second of this process) of one call of fn() -> tokens.

    On a machine shared with other work, wall time mostly measures waiting for a core; CPU time measures the
    work itself, so ratios are taken from CPU time (both are printed).
    """
    wall, cpu = time.perf_counter(), time.process_time()
    count = fn()
    return count / (time.perf_counter() - wall), count / (time.process_time() - cpu)


def medians(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def rate(wall: float, cpu: float) -> str:
    return f"{wall:,.0f} ({cpu:,.0f})"


def trace_ms(model, ids: torch.Tensor, repeats: int) -> tuple[float, float]:
    """Median (wall, CPU) milliseconds of model.trace(ids)."""
    model.trace(ids)  # warm-up
    runs = []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        model.trace(ids)
        runs.append(((time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000))
    return medians(runs)


def products_us(model, repeats: int) -> tuple[float, float]:
    """Median microseconds of one step's matrix-vector products (every layer's four), torch vs NumPy."""
    import torch.nn.functional as F

    pairs = []  # (weight [out, in], bias) of qkv, attention out, MLP in, MLP out, per layer
    for block in model.h:
        w = block.weights()
        pairs += [(w.c_attn_weight, w.c_attn_bias), (w.attn_proj_weight, w.attn_proj_bias),
                  (w.c_fc_weight, w.c_fc_bias), (w.mlp_proj_weight, w.mlp_proj_bias)]
    inputs = {n: torch.randn(1, n) for n in {weight.shape[1] for weight, _ in pairs}}  # [1, in]
    arrays = [(weight.detach().numpy(), bias.detach().numpy()) for weight, bias in pairs]
    vectors = {n: x[0].numpy() for n, x in inputs.items()}

    def torch_products():
        for weight, bias in pairs:
            F.linear(inputs[weight.shape[1]], weight, bias)

    def numpy_products():
        for weight, bias in arrays:
            weight @ vectors[weight.shape[1]] + bias

    out = []
    for fn in (torch_products, numpy_products):
        for _ in range(20):
            fn()
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(100):
                fn()
            runs.append((time.perf_counter() - start) / 100 * 1e6)
        out.append(statistics.median(runs))
    return out[0], out[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: $LM_THREADS or torch's)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=200)
    args = parser.parse_args()
    threads = set_inference_threads(args.threads)

    import transformers
    from transformers import GPT2LMHeadModel

    transformers.logging.set_verbosity_error()
    tokenizer = char_tokenizer()
    vocab = tokenizer.vocab_size
    prompt_ids = torch.tensor([tokenizer.encode(PROMPT)])  # [1, T]
    text_ids = torch.tensor(tokenizer.encode(TEXT)[:256])  # [256]
    assert text_ids.shape[0] == 256, "TEXT must be at least 256 tokens"
    gen = torch.Generator().manual_seed(0)
    rows, trace_rows, product_rows = [], [], []

    with torch.inference_mode(), tempfile.TemporaryDirectory() as tmp:
        for label, d_model, target in (("(a) Transformer 4L x 4H, d=128", 128, 3.0),
                                       ("(b) Transformer 4L x 4H, d=256", 256, 2.0)):
            config = TransformerConfig(vocab_size=vocab, context_length=256, n_layers=4, n_heads=4,
                                       d_model=d_model, activation="gelu_tanh")
            model = TransformerModel(config, generator=gen)
            hf = GPT2LMHeadModel.from_pretrained(export_gpt2(model, Path(tmp) / f"d{d_model}")).eval()
            ours_app, ours_min, theirs = [], [], []
            minimal_loop(model, prompt_ids, 20, gen), hf_loop(hf, prompt_ids, 20), app_loop(model, tokenizer, 20)
            for _ in range(args.repeats):
                ours_app.append(timed(lambda m=model: app_loop(m, tokenizer, args.tokens)))
                ours_min.append(timed(lambda m=model: minimal_loop(m, prompt_ids, args.tokens, gen)))
                theirs.append(timed(lambda h=hf: hf_loop(h, prompt_ids, args.tokens)))
            (app, app_cpu), (bare, bare_cpu), (hf_rate, hf_cpu) = map(medians, (ours_app, ours_min, theirs))
            rows.append((label, rate(app, app_cpu), rate(bare, bare_cpu), rate(hf_rate, hf_cpu),
                         f"{app_cpu / hf_cpu:.1f}x / {bare_cpu / hf_cpu:.1f}x", f">= {target:.0f}x"))
            trace_rows.append((label, trace_ms(model, text_ids, args.repeats)))
            product_rows.append((label, products_us(model, args.repeats)))

        lstm = RNNModel(RNNConfig(vocab_size=vocab, cell="lstm", n_layers=2, d_embed=64, d_hidden=256),
                        generator=gen)
        minimal_loop(lstm, prompt_ids, 20, gen)
        app_rates, bare_rates = [], []
        for _ in range(args.repeats):
            app_rates.append(timed(lambda: app_loop(lstm, tokenizer, args.tokens)))
            bare_rates.append(timed(lambda: minimal_loop(lstm, prompt_ids, args.tokens, gen)))
        rows.append(("(c) LSTM 2 x 256", rate(*medians(app_rates)), rate(*medians(bare_rates)), "-", "-",
                     ">= 3,000 tok/s"))
        trace_rows.append(("(c) LSTM 2 x 256", trace_ms(lstm, text_ids, args.repeats)))

    print(f"torch {torch.__version__}, transformers {transformers.__version__}, {threads} thread(s), "
          f"batch 1, {args.tokens} new tokens, top-k {TOP_K}, T={TEMPERATURE}, vocab {vocab}, "
          f"median of {args.repeats}\n")
    print("tok/s: wall clock (per CPU second in brackets); ratios from CPU time\n")
    print("| model | ours, app loop | ours, model only | HF generate | ratio app / model-only | target |")
    print("|---|---:|---:|---:|---:|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print("\n| (d) trace() on 256 tokens | wall ms (CPU ms) | target |")
    print("|---|---:|---|")
    for label, (wall, cpu) in trace_rows:
        print(f"| {label} | {wall:.1f} ({cpu:.1f}) | < 150 ms |")
    print("\n| (e) one step's 16 matrix-vector products | torch F.linear us | NumPy matmul us | torch / NumPy |")
    print("|---|---:|---:|---:|")
    for label, (torch_us, numpy_us) in product_rows:
        print(f"| {label} | {torch_us:.0f} | {numpy_us:.0f} | {torch_us / numpy_us:.1f}x |")


if __name__ == "__main__":
    main()
