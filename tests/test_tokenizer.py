"""Tests for lm.data.tokenizer: exact round trips, unknown-character reports, persistence and bad files."""

from __future__ import annotations

import functools
import json
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer as HFTokenizer

from lm.errors import LMError
from lm.data.tokenizer import UNK_DISPLAY, UNK_ID, Tokenizer, train_tokenizer
from lm.data.utf8 import bytes_to_unicode as _bytes_to_unicode

SETTINGS = settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])

TRAIN_TEXT = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\n"
    "All:\nSpeak, speak.\n\tIndented\tline  with  double spaces.\r\n"
    "def f(x):\n    return x ** 2  # comment\n"
    "Zoë's café — naïve 🙂 世界\n"
) * 3


@functools.lru_cache(maxsize=None)
def char_tok() -> Tokenizer:
    return Tokenizer.char(TRAIN_TEXT)


@functools.lru_cache(maxsize=None)
def bpe_tok() -> Tokenizer:
    return Tokenizer.bpe(TRAIN_TEXT * 5, 400)


ALPHABET = "".join(sorted(set(TRAIN_TEXT)))


# -- character tokenizer ----------------------------------------------------------------------------


def test_char_vocab_layout_and_unk():
    tok = char_tok()
    assert tok.kind == "char"
    assert tok.unk_id == UNK_ID == 0
    assert tok.vocab_size == len(set(TRAIN_TEXT)) + 1
    assert tok.id_to_piece(0) == "<unk>"
    # characters follow <unk> in code point order
    assert tok.pieces()[1:] == sorted(set(TRAIN_TEXT))


def test_char_round_trip_training_text_exactly():
    tok = char_tok()
    ids = tok.encode(TRAIN_TEXT)
    assert len(ids) == len(TRAIN_TEXT)
    assert tok.unk_id not in ids
    assert tok.decode(ids) == TRAIN_TEXT


@SETTINGS
@given(st.text(alphabet=ALPHABET))
def test_char_round_trip_property(text):
    tok = char_tok()
    assert tok.decode(tok.encode(text)) == text
    assert tok.encode_report(text)[1] == []


@SETTINGS
@given(st.text())
def test_char_fast_path_matches_tokenizers_pipeline(text):
    tok = char_tok()
    ids = tok.encode(text)
    assert ids == tok.hf.encode(text, add_special_tokens=False).ids
    assert tok.decode(ids) == tok.hf.decode(ids, skip_special_tokens=False)
    assert tok.encode_array(text).tolist() == ids


def test_char_unknown_characters_reported():
    tok = char_tok()
    ids, replaced = tok.encode_report("Zoë! 😀ñ😀 X")
    assert replaced == sorted({"😀", "ñ", "!", "X"})  # '!' and 'X' are not in the training text
    assert ids.count(tok.unk_id) == 5
    decoded = tok.decode(ids)
    assert decoded == "Zoë" + UNK_DISPLAY + " " + UNK_DISPLAY * 3 + " " + UNK_DISPLAY
    assert "".join(tok.token_strings(ids)) == decoded


def test_literal_unk_text_is_not_the_unknown_token():
    tok = Tokenizer.char("<unk> and more")
    ids = tok.encode("<unk>")
    assert len(ids) == 5 and tok.unk_id not in ids
    assert tok.decode(ids) == "<unk>"


def test_char_lone_surrogates_do_not_crash():
    tok = Tokenizer.char("ab\ud800")
    assert "\ud800" not in tok.pieces()
    ids, replaced = tok.encode_report("a\ud800")
    assert ids == [tok.encode("a")[0], tok.unk_id] and replaced == ["\ud800"]


def test_char_encode_handles_megabytes():
    text = (TRAIN_TEXT * 20000)[:3_000_000]
    tok = char_tok()
    ids = tok.encode(text)
    assert len(ids) == len(text) and tok.decode(ids) == text


# -- byte-level BPE ---------------------------------------------------------------------------------


