"""Sampling knobs: property tests of the invariants the Playground's step mode relies on, and of the NumPy
pieces generation runs (`process_rows`, `draw_one`). The knobs as `generate` applies them: test_generate.py."""

import math

import pytest
import torch
from hypothesis import given, settings as hsettings, strategies as st

from lm.errors import LMError
from lm.run.sampling import (SamplingSettings, apply_min_p, apply_repetition_penalty, apply_temperature,
                             apply_top_k, apply_top_p, apply_valid_utf8, draw_one, explain, process, process_rows)

logit_rows = st.lists(st.floats(-30, 30, allow_nan=False), min_size=1, max_size=60).map(
    lambda xs: torch.tensor(xs, dtype=torch.float32))


def kept(logits):
    return torch.isfinite(logits)


@given(logit_rows, st.integers(1, 100))
def test_top_k_keeps_min_k_v_tokens(logits, k):
    out = apply_top_k(logits, k)
    assert int(kept(out).sum()) == min(k, logits.numel())
    # every kept logit is >= every dropped one
    if (~kept(out)).any():
        assert logits[kept(out)].min() >= logits[~kept(out)].max()


@given(logit_rows, st.floats(0.01, 1.0))
def test_top_p_keeps_smallest_prefix_with_mass_p(logits, p):
    out = apply_top_p(logits, p)
    probs = torch.softmax(logits.double(), -1)
    mass = probs[kept(out)].sum().item()
    n = int(kept(out).sum())
    assert mass >= p - 1e-9 or n == logits.numel()
    # removing the least likely kept token drops the mass below p (smallest such set)
    if n > 1:
        smallest = probs[kept(out)].min().item()
        assert mass - smallest < p + 1e-9
    # kept tokens are the most likely ones
    if n < logits.numel():
        assert logits[kept(out)].min() >= logits[~kept(out)].max()


@given(logit_rows, st.floats(0.0, 2.0), st.integers(0, 70), st.floats(0.05, 1.0), st.floats(0.0, 0.9))
def test_processed_distribution_sums_to_one(logits, t, k, p, min_p):
    s = SamplingSettings(temperature=t, top_k=k, top_p=p, min_p=min_p)
    probs = torch.softmax(process(logits, s).double(), -1)
    assert math.isclose(probs.sum().item(), 1.0, abs_tol=1e-6)
    assert kept(process(logits, s)).sum() >= 1


@given(logit_rows)
def test_temperature_zero_is_argmax(logits):
    final = torch.from_numpy(process_rows(logits.double().unsqueeze(0).numpy(), SamplingSettings(temperature=0)))
    assert int(kept(final).sum()) == 1 and logits[int(final.argmax())] == logits.max()
    assert int(kept(apply_temperature(logits, 0.0)).sum()) == 1


def test_tiny_temperature_does_not_overflow():
    logits = torch.tensor([[1000.0, 999.0, -1000.0]])
    probs = explain(logits, SamplingSettings(temperature=1e-4))[-1][1]
    assert torch.isfinite(probs).all() and math.isclose(probs.sum().item(), 1.0, abs_tol=1e-6)
    assert probs[0, 0] > 0.999


def test_min_p_relative_to_top():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.1, 0.06, 0.04]))
    out = apply_min_p(logits, 0.15)  # threshold 0.075
    assert kept(out).tolist() == [True, True, True, False, False]


def test_repetition_penalty_lowers_seen_tokens():
    logits = torch.tensor([[2.0, -1.0, 3.0]])
    out = apply_repetition_penalty(logits, torch.tensor([[0, 1]]), 2.0)
    assert out.tolist() == [[1.0, -2.0, 3.0]]


def test_explain_lists_stages_in_documented_order():
    s = SamplingSettings(temperature=0.7, top_k=3, top_p=0.9, min_p=0.05, repetition_penalty=1.2)
    names = [name for name, _ in explain(torch.randn(1, 10), s, torch.tensor([[1, 2]]))]
    assert names == ["model", "repetition penalty", "temperature", "top-k", "top-p", "min-p"]


def test_same_seed_same_generator_and_it_is_local():
    s = SamplingSettings(seed=7)
    before = torch.random.get_rng_state()
    a = torch.rand(8, generator=s.generator())
    assert torch.equal(a, torch.rand(8, generator=s.generator()))
    assert not torch.equal(a, torch.rand(8, generator=s.replace(seed=8).generator()))
    assert torch.equal(before, torch.random.get_rng_state())  # the global RNG was not used


@pytest.mark.parametrize("bad", [
    {"temperature": -0.1}, {"temperature": float("nan")}, {"top_k": -1}, {"top_p": 0.0}, {"top_p": 1.5},
    {"min_p": 1.0}, {"repetition_penalty": 0.5}, {"max_new_tokens": 0}, {"max_new_tokens": 10**9},
    {"samples": 0}, {"seed": -1}, {"top_k": 2.5}, {"stop": ("",)}, {"temperature": "hot"},
])
def test_out_of_range_knobs_raise_one_line_errors(bad):
    with pytest.raises(LMError) as info:
        SamplingSettings(**bad)
    assert "\n" not in str(info.value) and next(iter(bad)) in str(info.value)


@hsettings(max_examples=50)
@given(st.floats(0, 10), st.integers(0, 500), st.floats(0.01, 1), st.integers(0, 2**40))
def test_to_query_lists_exactly_the_changed_knobs(t, k, p, seed):
    s = SamplingSettings(temperature=t, top_k=k, top_p=p, seed=seed)
    changed = {name: value for name, value, default in [("temperature", t, 1.0), ("top_k", k, 0), ("top_p", p, 1.0),
                                                        ("seed", seed, 0)] if value != default}
    assert s.to_query() == {name: str(value) for name, value in changed.items()}


