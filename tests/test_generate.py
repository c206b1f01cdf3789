"""The one generation loop: determinism, streaming, budgets, stop strings, sliding, per-token details."""

import threading

import pytest
import torch

from lm.errors import LMError
from lm.run.generate import MAX_PROMPT_CHARS, encode_prompt, generate, generate_all, next_token_stages
from lm.run.sampling import SamplingSettings


def test_same_seed_same_text_and_different_seed_differs(bigram, char_tokenizer):
    model = bigram(char_tokenizer.vocab_size)
    s = SamplingSettings(temperature=1.0, max_new_tokens=60, seed=3)
    a = generate_all(model, char_tokenizer, "Hello", s).texts
    b = generate_all(model, char_tokenizer, "Hello", s).texts
    c = generate_all(model, char_tokenizer, "Hello", s.replace(seed=4)).texts
    assert a == b and a != c


def test_streams_tokens_one_at_a_time(bigram, char_tokenizer):
    model = bigram(char_tokenizer.vocab_size)
    stream = generate(model, char_tokenizer, "ab", SamplingSettings(max_new_tokens=5))
    first = next(stream)
    assert first.index == 0 and first.sample == 0
    assert [t.index for t in stream] == [1, 2, 3, 4]


def test_samples_and_budget(bigram, char_tokenizer):
    model = bigram(char_tokenizer.vocab_size)
    result = generate_all(model, char_tokenizer, "x", SamplingSettings(max_new_tokens=17, samples=3, seed=1))
    assert [len(t) for t in result.tokens] == [17, 17, 17]
    assert all(len(text) == 17 for text in result.texts)  # one character per token for a char tokenizer
    assert len(set(result.texts)) > 1
    assert result.tokens[0][-1].finished and not result.tokens[0][0].finished


def test_greedy_token_has_rank_one_and_model_probability(bigram, char_tokenizer):
    model = bigram(char_tokenizer.vocab_size)
    tokens = generate_all(model, char_tokenizer, "a", SamplingSettings(temperature=0, max_new_tokens=10)).tokens[0]
    prev = char_tokenizer.encode("a")[0]
    for tok in tokens:
        probs = torch.softmax(model.table[prev], -1)
        assert tok.rank == 1 and tok.token_id == int(probs.argmax())
        assert tok.prob == pytest.approx(float(probs.max()), rel=1e-5)
        assert tok.top[0][1] == pytest.approx(tok.prob, rel=1e-5) and len(tok.top) == 5
        prev = tok.token_id


def test_stop_string_ends_the_sample_before_it(bigram, char_tokenizer):
    model = bigram(char_tokenizer.vocab_size, seed=5)
    free = generate_all(model, char_tokenizer, "a", SamplingSettings(max_new_tokens=200, seed=2)).texts[0]
    stop = free[40:42]
    result = generate_all(model, char_tokenizer, "a", SamplingSettings(max_new_tokens=200, seed=2, stop=(stop,)))
    text = result.texts[0]
    assert stop not in text and free.startswith(text) and len(text) <= 40
    assert result.tokens[0][-1].finished


def test_prompt_longer_than_context_slides_without_overfilling(bigram, char_tokenizer):
    model = bigram(char_tokenizer.vocab_size, context_length=8)
    result = generate_all(model, char_tokenizer, "abcdefghij" * 5, SamplingSettings(max_new_tokens=40))
    assert len(result.texts[0]) == 40 and model.max_fed <= 8


def test_unknown_characters_are_reported_not_fatal(bigram, char_tokenizer):
    model = bigram(char_tokenizer.vocab_size)
    enc = encode_prompt(char_tokenizer, "héllo 😀")
    assert set(enc.replaced) == {"é", "😀"}
    assert generate_all(model, char_tokenizer, "héllo 😀", SamplingSettings(max_new_tokens=3)).texts[0]


def test_empty_prompt_starts_a_line_and_huge_prompt_is_refused(bigram, char_tokenizer):
    model = bigram(char_tokenizer.vocab_size)
    assert encode_prompt(char_tokenizer, "").started_empty
    assert len(generate_all(model, char_tokenizer, "", SamplingSettings(max_new_tokens=4)).texts[0]) == 4
    with pytest.raises(LMError, match="limit"):
        encode_prompt(char_tokenizer, "a" * (MAX_PROMPT_CHARS + 1))


def test_threads_sharing_one_model_get_their_own_results(bigram, char_tokenizer):
    model = bigram(char_tokenizer.vocab_size)
    jobs = [("Hello", s) for s in range(6)]
    expected = [generate_all(model, char_tokenizer, p, SamplingSettings(max_new_tokens=50, seed=s)).texts for p, s in jobs]
    got = [None] * len(jobs)

    def work(i):
        p, s = jobs[i]
        got[i] = generate_all(model, char_tokenizer, p, SamplingSettings(max_new_tokens=50, seed=s)).texts

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
