"""Tests of the n-gram family: counting, every smoothing against hand/brute-force references, the three
computation paths (step, logits, target_logprobs) agreeing, views, traces and persistence."""

from __future__ import annotations

import itertools
import threading
from collections import Counter, defaultdict

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lm.errors import LMError
from lm.models import build_model, config_from_dict
from lm.models.ngram.model import SMOOTHINGS, NgramConfig, NgramModel, kn_discounts
from lm.models.trace import NgramTrace

NORMALISED = ("mle", "addk", "kneser_ney")


# ---------------------------------------------------------------------------------------------------------
# a brute-force reference with dicts (independent of the vectorised counting)
# ---------------------------------------------------------------------------------------------------------
class Reference:
    def __init__(self, docs, V, order, k=0.01, alpha=0.4):
        self.V, self.order, self.k, self.alpha = V, order, k, alpha
        self.raw = [Counter() for _ in range(order + 1)]
        left = [defaultdict(set) for _ in range(order + 1)]
        for d in docs:
            d = list(d)
            for j in range(1, order + 1):
                for t in range(j - 1, len(d)):
                    g = tuple(d[t - j + 1:t + 1])
                    self.raw[j][g] += 1
                    if t - j >= 0:
                        left[j][g].add(d[t - j])
        self.cont = [{g: len(left[j][g]) for g in self.raw[j]} for j in range(order + 1)]

    def table(self, j, raw):
        return self.raw[j] if raw else self.cont[j]

    def children(self, j, ctx, raw):
        return {g[-1]: c for g, c in self.table(j, raw).items() if g[:-1] == ctx and c > 0}

    def discounts(self, j, raw):
        coc = Counter(c for c in self.table(j, raw).values() if c > 0)
        return kn_discounts(coc[1], coc[2], coc[3], coc[4])

    def kn(self, j, ctx, w, top):
        if j == 0:
            return 1.0 / self.V
        raw = j == top
        lower = self.kn(j - 1, ctx[1:], w, top)
        kids = self.children(j, ctx, raw)
        total = sum(kids.values())
        if total == 0:
            return lower
        D = self.discounts(j, raw)
        d = lambda c: D[min(c, 3) - 1]
        gamma = sum(d(c) for c in kids.values()) / total
        c = kids.get(w, 0)
        return max(c - d(c), 0.0) / total + gamma * lower if c else gamma * lower

    def prob(self, smoothing, history, w):
        top = min(self.order, len(history) + 1)
        ctx = tuple(history[len(history) - (top - 1):]) if top > 1 else ()
        if smoothing == "kneser_ney":
            return self.kn(top, ctx, w, top)
        if smoothing == "stupid_backoff":
            return self.stupid(top, ctx, w)
        for j in range(top, 0, -1):  # longest seen suffix
            c_ctx = ctx[len(ctx) - (j - 1):] if j > 1 else ()
            kids = self.children(j, c_ctx, True)
            total = sum(kids.values())
            if total:
                if smoothing == "mle":
                    return kids.get(w, 0) / total
                return (kids.get(w, 0) + self.k) / (total + self.k * self.V)
        return 1.0 / self.V

    def stupid(self, j, ctx, w):
        if j == 0:
            return 1.0 / self.V
        kids = self.children(j, ctx, True)
        total = sum(kids.values())
        if total and kids.get(w, 0):
            return kids[w] / total
        return self.alpha * self.stupid(j - 1, ctx[1:], w)


def history_probs(model: NgramModel, history) -> np.ndarray:
    """Next-token probabilities (renormalised scores for stupid back-off) after `history` via the step path."""
    w = model.order - 1
    hist = tuple(history[max(0, len(history) - w):]) if w else ()
    hist = (-1,) * (w - len(hist)) + hist
    row = model._s.history_probs(hist)
    return row / row.sum() if model.config.smoothing == "stupid_backoff" else row


def tiny_docs():
    return [[0, 1, 2, 0, 1, 3, 0, 1, 2, 2, 0, 3, 1, 0, 1, 2], [2, 2, 1, 0, 3, 3, 1, 0, 1, 2, 3]]


