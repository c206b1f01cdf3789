"""The one generation loop: determinism, streaming, budgets, stop strings, sliding, per-token details, and every
sampling knob as `generate` (the function the app and the CLI call) applies it."""

import math
import threading
import time
import types

import pytest
import torch

from lm.errors import LMError
from lm.run.generate import MAX_PROMPT_CHARS, collect, encode_prompt, generate, next_token_stages
from lm.run.sampling import SamplingSettings


def run(model, tokenizer, prompt, settings):
    """`generate` to the end: (the texts, the tokens) of each sample, collected as the pages and the CLI do."""
    done = collect(generate(model, tokenizer, prompt, settings), settings.samples)
    return done.texts, done.tokens


def test_same_seed_same_text_and_different_seed_differs(bigram, char_tokenizer):
    model = bigram(char_tokenizer.vocab_size)
    s = SamplingSettings(temperature=1.0, max_new_tokens=60, seed=3)
    before = torch.random.get_rng_state()
    a = run(model, char_tokenizer, "Hello", s)[0]
    b = run(model, char_tokenizer, "Hello", s)[0]
    c = run(model, char_tokenizer, "Hello", s.replace(seed=4))[0]
    assert a == b and a != c
    assert torch.equal(before, torch.random.get_rng_state())  # only the request's own generator was used


def test_streams_tokens_one_at_a_time(bigram, char_tokenizer):
    model = bigram(char_tokenizer.vocab_size)
    stream = generate(model, char_tokenizer, "ab", SamplingSettings(max_new_tokens=5))
    first = next(stream)
    assert first.index == 0 and first.sample == 0
    assert [t.index for t in stream] == [1, 2, 3, 4]


def test_samples_and_budget(bigram, char_tokenizer):
    model = bigram(char_tokenizer.vocab_size)
    texts, tokens = run(model, char_tokenizer, "x", SamplingSettings(max_new_tokens=17, samples=3, seed=1))
    assert [len(t) for t in tokens] == [17, 17, 17]
    assert all(len(text) == 17 for text in texts)  # one character per token for a char tokenizer
    assert len(set(texts)) > 1
    assert tokens[0][-1].finished and not tokens[0][0].finished


def test_greedy_token_has_rank_one_and_model_probability(bigram, char_tokenizer):
    model = bigram(char_tokenizer.vocab_size)
    tokens = run(model, char_tokenizer, "a", SamplingSettings(temperature=0, max_new_tokens=10))[1][0]
    prev = char_tokenizer.encode("a")[0]
    for tok in tokens:
        probs = torch.softmax(model.table[prev], -1)
        assert tok.rank == 1 and tok.token_id == int(probs.argmax())
        assert tok.prob == pytest.approx(float(probs.max()), rel=1e-5)
        assert tok.top[0][1] == pytest.approx(tok.prob, rel=1e-5) and len(tok.top) == 5
        prev = tok.token_id


def test_stop_string_ends_the_sample_before_it(bigram, char_tokenizer):
    model = bigram(char_tokenizer.vocab_size, seed=5)
    free = run(model, char_tokenizer, "a", SamplingSettings(max_new_tokens=200, seed=2))[0][0]
    stop = free[40:42]
    texts, tokens = run(model, char_tokenizer, "a", SamplingSettings(max_new_tokens=200, seed=2, stop=(stop,)))
    text = texts[0]
    assert stop not in text and free.startswith(text) and len(text) <= 40
    assert tokens[0][-1].finished


def test_prompt_longer_than_context_slides_without_overfilling(bigram, char_tokenizer):
    model = bigram(char_tokenizer.vocab_size, context_length=8)
    texts, _ = run(model, char_tokenizer, "abcdefghij" * 5, SamplingSettings(max_new_tokens=40))
    assert len(texts[0]) == 40 and model.max_fed <= 8


def test_unknown_characters_are_reported_not_fatal(bigram, char_tokenizer):
    model = bigram(char_tokenizer.vocab_size)
    enc = encode_prompt(char_tokenizer, "héllo 😀")
    assert set(enc.replaced) == {"é", "😀"}
    assert run(model, char_tokenizer, "héllo 😀", SamplingSettings(max_new_tokens=3))[0][0]


def test_empty_prompt_starts_a_line_and_huge_prompt_is_refused(bigram, char_tokenizer):
    model = bigram(char_tokenizer.vocab_size)
    assert encode_prompt(char_tokenizer, "").started_empty
    assert len(run(model, char_tokenizer, "", SamplingSettings(max_new_tokens=4))[0][0]) == 4
    with pytest.raises(LMError, match="limit"):
        encode_prompt(char_tokenizer, "a" * (MAX_PROMPT_CHARS + 1))