def test_bpe_basics():
    tok = bpe_tok()
    assert tok.kind == "bpe" and tok.unk_id is None
    assert 256 < tok.vocab_size <= 400
    assert len(tok.encode(TRAIN_TEXT)) < len(TRAIN_TEXT.encode("utf-8"))  # merges actually compress


@SETTINGS
@given(st.text())
def test_bpe_round_trip_any_text(text):
    tok = bpe_tok()
    ids, replaced = tok.encode_report(text)
    assert replaced == []
    assert tok.decode(ids) == text


@SETTINGS
@given(st.text(alphabet=st.sampled_from(list("ab \n\t.'sZ😀é\r")), max_size=300))
def test_bpe_chunked_encoding_equals_single_call(text):
    tok = bpe_tok()
    assert tok._bpe_ids(text, chunk_chars=4) == tok.hf.encode(text, add_special_tokens=False).ids


def test_bpe_round_trip_special_strings():
    tok = bpe_tok()
    specials = ["", " ", "\x00\x01\x7f", "  leading", "trailing  ", "\r\n\r\n", "漢字かなカナ한글",
                "👩‍👩‍👧 🏳️‍🌈", "\u200b\ufeff\u00a0", "<unk>", "<|endoftext|>"]
    for text in specials:
        assert tok.decode(tok.encode(text)) == text


def test_bpe_vocab_size_bounds():
    assert Tokenizer.bpe("hello world", 256).vocab_size == 256
    small = Tokenizer.bpe("hello hello world", 5000)
    assert 256 < small.vocab_size <= 5000  # cannot learn more merges than the text offers
    for bad in (255, 65537, 0, -3, True, "300", 300.0):
        with pytest.raises(LMError, match="vocabulary size"):
            Tokenizer.bpe("hello", bad)


def test_bpe_training_is_deterministic():
    a = Tokenizer.bpe(TRAIN_TEXT, 300)
    b = Tokenizer.bpe(TRAIN_TEXT, 300)
    assert a.to_json() == b.to_json()


def test_bpe_token_strings_show_partial_utf8_as_hex():
    tok = Tokenizer.bpe("plain text", 256)  # no merges: one token per byte
    ids = tok.encode("aé")
    assert tok.token_strings(ids) == ["a", "\\xc3", "\\xa9"]
    assert tok.decode(ids) == "aé"
    assert tok.decode(ids[:2]) == "a" + UNK_DISPLAY  # an incomplete character decodes as U+FFFD
    merged = bpe_tok()
    strings = merged.token_strings(merged.encode(" speak, speak"))
    assert "".join(strings) == " speak, speak"


def test_empty_inputs():
    for tok in (char_tok(), bpe_tok()):
        assert tok.encode("") == []
        assert tok.encode_report("") == ([], [])
        assert tok.decode([]) == ""
        assert tok.token_strings([]) == []
        assert tok.encode_array("").shape == (0,)
    with pytest.raises(LMError, match="empty"):
        Tokenizer.char("")
    with pytest.raises(LMError, match="empty"):
        Tokenizer.bpe("", 300)


def test_decode_rejects_bad_ids():
    tok = char_tok()
    with pytest.raises(LMError, match="outside the vocabulary"):
        tok.decode([tok.vocab_size])
    with pytest.raises(LMError, match="outside the vocabulary"):
        bpe_tok().token_strings([-1])
    for bad in ([1.5], [True], [[1, 2]], "ab", 3):
        with pytest.raises(LMError):
            tok.decode(bad)


def test_decode_accepts_arrays_and_tensors():
    torch = pytest.importorskip("torch")
    tok = char_tok()
    ids = tok.encode("Speak")
    assert tok.decode(np.array(ids)) == "Speak"
    assert tok.decode(torch.tensor(ids)) == "Speak"


def test_train_tokenizer_dispatch():
    assert train_tokenizer("char", "abc").kind == "char"
    assert train_tokenizer("bpe", "abc", 260).kind == "bpe"
    with pytest.raises(LMError):
        train_tokenizer("word", "abc")
    with pytest.raises(LMError):
        train_tokenizer("bpe", "abc")