# ---------------------------------------------------------------------------------------------------------
# counting and exact values
# ---------------------------------------------------------------------------------------------------------
def test_mle_matches_hand_counts():
    ids = [0, 1, 0, 2, 0, 1]  # bigrams: 01 10 02 20 01
    m = NgramModel.build(ids, 4, 2, "mle")
    p = history_probs(m, [0])
    assert p == pytest.approx([0, 2 / 3, 1 / 3, 0])
    assert history_probs(m, [2]) == pytest.approx([1, 0, 0, 0])
    # token 3 never occurs: context unseen, so the longest seen suffix (the empty context) is used
    assert history_probs(m, [3]) == pytest.approx([3 / 6, 2 / 6, 1 / 6, 0])
    tokens, counts = m.counts_after([0])
    assert tokens.tolist() == [1, 2] and counts.tolist() == [2, 1]
    lp, rank = m.target_logprobs(torch.tensor([[0, 1, 0, 3]]))
    assert lp[0, 0].item() == pytest.approx(np.log(2 / 3), abs=1e-6)
    assert lp[0, 2].item() == -np.inf  # 3 never followed 0
    assert rank[0].tolist() == [1, 1, 3]


def test_raw_and_continuation_counts_match_reference():
    docs = tiny_docs()
    m = NgramModel.build(None, 5, 4, documents=docs)
    ref = Reference(docs, 5, 4)
    tables = m._t
    for j in range(1, 5):
        level = tables.levels[j]
        got = {}
        for e in range(level.keys.size):
            ctx_id, tok = divmod(int(level.keys[e]), 5)
            got[(j, ctx_id, tok)] = int(level.raw.counts[e])
        assert sum(got.values()) == sum(ref.raw[j].values())
        assert sorted(got.values()) == sorted(ref.raw[j].values())
        for g, c in ref.raw[j].items():  # every reference n-gram found with the same counts
            cid = m._s.lookup_context(list(g[:-1]))
            e, found = level.find(np.array([cid]), np.array([g[-1]]))
            assert found[0] and level.raw.counts[e[0]] == c
            if j < 4:
                assert level.cont.counts[e[0]] == ref.cont[j][g]


@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize("smoothing", SMOOTHINGS)
def test_matches_brute_force_reference(order, smoothing):
    docs = tiny_docs()
    V = 6  # token 4 and 5 never occur
    m = NgramModel.build(None, V, order, smoothing, documents=docs, k=0.5)
    ref = Reference(docs, V, order, k=0.5)
    histories = [h for n in range(order) for h in itertools.product(range(V), repeat=n)]
    for history in histories:
        got = history_probs(m, list(history))
        want = np.array([ref.prob(smoothing, list(history), w) for w in range(V)])
        if smoothing == "stupid_backoff":
            assert np.allclose(got, want / want.sum(), rtol=1e-12, atol=1e-15), history  # renormalised scores
        else:
            assert np.allclose(got, want, rtol=0, atol=1e-9), history


def test_kn_discount_formula_and_guards():
    n1, n2, n3, n4 = 100, 40, 20, 12
    y = n1 / (n1 + 2 * n2)
    assert kn_discounts(n1, n2, n3, n4) == pytest.approx(
        (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3))
    for counts in itertools.product([0, 1, 5], repeat=4):
        d = kn_discounts(*counts)
        assert all(0 < d[i] <= i + 1 for i in range(3)), counts


def test_documents_do_not_share_ngrams():
    joined = NgramModel.build([0, 1, 2, 3], 4, 2, "mle")
    split = NgramModel.build(None, 4, 2, "mle", documents=[[0, 1], [2, 3]])
    assert joined.counts_after([1])[0].tolist() == [2]
    assert split.counts_after([1])[0].tolist() == []
    assert split.num_tokens == 4
    with pytest.raises(LMError):
        NgramModel.build([0, 1], 4, 2, documents=[[0, 1]])


