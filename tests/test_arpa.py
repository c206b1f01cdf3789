"""ARPA files: the export is a valid ARPA back-off model whose probabilities (read back by a small reference
reader written here, and by KenLM where its Python module is installed) are the project's; ARPA files load
as read-only n-gram models that score like the file says."""

from __future__ import annotations

import gzip
import json
import math
import random

import numpy as np
import pytest
import torch

from lm.cli import main
from lm.data.tokenizer import Tokenizer
from lm.errors import LMError
from lm.models.ngram.model import NgramModel
from lm.run.metrics import score
from lm.store.arpa import export_arpa, load_arpa
from lm.store.registry import list_models, load_model, user_models_dir

LN10 = math.log(10)
WORDS = ["the", "cat", "sat", "on", "mat", "dog", "ran", "a", "log"]


def training_docs(seed=0, n=40):
    rng = random.Random(seed)
    docs = []
    for _ in range(n):
        lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 6))) for _ in range(rng.randint(1, 3))]
        docs.append("\n".join(lines).replace("a l", "a\tl") + "\n")
    return docs


@pytest.fixture(scope="module")
def char_model():
    docs = training_docs()
    tok = Tokenizer.char("".join(docs) + "z")  # 'z' is in the vocabulary but never in training
    model = NgramModel.build(None, tok.vocab_size, 5, documents=[tok.encode_array(d) for d in docs])
    return model, tok


TEXT = "the dog sat on a\tlog\nthe zebra ran\n"  # unseen n-grams, an unseen character and an unknown one (b)


# ---------------------------------------------------------------------------------------------------------
# a reference ARPA reader: the standard back-off rule over dictionaries
# ---------------------------------------------------------------------------------------------------------
class Reference:
    def __init__(self, text: str):
        self.counts, self.prob, self.backoff = {}, {}, {}
        section = None
        for line in text.splitlines():
            line = line.strip()
            if not line:
                continue
            if line.startswith("ngram "):
                j, n = line[6:].split("=")
                self.counts[int(j)] = int(n)
            elif line.startswith("\\"):
                section = line
            elif section and section.endswith("-grams:"):
                j = int(section[1:section.index("-")])
                parts = line.split()
                assert len(parts) in (j + 1, j + 2), line
                gram = tuple(parts[1:j + 1])
                assert gram not in self.prob
                self.prob[gram] = float(parts[0])
                if len(parts) == j + 2:
                    self.backoff[gram] = float(parts[j + 1])
        self.order = max(self.counts)

    def counts_list(self):
        return [self.counts[j] for j in sorted(self.counts)]

    def log10p(self, history, word):
        history = tuple(history)[len(history) - min(len(history), self.order - 1):]
        for start in range(len(history) + 1):
            gram = history[start:] + (word,)
            if gram in self.prob:
                return self.prob[gram] + sum(self.backoff.get(history[i:], 0.0) for i in range(start))
        raise AssertionError(f"{word!r} is not a unigram")


def arpa_words(tok, text):
    names = {" ": "<sp>", "\n": "<nl>", "\t": "<tab>"}
    return [names.get(c, c) if tok.encode(c)[0] != tok.unk_id else "<unk>" for c in text]


def project_log10(model, tok, text):
    ids = torch.tensor([tok.encode(text)])
    return model.logprob_of_targets(ids)[0].numpy() / LN10


def exported(model, tok, path, **view):
    view_model = model.with_settings(**view) if view else model
    counts = export_arpa(view_model, tok, path)
    return view_model, counts, path.read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("smoothing", ["kneser_ney", "mle", "addk"])
