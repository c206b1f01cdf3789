"""Tests for lm.data.corpus (built-in and user corpora, document splits) and lm.data.textio (safe reads, atomic writes)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
from collections import Counter

import pytest

from lm.data import corpus as corpus_mod
from lm.data.corpus import (
    BUILTIN_CORPORA,
    PYTHON_DEFAULT_MAX_CHARS,
    Corpus,
    Document,
    clean_play_markdown,
    corpus_from_bytes,
    corpus_from_text,
    describe_corpus,
    load_corpus,
)
from lm.errors import LMError
from lm.store.paths import ASSETS_DIR
from lm.data.textio import atomic_write_bytes, atomic_write_text, read_text_file

SPEAKER_LINE = re.compile(r"^[A-Z][A-Z .,&'-]*:$", re.M)


# -- shakespeare ------------------------------------------------------------------------------------


def test_shakespeare_has_38_plays():
    corpus_mod._shakespeare_documents.cache_clear()
    corpus_mod._builtin.cache_clear()
    corpus = load_corpus("shakespeare")
    assert corpus.num_documents == 38
    titles = [d.title for d in corpus.documents]
    assert len(set(titles)) == 38
    assert {"Hamlet", "Macbeth", "The Tempest", "Edward III"} <= set(titles)
    assert len(corpus) == len(corpus.text) > 4_000_000
    assert load_corpus("shakespeare") is corpus  # cached in-process


def test_shakespeare_is_plain_play_text():
    corpus = load_corpus("shakespeare")
    for doc in corpus.documents:
        for marker in ("#", "*", "_", "\\", "](", "<", ">", "  \n"):
            assert marker not in doc.text, f"{marker!r} left in {doc.title}"
        assert len(SPEAKER_LINE.findall(doc.text)) > 100, doc.title
        assert not doc.text.startswith("\n") and "\n\n\n" not in doc.text
    hamlet = next(d for d in corpus.documents if d.title == "Hamlet")
    assert "HAMLET:\n" in hamlet.text
    assert "BERNARDO:\nWho's there?" in hamlet.text
    assert "To be, or not to be" in hamlet.text
    assert "\nEnter Ghost\n" in hamlet.text  # stage directions stay, as plain lines


def test_clean_play_markdown_constructs():
    md = ("# A Play\n\n## ACT I\n\n### SCENE I. A room.\n\n_Enter KING and\nQUEEN_\n\n"
          "**KING**  \n__\\[Aside]_  \nWell, \\--now *go*.  \nSee [here](http://x) <b>bold</b>\n\n"
          "**FIRST LORD & SECOND**  \n1\\. Item.\n\n\n\n*Exeunt.*\n")
    title, text = clean_play_markdown(md)
    assert title == "A Play"
    assert text == ("A Play\n\nACT I\n\nSCENE I. A room.\n\nEnter KING and\nQUEEN\n\n"
                    "KING:\n[Aside]\nWell, --now go.\nSee here bold\n\n"
                    "FIRST LORD & SECOND:\n1. Item.\n\nExeunt.")


# -- names ------------------------------------------------------------------------------------------


def test_names_one_lowercase_name_per_line():
    corpus = load_corpus("names")
    assert corpus.separator == "\n"
    lines = corpus.text.split("\n")
    assert len(lines) == corpus.num_documents > 4000
    assert lines == [d.title for d in corpus.documents] == [d.text for d in corpus.documents]
    assert all(line.isalpha() and line == line.lower() for line in lines)
    assert len(set(lines)) == len(lines)
    assert {"mary", "john", "emma"} <= set(lines)


def _share_of_neighbours_alike(names: list[str]) -> float:
    """Share of adjacent names that share their first two letters."""
    return sum(a[:2] == b[:2] for a, b in zip(names, names[1:])) / (len(names) - 1)


def test_names_are_shuffled_not_sorted():
    corpus_mod._names_documents.cache_clear()
    corpus_mod._builtin.cache_clear()
    names = [d.title for d in load_corpus("names").documents]
    # the same names the package's files list, each once (only the order changed)
    listed = set()
    for f in importlib.metadata.distribution("names").files:
        if f.name.endswith(".first"):
            listed |= {line.split()[0].lower() for line in f.read_text(encoding="utf-8").splitlines() if line.strip()}
    assert set(names) == {n for n in listed if n.isalpha()} and len(names) == len(set(names))
    # Not alphabetical: neighbours share their first two letters about as often as two names drawn at random
    # (sorted, nearly all of them do).
    prefixes = Counter(n[:2] for n in names)
    chance = sum(c * (c - 1) for c in prefixes.values()) / (len(names) * (len(names) - 1))
    assert _share_of_neighbours_alike(sorted(names)) > 0.9
    assert _share_of_neighbours_alike(names) < 2 * chance < 0.05


def test_names_order_is_the_one_the_zoo_was_trained_on():
    # Deterministic across processes and sessions: the held-out names the shipped names models recorded are
    # the ones this corpus holds out now (a different order would hold out different names).
    for model in ("names-char-lstm", "names-char-transformer"):
        config = json.loads((ASSETS_DIR / model / "config.json").read_text(encoding="utf-8"))
        recorded = config["corpus"]["split"]["valid_documents"]
        assert load_corpus("names").split().info["valid_documents"] == recorded, model


# -- python -----------------------------------------------------------------------------------------


def test_python_corpus_capped_and_ordered():
    corpus = load_corpus("python")
    assert 1_000_000 < len(corpus) <= PYTHON_DEFAULT_MAX_CHARS
    titles = [d.title for d in corpus.documents]
    assert titles == sorted(titles)
    for t in titles:
        parts = t.split("/")
        assert t.endswith(".py")
        assert not {"test", "tests", "site-packages", "idle_test"} & set(parts), t
    small = load_corpus("python", max_chars=100_000)
    assert len(small) <= 100_000
    assert [d.title for d in small.documents] == titles[: small.num_documents]


# -- splits -----------------------------------------------------------------------------------------


def test_split_by_document_is_deterministic_and_complete():
    corpus = load_corpus("shakespeare")
    a, b = corpus.split(), corpus.split()
    assert a.info == b.info
    assert a.valid.text == b.valid.text and a.train.text == b.train.text
    assert a.info["method"] == "by_document" and a.info["valid_every"] == 10
    expected_valid = [d.title for i, d in enumerate(corpus.documents) if i % 10 == 9]
    assert a.info["valid_documents"] == expected_valid == [d.title for d in a.valid.documents]
    assert len(expected_valid) == 3
    train_titles = {d.title for d in a.train.documents}
    assert not train_titles & set(expected_valid)
    assert len(train_titles) + len(expected_valid) == 38
    # whole plays are held out, unchanged
    by_title = {d.title: d.text for d in corpus.documents}
    assert all(d.text == by_title[d.title] for d in a.valid.documents)
    assert a.valid.text.strip() and a.info["valid_chars"] == len(a.valid.text)
    assert "i % 10 == 9" in a.info["rule"]


def test_split_other_rate_and_names():
    names = load_corpus("names")
    split = names.split(valid_every=5)
    assert split.valid.num_documents == names.num_documents // 5
    assert split.valid.text.split("\n") == [d.title for d in names.documents][4::5]
    for bad in (1, 0, -2, 2.5, True, "10"):
        with pytest.raises(LMError, match="valid_every"):
            names.split(valid_every=bad)


def test_single_document_split_cuts_at_paragraph_near_90_percent():
    paragraphs = [f"Paragraph {i}.\n" + "word " * 20 for i in range(40)]
    text = "\n\n".join(paragraphs)
    corpus = Corpus("one", (Document("only", text),))
    split = corpus.split()
    info = split.info
    assert info["method"] == "text_cut" and info["cut_boundary"] == "paragraph"
    assert "single document" in info["rule"]
    assert 0.8 < info["cut_at_char"] / len(text) < 0.97
    assert split.train.text + "\n\n" + split.valid.text == text
    assert split.valid.text.startswith("Paragraph")
    assert split.train.text.strip() and split.valid.text.strip()


def test_few_documents_and_tiny_texts():
    corpus = Corpus("few", tuple(Document(f"d{i}", f"line {i}\nmore {i}") for i in range(3)))
    split = corpus.split()
    assert split.info["method"] == "text_cut" and split.valid.text.strip()
    two = Corpus("tiny", (Document("t", "ab"),)).split()
    assert (two.train.text, two.valid.text) == ("a", "b")
    with pytest.raises(LMError, match="too short"):
        Corpus("tiny", (Document("t", "a"),)).split()


def test_corpus_validation():
    with pytest.raises(LMError, match="no documents"):
        Corpus("empty", ())
    corpus = Corpus("c", [Document("a", "x"), Document("b", "y")], separator="|")
    assert isinstance(corpus.documents, tuple) and corpus.text == "x|y" and len(corpus) == 3


# -- user text --------------------------------------------------------------------------------------


def test_user_text_with_paragraphs_is_split_into_documents():
    paragraphs = [f"Stanza {i}\nline one\nline two" for i in range(2000)]
    text = "\n\n".join(paragraphs) + "\n"
    corpus = corpus_from_text(text, name="poems")
    assert corpus.name == "poems" and corpus.separator == "\n\n"
    assert corpus.text == text.rstrip("\n")
    assert 30 <= corpus.num_documents <= 60
    assert all(not d.text.startswith("\n") for d in corpus.documents)
    split = corpus.split()
    assert split.info["method"] == "by_document" and split.valid.text.strip()


def test_user_text_without_blank_lines_uses_lines_then_chunks():
    lines = corpus_from_text("\n".join(f"name{i}" for i in range(5000)))
    assert lines.separator == "\n" and lines.num_documents > 10
    assert lines.text == "\n".join(f"name{i}" for i in range(5000))
    blob = corpus_from_text("x" * 100_000)
    assert blob.separator == "" and blob.text == "x" * 100_000 and blob.num_documents >= 10


def test_user_text_normalisation():
    corpus = corpus_from_bytes("\ufeffa\r\nb\rc".encode("utf-8"), "win.txt")
    assert corpus.text == "a\nb\nc"
    collapsed = corpus_from_text("a\n \n\n\t\nb")
    assert collapsed.text == "a\n\nb"


def test_load_corpus_from_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello world\n\nsecond paragraph\n", encoding="utf-8")
    corpus = load_corpus(path)
    assert corpus.name == "notes.txt" and corpus.text == "hello world\n\nsecond paragraph"
    assert load_corpus(str(path)).text == corpus.text
    named = tmp_path / "names"  # a Path is always a file, never the built-in corpus
    named.write_text("just a file", encoding="utf-8")
    assert load_corpus(named).text == "just a file"
    assert len(load_corpus(path, max_chars=5)) <= 5


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "is empty"),
        (b"  \n\t\n ", "only whitespace"),
        (b"abc\x00def", "binary.*NUL byte at byte offset 3"),
        (b"hello \xff world", "not valid UTF-8.*0xff at byte offset 6"),
        (b"caf\xc3", "not valid UTF-8.*byte offset 3"),
        (bytes(range(1, 9)) * 100, "binary"),
    ],
)
def test_bad_bytes_raise_one_line_errors(data, message):
    with pytest.raises(LMError, match=message) as info:
        corpus_from_bytes(data, "upload.txt")
    assert "\n" not in str(info.value) and "upload.txt" in str(info.value)


def test_size_caps(tmp_path):
    with pytest.raises(LMError, match=r"'big' is 2.0 KB, over the 1.0 KB limit"):
        corpus_from_bytes(b"a" * 2048, "big", max_bytes=1024)
    with pytest.raises(LMError, match="over the"):
        corpus_from_text("é" * 600, "pasted", max_bytes=1024)
    path = tmp_path / "big.txt"
    path.write_bytes(b"word " * 1000)
    with pytest.raises(LMError, match=r"4.9 KB, over the 1.0 KB limit"):
        load_corpus(path, max_bytes=1024)
    assert len(load_corpus(path, max_bytes=None)) > 0


def test_bad_paths_and_names(tmp_path):
    with pytest.raises(LMError, match="no such file"):
        load_corpus(tmp_path / "missing.txt")
    with pytest.raises(LMError, match="is a directory"):
        load_corpus(tmp_path)
    with pytest.raises(LMError, match="unknown corpus 'shakespear'"):
        load_corpus("shakespear")
    with pytest.raises(LMError, match="max_chars"):
        load_corpus("names", max_chars=0)
    with pytest.raises(LMError, match="is empty"):
        corpus_from_text("")
    with pytest.raises(LMError, match="only whitespace"):
        corpus_from_text(" \n ")


def test_describe_corpus():
    for name in BUILTIN_CORPORA:
        info = describe_corpus(name)
        assert set(info) == {"name", "title", "description", "chars", "documents"}
        assert info["chars"] > 10_000 and info["documents"] > 30
    assert describe_corpus("shakespeare")["documents"] == 38
    with pytest.raises(LMError, match="unknown built-in corpus"):
        describe_corpus("klingon")


# -- textio -----------------------------------------------------------------------------------------


def test_atomic_writes(tmp_path):
    path = tmp_path / "sub" / "out.txt"
    atomic_write_text(path, "first ✓\n")
    atomic_write_text(path, "second\r\n")
    assert path.read_bytes() == b"second\r\n"  # no newline translation
    atomic_write_bytes(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert os.listdir(path.parent) == ["out.txt"]
    assert os.stat(path).st_mode & 0o777 == 0o644
    with pytest.raises(LMError, match="cannot write"):
        atomic_write_text(path / "child.txt", "x")  # parent is a file


def test_read_text_file(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes(b"ok\r\n")
    assert read_text_file(path) == "ok\n"