# ---------------------------------------------------------------------------------------------------------
# proper distributions (property based)
# ---------------------------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(
    V=st.integers(2, 7),
    order=st.integers(1, 6),
    data=st.data(),
)
def test_distributions_are_proper(V, order, data):
    corpus = data.draw(st.lists(st.integers(0, V - 2), min_size=0, max_size=80))  # id V-1 never seen
    model = NgramModel.build(corpus, V, order)
    histories = data.draw(st.lists(st.lists(st.integers(0, V - 1), min_size=1, max_size=8), min_size=1,
                                   max_size=4))
    for smoothing in SMOOTHINGS:
        m = model.with_settings(smoothing=smoothing)
        for h in histories:
            lg = m.logits(torch.tensor([h]))[0].double()  # [T, V]
            p = lg.exp()
            assert torch.all(p >= 0)
            if smoothing in NORMALISED:
                assert torch.allclose(p.sum(-1), torch.ones(len(h), dtype=torch.float64), atol=1e-6)
            if smoothing in ("kneser_ney", "addk", "stupid_backoff"):
                assert torch.all(p > 0)  # no zero probabilities, seen or unseen
            # float64 rows of the cached path are proper to 1e-12
            if smoothing in NORMALISED:
                assert abs(history_probs(m, h).sum() - 1) < 1e-12


def test_random_seen_and_unseen_contexts_sum_to_one():
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 20, 3000)
    model = NgramModel.build(ids, 25, 5)
    seen = [list(ids[s:s + 4]) for s in rng.integers(0, 2990, 30)]
    unseen = [list(rng.integers(0, 25, 4)) for _ in range(30)]
    for smoothing in NORMALISED:
        m = model.with_settings(smoothing=smoothing)
        for h in seen + unseen:
            assert abs(history_probs(m, h).sum() - 1) < 1e-9


# ---------------------------------------------------------------------------------------------------------
# the three paths agree
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("smoothing", SMOOTHINGS)
def test_step_logits_and_target_logprobs_agree(smoothing):
    rng = np.random.default_rng(2)
    ids = rng.integers(0, 7, 500)
    m = NgramModel.build(ids, 9, 4, smoothing)
    x = torch.from_numpy(rng.integers(0, 9, (3, 40)))
    full = m.logits(x)
    assert full.shape == (3, 40, 9) and full.dtype == torch.float32
    state, steps = m.start(3), []
    for t in range(40):
        out, state = m.step(x[:, t], state)
        steps.append(out)
    stepped = torch.stack(steps, 1)
    assert torch.equal(stepped, full)  # same arithmetic, bit for bit
    logprobs = torch.log_softmax(full.double(), -1)[:, :-1].gather(-1, x[:, 1:, None])[..., 0]
    lp, rank = m.target_logprobs(x)
    assert lp.shape == rank.shape == (3, 39)
    finite = torch.isfinite(logprobs)
    assert torch.equal(finite, torch.isfinite(lp))
    assert torch.allclose(lp.double()[finite], logprobs[finite], atol=1e-5)
    fast = m.logprob_of_targets(x)
    assert torch.allclose(fast[finite], logprobs[finite], atol=1e-9)
    want_rank = (torch.log_softmax(full.double(), -1)[:, :-1] > logprobs[..., None]).sum(-1) + 1
    assert torch.equal(rank, want_rank)
    # prefill equals stepping through the same tokens
    pre, pstate = m.prefill(x[:, :25], m.start(3))
    assert torch.equal(pre, full[:, 24]) and torch.equal(pstate, x[:, 25 - 3:25])
    nxt, _ = m.step(x[:, 25], pstate)
    assert torch.equal(nxt, full[:, 25])


def test_base_class_target_logprobs_agrees():
    from lm.models.base import LanguageModel

    rng = np.random.default_rng(3)
    m = NgramModel.build(rng.integers(0, 6, 400), 6, 3)
    x = torch.from_numpy(rng.integers(0, 6, (2, 30)))
    lp, rank = m.target_logprobs(x)
    base_lp, base_rank = LanguageModel.target_logprobs(m, x)
    assert torch.allclose(lp, base_lp, atol=1e-5)
    assert torch.equal(rank, base_rank)


def test_order_one_and_histories_longer_than_context():
    m = NgramModel.build([0, 0, 1, 2], 3, 1)
    assert m.context_length == 0 and m.start(2).shape == (2, 0)
    out, state = m.step(torch.tensor([1, 2]), m.start(2))
    assert state.shape == (2, 0) and torch.equal(out[0], out[1])  # no history: the same unigram row
    assert out.exp().sum(-1).sub(1).abs().max() < 1e-6
    m3 = NgramModel.build([0, 1, 2, 0, 1, 2], 3, 3, "mle")
    long = torch.tensor([[2, 2, 2, 2, 0, 1]])
    assert torch.equal(m3.logits(long)[0, -1], m3.logits(torch.tensor([[0, 1]]))[0, -1])