@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_export_is_a_valid_arpa_file_with_the_models_probabilities(char_model, smoothing, order, tmp_path):
    model, tok = char_model
    view, counts, text = exported(model, tok, tmp_path / "m.arpa", order=order, smoothing=smoothing)
    assert text.startswith("\\data\\\n") and text.rstrip().endswith("\\end\\")
    ref = Reference(text)
    assert ref.order == order and [ref.counts[j] for j in range(1, order + 1)] == counts
    for j in range(1, order + 1):  # the header counts what each section lists
        assert sum(1 for g in ref.prob if len(g) == j) == counts[j - 1]
    assert all(p <= 0 for p in ref.prob.values())
    assert {("<s>",), ("</s>",), ("<unk>",), ("<sp>",), ("<nl>",), ("<tab>",), ("z",)} <= set(ref.prob)
    assert ref.prob[("<s>",)] == ref.prob[("</s>",)] == -99.0  # never predicted
    if order > 1:  # every n-gram below the top order can be a context: it has a back-off weight
        assert all(len(g) < order for g in ref.backoff) and all(g in ref.backoff for g in ref.prob if len(g) < order)
    for j in range(2, order + 1):  # closed under prefixes and suffixes, as KenLM expects
        grams = [g for g in ref.prob if len(g) == j]
        assert all(g[:-1] in ref.prob and g[1:] in ref.prob for g in grams)
    for start in range(1, order):  # the start of a text is <s>: histories shorter than order-1 tokens
        assert any(g[0] == "<s>" for g in ref.prob if len(g) == start + 1) == (smoothing == "kneser_ney")
    # every unigram distribution sums to one (over the model's tokens)
    uni = sum(10 ** p for g, p in ref.prob.items() if len(g) == 1)
    assert uni == pytest.approx(1.0, abs=1e-4)
    # per-position probabilities of a text, through the ARPA back-off rule, are the model's
    words = arpa_words(tok, TEXT)
    ours = project_log10(view, tok, TEXT)
    theirs = np.array([ref.log10p(["<s>"] + words[:t + 1], words[t + 1]) for t in range(len(words) - 1)])
    finite = np.isfinite(ours)
    assert finite.sum() > len(ours) // 2
    np.testing.assert_allclose(theirs[finite], ours[finite], atol=1e-4, rtol=0)
    assert smoothing == "mle" or finite.all()
    assert (theirs[~finite] < -90).all()  # MLE's zeros are -99 in the file


def test_export_writes_gzip_and_refuses_stupid_backoff(char_model, tmp_path):
    model, tok = char_model
    export_arpa(model, tok, tmp_path / "m.arpa.gz")
    plain = exported(model, tok, tmp_path / "m.arpa")[2]
    assert gzip.decompress((tmp_path / "m.arpa.gz").read_bytes()).decode("utf-8") == plain
    with pytest.raises(LMError, match="not probabilities"):
        export_arpa(model.with_settings(smoothing="stupid_backoff"), tok, tmp_path / "s.arpa")
    assert not (tmp_path / "s.arpa").exists()


def test_addk_export_is_refused_past_the_size_limit(char_model, tmp_path):
    model, tok = char_model
    from lm.models.ngram.arpa import export_orders

    addk = model.with_settings(smoothing="addk")
    with pytest.raises(LMError, match="every token after every seen context"):
        export_orders(addk, unk_id=tok.unk_id, max_entries=1000)
    listed = sum(len(o) for o in export_orders(addk, unk_id=tok.unk_id))
    assert listed > 1000


def test_kenlm_loads_the_export_and_agrees(char_model, tmp_path):
    kenlm = pytest.importorskip("kenlm", reason="KenLM's Python module is not installed (MAX_ORDER=7 pip install "
                                                "--no-binary kenlm kenlm)")
    model, tok = char_model
    words = arpa_words(tok, TEXT)
    for smoothing in ("kneser_ney", "mle", "addk"):
        for order in (2, 3, 5):  # (KenLM needs at least bigrams)
            view, _, _ = exported(model, tok, tmp_path / "k.arpa", order=order, smoothing=smoothing)
            lm = kenlm.Model(str(tmp_path / "k.arpa"))
            theirs = np.array([s[0] for s in lm.full_scores(" ".join(words), bos=True, eos=False)])[1:]
            ours = project_log10(view, tok, TEXT)
            finite = np.isfinite(ours)
            np.testing.assert_allclose(theirs[finite], ours[finite], atol=1e-4, rtol=0)
            assert (theirs[~finite] < -90).all()