# -- persistence ------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [char_tok, bpe_tok], ids=["char", "bpe"])
def test_save_load_round_trip(tmp_path, make):
    tok = make()
    path = tmp_path / "run" / "tokenizer.json"
    tok.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["tokenizer.json"]  # no temp files left behind
    loaded = Tokenizer.load(path)
    assert loaded == tok
    assert (loaded.kind, loaded.vocab_size, loaded.unk_id) == (tok.kind, tok.vocab_size, tok.unk_id)
    sample = TRAIN_TEXT + "unseen ✓"
    assert loaded.encode(sample) == tok.encode(sample)
    assert Tokenizer.from_json(tok.to_json()) == tok
    # the file is the standard tokenizers format
    hf = HFTokenizer.from_file(str(path))
    assert hf.get_vocab_size() == tok.vocab_size
    assert Tokenizer.load(tmp_path / "run") == tok  # a directory holding tokenizer.json also works


def _gpt2_style_json(with_type: bool) -> str:
    """A miniature of GPT-2's tokenizer.json (same sections and options, few merges)."""
    byte_chars = _bytes_to_unicode()
    vocab = {byte_chars[b]: i for i, b in enumerate(sorted(byte_chars))}
    merges = ["Ġ t", "h e", "Ġt he", "Ġ a", "i n"]
    for m in merges:
        vocab["".join(m.split(" "))] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    model = {"dropout": None, "unk_token": None, "continuing_subword_prefix": "", "end_of_word_suffix": "",
             "fuse_unk": False, "vocab": vocab, "merges": merges}
    if with_type:
        model = {"type": "BPE", **model}
    return json.dumps({
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": vocab["<|endoftext|>"], "special": True, "content": "<|endoftext|>",
                          "single_word": False, "lstrip": False, "rstrip": False, "normalized": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True},
        "model": model,
    })


@pytest.mark.parametrize("with_type", [False, True])
def test_load_gpt2_style_snapshot(tmp_path, with_type):
    snapshot = tmp_path / "models--gpt2" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "tokenizer.json").write_text(_gpt2_style_json(with_type), encoding="utf-8")
    tok = Tokenizer.load(snapshot)
    assert tok.kind == "bpe" and tok.unk_id is None and tok.vocab_size == 256 + 5 + 1
    ids = tok.encode(" the cat in the hat")
    assert tok.token_strings(ids)[:2] == [" the", " "]
    eot = tok.encode("<|endoftext|>")
    assert eot == [tok.vocab_size - 1] and tok.token_strings(eot) == ["<|endoftext|>"]
    for text in ["Hello 😀 世界\n\t", " the end<|endoftext|>next", ""]:
        assert tok.decode(tok.encode(text)) == text


