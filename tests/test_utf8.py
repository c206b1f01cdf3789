"""Byte-level text that never prints broken characters (issue 16): the incremental UTF-8 decoder, the mask of
tokens that can continue valid UTF-8, and generation with both — down to the issue's reproduction, a byte-level
BPE model continuing a Chinese poem."""

from __future__ import annotations

import codecs
import functools
import itertools
import random
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lm.data.tokenizer import Tokenizer
from lm.data.utf8 import EMPTY, MARK, Utf8Decoder, show_bytes, state_of
from lm.run.generate import collect, generate, next_token_stages
from lm.run.sampling import SamplingSettings

SETTINGS = settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.function_scoped_fixture])
MARKER = re.compile(r"<0x[0-9A-F]{2}>")

# Classical Chinese verse, by character: the sample below is drawn from these (and the two marks), line by line.
HAN = ("床前明月光疑是地上霜举头望低思故乡春眠不觉晓处闻啼鸟夜来风雨声花落知多少白日依山尽黄河入海流欲穷千里目更"
       "一层楼红豆生南国发几枝愿君采撷此物最相红独在异为客每逢佳节倍亲遥兄弟登高遍插茱萸人")


def chinese_sample(chars: int = 7000, seed: int = 0) -> str:
    """About `chars` characters (3 UTF-8 bytes each: ~20 kB) of five-character lines, two to a verse."""
    rng = random.Random(seed)
    lines = []
    while sum(map(len, lines)) < chars:
        lines.append("".join(rng.choice(HAN) for _ in range(5)) + "，" + "".join(rng.choice(HAN) for _ in range(5))
                     + "。\n")
    return "".join(lines)


@functools.lru_cache(maxsize=None)
def chinese_bpe() -> Tokenizer:
    return Tokenizer.bpe(chinese_sample(), 1024)


@functools.lru_cache(maxsize=None)
def byte_bpe() -> Tokenizer:
    """Learned on ASCII only: every non-ASCII character is several single-byte tokens."""
    return Tokenizer.bpe("plain ascii text, nothing else " * 20, 270)


def python_reference(data: bytes) -> str:
    """Python's strict decoder, each byte it rejects written as a marker (an independent implementation)."""
    def handler(exc):
        return "".join(MARK.format(b) for b in exc.object[exc.start:exc.end]), exc.end
    codecs.register_error("lm-test-markers", handler)
    return data.decode("utf-8", errors="lm-test-markers")


def feed_all(pieces) -> tuple[str, list[tuple[int, int]]]:
    decoder, text, marks = Utf8Decoder(), "", []
    for piece in [*pieces, None]:
        out, found = decoder.flush() if piece is None else decoder.feed(piece)
        marks += [(len(text) + a, len(text) + b) for a, b in found]
        text += out
    return text, marks


def split_at(data: bytes, cuts) -> list[bytes]:
    cuts = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]


# -- the decoder ------------------------------------------------------------------------------------------
@SETTINGS
@given(st.text(), st.lists(st.integers(0, 10_000), max_size=12))
def test_valid_text_comes_back_whole_however_its_bytes_are_cut(text, cuts):
    assert feed_all(split_at(text.encode("utf-8"), cuts)) == (text, [])


@SETTINGS
@given(st.binary(max_size=60), st.lists(st.integers(0, 100), max_size=12))
def test_any_bytes_decode_like_pythons_strict_decoder_with_markers(data, cuts):
    out, marks = feed_all(split_at(data, cuts))
    assert out == python_reference(data) == show_bytes(data)
    assert "\ufffd" not in out or "\ufffd".encode() in data  # U+FFFD only where the bytes really say so
    assert all(re.fullmatch(r"(<0x[0-9A-F]{2}>)+", out[a:b]) for a, b in marks)
    rejected = len(data) - len(data.decode("utf-8", "ignore").encode("utf-8"))
    assert sum(b - a for a, b in marks) == 6 * rejected  # every rejected byte is one marked marker