# ---------------------------------------------------------------------------------------------------------
# import
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["m.arpa", "m.arpa.gz"])
def test_round_trip_export_then_import_scores_the_same(char_model, name, tmp_path):
    model, tok = char_model
    export_arpa(model, tok, tmp_path / name)
    loaded = load_model(str(tmp_path / name))
    assert loaded.tokenizer.kind == "char" and loaded.model.family == "ngram"
    assert loaded.tokenizer.decode(loaded.tokenizer.encode(TEXT.replace("b", ""))) == TEXT.replace("b", "")
    ours, theirs = score(model, tok, TEXT), score(loaded.model, loaded.tokenizer, TEXT)
    assert [t.piece for t in theirs.tokens] == [t.piece for t in ours.tokens]
    np.testing.assert_allclose([t.logprob / LN10 for t in theirs.tokens], [t.logprob / LN10 for t in ours.tokens],
                               atol=1e-4, rtol=0)
    assert [t.rank for t in theirs.tokens] == [t.rank for t in ours.tokens]
    assert theirs.replaced == ours.replaced == ["b"]
    # the step path gives the same distributions as the full-sequence path
    ids = torch.tensor([loaded.tokenizer.encode("the cat sat")])
    logits = loaded.model.logits(ids)[0]
    state = loaded.model.start(1)
    for t in range(ids.shape[1]):
        step_logits, state = loaded.model.step(ids[:, t], state)
        torch.testing.assert_close(step_logits[0], logits[t], atol=1e-5, rtol=0)
    assert torch.logsumexp(logits, -1).abs().max() < 1e-4  # each row is a distribution (</s> has p = 0)


def test_a_view_of_lower_order_matches_the_lower_order_export(char_model, tmp_path):
    model, tok = char_model
    export_arpa(model, tok, tmp_path / "m5.arpa")
    five = load_arpa(tmp_path / "m5.arpa")
    three = five.model.with_settings(order=3, smoothing="mle")  # the smoothing is the file's
    assert three.config.order == 3 and three.config.smoothing == "arpa" and five.model.max_order == 5
    ref = Reference((tmp_path / "m5.arpa").read_text(encoding="utf-8"))
    ref.order = 3
    words = arpa_words(tok, TEXT)
    expected = [ref.log10p(["<s>"] + words[:t + 1], words[t + 1]) for t in range(len(words) - 1)]
    got = three.logprob_of_targets(torch.tensor([five.tokenizer.encode(TEXT)]))[0].numpy() / LN10
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


def test_trace_shows_the_back_off_path(char_model, tmp_path):
    model, tok = char_model
    export_arpa(model, tok, tmp_path / "m.arpa")
    loaded = load_arpa(tmp_path / "m.arpa")
    ids = loaded.tokenizer.encode("the zebra")
    strings = loaded.tokenizer.token_strings(list(range(loaded.tokenizer.vocab_size)))
    trace = loaded.model.trace(torch.tensor(ids), token_strings=strings)
    lp = loaded.model.logprob_of_targets(torch.tensor([ids]))[0]
    assert trace.smoothing == "arpa" and len(trace.rows) == len(ids) - 1
    for t, rows in enumerate(trace.rows):
        assert [r.order for r in rows] == list(range(min(t + 3, 5), 0, -1))  # <s> counts as history
        assert rows[0].probability == pytest.approx(math.exp(lp[t]), rel=1e-5)
        for high, low in zip(rows, rows[1:]):  # each order: its listed probability, or weight x the order below
            if high.target_count == 0:
                assert high.probability == pytest.approx(high.weight * low.probability, rel=1e-6)
    assert ids[4] == loaded.tokenizer.encode("z")[0] and any("'z' is not listed" in n for n in trace.notes)
    assert [r.target_count for r in trace.rows[3]] == [0, 0, 0, 0, 1]  # a unigram only: never seen in training
    assert [r.context_count for r in trace.rows[3]] == [1, 1, 1, 1, 1]  # "<s> the " and its suffixes are listed
    torch.testing.assert_close(trace.probabilities.sum(-1), torch.ones(len(ids)), atol=1e-4, rtol=0)


WORD_ARPA = """
\\data\\
ngram 1=6
ngram 2=6
ngram 3=2

\\1-grams:
-1.0\t<unk>
-99\t<s>\t-0.30
-0.8\t</s>
-0.6\tthe\t-0.25
-0.7\tcat\t-0.2
-0.9\tsat\t-0.1

\\2-grams:
-0.2\t<s> the\t-0.1
-0.3\tthe cat\t-0.05
-0.4\tcat sat
-0.5\tsat </s>
-0.6\tcat </s>
-0.7\tthe the

\\3-grams:
-0.1\t<s> the cat
-0.15\tthe cat sat

\\end\\
"""


