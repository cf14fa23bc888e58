"""Update compression as a defence: top-k, scaled sign, quantisation; and the update's distance to the clean one."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from leakage_core.defenses import DEFENSES, Quantize, SignCompression, TopK
from leakage_core.defenses.measure import update_distance, update_vector, with_vector
from leakage_core.federated import LastLayerUpdate


def make_update(seed: int = 0, n_classes: int = 5, d: int = 7, bias: bool = True) -> LastLayerUpdate:
    rng = np.random.default_rng(seed)
    return LastLayerUpdate(
        rng.normal(size=(n_classes, d)), rng.normal(size=n_classes) if bias else None, 12, n_steps=3, lr=0.1
    )


UPDATES = [make_update(0), make_update(1, bias=False), make_update(2, n_classes=2, d=3)]


def unchanged(update: LastLayerUpdate, out: LastLayerUpdate) -> None:
    assert out.weight_grad.shape == update.weight_grad.shape
    assert (out.bias_grad is None) == (update.bias_grad is None)
    assert (out.n_windows, out.n_steps, out.lr, out.sampler) == (update.n_windows, update.n_steps, 0.1, None)


def test_registered_on_the_update_stage():
    for cls in (TopK, SignCompression, Quantize):
        assert DEFENSES[cls.name] is cls and cls.stage == "update"


@pytest.mark.parametrize("fraction", [0.05, 0.1, 0.3, 0.5, 1.0])
@pytest.mark.parametrize("update", UPDATES)
def test_topk_keeps_exactly_the_k_largest_entries(update, fraction):
    before = update_vector(update)
    out = TopK(fraction).transform_update(update, seed=0)
    unchanged(update, out)
    v = update_vector(out)
    k = math.ceil(round(fraction * v.size, 9))
    assert np.count_nonzero(v) == k  # the normal entries are all non-zero
    kept = v != 0
    np.testing.assert_array_equal(v[kept], before[kept])  # kept entries are unchanged
    assert np.abs(before[kept]).min() >= np.abs(before[~kept]).max(initial=0.0)  # and they are the largest
    np.testing.assert_array_equal(update_vector(update), before)  # the input is not modified


def test_topk_rounds_up_and_breaks_ties_by_position():
    assert TopK(0.3).kept(10) == 3 and TopK(0.31).kept(10) == 4 and TopK(0.01).kept(10) == 1
    tied = LastLayerUpdate(np.array([[1.0, -2.0, 2.0], [2.0, 0.5, -2.0]]), None, 4)
    out = TopK(0.5).transform_update(tied, seed=0)  # 3 of the four entries of magnitude 2: the first three
    np.testing.assert_array_equal(out.weight_grad, [[0.0, -2.0, 2.0], [2.0, 0.0, 0.0]])
    np.testing.assert_array_equal(TopK(0.5).transform_update(tied, seed=7).weight_grad, out.weight_grad)


@pytest.mark.parametrize("update", UPDATES)
def test_sign_sends_the_mean_magnitude_with_the_sign(update):
    before = update_vector(update)
    v = update_vector(SignCompression().transform_update(update, seed=0))
    unchanged(update, SignCompression().transform_update(update, seed=0))
    np.testing.assert_allclose(np.abs(v), np.abs(before).mean(), rtol=1e-12)
    np.testing.assert_array_equal(np.sign(v), np.sign(before))
    # the scale is ||g||_1 / D, so the L1 norm is preserved
    assert np.abs(v).sum() == pytest.approx(np.abs(before).sum(), rel=1e-12)
    np.testing.assert_array_equal(update_vector(update), before)


def test_sign_keeps_zeros():
    u = LastLayerUpdate(np.array([[0.0, 3.0], [-1.0, 0.0]]), np.array([0.0, 2.0]), 2)
    out = SignCompression().transform_update(u, seed=0)
    np.testing.assert_allclose(out.weight_grad, [[0.0, 1.0], [-1.0, 0.0]])
    np.testing.assert_allclose(out.bias_grad, [0.0, 1.0])


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("update", UPDATES)
def test_quantize_error_at_most_half_a_step_and_few_levels(update, bits):
    q = Quantize(bits)
    before = update_vector(update)
    out = q.transform_update(update, seed=0)
    unchanged(update, out)
    v = update_vector(out)
    step = np.abs(before).max() / (2 ** (bits - 1) - 1)
    assert q.step(update) == pytest.approx(step, rel=1e-12)
    assert np.abs(v - before).max() <= step / 2 * (1 + 1e-9)
    assert np.unique(v).size <= 2**bits - 1
    levels = v / step  # every value is an integer multiple of the step, within the range
    np.testing.assert_allclose(levels, np.round(levels), atol=1e-9)
    assert np.abs(levels).max() <= 2 ** (bits - 1) - 1 + 1e-9
    assert np.abs(v).max() == pytest.approx(np.abs(before).max(), rel=1e-12)  # the largest entry is a level
    np.testing.assert_array_equal(update_vector(update), before)


def test_quantize_two_bits_is_a_known_case():
    # bits = 2: levels {-s, 0, s} with s = max|g| = 4; |g| < 2 rounds to 0
    u = LastLayerUpdate(np.array([[4.0, 1.9, -2.1], [-4.0, 0.5, 3.0]]), None, 3)
    out = Quantize(2).transform_update(u, seed=0)
    np.testing.assert_array_equal(out.weight_grad, [[4.0, 0.0, -4.0], [-4.0, 0.0, 4.0]])
    assert Quantize(8).levels == 127
    zero = LastLayerUpdate(np.zeros((2, 3)), np.zeros(2), 1)
    np.testing.assert_array_equal(Quantize(8).transform_update(zero, seed=0).weight_grad, 0.0)


def test_deterministic_and_seed_free():
    u = UPDATES[0]
    for d in (TopK(0.2), SignCompression(), Quantize(4)):
        a, b = d.transform_update(u, seed=0), d.transform_update(u, seed=123)
        np.testing.assert_array_equal(a.weight_grad, b.weight_grad)
        np.testing.assert_array_equal(a.bias_grad, b.bias_grad)


@pytest.mark.parametrize(
    "make, word",
    [
        (lambda: TopK(0.0), "fraction"),
        (lambda: TopK(1.5), "fraction"),
        (lambda: TopK("0.1"), "fraction"),
        (lambda: Quantize(1), "bits"),
        (lambda: Quantize(33), "bits"),
        (lambda: Quantize(8.0), "bits"),
        (lambda: Quantize(True), "bits"),
    ],
)
def test_bad_options_fail_clearly(make, word):
    with pytest.raises(ValueError, match=word):
        make()


def test_labels_and_keys():
    assert TopK(0.1).label == "top-k 10%" and Quantize(8).label == "8-bit" and SignCompression().label
    assert TopK(0.1).key() == {"defense": "topk", "fraction": 0.1}
    assert SignCompression().key() == {"defense": "sign"}


def test_update_vector_round_trip():
    for u in UPDATES:
        v = update_vector(u)
        assert v.size == u.weight_grad.size + (0 if u.bias_grad is None else u.bias_grad.size)
        back = with_vector(u, v)
        np.testing.assert_array_equal(back.weight_grad, u.weight_grad)
        assert (back.bias_grad is None) == (u.bias_grad is None)
        if u.bias_grad is not None:
            np.testing.assert_array_equal(back.bias_grad, u.bias_grad)
    with pytest.raises(ValueError, match="vector"):
        with_vector(UPDATES[0], np.zeros(3))


def test_update_distance():
    u = UPDATES[0]
    assert update_distance(u, u) == {"relative_error": 0.0, "cosine": pytest.approx(1.0, rel=1e-12)}
    flipped = with_vector(u, -update_vector(u))
    assert update_distance(u, flipped) == {"relative_error": pytest.approx(2.0), "cosine": pytest.approx(-1.0)}
    half = with_vector(u, 0.5 * update_vector(u))
    assert update_distance(u, half) == {"relative_error": pytest.approx(0.5), "cosine": pytest.approx(1.0)}
    # the bias counts: changing only the bias changes the distance
    b = dataclasses.replace(u, bias_grad=u.bias_grad + 1.0)
    c, d = update_vector(u), update_vector(b)
    assert update_distance(u, b)["relative_error"] == pytest.approx(np.linalg.norm(d - c) / np.linalg.norm(c))
    # top-k's error is the norm of what it drops
    out = TopK(0.2).transform_update(u, seed=0)
    dropped = update_vector(u)[update_vector(out) == 0]
    assert update_distance(u, out)["relative_error"] == pytest.approx(np.linalg.norm(dropped) / np.linalg.norm(c))
    zero = with_vector(u, np.zeros(c.size))
    assert math.isnan(update_distance(u, zero)["cosine"]) and math.isnan(update_distance(zero, u)["relative_error"])
    with pytest.raises(ValueError, match="bias"):
        update_distance(u, dataclasses.replace(u, bias_grad=None))