def test_a_lead_byte_is_held_then_completed_or_shown():
    decoder = Utf8Decoder()
    assert decoder.feed(b"a\xe5") == ("a", []) and decoder.state != EMPTY
    assert decoder.feed(b"\xba") == ("", [])
    assert decoder.feed(b"\x8a") == ("床", []) and decoder.state == EMPTY
    assert decoder.feed(b"\xe5\xba") == ("", [])
    assert decoder.feed(b"x") == ("<0xE5><0xBA>x", [(0, 12)])  # the tail never came: shown, then the x
    assert decoder.feed(b"\xbf") == ("<0xBF>", [(0, 6)])  # a lone continuation byte
    assert decoder.feed(b"\xf0\x9f") == ("", []) and decoder.flush() == ("<0xF0><0x9F>", [(0, 12)])


# -- the mask ---------------------------------------------------------------------------------------------
def _continues(pending: bytes, token: bytes) -> bool:
    """Whether some ending of at most 3 bytes makes pending + token decode strictly (Python's incremental
    decoder is no reference: it holds ED A1 without checking it can still become a character). The first
    continuation byte's allowed ranges all contain 0x80, 0x90 or 0xA0, so those endings are enough."""
    for length in range(4):
        for ending in itertools.product((0x80, 0x90, 0xA0), repeat=length):
            try:
                (pending + token + bytes(ending)).decode("utf-8")
                return True
            except UnicodeDecodeError:
                pass
    return False


@pytest.mark.parametrize("make", [chinese_bpe, byte_bpe], ids=["chinese", "bytes"])
def test_mask_is_exactly_what_pythons_decoder_accepts(make):
    tok = make()
    mask, table = tok.utf8_mask(), tok.token_bytes()
    for pending in [b"", b"\xe5", b"\xe5\xba", b"\xe0", b"\xed", b"\xf0", b"\xf4", b"\xf0\x9f", b"\xf0\x9f\x98",
                    b"\xc3"]:
        allowed = mask.allowed(pending)
        assert allowed.tolist() == [_continues(pending, b) for b in table], pending
        assert allowed.any()


@SETTINGS
@given(st.data())
def test_choosing_only_allowed_tokens_always_gives_strictly_valid_text(data):
    """The mask never removes every token, and with the budget counted down, n tokens chosen among the allowed
    ones always decode strictly: the last ones finish the character in time."""
    tok = data.draw(st.sampled_from([chinese_bpe(), byte_bpe()]))
    mask, table = tok.utf8_mask(), tok.token_bytes()
    n = data.draw(st.integers(1, 25))
    decoder, written = Utf8Decoder(), b""
    for index in range(n):
        allowed = mask.allowed(decoder.state, n - 1 - index).nonzero()[0]
        assert len(allowed) > 0
        token = int(allowed[data.draw(st.integers(0, len(allowed) - 1))])
        written += table[token]
        decoder.feed(table[token])
        assert state_of(bytes(decoder.pending)) == decoder.state
    written.decode("utf-8")  # strict: raises on any broken or unfinished character


def test_char_and_word_tokenizers_need_no_mask():
    for tok in (Tokenizer.char("床前明月光"), Tokenizer.word("床前 明月光", 10)):
        assert tok.token_bytes() is None and tok.utf8_mask() is None


# -- generation ------------------------------------------------------------------------------------------
def generated_bytes(tok, tokens) -> bytes:
    table = tok.token_bytes()
    return b"".join(table[t.token_id] for t in tokens)


@SETTINGS
@given(st.sampled_from(["chinese", "bytes"]), st.integers(0, 2**31), st.floats(0.0, 2.0), st.integers(0, 50),
       st.floats(0.05, 1.0), st.integers(1, 40), st.integers(1, 3))
def test_generated_text_always_decodes_strictly(bigram, kind, seed, temperature, top_k, top_p, budget, samples):
    tok = chinese_bpe() if kind == "chinese" else byte_bpe()
    model = bigram(tok.vocab_size, seed=seed % 1000)  # random weights: the worst a model can do
    s = SamplingSettings(temperature=temperature, top_k=top_k, top_p=top_p, seed=seed, max_new_tokens=budget,
                         samples=samples)
    done = collect(generate(model, tok, "床前明月光，", s), samples)
    for text, tokens in zip(done.texts, done.tokens):
        assert generated_bytes(tok, tokens).decode("utf-8") == text  # strict, and exactly what was shown
        assert all(t.marks == () for t in tokens) and not MARKER.search(text)