def test_a_word_level_arpa_file_loads_with_a_whitespace_tokenizer(tmp_path):
    (tmp_path / "words.arpa").write_text(WORD_ARPA, encoding="utf-8")
    loaded = load_model(str(tmp_path / "words.arpa"))
    tok = loaded.tokenizer
    assert tok.kind == "word" and tok.vocab_size == 6 and tok.id_to_piece(0) == "<unk>"
    ids, unknown = tok.encode_report("the cat  sat\nthe dog")
    assert [tok.id_to_piece(i) for i in ids] == ["the", "cat", "sat", "the", "<unk>"] and unknown == ["dog"]
    assert tok.decode(tok.encode("the cat") + [tok.encode("sat")[0], 2] + tok.encode("the")) == "the cat sat\nthe"
    ref = Reference(WORD_ARPA)
    sentence = ["the", "cat", "sat", "</s>", "the", "the", "sat"]
    ids = torch.tensor([[tok.pieces().index(w) for w in sentence]])
    got = loaded.model.logprob_of_targets(ids)[0].numpy() / LN10
    expected = [ref.log10p(["<s>"] + sentence[:t + 1], sentence[t + 1]) for t in range(len(sentence) - 1)]
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)
    assert expected == pytest.approx([-0.1, -0.15, -0.5, -0.6, -0.7, -0.9 - 0.25])  # by hand
    try:
        import kenlm
    except ImportError:
        return
    theirs = [s[0] for s in kenlm.Model(str(tmp_path / "words.arpa")).full_scores(" ".join(sentence), eos=False)]
    np.testing.assert_allclose(got, theirs[1:], atol=1e-4, rtol=0)


@pytest.mark.parametrize("change, message", [
    (lambda t: t.replace("ngram 2=6", "ngram 2=7"), "header says 7 2-grams"),
    (lambda t: t.replace("\\data\\", "data"), "not an ARPA file"),
    (lambda t: t.replace("-0.4\tcat sat", "-0.4\tcat sat mat -1 -2"), "needs a probability"),
    (lambda t: t.replace("-0.4\tcat sat", "-0.4\tcat mat"), "not a unigram"),
    (lambda t: t.replace("-0.4\tcat sat", "x\tcat sat"), "not a number"),
    (lambda t: t.replace("-0.15\tthe cat sat", "-0.15\tsat cat sat"), "closed under prefixes"),
    (lambda t: t.replace("\\end\\", ""), "expected \\\\end\\\\"),
])
def test_malformed_arpa_files_are_one_line_errors(change, message, tmp_path):
    (tmp_path / "bad.arpa").write_text(change(WORD_ARPA), encoding="utf-8")
    with pytest.raises(LMError, match=message) as info:
        load_model(str(tmp_path / "bad.arpa"))
    assert "\n" not in str(info.value)


def test_arpa_files_in_the_user_directory_are_listed_and_load_by_name(char_model):
    model, tok = char_model
    user_models_dir().mkdir(parents=True, exist_ok=True)
    counts = export_arpa(model, tok, user_models_dir() / "my-chars.arpa.gz")
    (user_models_dir() / "words.arpa").write_text(WORD_ARPA, encoding="utf-8")
    (user_models_dir() / "broken.arpa").write_text("not an arpa file", encoding="utf-8")
    found = {m.name: m for m in list_models()}
    assert "broken.arpa" not in found
    chars, words = found["my-chars.arpa.gz"], found["words.arpa"]
    assert (chars.family, chars.tokenizer, words.tokenizer) == ("ngram", "char", "word")
    assert chars.parameters == sum(counts) and chars.description.startswith("ARPA back-off model, order 5")
    assert load_model("my-chars.arpa.gz").model.max_order == 5 and load_model("words.arpa").model.max_order == 3


def test_cli_exports_and_scores_an_arpa_file(char_model, tmp_path, capsys):
    from lm.store.checkpoint import save_checkpoint

    model, tok = char_model
    save_checkpoint(tmp_path / "chars", model, tok)
    out = tmp_path / "chars3.arpa"
    assert main(["export", "-m", str(tmp_path / "chars"), "--format", "arpa", "--order", "3", "--out", str(out),
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["order"] == 3 and summary["ngrams"] == Reference(out.read_text(encoding="utf-8")).counts_list()
    assert main(["score", "-m", str(out), "--text", "the cat", "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    expected = score(model.with_settings(order=3), tok, "the cat")
    assert scored["bits_per_char"] == pytest.approx(expected.bits_per_char, abs=1e-4)
    assert main(["export", "-m", str(tmp_path / "chars"), "--format", "arpa", "--smoothing", "stupid_backoff",
                 "--out", str(tmp_path / "s.arpa")]) == 2
    assert "not probabilities" in capsys.readouterr().err