# ---------------------------------------------------------------------------------------------------------
# views, persistence, robustness
# ---------------------------------------------------------------------------------------------------------
def test_with_settings_views_equal_fresh_builds():
    rng = np.random.default_rng(4)
    ids = rng.integers(0, 5, 700)
    big = NgramModel.build(ids, 5, 6)
    x = torch.from_numpy(rng.integers(0, 5, (1, 50)))
    for order in range(1, 7):
        for smoothing in SMOOTHINGS:
            view = big.with_settings(order=order, smoothing=smoothing, k=0.3)
            fresh = NgramModel.build(ids, 5, order, smoothing, k=0.3)
            assert view._t is big._t  # shares the arrays
            assert view.max_order == 6 and view.order == order and view.context_length == order - 1
            assert torch.equal(view.logits(x), fresh.logits(x)), (order, smoothing)
            assert view.num_parameters() == fresh.num_parameters()
    assert big.config.order == 6 and big.config.smoothing == "kneser_ney"  # the original is untouched
    with pytest.raises(LMError):
        big.with_settings(order=7)
    with pytest.raises(LMError):
        big.with_settings(smoothing="good_turing")


def test_state_tensors_round_trip():
    rng = np.random.default_rng(5)
    m = NgramModel.build(None, 8, 4, "kneser_ney", documents=[rng.integers(0, 8, 300), rng.integers(0, 8, 50)])
    tensors = m.state_tensors()
    # the compact format (lm.models.ngram.storage): the n-gram tables only, in narrow integer types
    assert not any(name.startswith("context") or name.endswith(".cont") for name in tensors)
    assert tensors["level4.keys"].dtype == torch.int32 and tensors["level1.counts"].dtype == torch.uint8  # counts <= 255
    cfg = config_from_dict(m.config.to_dict())
    loaded = build_model(cfg, tensors)
    x = torch.from_numpy(rng.integers(0, 8, (2, 30)))
    assert torch.equal(loaded.logits(x), m.logits(x))
    assert loaded.num_parameters() == m.num_parameters() == sum(
        tensors[f"level{j}.keys"].numel() for j in range(1, 5))
    # a view saves only the orders it uses, and loads back equal
    view = m.with_settings(order=2, smoothing="mle")
    small = NgramModel.from_state(view.config, view.state_tensors())
    assert small.max_order == 2 and torch.equal(small.logits(x), view.logits(x))
    # a lower-order config over higher-order tensors is a view
    low = NgramModel.from_state(NgramConfig(vocab_size=8, order=3), tensors)
    assert torch.equal(low.logits(x), m.with_settings(order=3).logits(x))


def test_from_state_rejects_mismatches():
    m = NgramModel.build([0, 1, 2, 1, 0, 2, 2], 3, 3)
    good = m.state_tensors()
    with pytest.raises(LMError):
        NgramModel.from_state(NgramConfig(vocab_size=4, order=3), good)
    with pytest.raises(LMError):
        NgramModel.from_state(NgramConfig(vocab_size=3, order=4), good)
    for name in ["level2.keys", "level3.counts", "meta"]:
        broken = dict(good)
        del broken[name]
        with pytest.raises(LMError):
            NgramModel.from_state(m.config, broken)
    broken = dict(good, **{"level2.keys": good["level2.keys"].flip(0)})
    with pytest.raises(LMError):
        NgramModel.from_state(m.config, broken)
    broken = dict(good, **{"level1.counts": good["level1.counts"][:-1]})
    with pytest.raises(LMError):
        NgramModel.from_state(m.config, broken)
    broken = dict(good, **{"level3.counts": good["level3.counts"].float()})
    with pytest.raises(LMError):
        NgramModel.from_state(m.config, broken)
    broken = dict(good, extra=torch.zeros(3, dtype=torch.long))
    with pytest.raises(LMError):
        NgramModel.from_state(m.config, broken)


