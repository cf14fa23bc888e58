"""Label DP by randomized response: the flips' probabilities, the guarantee, and the server's de-biasing."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from leakage_core.defenses import DEFENSES, RandomizedResponse
from leakage_core.federated import LastLayerUpdate


def update_for(n_windows: int, n_classes: int) -> LastLayerUpdate:
    return LastLayerUpdate(np.zeros((n_classes, 3)), np.zeros(n_classes), n_windows)


def test_registered_on_the_labels_stage():
    assert DEFENSES["label_dp"] is RandomizedResponse and RandomizedResponse.stage == "labels"
    assert RandomizedResponse(2.0).key() == {"defense": "label_dp", "eps": 2.0}


def test_transition_matrix():
    for c, eps in ((2, 0.5), (6, 1.0), (11, 3.0)):
        m = RandomizedResponse(eps).transition_matrix(c)
        np.testing.assert_allclose(m.sum(axis=0), 1.0, rtol=1e-12)
        p, q = m[0, 0], m[1, 0]
        assert p == pytest.approx(math.exp(eps) / (math.exp(eps) + c - 1), rel=1e-12)
        assert p / q == pytest.approx(math.exp(eps), rel=1e-12)  # the eps-DP ratio, attained
        np.testing.assert_allclose(m, m.T)


def observed_transitions(rr: RandomizedResponse, n_classes: int, per_class: int, seed: int) -> np.ndarray:
    """counts[j, i]: true class i became j, over ``per_class`` labels of each class."""
    y = np.repeat(np.arange(n_classes), per_class)
    noisy = rr.client_labels(y, n_classes, seed)
    return np.array([np.bincount(noisy[y == i], minlength=n_classes) for i in range(n_classes)]).T


def test_flips_follow_the_stated_probabilities():
    c, per_class, rr = 6, 20_000, RandomizedResponse(1.0)
    counts = observed_transitions(rr, c, per_class, seed=0)
    m = rr.transition_matrix(c)
    for i in range(c):  # per true class, the noisy labels follow column i of the transition matrix
        assert stats.chisquare(counts[:, i], per_class * m[:, i]).pvalue > 1e-3
    kept = np.trace(counts)  # all classes together: kept ~ Binomial(C * per_class, p)
    assert stats.binomtest(int(kept), c * per_class, m[0, 0]).pvalue > 1e-3
    # the test can fail: the same flips are far from the probabilities of another epsilon
    other = RandomizedResponse(1.3).transition_matrix(c)
    assert stats.chisquare(counts[:, 0], per_class * other[:, 0]).pvalue < 1e-6


def test_flipped_labels_are_uniform_over_the_other_classes():
    c, per_class = 5, 10_000
    counts = observed_transitions(RandomizedResponse(0.5), c, per_class, seed=3)
    for i in range(c):
        others = np.delete(counts[:, i], i)
        assert stats.chisquare(others).pvalue > 1e-3


def test_training_and_client_labels_are_the_same_seeded_function():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 500)
    before = y.copy()
    rr = RandomizedResponse(1.0)
    a = rr.training_labels(y, 4, seed=5)
    np.testing.assert_array_equal(a, rr.client_labels(y, 4, seed=5))
    np.testing.assert_array_equal(a, rr.training_labels(y, 4, seed=5))
    assert not np.array_equal(a, rr.training_labels(y, 4, seed=6))
    assert a.dtype == np.int64 and a.shape == y.shape and a.min() >= 0 and a.max() < 4
    np.testing.assert_array_equal(y, before)
    assert rr.client_labels(np.zeros(0, dtype=int), 4, seed=0).size == 0


def test_infinite_epsilon_keeps_every_label():
    y = np.random.default_rng(1).integers(0, 7, 2000)
    np.testing.assert_array_equal(RandomizedResponse(math.inf).client_labels(y, 7, seed=0), y)
    assert RandomizedResponse(math.inf).keep_probability(7) == 1.0
    assert RandomizedResponse(math.inf).label == "label RR eps=inf"


def test_an_int_eps_is_the_float_eps():
    assert RandomizedResponse(2).eps == 2.0 and type(RandomizedResponse(2).eps) is float
    assert RandomizedResponse(2).key() == {"defense": "label_dp", "eps": 2.0}


def test_epsilon_is_the_option_for_any_delta_and_number_of_updates():
    rr = RandomizedResponse(1.5)
    assert rr.epsilon(1e-5) == rr.epsilon(1e-3, updates=1000) == 1.5
    assert rr.epsilon(1e-5, adjacency="add_remove") == rr.epsilon(1e-5, 3, adjacency="replace") == 1.5
    with pytest.raises(ValueError, match="adjacency"):
        rr.epsilon(1e-5, adjacency="bounded")
    # delta and updates are checked as LDP.epsilon and DPSGD.epsilon check them (accounting.check_delta, check_steps)
    for delta, updates, word in ((5.0, 1, "delta"), (0.0, 1, "delta"), (1e-5, -3, "updates"), (1e-5, 2.0, "updates")):
        with pytest.raises(ValueError, match=word):
            rr.epsilon(delta, updates)
    assert rr.epsilon(0.5, np.int64(7)) == 1.5


def test_debiasing_the_expected_noisy_histogram_returns_the_truth():
    rr = RandomizedResponse(0.8)
    for n in (np.array([20.0, 5, 0, 3, 12]), np.array([0.0, 0, 9]), np.array([1.0, 1])):
        expected = rr.transition_matrix(n.size) @ n  # E[noisy histogram]
        np.testing.assert_allclose(rr.unbiased_counts(expected), n, atol=1e-9)
        u = update_for(int(n.sum()), n.size)
        np.testing.assert_array_equal(rr.debias_counts(expected, u), n.astype(int))


def test_debiased_histograms_average_to_the_truth():
    rr, truth = RandomizedResponse(1.0), np.array([20, 5, 0, 3, 12])
    c, n = truth.size, int(truth.sum())
    y = np.repeat(np.arange(c), truth)
    noisy = np.array([np.bincount(rr.client_labels(y, c, seed=s), minlength=c) for s in range(3000)])
    unbiased = np.array([rr.unbiased_counts(m) for m in noisy])
    se = unbiased.std(axis=0, ddof=1) / math.sqrt(len(unbiased))
    assert np.all(np.abs(unbiased.mean(axis=0) - truth) < 4 * se)  # unbiased: the mean converges to the truth
    assert np.all(np.abs(noisy.mean(axis=0) - truth)[[0, 2]] > 20 * se[[0, 2]])  # the raw noisy counts do not
    projected = np.array([rr.debias_counts(m, update_for(n, c)) for m in noisy])
    assert projected.dtype == np.int64 and projected.min() >= 0 and np.all(projected.sum(axis=1) == n)
    # the projection (clip, rescale, round) is biased near 0, but much closer to the truth than the noisy counts
    tv = lambda a: 0.5 * np.abs(a - truth).sum() / n  # noqa: E731
    assert tv(projected.mean(axis=0)) < 0.5 * tv(noisy.mean(axis=0))


def test_debias_counts_is_a_histogram_even_from_odd_counts():
    rr = RandomizedResponse(0.3)
    u = update_for(10, 4)
    for m in (np.array([10, 0, 0, 0]), np.array([0, 0, 0, 10]), np.array([3, 3, 2, 2])):
        before = m.copy()
        out = rr.debias_counts(m, u)
        assert out.dtype == np.int64 and out.min() >= 0 and out.sum() == 10
        np.testing.assert_array_equal(m, before)  # the input is not modified
    with pytest.raises(ValueError, match="classes"):
        rr.debias_counts(np.array([5, 5]), u)


@pytest.mark.parametrize(
    "call, word",
    [
        (lambda: RandomizedResponse(0.0), "eps"),
        (lambda: RandomizedResponse(-1.0), "eps"),
        (lambda: RandomizedResponse(math.nan), "eps"),
        (lambda: RandomizedResponse("1"), "eps"),
        (lambda: RandomizedResponse(1.0).client_labels(np.array([0, 4]), 4, 0), "labels"),
        (lambda: RandomizedResponse(1.0).client_labels(np.array([0.0, 1.0]), 4, 0), "labels"),
        (lambda: RandomizedResponse(1.0).client_labels(np.array([0, 0]), 1, 0), "n_classes"),
        (lambda: RandomizedResponse(1.0).unbiased_counts(np.array([3])), "counts"),
    ],
)
def test_errors_are_clear(call, word):
    with pytest.raises(ValueError, match=word):
        call()
