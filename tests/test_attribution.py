"""Attribution: occlusion against a one-token-at-a-time reference for every family, the n-gram's exact zeros
beyond its order, and integrated gradients' completeness at the default settings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lm.data.tokenizer import Tokenizer
from lm.errors import LMError
from lm.inspect.ablation import Ablation
from lm.inspect.attribution import (COMPLETENESS_FLOOR, DEFAULT_STEPS, integrated_gradients, neutral_token, occlusion,
                                    occlusion_matrix, target_logprob)
from lm.models.ngram.model import NgramModel
from test_rnn import make as make_rnn
from test_transformer import make as make_transformer

TEXT = "the cat sat on the mat. the dog sat on the log. a cat and a dog met on a mat by the log.\n" * 3


def random_ids(n: int, vocab: int, seed: int = 0) -> list[int]:
    return torch.randint(0, vocab, (n,), generator=torch.Generator().manual_seed(seed)).tolist()


def spread(model):
    """PyTorch's RNN init gives nearly flat predictions; larger weights make attributions worth comparing."""
    with torch.no_grad():
        for param in model.parameters():
            param.mul_(4.0)
    return model


def models():
    return [make_transformer(0), spread(make_rnn("lstm", 0)), spread(make_rnn("gru", 1))]


def by_hand(model, ids: list[int], position: int, neutral: int) -> np.ndarray:
    """The definition, one occluded text at a time: log p(target | context) - the same with token j neutral."""
    full = target_logprob(model, ids, position)
    out = []
    for j in range(position):
        changed = list(ids)
        changed[j] = neutral
        out.append(full - target_logprob(model, changed, position))
    return np.array(out)


def test_neutral_token_is_a_space_or_the_unknown_token():
    spaced = Tokenizer.char("ab c")
    assert spaced.token_strings([neutral_token(spaced)]) == [" "]
    unspaced = Tokenizer.char("abc\nd")  # like the names corpus: no space at all
    assert neutral_token(unspaced) == unspaced.unk_id == 0
    bpe = Tokenizer.bpe(TEXT, 300)
    assert bpe.decode([neutral_token(bpe)]) == " "


@pytest.mark.parametrize("index", range(3))
def test_the_batched_matrix_equals_occluding_one_token_at_a_time(index):
    model = models()[index]
    ids = random_ids(30, model.vocab_size, seed=index)  # two blocks of OCCLUSION_BLOCK occluded copies
    neutral = 3
    ids = [i if i != neutral else 4 for i in ids]
    ids[5] = neutral  # a neutral token in the text: occluding it changes nothing
    matrix = occlusion_matrix(model, ids, neutral)
    for position in (1, 7, 13, 17, 23, 29):
        want = by_hand(model, ids, position, neutral)
        np.testing.assert_allclose(matrix[position, :position], want, atol=2e-5, rtol=0)
        np.testing.assert_allclose(occlusion(model, ids, position, neutral), want, atol=2e-5, rtol=0)
    assert np.all(np.triu(matrix) == 0)  # no context at or after the position itself
    assert np.all(matrix[:, 5] == 0) and np.abs(matrix[7:, :5]).max() > 1e-3


@pytest.mark.parametrize("order", [2, 3, 5])
def test_an_ngram_of_order_n_reads_exactly_n_minus_1_tokens_back(order):
    tok = Tokenizer.char(TEXT)
    model = NgramModel.build(tok.encode(TEXT), tok.vocab_size, order=order, smoothing="kneser_ney")
    ids = tok.encode("the dog sat on the cat by a log")
    neutral = neutral_token(tok)
    matrix = occlusion_matrix(model, ids, neutral)
    for position in range(1, len(ids)):
        row = matrix[position, :position]
        assert np.all(row[:max(0, position - (order - 1))] == 0.0)  # exactly zero, not merely small
        np.testing.assert_allclose(row, by_hand(model, ids, position, neutral), atol=1e-9, rtol=0)
    reach = [position - j for position in range(1, len(ids)) for j in range(position) if matrix[position, j] != 0]
    assert max(reach) == order - 1  # and the tokens within reach do matter


def test_an_mle_ngram_that_never_saw_the_target_gives_zeros_or_infinities_never_nans():
    tok = Tokenizer.char(TEXT + "z")
    model = NgramModel.build(tok.encode(TEXT), tok.vocab_size, order=3, smoothing="mle")
    ids = tok.encode("the catz")
    neutral = neutral_token(tok)
    assert target_logprob(model, ids, len(ids) - 1) == -np.inf
    matrix = occlusion_matrix(model, ids, neutral)
    assert not np.isnan(matrix).any()
    assert np.all(matrix[-1] == 0)  # impossible with or without each token: no change
    assert np.isinf(matrix).any()  # a token that made a seen continuation possible: infinitely many nats
    for position in range(1, len(ids) - 1):
        np.testing.assert_array_equal(np.nan_to_num(matrix[position, :position], nan=0.0),
                                      np.nan_to_num(by_hand(model, ids, position, neutral), nan=0.0))


@pytest.mark.parametrize("index", range(3))
def test_integrated_gradients_add_up_to_the_difference_from_the_baseline(index):
    model = models()[index]
    for seed in range(3):
        ids = random_ids(20, model.vocab_size, seed=seed)
        position = 19 - 6 * seed
        ig = integrated_gradients(model, ids, position, 3)
        assert ig.attribution.shape == (position,) and ig.steps >= DEFAULT_STEPS
        assert ig.logprob == pytest.approx(target_logprob(model, ids, position), abs=1e-5)
        delta = ig.logprob - ig.baseline_logprob
        assert abs(delta) > COMPLETENESS_FLOOR  # a real test of completeness, not a floor
        assert ig.completeness_error <= 0.05
        assert abs(ig.attribution.sum() - delta) <= 0.05 * abs(delta)


def test_integrated_gradients_of_a_neutral_token_are_zero_and_the_model_is_untouched():
    model = make_transformer(1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ids = random_ids(12, model.vocab_size)
    ids[4] = 3
    ig = integrated_gradients(model, ids, 11, 3)
    assert ig.attribution[4] == 0.0 and np.abs(ig.attribution).max() > 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_with_every_head_off_a_transformer_reads_only_the_token_before():
    model = make_transformer(2)
    ids = random_ids(10, model.vocab_size, seed=4)
    off = Ablation(heads=tuple((layer, head) for layer in range(2) for head in range(2)))
    row = occlusion(model, ids, 9, 3, off)
    assert np.all(row[:-1] == 0.0) and row[-1] != 0
    ig = integrated_gradients(model, ids, 9, 3, off)
    assert np.all(ig.attribution[:-1] == 0.0) and ig.completeness_error <= 0.05
    assert np.abs(occlusion(model, ids, 9, 3)[:-1]).max() > 1e-4  # with its heads on it reads further back


@pytest.mark.parametrize("bad", [0, 14, -1, True, 2.0])
def test_positions_outside_the_text_are_one_line_errors(bad):
    model = make_transformer(0)
    with pytest.raises(LMError, match="position"):
        occlusion(model, random_ids(14, model.vocab_size), bad, 3)


def test_an_ngram_has_no_gradients():
    tok = Tokenizer.char(TEXT)
    model = NgramModel.build(tok.encode(TEXT), tok.vocab_size, order=3)
    with pytest.raises(LMError, match="neural"):
        integrated_gradients(model, tok.encode("the cat"), 5, neutral_token(tok))