def test_config_validation():
    for bad in [{"vocab_size": 0}, {"vocab_size": 5, "order": 0}, {"vocab_size": 5, "order": 11},
                {"vocab_size": 5, "smoothing": "witten_bell"}, {"vocab_size": 5, "k": 0},
                {"vocab_size": 5, "backoff_alpha": 1.5}, {"vocab_size": 5, "order": 2.5}, {"vocab_size": True}]:
        with pytest.raises(LMError):
            NgramConfig(**bad)
    with pytest.raises(LMError):
        config_from_dict({"family": "ngram", "vocab_size": 5, "order": "x"})
    cfg = config_from_dict({"family": "ngram", "vocab_size": 5, "order": 10, "smoothing": "mle"})
    assert isinstance(cfg, NgramConfig) and cfg.order == 10


def test_unseen_contexts_and_unknown_ids():
    m = NgramModel.build([0, 1, 0, 1, 2], 10, 3)  # ids 3..9 never seen
    x = torch.tensor([[7, 8, 9, 9, 3, 0, 1]])
    for smoothing in SMOOTHINGS:
        v = m.with_settings(smoothing=smoothing)
        out = v.logits(x)
        assert out.shape == (1, 7, 10) and not torch.isnan(out).any()
        v.target_logprobs(x)
        v.trace(x[0])
    # an untrained model (no counts at all) is uniform, whatever the smoothing
    empty = build_model(NgramConfig(vocab_size=4, order=3, smoothing="mle"))
    assert torch.allclose(empty.logits(torch.tensor([[1, 2]])).exp(), torch.full((1, 2, 4), 0.25))
    assert NgramModel.build([], 4, 2).num_parameters() == 0
    with pytest.raises(LMError):
        m.logits(torch.tensor([[0, 10]]))
    with pytest.raises(LMError):
        m.step(torch.tensor([-1]), m.start(1))
    with pytest.raises(LMError):
        m.step(torch.tensor([1]), torch.zeros(1, 5, dtype=torch.long))
    with pytest.raises(LMError):
        m.logits(torch.tensor([0.5, 1.0]))
    with pytest.raises(LMError):
        NgramModel.build([0, 1, 12], 10, 2)
    with pytest.raises(LMError):
        NgramModel.build([[0, 1], [1, 2]], 10, 2)


# ---------------------------------------------------------------------------------------------------------
# trace
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("smoothing", SMOOTHINGS)
def test_trace_rows_are_consistent(smoothing):
    docs = tiny_docs()
    m = NgramModel.build(None, 6, 3, smoothing, documents=docs)
    x = torch.tensor([0, 1, 2, 5, 0, 1, 3, 3, 3])
    tr = m.trace(x)
    assert isinstance(tr, NgramTrace) and tr.order == 3 and tr.smoothing == smoothing
    assert tr.probabilities.shape == (9, 6) and len(tr.rows) == 8
    assert torch.allclose(tr.probabilities.double().sum(-1), torch.ones(9, dtype=torch.float64), atol=1e-5)
    ref = Reference(docs, 6, 3)
    for t, rows in enumerate(tr.rows):
        target = int(x[t + 1])
        assert [r.order for r in rows] == list(range(min(3, t + 2), 0, -1))  # highest first
        top = rows[0]
        for r in rows:
            assert r.context == x[t - r.order + 2:t + 1].tolist()
        if smoothing != "stupid_backoff":
            assert top.probability == pytest.approx(float(tr.probabilities[t, target]), abs=1e-6)
        else:
            scores = np.array([ref.prob(smoothing, x[:t + 1].tolist(), w) for w in range(6)])
            assert top.probability == pytest.approx(scores[target], rel=1e-9)
        for r in rows:
            want = Counter({g[-1]: c for g, c in (ref.raw[r.order] if (r is top or smoothing != "kneser_ney")
                                                  else ref.cont[r.order]).items()
                            if list(g[:-1]) == r.context})
            assert r.target_count == want[target]
            assert r.context_count == sum(want.values())
            assert r.distinct_continuations == sum(1 for c in want.values() if c > 0)
            assert 0 <= r.weight <= 1
        if smoothing == "kneser_ney":  # p_k = discounted own mass + weight * p_{k-1}
            for hi, lo in itertools.pairwise(rows):
                if hi.context_count > 0:
                    assert hi.probability >= hi.weight * lo.probability - 1e-12
                else:
                    assert hi.probability == pytest.approx(lo.probability) and hi.weight == 1.0
    tr.to_json()