def test_without_the_mask_broken_bytes_are_shown_as_markers_never_as_replacement(bigram):
    tok = byte_bpe()
    model = bigram(tok.vocab_size, seed=1)
    done = collect(generate(model, tok, "café", SamplingSettings(max_new_tokens=300, seed=2, valid_utf8=False)))
    text, tokens = done.texts[0], done.tokens[0]
    assert "\ufffd" not in text and MARKER.search(text)  # a random byte model writes broken bytes: shown
    assert text == show_bytes(generated_bytes(tok, tokens))
    for t in tokens:  # every mark is a marker, and every marker is marked
        assert all(MARKER.fullmatch(t.text[a:b][:6]) for a, b in t.marks)
        assert sum(b - a for a, b in t.marks) == len("".join(MARKER.findall(t.text)))


def test_a_character_split_over_tokens_is_one_group(bigram):
    tok = byte_bpe()  # "床" is three single-byte tokens here
    model = bigram(tok.vocab_size, seed=0)
    tokens = collect(generate(model, tok, "x", SamplingSettings(max_new_tokens=200, seed=5))).tokens[0]
    groups: dict[int, list] = {}
    for t in tokens:
        assert t.group is not None and t.group <= t.index
        groups.setdefault(t.group, []).append(t)
    assert any(len(members) > 1 for members in groups.values())  # some character did span tokens
    for start, members in groups.items():
        assert [t.index for t in members] == list(range(start, start + len(members)))  # contiguous
        assert all(t.text == "" for t in members[:-1]) and members[-1].text  # its text comes with the last
        generated_bytes(tok, members).decode("utf-8")  # a group is whole characters


def test_step_mode_shows_the_utf8_stage_and_keeps_only_whole_characters(bigram):
    tok = byte_bpe()
    model = bigram(tok.vocab_size, seed=3)
    pieces, stages = next_token_stages(model, tok, "床", SamplingSettings(temperature=0.9))
    assert [name for name, _ in stages][:3] == ["model", "valid UTF-8", "temperature"]
    kept = (stages[-1][1] > 0).nonzero().flatten().tolist()
    assert kept and all(tok.token_bytes()[i].decode("utf-8") for i in kept)  # strict: whole characters only
    off = next_token_stages(model, tok, "床", SamplingSettings(temperature=0.9, valid_utf8=False))[1]
    assert "valid UTF-8" not in [name for name, _ in off]
    char_stages = next_token_stages(bigram(3), Tokenizer.char("ab"), "a", SamplingSettings())[1]
    assert "valid UTF-8" not in [name for name, _ in char_stages]  # character models: nothing to mask


def test_issue_reproduction_chinese_poem_has_no_replacement_characters(tmp_path):
    """Issue 16: a Transformer with a 1,024-piece byte-level BPE, trained 60 steps on a Chinese text, continues
    "床前明月光，" three times for 300 tokens. It used to print U+FFFD for a quarter of its characters."""
    from lm.train.loop import train
    from lm.train.settings import TrainSettings

    corpus = tmp_path / "poems.txt"
    corpus.write_text(chinese_sample(), encoding="utf-8")
    assert 19_000 < len(corpus.read_bytes()) < 25_000
    result = train(TrainSettings(family="transformer", corpus=str(corpus), tokenizer="bpe", vocab_size=1024,
                                 preset="tiny", layers=1, width=32, heads=2, context=32, batch_size=8, steps=60,
                                 eval_every=1000, threads=1, name="poems", out=str(tmp_path / "poems"), seed=1,
                                 score_chars=2000))
    settings_ = SamplingSettings(max_new_tokens=300, samples=3, seed=0)
    done = collect(generate(result.model, result.tokenizer, "床前明月光，", settings_), 3)
    text = "".join(done.texts)
    assert len(text) > 300 and "\ufffd" not in text and not MARKER.search(text)
    for sample, tokens in zip(done.texts, done.tokens):
        assert generated_bytes(result.tokenizer, tokens).decode("utf-8") == sample
    unmasked = collect(generate(result.model, result.tokenizer, "床前明月光，",
                                settings_.replace(valid_utf8=False)), 3)
    assert "\ufffd" not in "".join(unmasked.texts)  # without the mask: markers at worst, never U+FFFD