def _write(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_load_errors(tmp_path):
    cases = {
        "missing": (tmp_path / "nope.json", "no tokenizer file"),
        "dir": (tmp_path, "without a tokenizer.json"),
        "corrupt": (_write(tmp_path, "corrupt.json", '{"model": {"type": "BPE", '), "not valid JSON"),
        "not_tok": (_write(tmp_path, "other.json", '{"hello": 1}'), "not a tokenizer file"),
        "list": (_write(tmp_path, "list.json", "[1, 2]"), "not a tokenizer file"),
        "binary": (_write(tmp_path, "bin.json", b"\x89PNG\r\n\x1a\n\xff\xfe"), "not UTF-8"),
        "bad_model": (_write(tmp_path, "bad.json", json.dumps({"model": {"type": "BPE", "vocab": 3}})),
                      "not a valid tokenizer file"),
    }
    for name, (path, message) in cases.items():
        with pytest.raises(LMError, match=message):
            Tokenizer.load(path)
    with pytest.raises(LMError):
        Tokenizer.from_json("")


def test_load_rejects_unsupported_tokenizers(tmp_path):
    wordpiece = {"version": "1.0", "model": {"type": "WordPiece", "unk_token": "[UNK]",
                                             "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
                                             "vocab": {"[UNK]": 0, "a": 1}}}
    with pytest.raises(LMError, match="WordPiece"):
        Tokenizer.from_json(json.dumps(wordpiece))
    words = {"version": "1.0", "model": {"type": "WordLevel", "unk_token": "[UNK]",
                                         "vocab": {"[UNK]": 0, "hello": 1}}}
    with pytest.raises(LMError, match="not a character tokenizer"):
        Tokenizer.from_json(json.dumps(words))
    plain_bpe = {"version": "1.0", "pre_tokenizer": {"type": "Whitespace"},
                 "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}
    with pytest.raises(LMError, match="not byte-level"):
        Tokenizer.from_json(json.dumps(plain_bpe))
    lossy = json.loads(_gpt2_style_json(True))
    lossy["normalizer"] = {"type": "Lowercase"}
    with pytest.raises(LMError, match="exactly"):
        Tokenizer.from_json(json.dumps(lossy))


def test_saved_file_permissions(tmp_path):
    path = tmp_path / "tokenizer.json"
    char_tok().save(path)
    assert os.stat(path).st_mode & 0o777 == 0o644
    char_tok().save(path)  # overwriting works
    assert Tokenizer.load(path) == char_tok()


# -- word tokenizer -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def word_tok() -> Tokenizer:
    return Tokenizer.word(TRAIN_TEXT, 80)


def test_word_vocab_layout_frequency_cap_and_alphabet():
    tok = word_tok()
    assert tok.kind == "word" and tok.unk_id == 0 and tok.id_to_piece(0) == "<unk>"
    assert tok.vocab_size == 80
    pieces = tok.pieces()
    assert set(TRAIN_TEXT) <= set(pieces)  # every character, to spell unknown words with
    words = [p for p in pieces[1:] if len(p) > 1]
    counts = {p: 0 for p in pieces}
    for piece, _ in tok.hf.pre_tokenizer.pre_tokenize_str(TRAIN_TEXT):
        counts[piece] = counts.get(piece, 0) + 1
    assert [counts[p] for p in pieces[1:]] == sorted((counts[p] for p in pieces[1:]), reverse=True)
    left_out = [p for p in counts if p not in pieces and len(p) > 1]
    assert left_out and min(counts[w] for w in words) >= max(counts[p] for p in left_out)  # the cap keeps the
    # most frequent words
    assert Tokenizer.word(TRAIN_TEXT, 80).to_json() == tok.to_json()  # deterministic, ties included
    with pytest.raises(LMError, match="at least"):
        Tokenizer.word(TRAIN_TEXT, len(set(TRAIN_TEXT)))  # no room for <unk> and every character
    for bad in (1, 2.5, True, 10**9):
        with pytest.raises(LMError, match="vocabulary size"):
            Tokenizer.word("hello", bad)


def test_word_pieces_keep_their_space_and_split_punctuation():
    tok = Tokenizer.word("Speak, speak.\nAll: speak!\n床前明月光，\n  indented\n", 80)
    ids = tok.encode("All: speak, speak.\n床前\n  indented")
    assert tok.token_strings(ids) == ["All", ":", " speak", ",", " speak", ".", "\n", "床", "前", "\n", " ",
                                      " indented"]


@SETTINGS
@given(st.text(alphabet=ALPHABET, max_size=300))
def test_word_round_trip_of_any_text_over_the_training_characters(text):
    tok = word_tok()
    ids, replaced = tok.encode_report(text)
    assert replaced == [] and tok.unk_id not in ids
    assert tok.decode(ids) == text == "".join(tok.token_strings(ids))


def test_word_unknown_words_are_spelled_and_unknown_characters_reported():
    tok = word_tok()
    known = next(p for p in tok.pieces() if len(p) > 2 and p.strip().isalpha())  # a word the vocabulary has
    text = f"{known} zebra ✓"
    ids, replaced = tok.encode_report(text)
    assert replaced == ["✓"] and ids.count(tok.unk_id) == 1
    assert tok.token_strings(ids)[:3] == [known, " ", "z"]  # " zebra" is no word of the vocabulary: spelled
    assert tok.decode(ids) == text.replace("✓", "<unk>")
    # `tokenizers` alone finds the same words; where it says <unk> we spell the word out
    assert tok.hf.encode(f"{known} zebra", add_special_tokens=False).ids == [ids[0], tok.unk_id]


def test_word_encoding_in_chunks_matches_one_call():
    tok = word_tok()
    text = TRAIN_TEXT * 130  # longer than one chunk
    assert len(text) > 1 << 16
    assert tok.encode(text) == [i for line in text.splitlines(keepends=True) for i in tok.encode(line)]
    assert tok.encode_array(text).tolist() == tok.encode(text)


def test_word_files_load_as_word_and_foreign_word_level_files_do_not(tmp_path):
    tok = word_tok()
    tok.save(tmp_path / "tokenizer.json")
    loaded = Tokenizer.load(tmp_path)
    assert loaded == tok and loaded.kind == "word" and loaded.encode(TRAIN_TEXT) == tok.encode(TRAIN_TEXT)
    assert HFTokenizer.from_file(str(tmp_path / "tokenizer.json")).decode(tok.encode("Speak, speak.")) \
        == "Speak, speak."  # a Hugging Face library reads it too
    assert Tokenizer.char("ab").kind == "char"  # single characters without our word pattern stay "char"
    assert Tokenizer.from_json(Tokenizer.char("ab").to_json()).kind == "char"


def test_make_tokenizer_word_defaults_and_dispatch():
    from lm.data.tokenizer import DEFAULT_VOCAB, make_tokenizer

    text = " ".join(f"w{i}" for i in range(DEFAULT_VOCAB["word"] + 50))
    tok = make_tokenizer("word", text, text)
    assert tok.kind == "word" and tok.vocab_size == DEFAULT_VOCAB["word"]
    assert train_tokenizer("word", "a b a", 10).kind == "word"


@pytest.mark.parametrize("family", ["ngram", "lstm", "transformer"])
def test_word_models_train_for_every_family(tmp_path, family):
    from lm.run.generate import collect, generate
    from lm.run.sampling import SamplingSettings
    from lm.store.checkpoint import load_checkpoint
    from lm.train.loop import train
    from lm.train.settings import TrainSettings

    corpus = tmp_path / "verse.txt"
    corpus.write_text("".join(f"The {w} of line {i} is bright, and the night goes on.\n"
                              for i, w in enumerate(["moon", "sea", "king", "rose"] * 200)), encoding="utf-8")
    extra = {"order": 2} if family == "ngram" else dict(preset="tiny", layers=1, width=32, embed=16, heads=2,
                                                         context=16, batch_size=8, steps=20, eval_every=1000)
    result = train(TrainSettings(family=family, corpus=str(corpus), tokenizer="word", vocab_size=40, name="w",
                                 out=str(tmp_path / "w"), seed=1, threads=1, score_chars=3000, **extra))
    loaded = load_checkpoint(tmp_path / "w")
    assert loaded.tokenizer.kind == "word" and loaded.tokenizer.vocab_size == 40
    assert 0 < result.meta["metrics"]["valid_bits_per_char"] < 8
    text = collect(generate(loaded.model, loaded.tokenizer, "The", SamplingSettings(max_new_tokens=20))).texts[0]
    assert text == loaded.tokenizer.decode(loaded.tokenizer.encode(text))  # whole words, joined back


def test_word_models_from_the_command_line(tmp_path):
    from lm.cli import main

    corpus = tmp_path / "verse.txt"
    corpus.write_text("".join(f"the moon {i} and the sea, the king {i % 7} and the rose.\n" for i in range(300)),
                      encoding="utf-8")
    assert main(["ngram", "--corpus", str(corpus), "--tokenizer", "word", "--vocab-size", "30", "--order", "2",
                 "--name", "wb", "--out", str(tmp_path / "wb")]) == 0
    assert main(["train", "--family", "lstm", "--corpus", str(corpus), "--tokenizer", "word", "--vocab-size", "30",
                 "--preset", "tiny", "--steps", "3", "--name", "wl", "--out", str(tmp_path / "wl"), "--quiet"]) == 0
    assert Tokenizer.load(tmp_path / "wl").vocab_size == 30 == Tokenizer.load(tmp_path / "wb").vocab_size