def test_mle_zero_is_explained_in_notes():
    strings = ["t", "h", "e", " ", "q"]
    m = NgramModel.build([0, 1, 2, 3, 0, 1, 2, 3, 4], 5, 5, "mle")  # 'the the q'
    x = torch.tensor([3, 0, 1, 2, 3, 4])  # ' the q': every step was seen in training
    lp, _ = m.target_logprobs(x[None])
    assert torch.isfinite(lp).all()
    assert not any("MLE" in n for n in m.trace(x, token_strings=strings).notes)
    x = torch.tensor([0, 1, 2, 3, 1])  # 'h' never followed 'the '
    tr = m.trace(x, token_strings=strings)
    lp, _ = m.target_logprobs(x[None])
    assert lp[0, -1].item() == -np.inf and tr.rows[-1][0].probability == 0.0
    assert any("'h' never followed 'the '" in n and "MLE" in n for n in tr.notes), tr.notes
    tr_ids = m.trace(x)
    assert any("[1] never followed [0, 1, 2, 3]" in n for n in tr_ids.notes), tr_ids.notes
    with pytest.raises(LMError):
        m.trace(x, token_strings=["a"])


# ---------------------------------------------------------------------------------------------------------
# scale and threads
# ---------------------------------------------------------------------------------------------------------
def test_vectorised_counting_handles_200k_tokens_at_order_7():
    rng = np.random.default_rng(6)
    # text-like: a random walk over a small vocabulary with repeated phrases
    phrases = rng.integers(0, 60, (300, 12))
    ids = phrases[rng.integers(0, 300, 200_000 // 12)].reshape(-1)
    m = NgramModel.build(ids, 64, 7)
    assert m.num_tokens == ids.size
    assert m._t.levels[1].raw.counts.sum() == ids.size
    for j in range(1, 8):
        assert m._t.levels[j].raw.counts.sum() == ids.size - (j - 1)
    x = torch.from_numpy(ids[:2000])[None]
    lp = m.logprob_of_targets(x)
    assert torch.isfinite(lp).all() and lp.mean() > -1.0  # repeated phrases are very predictable


def test_threads_share_a_model():
    rng = np.random.default_rng(7)
    m = NgramModel.build(rng.integers(0, 12, 2000), 12, 4)
    x = torch.from_numpy(rng.integers(0, 12, (1, 300)))
    want = m.logits(x)
    results, errors = [], []

    def run():
        try:
            state, rows = m.start(1), []  # m's caches start cold and fill concurrently
            for t in range(x.shape[1]):
                out, state = m.step(x[:, t], state)
                rows.append(out)
            results.append(torch.stack(rows, 1))
        except Exception as exc:  # noqa: BLE001 - any failure in a thread is reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors and len(results) == 4
    assert all(torch.equal(r, want) for r in results)


def test_binary_search_and_dense_lookups_agree(monkeypatch):
    from lm.models.ngram import counts as ngram_counts

    rng = np.random.default_rng(8)
    ids = rng.integers(0, 9, 3000)
    x = torch.from_numpy(rng.integers(0, 9, (2, 60)))
    dense = NgramModel.build(ids, 9, 5)
    assert dense._t.dense[1] is not None
    monkeypatch.setattr(ngram_counts, "_DENSE_LOOKUP_ENTRIES", 0)  # every order falls back to binary search
    searched = NgramModel.build(ids, 9, 5)
    assert all(d is None for d in searched._t.dense[1:])
    assert torch.equal(dense.logits(x), searched.logits(x))
    s1, s2, a, b = dense.start(2), searched.start(2), [], []
    for t in range(60):
        o1, s1 = dense.step(x[:, t], s1)
        o2, s2 = searched.step(x[:, t], s2)
        a.append(o1)
        b.append(o2)
    assert torch.equal(torch.stack(a), torch.stack(b))
