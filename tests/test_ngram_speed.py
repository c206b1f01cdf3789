"""The fast n-gram paths and the compact checkpoint: the whole-text scoring path gives exactly (bit for bit) the
general path's log-probabilities, the cascade hash index finds exactly the stored keys, the compact format
loads back the same model (and format-1 checkpoints still load), and `lm.run.metrics.score` leaves an n-gram's
ranks until they are read. (Speed itself is measured by bench/bench_ngram.py, not here.)"""

from __future__ import annotations

import pickle
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from lm.errors import LMError
from lm.models.ngram import counts as ngram_counts
from lm.models.ngram.keyindex import KeyIndex
from lm.models.ngram.model import NgramConfig, NgramModel
from lm.models.ngram.storage import FORMAT_VERSION, format1_tensors
from lm.run.metrics import TokenScores, score

V = 12


@pytest.fixture(scope="module")
def counted() -> NgramModel:
    rng = np.random.default_rng(11)
    docs = [rng.integers(0, V - 2, n) for n in (3000, 400, 7)]  # ids V-2, V-1 never occur
    docs.append(np.array([1, 2, 1, 2, 3]))
    return NgramModel.build(None, V, 5, "kneser_ney", documents=docs)


def general_path(model: NgramModel, x: np.ndarray) -> np.ndarray:
    """log p of every next token through `score_targets` (the path the ranks use), one row at a time."""
    rows = []
    for b in range(x.shape[0]):
        row = x[b:b + 1]
        flat = np.arange(row.shape[1] - 1, dtype=np.int64)
        rows.append(model._s.score_targets(row, flat, row[0, 1:], False)[0] if flat.size else np.zeros(0))
    return np.stack(rows)


@pytest.mark.parametrize("smoothing", ["mle", "addk", "kneser_ney"])
@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
def test_whole_text_path_is_the_general_path_bit_for_bit(counted, smoothing, order):
    model = counted.with_settings(order=order, smoothing=smoothing)  # order 5 is the counted one: hashed top
    rng = np.random.default_rng(order)
    text = np.concatenate([rng.integers(0, V, 400), [1, 2, 1, 2, 3, 1, 2]])[None]
    for x in (text, rng.integers(0, V, (7, 3)), rng.integers(0, V, (4, 9)), rng.integers(0, V, (2, 1)),
              text[:, :400].reshape(4, 100)):
        fast = model._s.text_logprobs(x)
        want = general_path(model, x)
        assert fast.shape == want.shape == (x.shape[0], x.shape[1] - 1)
        assert np.array_equal(fast, want), (order, smoothing, x.shape)  # -inf (MLE zeros) included
        assert torch.equal(model.logprob_of_targets(torch.from_numpy(x)),
                           torch.from_numpy(want))


def test_whole_text_path_without_dense_tables_and_without_counts(counted, monkeypatch):
    rng = np.random.default_rng(3)
    x = rng.integers(0, V, (2, 200))
    dense = counted.with_settings(order=4)._s.text_logprobs(x)
    monkeypatch.setattr(ngram_counts, "_DENSE_LOOKUP_ENTRIES", 0)  # every order through the hash index
    hashed = NgramModel(counted.config, ngram_counts._Tables(dict(counted._t.primary))).with_settings(order=4)
    assert all(d is None for d in hashed._t.dense[1:])
    assert np.array_equal(hashed._s.text_logprobs(x), dense)
    for smoothing in ("mle", "addk", "kneser_ney"):  # an untrained model: every token 1/V
        empty = NgramModel(NgramConfig(vocab_size=V, order=3, smoothing=smoothing))
        assert np.array_equal(empty._s.text_logprobs(x), np.full((2, 199), np.log(1.0 / V)))
    backoff = counted.with_settings(smoothing="stupid_backoff")
    assert backoff._s.text_logprobs(x) is None  # needs whole rows: the general path answers
    assert torch.equal(backoff.logprob_of_targets(torch.from_numpy(x)).float(),
                       backoff.target_logprobs(torch.from_numpy(x))[0])


def test_threads_score_one_fresh_model_alike(counted):
    x = np.random.default_rng(5).integers(0, V, (1, 3000))
    want = general_path(counted, x)
    fresh = NgramModel(counted.config, ngram_counts._Tables(dict(counted._t.primary)))  # no index built yet
    with ThreadPoolExecutor(4) as pool:  # (an exception in a thread is raised here)
        results = list(pool.map(lambda _: fresh._s.text_logprobs(x), range(4)))
    assert len(results) == 4 and all(np.array_equal(r, want) for r in results)


