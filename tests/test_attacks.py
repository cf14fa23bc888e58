"""Attacks: properties, the exact oracles of the maintainers' notes, and public-code regressions."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from leakage_core.attacks import ATTACKS, class_impacts, ebi, existence, idlg, ilrg, llbg, llg
from leakage_core.attacks._common import greedy_counts
from leakage_core.counts import round_to_total
from leakage_core.federated import LastLayerUpdate, last_layer_gradients

from attack_helpers import LinearHead, summed_update


def options(name, model, aux):
    return {"model": model, "aux": aux}  # every attack takes both and uses what it needs


@settings(max_examples=25, deadline=None)
@given(
    c=st.integers(2, 20),
    d=st.integers(1, 12),
    n_per_step=st.integers(1, 40),
    steps=st.sampled_from([1, 2, 5]),
    seed=st.integers(0, 10_000),
    name=st.sampled_from(sorted(ATTACKS)),
)
def test_attack_properties(c, d, n_per_step, steps, seed, name):
    rng = np.random.default_rng(seed)
    n = n_per_step * steps
    model = LinearHead(2, c, d=d, window_size=4, seed=seed)
    w = model.classifier.weight.detach().double().numpy()
    b = model.classifier.bias.detach().double().numpy()
    y = rng.integers(0, c, n)
    h = model.features(rng.normal(size=(n, 4, 2))).detach().double().numpy()
    update = summed_update(h, y, w, b, steps)
    m = max(30, n)  # lmmse simulates batches of N auxiliary windows: the server holds at least N
    aux = (rng.normal(size=(m, 4, 2)).astype(np.float32), rng.integers(0, c, m))
    out = ATTACKS[name](update, **options(name, model, aux))
    again = ATTACKS[name](update, **options(name, model, aux))
    assert out.dtype == np.int64 and out.shape == (c,)
    assert out.min() >= 0 and out.sum() == n
    np.testing.assert_array_equal(out, again)


# ---- oracle 1: zero-initialised classifier --------------------------------------------------------


@pytest.mark.parametrize("steps", [1, 2, 5])
@pytest.mark.parametrize("seed", range(5))
def test_zero_classifier_llbg_and_ilrg_exact(steps, seed):
    rng = np.random.default_rng(seed)
    c, d, n = 9, 16, 100
    y = rng.choice(c, size=n, p=rng.dirichlet(np.ones(c) * 0.5))
    h = rng.normal(size=(n, d))
    update = summed_update(h, y, np.zeros((c, d)), np.zeros(c), steps)
    truth = np.bincount(y, minlength=c)
    model = LinearHead(1, c, d=d)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.zero_()
    np.testing.assert_array_equal(llbg(update), truth)
    np.testing.assert_array_equal(ilrg(update, probabilities="uniform"), truth)
    np.testing.assert_array_equal(ilrg(update, model=model), truth)


def test_llbg_true_untrained_confidence_is_exact_on_a_zero_classifier():
    # the true untrained confidence is 1/C: passed as an array it must give the same exact counts as None
    c, d, n = 9, 16, 100
    for seed in range(20):
        rng = np.random.default_rng(seed)
        y = rng.choice(c, size=n, p=rng.dirichlet(np.ones(c) * 0.5))
        update = summed_update(rng.normal(size=(n, d)), y, np.zeros((c, d)), np.zeros(c), 1)
        truth = np.bincount(y, minlength=c)
        np.testing.assert_array_equal(llbg(update), truth)
        np.testing.assert_array_equal(llbg(update, confidence=np.full(c, 1.0 / c)), truth)
        uniform = np.full(c, 1.0 / c)
        np.testing.assert_array_equal(llbg(update, confidence=(uniform, uniform)), truth)


def test_llbg_confidence_array_means_true_class_probability():
    # a batch whose windows all give probability q to their true class and (1-q)/(C-1) to each other:
    # the bias gradient is (off_c * N - n_c (1 - q + off_c)) / N with off_c = (1-q)/(C-1) exactly
    c, n, q = 4, 40, 0.7
    y = np.repeat(np.arange(c), [20, 10, 10, 0])
    off = (1 - q) / (c - 1)
    p = np.full((n, c), off)
    p[np.arange(n), y] = q
    b = (p.sum(0) - np.bincount(y, minlength=c)) / n
    update = LastLayerUpdate(np.zeros((c, 1)), b, n)
    np.testing.assert_array_equal(
        llbg(update, confidence=(np.full(c, q), np.full(c, off))), np.bincount(y, minlength=c)
    )
    with pytest.raises(ValueError, match="mean probability of its true class"):
        llbg(update, confidence=np.full(c, 1.5))


# ---- oracle 2: iLRG exact with the true per-class probability vectors ------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_ilrg_exact_with_true_class_probabilities(seed):
    rng = np.random.default_rng(seed)
    c, d, n = 6, 20, 60
    w, b = rng.normal(size=(c, d)), rng.normal(size=c)
    prototypes = rng.normal(size=(c, d))  # all windows of a class share one feature vector
    y = rng.integers(0, c, n)
    update = LastLayerUpdate(*last_layer_gradients(prototypes[y], y, w, b), n)
    z = prototypes @ w.T + b
    true_p = np.exp(z - z.max(1, keepdims=True))
    true_p /= true_p.sum(1, keepdims=True)
    np.testing.assert_array_equal(ilrg(update, probabilities=true_p), np.bincount(y, minlength=c))


@pytest.mark.parametrize("seed", range(3))
def test_ilrg_model_probabilities_exact_for_a_label_exclusive_batch(seed):
    # one class, one feature vector: every e_c equals that vector, so the estimated P is the true one
    rng = np.random.default_rng(seed)
    c, d = 6, 10
    model = LinearHead(1, c, d=d, seed=seed)
    w = model.classifier.weight.detach().double().numpy()
    b = model.classifier.bias.detach().double().numpy()
    label = int(rng.integers(0, c))
    y = np.full(40, label)
    h = np.repeat(rng.normal(size=(1, d)), 40, axis=0)
    update = LastLayerUpdate(*last_layer_gradients(h, y, w, b), 40)
    np.testing.assert_array_equal(ilrg(update, model=model), np.bincount(y, minlength=c))


# ---- oracle 3: iDLG with one window and ReLU features -----------------------------------------------


@pytest.mark.parametrize("label", range(5))
def test_idlg_single_window_relu(label):
    rng = np.random.default_rng(label)
    h = np.abs(rng.normal(size=(1, 10)))
    update = LastLayerUpdate(
        *last_layer_gradients(h, np.array([label]), rng.normal(size=(5, 10)), rng.normal(size=5)), 1
    )
    assert idlg(update).tolist() == [int(i == label) for i in range(5)]


# ---- regressions of public-code bugs ---------------------------------------------------------------


def test_stage2_compensates_the_chosen_class_not_a_stale_index():
    # stage 1 adds classes 0, 1, 2; stage 2 must keep moving windows to whichever class is most negative
    counts = greedy_counts(np.array([-0.6, -0.3, -0.1, 0.2]), np.full(4, -0.1), 10)
    assert counts.tolist() == [6, 3, 1, 0]


def test_stage1_never_proposes_more_than_n_classes():
    counts = greedy_counts(np.array([-0.5, -0.1, -0.4, -0.3, 0.2]), np.full(5, -0.1), 2)
    assert counts.tolist() == [1, 0, 1, 0, 0]  # the two most negative, nothing else
    update = LastLayerUpdate(np.zeros((5, 3)), np.array([-0.5, -0.1, -0.4, -0.3, 1.3]), 2)
    assert llbg(update).sum() == ebi(update).sum() == 2


@pytest.mark.parametrize(
    "x,n,expected",
    [
        (np.array([2.6, 2.6, 1.8]), 7, [3, 2, 2]),  # floors sum to 5 < 7: add (public code subtracted)
        (np.array([3.9, 3.9, 0.2]), 6, [3, 3, 0]),  # floors sum to 6 == n
        (np.array([4.1, 3.2, 1.0]), 7, [4, 3, 0]),  # floors sum to 8 > 7: remove from smallest fraction
        (np.array([-2.0, 5.5, 0.4]), 6, [0, 6, 0]),  # negatives clipped first
    ],
)
def test_round_to_total_repairs_in_both_directions(x, n, expected):
    out = round_to_total(x, n)
    assert out.tolist() == expected and out.sum() == n


@pytest.mark.parametrize("x", [[1e15, 3.0, 0.0], [np.inf, 1.0, 2.0], [1e300, 1e300, -1e300], [np.nan, 50.0, 60.0]])
def test_round_to_total_is_fast_and_valid_on_huge_or_infinite_solutions(x):
    """Regression: an ill-conditioned iLRG solve (trained model) returned ~1e15 for a class and the repair
    loop removed one window at a time, practically forever. Values are clipped to [0, N] first."""
    out = round_to_total(np.array(x), 100)
    assert out.sum() == 100 and out.min() >= 0 and out.dtype == np.int64


def test_class_summed_impact_is_zero_by_construction_but_ours_is_not():
    rng = np.random.default_rng(0)
    h = rng.normal(size=(64, 12)) + 0.5
    w, b = rng.normal(size=(7, 12)) * 0.1, np.zeros(7)
    impacts = class_impacts(h, np.full(64, -1), w, b)
    assert np.abs(impacts.sum(axis=1)).max() < 1e-12  # public LLG*: summed over all classes -> ~0
    assert np.abs(np.diag(impacts)).min() > 1e-3  # own-row impact used here


def test_ebi_with_no_negative_component_gives_all_to_argmin():
    update = LastLayerUpdate(np.zeros((4, 2)), np.array([0.3, 0.0, 0.1, 0.2]), 10)
    assert ebi(update).tolist() == [0, 10, 0, 0]


def test_existence_marks_negative_classes():
    update = LastLayerUpdate(np.zeros((4, 2)), np.array([-0.3, 0.2, -0.1, 0.2]), 9)
    out = existence(update)
    assert out.tolist() == [5, 0, 4, 0]


def test_llg_recovers_counts_with_relu_features():
    rng = np.random.default_rng(1)
    c, d, n = 5, 30, 50
    y = np.repeat(np.arange(c), [30, 20, 0, 0, 0])
    h = np.abs(rng.normal(1.0, 0.05, size=(n, d)))
    update = LastLayerUpdate(*last_layer_gradients(h, y, np.zeros((c, d)), np.zeros(c)), n)
    out = llg(update)
    assert out[2:].sum() == 0  # ReLU features: only present classes have negative row sums
    assert np.minimum(out, np.bincount(y, minlength=c)).sum() >= 0.9 * n


def test_llbg_aux_confidence_recovers_trained_like_model_counts():
    # a "trained" head: strong class-specific prototypes; LLBG with aux confidences beats the untrained rule
    rng = np.random.default_rng(3)
    c, d = 5, 5
    model = LinearHead(1, c, d=d, window_size=c)
    with torch.no_grad():
        model.proj.weight.copy_(torch.eye(d, c))
        model.proj.bias.zero_()
        model.classifier.weight.copy_(3 * torch.eye(c))
        model.classifier.bias.zero_()

    def windows(labels):
        x = np.eye(c)[labels] * 3 + rng.normal(0, 0.3, (len(labels), c))
        return x[:, :, None].astype(np.float32)

    y = np.repeat(np.arange(c), [40, 30, 20, 10, 0])
    h = model.features(windows(y)).detach().double().numpy()
    w = model.classifier.weight.detach().double().numpy()
    update = LastLayerUpdate(*last_layer_gradients(h, y, w, np.zeros(c)), len(y))
    aux_y = rng.integers(0, c, 400)
    truth = np.bincount(y, minlength=c)
    plain = np.minimum(llbg(update), truth).sum()
    informed = np.minimum(
        llbg(update, confidence="aux", model=model, aux=(windows(aux_y), aux_y), mode="eval"), truth
    ).sum()
    assert informed > plain and informed >= 90


# ---- bad input --------------------------------------------------------------------------------------


def test_bad_inputs_raise_clear_errors():
    update = LastLayerUpdate(np.zeros((4, 8)), np.array([-0.1, 0.1, 0.0, 0.0]), 10)
    wrong = LinearHead(1, 5, d=8)
    with pytest.raises(ValueError, match="attack the update with the model it was computed on"):
        ilrg(update, model=wrong)
    with pytest.raises(ValueError, match="needs the server's model"):
        ATTACKS["llg_star"](update)
    with pytest.raises(ValueError, match="aux="):
        ATTACKS["llg_plus"](update, model=LinearHead(1, 4, d=8))
    with pytest.raises(ValueError, match="probabilities='x' is not supported"):
        ilrg(update, probabilities="x")
    with pytest.raises(ValueError, match="impact"):
        llbg(update, impact="guess")
    with pytest.raises(ValueError, match="dummy"):
        ATTACKS["llg_star"](update, model=LinearHead(1, 4, d=8), dummy="ones")
    with pytest.raises(ValueError, match="LastLayerUpdate"):
        llg({"weight_grad": np.zeros((4, 8))})
    with pytest.raises(ValueError, match="aux labels"):
        ATTACKS["llg_plus"](update, model=LinearHead(1, 4, d=8), aux=(np.zeros((3, 50, 1)), np.array([0, 1, 9])))


def test_class_mean_probabilities():
    from leakage_core.attacks import class_mean_probabilities

    p = np.array([[0.8, 0.2, 0.0], [0.6, 0.4, 0.0], [0.1, 0.1, 0.8]])
    out = class_mean_probabilities(p, np.array([0, 0, 2]), 3)
    np.testing.assert_allclose(out, [[0.7, 0.3, 0.0], [1 / 3, 1 / 3, 1 / 3], [0.1, 0.1, 0.8]])
    with pytest.raises(ValueError, match="probabilities must be"):
        class_mean_probabilities(p, np.array([0, 1]), 3)


def test_train_model_rejects_float_labels():
    from leakage_core.models import TrainConfig, train_model

    with pytest.raises(ValueError, match="integer"):
        train_model(
            LinearHead(1, 3), np.zeros((4, 50, 1), np.float32), np.zeros(4), TrainConfig(epochs=1), progress=False
        )


def _greedy_loop(signal, impact, n, offset=0.0):
    """The plain-loop form of the two-stage solver (reference for the vectorised stage 2)."""
    v, m = np.asarray(signal, float).copy(), np.asarray(impact, float).copy()
    flip = m > 0
    off = np.broadcast_to(np.asarray(offset, float), v.shape).copy()
    v[flip], m[flip], off[flip] = -v[flip], -m[flip], -off[flip]
    m = np.minimum(m, -1e-12)
    counts = np.zeros(v.size, dtype=np.int64)
    neg = np.flatnonzero(v < 0)
    for c in neg[np.argsort(v[neg], kind="stable")][:n]:
        counts[c] += 1
        v[c] -= m[c]
    v -= off
    for _ in range(n - int(counts.sum())):
        c = int(np.argmin(v))
        counts[c] += 1
        v[c] -= m[c]
    return counts


@settings(max_examples=200, deadline=None)
@given(
    c=st.integers(1, 20),
    n=st.integers(1, 300),
    seed=st.integers(0, 10_000),
    ties=st.booleans(),
    offset=st.sampled_from([0.0, 0.05, -0.2]),
)
def test_vectorised_stage_2_equals_the_loop(c, n, seed, ties, offset):
    rng = np.random.default_rng(seed)
    if ties:  # exact ties between classes and impacts so small that v - m == v
        signal = rng.integers(-3, 3, c).astype(float)
        impact = rng.choice([-1.0, -0.5, -1e-20, 0.5], c)
    else:
        signal = rng.normal(0, 0.1, c)
        impact = -np.abs(rng.normal(0.01, 0.01, c)) * rng.choice([1, -1], c, p=[0.9, 0.1])
    np.testing.assert_array_equal(greedy_counts(signal, impact, n, offset), _greedy_loop(signal, impact, n, offset))


def test_llg_star_stage1_rules_follow_the_raw_or_the_corrected_sign():
    """The paper's rule declares presence from the raw row-sum sign (github.com/tklab-tud/LLG,
    Code/Predictor.py); the 'offset' rule from the offset-corrected sign. A class whose raw row sum is
    negative only because of a negative offset is 'present' for the first rule and not the second."""
    from leakage_core.attacks import solve_with_impacts

    c, d, n = 3, 4, 10
    impacts = np.array([[-1.0, -0.2, -0.2], [-0.2, -1.0, -0.2], [-0.2, -0.2, -1.0]])  # offsets o_j = -0.2
    g = np.array([-1.0, -0.19, -0.18])  # rows 1 and 2: raw sign negative, corrected sign positive
    update = LastLayerUpdate(np.repeat(g[:, None] / d, d, axis=1), np.zeros(c), n)
    paper = solve_with_impacts(update, impacts, stage1="paper")
    offset = solve_with_impacts(update, impacts, stage1="offset")
    assert (paper > 0).all() and paper.sum() == n  # stage 1 added every raw-negative class
    assert offset[1] == 0 and offset[2] == 0 and offset.sum() == n
    np.testing.assert_array_equal(paper, solve_with_impacts(update, impacts))  # "paper" is the default
    np.testing.assert_array_equal(offset, ATTACKS["llg_star"](update, impacts=impacts, stage1="offset"))
    with pytest.raises(ValueError, match="stage1"):
        solve_with_impacts(update, impacts, stage1="raw")