def test_threads_sharing_one_model_get_their_own_results(bigram, char_tokenizer):
    model = bigram(char_tokenizer.vocab_size)
    jobs = [("Hello", s) for s in range(6)]
    expected = [run(model, char_tokenizer, p, SamplingSettings(max_new_tokens=50, seed=s))[0] for p, s in jobs]
    got = [None] * len(jobs)

    def work(i):
        p, s = jobs[i]
        got[i] = run(model, char_tokenizer, p, SamplingSettings(max_new_tokens=50, seed=s))[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == expected


def test_step_mode_stages_are_distributions(bigram, char_tokenizer):
    model = bigram(char_tokenizer.vocab_size)
    pieces, stages = next_token_stages(model, char_tokenizer, "ab", SamplingSettings(temperature=0.5, top_k=5))
    assert [name for name, _ in stages] == ["model", "temperature", "top-k"]
    assert len(pieces) == char_tokenizer.vocab_size
    for _, probs in stages:
        assert probs.shape == (char_tokenizer.vocab_size,) and abs(float(probs.sum()) - 1) < 1e-5
    assert int((stages[-1][1] > 0).sum()) == 5


def test_bpe_text_is_released_in_whole_characters():
    from lm.run.generate import _Detokenizer
    from lm.data.tokenizer import Tokenizer

    text = "日本語のテキスト 😀 emoji and text. " * 3
    tok = Tokenizer.bpe("plain ascii training text only " * 20, 260)  # multi-byte characters stay split in bytes
    ids = tok.encode(text)
    assert len(ids) > len(text)  # some characters really are several tokens
    detok = _Detokenizer(tok, stop=())
    chunks = [detok.push(i) for i in ids] + [detok.flush()]
    assert "".join(chunks) == text
    assert all("\ufffd" not in chunk for chunk in chunks)


def test_stop_string_split_across_tokens_is_held_back(char_tokenizer):
    from lm.run.generate import _Detokenizer

    detok = _Detokenizer(char_tokenizer, stop=("END",))
    released = [detok.push(i) for i in char_tokenizer.encode("abc EN")]
    assert "".join(released) == "abc "  # 'EN' could still become the stop string
    assert detok.push(char_tokenizer.encode("D")[0]) == "" and detok.stopped


# -- the knobs on the path the app and the CLI take: `generate` ------------------------------------------
# After every token the stub model predicts DESIGN (piece -> probability; the other 0.10 is spread evenly over
# the rest of the vocabulary). The pieces are not in id order, so a knob that sorted by id would show.
DESIGN = {"q": 0.40, "e": 0.25, "z": 0.15, "m": 0.10}


def fixed_model(bigram, tokenizer, shift: float = 0.0):
    """The stub; `shift` is added to every logit (the same distribution, but positive logits if large)."""
    vocab = tokenizer.vocab_size
    rest = (1 - sum(DESIGN.values())) / (vocab - len(DESIGN))
    row = torch.full((vocab,), rest)
    for piece, p in DESIGN.items():
        row[tokenizer.encode(piece)[0]] = p
    model = bigram(vocab)
    model.table = (row.log() + shift).expand(vocab, vocab).clone()  # the same logits after any token
    return model


def draws(model, tokenizer, settings, seeds=range(8), prompt="a"):
    """Every token `generate` drew, over all samples and `seeds`."""
    out = []
    for seed in seeds:
        out += list(generate(model, tokenizer, prompt, settings.replace(seed=seed)))
    return out


def shares(tokens) -> dict[str, float]:
    counts: dict[str, int] = {}
    for t in tokens:
        counts[t.piece] = counts.get(t.piece, 0) + 1
    return {piece: n / len(tokens) for piece, n in counts.items()}


def renormalised(weights: dict[str, float]) -> dict[str, float]:
    total = sum(weights.values())
    return {piece: w / total for piece, w in weights.items()}


# (knobs, the pieces they keep of DESIGN, worked out by hand, and the power each probability is raised to: 1/T)
KNOB_CASES = [
    pytest.param(dict(top_k=3), "qez", 1, id="top-k 3"),
    pytest.param(dict(top_p=0.85), "qezm", 1, id="top-p 0.85: mass before m 0.80, before the rest 0.90"),
    pytest.param(dict(min_p=0.5), "qe", 1, id="min-p 0.5: threshold 0.20"),
    pytest.param(dict(temperature=0.5, top_p=0.9), "qez", 2,
                 id="T 0.5 (p ~ p^2: q .63 e .25 z .09 m .04) then top-p 0.9 drops m"),
    pytest.param(dict(temperature=2.0, top_k=4, min_p=0.55), "qez", 0.5,
                 id="T 2 (p ~ sqrt p) then top-k 4, then min-p .55 drops m (sqrt(.10/.40) = .5)"),
]


@pytest.mark.parametrize("knobs, kept, power", KNOB_CASES)
def test_generate_draws_only_what_the_knobs_keep_in_proportion(knobs, kept, power, bigram, char_tokenizer):
    model = fixed_model(bigram, char_tokenizer)
    tokens = draws(model, char_tokenizer, SamplingSettings(max_new_tokens=25, samples=16, **knobs))
    got = shares(tokens)  # 3,200 draws: a share's standard error is below 0.009
    expected = renormalised({piece: DESIGN[piece] ** power for piece in kept})
    assert set(got) == set(kept)  # nothing outside the kept set, and every kept token is drawn
    assert all(abs(got[piece] - expected[piece]) < 0.04 for piece in kept), (got, expected)
    # each token still reports what the model (before any knob) gave it
    assert all(t.prob == pytest.approx(DESIGN[t.piece], rel=1e-5) for t in tokens[:50])


def test_generate_without_knobs_draws_from_the_model(bigram, char_tokenizer):
    got = shares(draws(fixed_model(bigram, char_tokenizer), char_tokenizer,
                       SamplingSettings(max_new_tokens=25, samples=16)))
    assert all(abs(got[piece] - p) < 0.04 for piece, p in DESIGN.items()), got
    assert abs(sum(share for piece, share in got.items() if piece not in DESIGN) - 0.10) < 0.04


def test_generate_at_temperature_zero_is_greedy_for_every_seed(bigram, char_tokenizer):
    model = bigram(char_tokenizer.vocab_size)  # a different random table row after every token
    for seed in range(5):
        tokens = list(generate(model, char_tokenizer, "a", SamplingSettings(temperature=0, max_new_tokens=20,
                                                                            samples=3, seed=seed)))
        previous = {}
        for t in tokens:
            last = previous.get(t.sample, char_tokenizer.encode("a")[0])
            assert t.token_id == int(model.table[last].argmax()) and t.rank == 1
            previous[t.sample] = t.token_id
    with_a_knob = draws(fixed_model(bigram, char_tokenizer), char_tokenizer,
                        SamplingSettings(temperature=0, top_p=0.5, max_new_tokens=10, samples=4))
    assert {t.piece for t in with_a_knob} == {"q"}


def penalised(seen: set[str], penalty: float, shift: float = 0.0) -> dict[str, float]:
    """DESIGN's next-token distribution (the other tokens as one "rest") after CTRL's rule, written out: a seen
    token's logit log p + shift is divided by the penalty when positive, multiplied by it when negative."""
    def weight(piece, p):
        logit = math.log(p) + shift
        if piece in seen:
            logit = logit / penalty if logit > 0 else logit * penalty
        return math.exp(logit - shift)

    return renormalised({piece: weight(piece, p) for piece, p in DESIGN.items()} | {"rest": 0.10})


@pytest.mark.parametrize("shift", [0.0, 10.0], ids=["negative logits", "positive logits"])
def test_generate_repetition_penalty_lowers_the_prompts_tokens(shift, bigram, char_tokenizer):
    model = fixed_model(bigram, char_tokenizer, shift)
    settings = SamplingSettings(max_new_tokens=1, samples=16)
    plain = shares(draws(model, char_tokenizer, settings, seeds=range(150), prompt="q"))
    got = shares(draws(model, char_tokenizer, settings.replace(repetition_penalty=2.0), seeds=range(150),
                       prompt="q"))  # 2,400 draws
    expected = penalised({"q"}, 2.0, shift)  # negative logits: q 0.40 -> 0.21; positive: q -> 0.007
    assert abs(plain["q"] - 0.40) < 0.04
    assert abs(got["q"] - expected["q"]) < 0.04 and abs(got["e"] - expected["e"]) < 0.04, (got, expected)


def test_generate_repetition_penalty_counts_the_generated_tokens(bigram, char_tokenizer):
    """The second token of each sample: after a first 'q' the penalty makes q rarer, after a first 'e' commoner."""
    model = fixed_model(bigram, char_tokenizer)
    settings = SamplingSettings(max_new_tokens=2, samples=16, repetition_penalty=2.0)
    pairs = []
    for seed in range(150):  # 2,400 samples
        by_sample: dict[int, list[str]] = {}
        for t in generate(model, char_tokenizer, "m", settings.replace(seed=seed)):
            by_sample.setdefault(t.sample, []).append(t.piece)
        pairs += [tuple(pieces) for pieces in by_sample.values()]
    for before in ("q", "e"):
        after = [second for first, second in pairs if first == before]  # about 1,100 and 650 samples
        share = after.count("q") / len(after)
        expected = penalised({"m", before}, 2.0)["q"]  # after q: 0.24; after e: 0.55
        assert abs(share - expected) < 0.07, (before, share, expected)


def test_bytes_that_form_no_character_are_released_as_marked_markers():
    from lm.run.generate import _Detokenizer
    from lm.data.tokenizer import Tokenizer

    tok = Tokenizer.bpe("plain ascii training text only " * 20, 260)
    byte = {b[0]: i for i, b in enumerate(tok.token_bytes()) if len(b) == 1}
    detok = _Detokenizer(tok, stop=())
    released = [(detok.push(byte[b]), detok.released_marks, detok.group) for b in b"a\xe5\xba\x8ab\xe5x\xbf"]
    assert [text for text, _, _ in released] == ["a", "", "", "床", "b", "", "<0xE5>x", "<0xBF>"]
    assert [marks for _, marks, _ in released] == [(), (), (), (), (), (), ((0, 6),), ((0, 6),)]
    assert [group for _, _, group in released] == [0, 1, 1, 1, 4, 5, 5, 7]  # 床's three bytes, one group
    detok.push(byte[0xF0])
    assert detok.flush() == "<0xF0>" and detok.released_marks == ((0, 6),)  # the end: it can never complete
    assert "\ufffd" not in detok.text


def test_markers_and_stop_strings_together(bigram):
    from lm.run.generate import _Detokenizer
    from lm.data.tokenizer import Tokenizer

    tok = Tokenizer.bpe("plain ascii training text only " * 20, 260)
    byte = {b[0]: i for i, b in enumerate(tok.token_bytes()) if len(b) == 1}
    detok = _Detokenizer(tok, stop=("ENDX",))
    out = [detok.push(byte[b]) for b in b"\xbfEND"]
    assert out == ["<0xBF>", "", "", ""]  # "END" might become the stop string: held
    assert detok.push(byte[ord("!")]) == "END!" and detok.released_marks == ()


def test_character_models_give_every_token_its_own_group(bigram, char_tokenizer):
    model = bigram(char_tokenizer.vocab_size)
    tokens = run(model, char_tokenizer, "ab", SamplingSettings(max_new_tokens=30, seed=1))[1][0]
    assert [t.group for t in tokens] == [t.index for t in tokens] and all(t.marks == () for t in tokens)


def test_utf8_mask_applies_only_to_byte_level_models_and_the_flag_turns_it_off(bigram):
    from lm.data.tokenizer import Tokenizer

    tok = Tokenizer.bpe("plain ascii training text only " * 20, 260)
    model = bigram(tok.vocab_size, seed=4)
    on = run(model, tok, "x", SamplingSettings(max_new_tokens=120, seed=3))
    off = run(model, tok, "x", SamplingSettings(max_new_tokens=120, seed=3, valid_utf8=False))
    assert "<0x" not in on[0][0] and "<0x" in off[0][0]
    assert all(t.prob > 0 for t in on[1][0])  # the model's own probabilities are still reported


def test_segments_split_a_tokens_text_into_characters_and_markers():
    from lm.run.generate import GeneratedToken

    token = GeneratedToken(0, 0, 1, "a<0xE5>b<0xBF>", "b", 0.5, 1, [], marks=((1, 7), (8, 14)))
    assert token.segments() == [("a", False), ("<0xE5>", True), ("b", False), ("<0xBF>", True)]
    assert "".join(text for text, _ in token.segments()) == token.text
    cut = GeneratedToken(0, 0, 1, "a<0x", "b", 0.5, 1, [], marks=((1, 7),))  # text cut short after the fact
    assert cut.segments() == [("a", False), ("<0x", True)]
    assert GeneratedToken(0, 0, 1, "plain", "p", 0.5, 1, []).segments() == [("plain", False)]


def test_collect_stops_at_its_time_budget_and_keeps_what_was_written():
    from lm.run.generate import collect

    def slow_stream():
        for i in range(1000):
            time.sleep(0.01)
            yield types.SimpleNamespace(sample=0, text="x")

    done = collect(slow_stream(), time_budget=0.1)
    assert done.timed_out and 5 <= len(done.tokens[0]) < 100 and done.texts[0] == "x" * len(done.tokens[0])
    assert not collect(iter([types.SimpleNamespace(sample=0, text="y")]), time_budget=10).timed_out