def test_key_index_finds_exactly_the_stored_keys():
    rng = np.random.default_rng(0)
    cases = [np.unique(rng.integers(0, 10**9, 50_000)), np.arange(0, 1 << 40, 1 << 30, dtype=np.int64),
             np.array([7], dtype=np.int64), np.zeros(0, dtype=np.int64), np.arange(5000, dtype=np.int64) * 81]
    for keys in cases:
        index = KeyIndex(keys)
        query = np.concatenate([keys, keys + 1, rng.integers(-100, 10**9, 5000), [-1, -81, 0]]).astype(np.int64)
        pos = np.minimum(np.searchsorted(keys, query), max(keys.size - 1, 0))
        want = np.where((keys.size > 0) & (keys[pos] == query) if keys.size else False, pos, -1)
        assert np.array_equal(index.find(query), want)


def test_compact_format_loads_back_and_format1_still_loads(counted):
    x = torch.from_numpy(np.random.default_rng(9).integers(0, V, (2, 80)))
    compact, old = counted.state_tensors(), format1_tensors(counted._t.primary, 5)
    assert int(compact["format"][0]) == FORMAT_VERSION and "format" not in old
    assert set(old) - set(compact) == {f"context{m}.keys" for m in range(1, 5)} | {f"level{j}.cont" for j in range(1, 5)}
    assert sum(t.nbytes for t in compact.values()) * 3 < sum(t.nbytes for t in old.values())
    for tensors in (compact, old):
        loaded = NgramModel.from_state(counted.config, tensors)
        for name, array in counted._t.primary.items():  # the derived tables are the counted ones
            assert np.array_equal(loaded._t.primary[name], array), name
        assert torch.equal(loaded.logits(x), counted.logits(x))
        assert torch.equal(loaded.logprob_of_targets(x), counted.logprob_of_targets(x))
        view = NgramModel.from_state(NgramConfig(vocab_size=V, order=3, smoothing="mle"), tensors)
        assert torch.equal(view.logits(x), counted.with_settings(order=3, smoothing="mle").logits(x))


def test_inconsistent_tensors_are_rejected(counted):
    good = counted.state_tensors()
    with pytest.raises(LMError, match="format"):
        NgramModel.from_state(counted.config, dict(good, format=torch.tensor([FORMAT_VERSION + 1])))
    keys = good["level2.keys"].clone()
    keys[-1] = (int(keys[-1]) // V) * V + V - 1  # a bigram ending in a token that never occurred alone
    assert int(keys[-1]) > int(keys[-2])  # (still sorted: only the suffix check can catch it)
    with pytest.raises(LMError, match="not closed under suffixes"):
        NgramModel.from_state(counted.config, dict(good, **{"level2.keys": keys}))
    with pytest.raises(LMError, match="unexpected"):
        NgramModel.from_state(counted.config, dict(good, **{"context1.keys": good["level1.keys"]}))
    old = format1_tensors(counted._t.primary, 5)
    shifted = old["context3.keys"].clone()
    shifted[0] -= 1  # format 1: saved context keys that are not the ones the tables imply
    with pytest.raises(LMError, match="context3"):
        NgramModel.from_state(counted.config, dict(old, **{"context3.keys": shifted}))


def test_score_leaves_the_ranks_until_they_are_read(counted, char_tokenizer):
    chars = char_tokenizer.vocab_size
    rng = np.random.default_rng(4)
    model = NgramModel.build(rng.integers(0, chars, 3000), chars, 4, "kneser_ney")
    text = "the cat sat on the mat, said the rat.\n" * 3
    calls = []
    original = model.target_logprobs
    model.target_logprobs = lambda ids: calls.append(1) or original(ids)
    result = score(model, char_tokenizer, text)
    assert isinstance(result.tokens, TokenScores) and not calls  # bits per character need no ranks
    ids = torch.tensor([char_tokenizer.encode("\n" + text)])
    lp, rank = original(ids)
    assert result.total_nats == -sum(float(v) for v in lp[0])  # summed left to right, like before
    assert calls == [] and len(result.tokens) == len(text)
    assert [t.rank for t in result.tokens] == rank[0].tolist() and calls == [1]
    assert [t.logprob for t in result.tokens] == lp[0].tolist()
    assert [t.piece for t in result.tokens] == list(text)
    assert result.tokens[-1] == list(result.tokens)[-1] and calls == [1]  # made once
    copied = pickle.loads(pickle.dumps(result))
    assert copied.tokens == result.tokens and copied.bits_per_char == result.bits_per_char
