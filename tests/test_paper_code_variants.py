"""The attacks as the seed paper's public code ran them (``variant="paper_code"``) and the text's ClassAcc.

Hand-computed oracles show each documented difference from the correct attack; loop references,
written from a reading of github.com/mariusbock/leakage_har (``breaching/attacks/base_attack.py``),
check the vectorised solvers; property tests check the count contract.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leakage_core.attacks import (
    ATTACKS,
    VARIANTS,
    ebi,
    estimate_impacts,
    ilrg,
    ilrg_code,
    llbg,
    llbg_code,
    llg,
    llg_code,
    resolve_attacks,
)
from leakage_core.attacks.paper_code import (
    DummyGradientSums,
    _stale_index_stage2,
    _wainakh_code_counts,
    count_llg_star_code,
    ilrg_code_solution,
    llg_star_code_estimates,
    prepare_llg_star_code,
)
from leakage_core.study import run_attacks
from leakage_core.metrics import (
    class_acc,
    class_acc_per_class,
    class_acc_sorted,
    class_acc_sorted_per_class,
    label_confusion,
)
from leakage_core.federated import LastLayerUpdate, last_layer_gradients

from attack_helpers import LinearHead, summed_update


PAPER_CODE = ("llg", "llg_star", "llbg", "ilrg")


def row_sum_update(g, n, steps=1):
    """An update whose weight gradient is one column: its row sums are ``g``."""
    g = np.asarray(g, dtype=np.float64)
    return LastLayerUpdate(g[:, None], np.zeros_like(g), n, n_steps=steps)


def bias_update(b, n, steps=1):
    b = np.asarray(b, dtype=np.float64)
    return LastLayerUpdate(np.zeros((b.size, 2)), b, n, n_steps=steps)


# ---- loop references of the code's solvers (from the reading; the module's versions are vectorised)


def wainakh_loop(g, m, offset, n):
    """'wainakh-simple' / 'wainakh-whitebox' recovery, label by label."""
    v = np.array(g, dtype=np.float64)
    labels = []
    for idx in range(v.size):
        if v[idx] < 0:
            labels.append(idx)
            v[idx] -= m
    v = v - offset
    while len(labels) < n:
        labels.append(int(np.argmin(v)))
        v[v.size - 1] -= m  # the stale loop index
    return np.bincount(labels[:n], minlength=v.size)


def llbg_loop(b, n, conf=0.0):
    """'llbgAVG', label by label."""
    v = np.array(b, dtype=np.float64)
    c_ = v.size
    m = (1 + 1 / c_) * v[v < 0].sum() / n
    negative = np.flatnonzero(v < 0)
    labels = list(negative)
    v[negative] -= m * (1 - conf)
    while len(labels) < n:
        c = int(np.argmin(v))
        labels.append(c)
        v[c] -= m * (1 - conf)
    return np.bincount(labels[:n], minlength=c_)


def ebi_loop(b, n):
    """'ebi', label by label: stage 1 capped at n, most negative first; every negative class compensated."""
    v = np.array(b, dtype=np.float64)
    negative = np.flatnonzero(v < 0)
    labels = list(negative[np.argsort(v[negative], kind="stable")][:n])
    m = v[negative].sum() / n
    v[negative] -= m
    while len(labels) < n:
        c = int(np.argmin(v))
        labels.append(c)
        v[c] -= m
    return np.bincount(labels, minlength=v.size)


def model_update(seed, c, d, n, steps=1, relu=False):
    rng = np.random.default_rng(seed)
    model = LinearHead(2, c, d=d, window_size=4, seed=seed, relu=relu)
    w = model.classifier.weight.detach().double().numpy()
    b = model.classifier.bias.detach().double().numpy()
    y = rng.integers(0, c, n)
    h = model.features(rng.normal(size=(n, 4, 2))).detach().double().numpy()
    return model, summed_update(h, y, w, b, steps)


# ---- the count contract ----------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    c=st.integers(2, 12),
    d=st.integers(1, 8),
    n_per_step=st.integers(1, 30),
    steps=st.sampled_from([1, 2, 5]),
    seed=st.integers(0, 10_000),
    name=st.sampled_from(PAPER_CODE),
    raw=st.booleans(),
    scale=st.sampled_from([1e-3, 1.0, 10.0]),
)
def test_paper_code_counts_are_valid(c, d, n_per_step, steps, seed, name, raw, scale):
    n = n_per_step * steps
    model, update = model_update(seed, c, d, n, steps)
    if raw:  # arbitrary (e.g. LDP-noised) gradients: any signs, no softmax identity
        rng = np.random.default_rng(seed)
        update = LastLayerUpdate(rng.normal(size=(c, d)) * scale, rng.normal(size=c) * scale, n, n_steps=steps)
    out = ATTACKS[name](update, model=model, variant="paper_code")
    again = ATTACKS[name](update, model=model, variant="paper_code")
    assert out.dtype == np.int64 and out.shape == (c,)
    assert out.min() >= 0 and out.sum() == n
    np.testing.assert_array_equal(out, again)


def stale_loop(v, m, r):
    """Stage 2 of the code's Wainakh strategies, pick by pick."""
    v = np.array(v, dtype=np.float64)
    counts = np.zeros(v.size, dtype=np.int64)
    for _ in range(r):
        counts[int(np.argmin(v))] += 1
        v[-1] -= m
    return counts