def test_to_query_joins_stop_strings_into_one_value():
    stops = SamplingSettings(stop=("END", "a\x1fb", "c\\d")).to_query()
    assert stops == {"stop": "END\x1fa\\u001fb\x1fc\\\\d"}  # the separator, and the escape, escaped


def test_top_k_larger_than_vocab_is_clamped():
    logits = torch.randn(5)
    assert int(kept(apply_top_k(logits, 99)).sum()) == 5


@hsettings(max_examples=200)
@given(st.lists(st.integers(-4, 4), min_size=2, max_size=40), st.floats(0.0, 3.0), st.integers(0, 45),
       st.floats(0.05, 1.0), st.floats(0.0, 0.9), st.floats(1.0, 3.0), st.lists(st.integers(0, 39), max_size=6))
def test_numpy_pipeline_equals_torch_pipeline(values, t, k, p, min_p, penalty, seen):
    """`process_rows` (the generation hot path) keeps the same tokens, ties included, with the same
    probabilities as the documented torch `process`. Small integer logits make ties frequent."""
    logits = torch.tensor([values], dtype=torch.float64) / 2
    history = torch.tensor([[i for i in seen if i < len(values)]], dtype=torch.long)
    s = SamplingSettings(temperature=t, top_k=k, top_p=p, min_p=min_p, repetition_penalty=penalty)
    expected = torch.softmax(process(logits, s, history), -1).numpy()
    got = process_rows(logits.numpy(), s, history.numpy())
    got = torch.softmax(torch.from_numpy(got), -1).numpy()
    assert (expected > 0).tolist() == (got > 0).tolist()
    assert abs(expected - got).max() < 1e-12


def test_inverse_cdf_draw_follows_the_distribution_and_never_picks_a_cut_token():
    final = torch.log(torch.tensor([0.5, 0.0, 0.2, 0.3], dtype=torch.float64)).numpy()
    u = torch.rand(20000, generator=torch.Generator().manual_seed(0), dtype=torch.float64).numpy()
    chosen = [draw_one(final, float(x))[0] for x in u]
    counts = [chosen.count(i) / u.size for i in range(4)]
    assert counts[1] == 0
    assert abs(counts[0] - 0.5) < 0.02 and abs(counts[2] - 0.2) < 0.02 and abs(counts[3] - 0.3) < 0.02
    assert draw_one(final, 0.0)[0] == 0 and draw_one(final, 0.999999)[0] == 3
    _, weights, total = draw_one(final, 0.5)  # the weights handed back are the sampled distribution
    assert (weights / total).tolist() == pytest.approx([0.5, 0.0, 0.2, 0.3])


# -- the valid-UTF-8 stage ---------------------------------------------------------------------------------
@hsettings(max_examples=200)
@given(st.lists(st.integers(-4, 4), min_size=2, max_size=30), st.data(), st.floats(0.0, 3.0), st.integers(0, 35),
       st.floats(0.05, 1.0))
def test_utf8_stage_is_the_same_in_both_pipelines_and_never_empties_a_row(values, data, t, k, p):
    logits = torch.tensor([values], dtype=torch.float64) / 2
    logits[0, data.draw(st.integers(0, len(values) - 1))] = -math.inf  # a token the model rules out
    allowed = torch.tensor([data.draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values)))])
    s = SamplingSettings(temperature=t, top_k=k, top_p=p)
    expected = torch.softmax(process(logits, s, allowed=allowed), -1).numpy()
    got = torch.softmax(torch.from_numpy(process_rows(logits.numpy(), s, allowed=allowed.numpy())), -1).numpy()
    assert (expected > 0).tolist() == (got > 0).tolist() and abs(expected - got).max() < 1e-12
    cut = apply_valid_utf8(logits, allowed)
    assert torch.isfinite(cut).any()  # never every token cut
    if torch.isfinite(logits[allowed]).any():  # some allowed token is possible: only allowed tokens survive
        assert not torch.isfinite(cut[~allowed]).any()
    else:
        assert torch.equal(cut, logits)  # nothing allowed is possible: the row is left as it was


def test_utf8_stage_comes_first_and_only_when_on():
    allowed = torch.tensor([[True, False, True, True]])
    names = [n for n, _ in explain(torch.randn(1, 4), SamplingSettings(temperature=0.5, top_k=2), allowed=allowed)]
    assert names == ["model", "valid UTF-8", "temperature", "top-k"]
    off = SamplingSettings(temperature=0.5, valid_utf8=False)
    assert [n for n, _ in explain(torch.randn(1, 4), off, allowed=allowed)] == ["model", "temperature"]
    assert [n for n, _ in explain(torch.randn(1, 4), SamplingSettings())] == ["model", "temperature"]  # no mask given
    stages = dict(explain(torch.zeros(1, 4), SamplingSettings(), allowed=allowed))
    assert stages["valid UTF-8"][0].tolist() == pytest.approx([1 / 3, 0.0, 1 / 3, 1 / 3])


def test_valid_utf8_is_a_setting_on_by_default():
    assert SamplingSettings().valid_utf8 is True
    assert SamplingSettings(valid_utf8=False).to_query() == {"valid_utf8": "False"}
    with pytest.raises(LMError, match="valid_utf8"):
        SamplingSettings(valid_utf8="no")