@settings(max_examples=60, deadline=None)
@given(c=st.integers(1, 10), n=st.integers(1, 40), seed=st.integers(0, 10_000), m=st.floats(-0.5, 0.5))
def test_llg_code_solver_equals_the_loop(c, n, seed, m):
    rng = np.random.default_rng(seed)
    g = rng.normal(size=c) * 0.3
    offset = rng.normal(size=c) * 0.01
    np.testing.assert_array_equal(_wainakh_code_counts(g, m, offset, n), wainakh_loop(g, m, offset, n))
    np.testing.assert_array_equal(_stale_index_stage2(g, m, n), stale_loop(g, m, n))
    ties = np.round(g, 1)  # exact ties: argmin takes the lowest index, in both
    np.testing.assert_array_equal(_stale_index_stage2(ties, 0.1, n), stale_loop(ties, 0.1, n))


@settings(max_examples=40, deadline=None)
@given(c=st.integers(2, 10), n=st.integers(1, 40), seed=st.integers(0, 10_000), conf=st.sampled_from([0.0, 0.3, 1.0]))
def test_llbg_code_equals_the_loop(c, n, seed, conf):
    rng = np.random.default_rng(seed)
    b = rng.normal(size=c) * 0.1
    np.testing.assert_array_equal(llbg_code(bias_update(b, n), confidence=conf), llbg_loop(b, n, conf))


# ---- LLG: the stale index of stage 2 -----------------------------------------------------------------


def test_llg_stale_index_piles_the_rest_on_one_class():
    # g = [-0.3, -0.15, 0.05], N = 6: m = (1 + 1/3) * (-0.45) / 6 = -0.1
    # stage 1: classes 0 and 1 (g -> [-0.2, -0.05, 0.05]); stage 2 (4 windows):
    #   book: 0 (-> -0.1), 0 (-> 0.0), 1 (-> 0.05), 0  => [4, 2, 0]
    #   code: class 0 is never compensated (g[2] is), so all 4 go to class 0  => [5, 1, 0]
    u = row_sum_update([-0.3, -0.15, 0.05], 6)
    np.testing.assert_array_equal(llg(u), [4, 2, 0])
    np.testing.assert_array_equal(llg_code(u), [5, 1, 0])
    np.testing.assert_array_equal(ATTACKS["llg"](u, variant="paper_code"), [5, 1, 0])
    np.testing.assert_array_equal(ATTACKS["llg"](u), [4, 2, 0])


def test_llg_stale_index_is_right_while_the_last_class_is_the_minimum():
    # g = [0.05, -0.15, -0.3], N = 6, m = -0.1; stage 1 -> [0.05, -0.05, -0.2]
    #   code: 2 (g[2] -> -0.1), 2 (-> 0.0), then class 1 is the minimum and is never compensated: 1, 1
    #   book: 2, 2, 1 (-> 0.05), 2 (0.0 is the minimum)
    u = row_sum_update([0.05, -0.15, -0.3], 6)
    np.testing.assert_array_equal(llg_code(u), [0, 3, 3])
    np.testing.assert_array_equal(llg(u), [0, 2, 4])


def test_llg_stage1_uncapped_in_class_order():
    # four negative classes, N = 2: the code keeps the two lowest indices, the book the two most negative
    u = row_sum_update([-0.1, -0.2, 0.6, -0.4, -0.3], 2)
    np.testing.assert_array_equal(llg_code(u), [1, 1, 0, 0, 0])
    np.testing.assert_array_equal(llg(u), [0, 0, 0, 1, 1])


def test_llg_code_equals_book_where_the_bug_cannot_matter():
    # no negative row sum: m = 0, both put every window on argmin g
    u = row_sum_update([0.3, 0.1, 0.2, 0.5], 7)
    np.testing.assert_array_equal(llg_code(u), [0, 7, 0, 0])
    np.testing.assert_array_equal(llg(u), [0, 7, 0, 0])
    # stage 2 makes at most one pick (N - 1 or N negative classes, N >= their number): identical
    for seed in range(30):
        rng = np.random.default_rng(seed)
        g = rng.normal(size=8)
        n = int((g < 0).sum()) + int(rng.integers(0, 2))
        if n == 0:
            continue
        u = row_sum_update(g, n)
        np.testing.assert_array_equal(llg_code(u), llg(u))


# ---- LLG*: impact summed over all rows, offset divided twice ----------------------------------------


def test_llg_star_code_estimates_are_rounding_residues():
    model, update = model_update(3, 6, 8, 60, relu=True)
    prepared = prepare_llg_star_code(model, n_dummy=64, seed=0)
    m, s = llg_star_code_estimates(update, prepared)
    # the correct LLG* measures each class's impact on its own row: ~1e-2 per window here
    own = np.abs(np.diag(estimate_impacts(model, dummy="gaussian", n_dummy=64))) / update.n_windows
    assert own.min() > 1e-3
    assert abs(m) < 1e-6 * own.min() and np.abs(s).max() < 1e-5 * own.min()


def test_llg_star_code_is_one_window_per_negative_row_sum_and_the_rest_on_the_minimum():
    # exactly zero estimates (what the code's sums are in exact arithmetic): g = [-0.3, -0.15, 0.05], N = 6
    zero = DummyGradientSums(impact_sums=np.zeros(3), offset_sums=np.zeros(3), classifier_shape=None)
    np.testing.assert_array_equal(count_llg_star_code(row_sum_update([-0.3, -0.15, 0.05], 6), zero), [5, 1, 0])
    # with a model and the float32 residues the result is the same rule
    for seed in range(5):
        model, update = model_update(seed, 6, 8, 60)
        g = update.weight_grad.sum(axis=1)
        expect = (g < 0).astype(np.int64)
        expect[np.argmin(g)] += 60 - expect.sum()
        got = ATTACKS["llg_star"](update, model=model, variant="paper_code")
        np.testing.assert_array_equal(got, expect)


# ---- LLBG: empirical impact, constant confidence, no offset -----------------------------------------


def test_llbg_code_hand_oracle():
    # b = [-0.3, -0.15, 0.05, 0.4], N = 6, C = 4: m = 1.25 * (-0.45) / 6 = -0.09375
    # code, conf 0: stage 1 -> [-0.20625, -0.05625, 0.05, 0.4]; picks 0, 0, 1, 0  => [4, 2, 0, 0]
    # code, conf 0.5 (step -0.046875): four picks of class 0                       => [5, 1, 0, 0]
    # book (analytic, untrained): impact -1/6, offset 1/4                        => [3, 2, 1, 0]
    u = bias_update([-0.3, -0.15, 0.05, 0.4], 6)
    np.testing.assert_array_equal(llbg_code(u), [4, 2, 0, 0])
    np.testing.assert_array_equal(llbg_code(u, confidence=0.5), [5, 1, 0, 0])
    np.testing.assert_array_equal(llbg(u), [3, 2, 1, 0])
    np.testing.assert_array_equal(ATTACKS["llbg"](u, variant="paper_code"), [4, 2, 0, 0])
    np.testing.assert_array_equal(
        ATTACKS["llbg"](u, variant="paper_code", impact="empirical", confidence=0.5), [5, 1, 0, 0]
    )


def test_llbg_code_equals_book_empirical_unless_stage1_overflows():
    # a uniform offset cannot change a greedy pick when every class has one impact
    for seed in range(20):
        for steps in (1, 2):
            _, u = model_update(seed, 7, 6, 30, steps)
            np.testing.assert_array_equal(llbg_code(u), llbg(u, impact="empirical"))
    # more negative classes than windows: class order (code) vs most negative first (book)
    u = bias_update([-0.1, -0.3, -0.2, 0.6], 2)
    np.testing.assert_array_equal(llbg_code(u), [1, 1, 0, 0])
    np.testing.assert_array_equal(llbg(u, impact="empirical"), [0, 1, 1, 0])


# ---- iLRG: uniform probabilities, no division by S, the code's rounding, random padding -------------


def test_ilrg_code_equals_book_uniform_on_a_zero_classifier_fedsgd():
    rng = np.random.default_rng(0)
    c, n = 9, 100
    y = rng.choice(c, size=n, p=rng.dirichlet(np.ones(c)))
    h = rng.normal(size=(n, 16))
    dw, db = last_layer_gradients(h, y, np.zeros((c, 16)), np.zeros(c))
    u = LastLayerUpdate(dw, db, n)
    truth = np.bincount(y, minlength=c)
    np.testing.assert_array_equal(ilrg_code(u), truth)
    np.testing.assert_array_equal(ilrg(u, probabilities="uniform"), truth)


def test_ilrg_code_does_not_divide_by_steps():
    # C = 4, N = 8, S = 2, zero classifier: G_b = S (1/C - n/N) with n = [4, 2, 2, 0]
    # code: N (1/C - G_b) = 2n - N/C = [6, 2, 2, -2] -> [6, 2, 2, 0], filled in class order to 8 => [6, 2, 0, 0]
    n_true = np.array([4, 2, 2, 0])
    u = bias_update(2 * (0.25 - n_true / 8), 8, steps=2)
    np.testing.assert_allclose(ilrg_code_solution(u), [6, 2, 2, -2], atol=1e-9)
    np.testing.assert_array_equal(ilrg_code(u), [6, 2, 0, 0])
    np.testing.assert_array_equal(ilrg(u, probabilities="uniform"), n_true)


def bias_for(x, n):
    """The FedSGD bias gradient for which the uniform system's solution is ``x`` (sum x = n)."""
    x = np.asarray(x, dtype=np.float64)
    return 1.0 / x.size - x / n


def test_ilrg_code_rounding_cuts_the_last_classes():
    # solution [3.6, 3.6, 2.6, -1.8]: rounded [4, 4, 3, 0] = 11 > 8, the class-order fill stops at 8
    u = bias_update(bias_for([3.6, 3.6, 2.6, -1.8], 8), 8)
    np.testing.assert_array_equal(ilrg_code(u), [4, 4, 0, 0])
    np.testing.assert_array_equal(ilrg(u, probabilities="uniform"), [3, 3, 2, 0])


def test_ilrg_code_pads_a_shortfall_at_random():
    # solution [2.4, 2.4, 2.4, 0.8]: rounded [2, 2, 2, 1] = 7, one window padded with a random class
    u = bias_update(bias_for([2.4, 2.4, 2.4, 0.8], 8), 8)
    extra = ilrg_code(u) - np.array([2, 2, 2, 1])
    assert extra.min() == 0 and extra.sum() == 1
    np.testing.assert_array_equal(ilrg(u, probabilities="uniform"), [3, 2, 2, 1])  # largest remainders


def test_ilrg_code_drops_a_class_estimated_above_n():
    # solution [9, -1, 0, 0]: 9 > N = 8 is set to 0, nothing is left, all 8 windows are random draws
    u = bias_update(bias_for([9.0, -1.0, 0.0, 0.0], 8), 8)
    draws = {tuple(ilrg_code(u, seed=s)) for s in range(20)}
    assert len(draws) > 1 and all(sum(d) == 8 for d in draws)
    np.testing.assert_array_equal(ilrg_code(u, seed=3), ilrg_code(u, seed=3))
    np.testing.assert_array_equal(ATTACKS["ilrg"](u, variant="paper_code", seed=3), ilrg_code(u, seed=3))
    np.testing.assert_array_equal(ilrg(u, probabilities="uniform"), [8, 0, 0, 0])


# ---- EBI: the code's counts are the book's -------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(c=st.integers(2, 12), n=st.integers(1, 40), seed=st.integers(0, 10_000))
def test_ebi_of_the_code_is_the_book_ebi(c, n, seed):
    b = np.random.default_rng(seed).normal(size=c) * 0.1
    np.testing.assert_array_equal(ebi(bias_update(b, n)), ebi_loop(b, n))


# ---- registry ---------------------------------------------------------------------------------------


def test_registry_variant_option():
    model, u = model_update(1, 5, 6, 20)
    assert VARIANTS == ("book", "paper_code")
    for name in PAPER_CODE:
        assert "variant" in ATTACKS[name].options
        out = ATTACKS[name](u, variant="paper_code", model=model)
        assert out.sum() == 20
        with pytest.raises(
            ValueError, match=r"variant='nope' is not supported; choose one of \('book', 'paper_code'\)"
        ):
            ATTACKS[name](u, variant="nope", model=model)
    with pytest.raises(ValueError, match="has no option 'variant'"):
        ATTACKS["ebi"](u, variant="paper_code")
    # the book variant is the default and unchanged
    np.testing.assert_array_equal(ATTACKS["llg"](u), llg(u))
    np.testing.assert_array_equal(ATTACKS["llbg"](u, variant="book"), llbg(u))
    np.testing.assert_array_equal(ATTACKS["ilrg"](u, model=model), ilrg(u, model=model))
    assert ATTACKS["ilrg"].requires() == "model" and ATTACKS["ilrg"].requires(variant="paper_code") == "update"
    assert ATTACKS["llg_star"].requires(variant="paper_code") == "model"
    assert ATTACKS["llbg"].requires(variant="paper_code") == "update"


def test_paper_code_rejects_options_the_code_has_not():
    model, u = model_update(1, 5, 6, 20)
    with pytest.raises(ValueError, match="stage1='offset' has no counterpart"):
        ATTACKS["llg_star"](u, model=model, variant="paper_code", stage1="offset")
    with pytest.raises(ValueError, match="dummy='zeros' has no counterpart"):
        ATTACKS["llg_star"](u, model=model, variant="paper_code", dummy="zeros")
    with pytest.raises(ValueError, match="approx_avg_conf"):
        ATTACKS["llbg"](u, variant="paper_code", confidence="aux")
    with pytest.raises(ValueError, match="uniform probabilities"):
        ATTACKS["ilrg"](u, variant="paper_code", probabilities=np.full((5, 5), 0.2))
    with pytest.raises(ValueError, match="needs the server's model"):
        ATTACKS["llg_star"](u, variant="paper_code")


def test_grid_syntax_runs_book_and_code_side_by_side():
    model, u = model_update(2, 5, 6, 20)
    attacks = {"llg": {}, "llg:code": {"variant": "paper_code"}, "ilrg:code": {"variant": "paper_code"}}
    specs = resolve_attacks(ATTACKS, attacks)
    assert [s.key for s in specs] == ["llg", "llg:code", "ilrg:code"]
    out = run_attacks(u, attacks, model=model)
    np.testing.assert_array_equal(out["llg"], llg(u))
    np.testing.assert_array_equal(out["llg:code"], llg_code(u))
    np.testing.assert_array_equal(out["ilrg:code"], ilrg_code(u))


# ---- ClassAcc: the text's position-wise pairing vs the code's multiset match --------------------------


def test_class_acc_sorted_hand_example():
    # one batch, true [0, 0, 1, 2], predicted [0, 1, 2, 2]
    # multiset (code): class 0 1/2, class 1 1/1, class 2 1/1 -> 5/6
    # position-wise (text): pairs (0,0) (0,1) (1,2) (2,2): class 0 1/2, class 1 0/1, class 2 1/1 -> 1/2
    true, pred = np.array([[2, 1, 1]]), np.array([[1, 1, 2]])
    np.testing.assert_allclose(class_acc_per_class(true, pred), [0.5, 1.0, 1.0])
    np.testing.assert_allclose(class_acc_sorted_per_class(true, pred), [0.5, 0.0, 1.0])
    assert class_acc(true, pred) == pytest.approx(5 / 6)
    assert class_acc_sorted(true, pred) == pytest.approx(1 / 2)


def test_class_acc_sorted_over_batches_with_an_absent_class():
    true = np.array([[2, 1, 1, 0], [0, 3, 1, 0]])
    pred = np.array([[1, 1, 2, 0], [0, 3, 1, 0]])
    # class 0: 1/2; class 1: (0 + 3)/4; class 2: (1 + 1)/2; class 3 absent (NaN, ignored)
    per_class = class_acc_sorted_per_class(true, pred)
    np.testing.assert_allclose(per_class[:3], [0.5, 0.75, 1.0])
    assert np.isnan(per_class[3])
    assert class_acc_sorted(true, pred) == pytest.approx(np.mean([0.5, 0.75, 1.0]))
    conf = label_confusion(true, pred)
    np.testing.assert_allclose(per_class[:3], np.diag(conf)[:3] / conf.sum(axis=1)[:3])


@settings(max_examples=60, deadline=None)
@given(c=st.integers(1, 8), batches=st.integers(1, 4), n=st.integers(1, 30), seed=st.integers(0, 10_000))
def test_class_acc_sorted_never_exceeds_class_acc(c, batches, n, seed):
    rng = np.random.default_rng(seed)
    true = rng.multinomial(n, rng.dirichlet(np.ones(c)), size=batches)
    pred = rng.multinomial(n, rng.dirichlet(np.ones(c)), size=batches)
    assert class_acc_sorted(true, pred) <= class_acc(true, pred) + 1e-12
    assert class_acc_sorted(true, true) == class_acc(true, true) == 1.0


def test_class_acc_sorted_rejects_wrong_totals():
    with pytest.raises(ValueError, match="predicts"):
        class_acc_sorted(np.array([[2, 1]]), np.array([[1, 1]]))
