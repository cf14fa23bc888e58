"""The privacy accountant (leakage_core.defenses.accounting) and the paper's LDP as a Gaussian mechanism."""

from __future__ import annotations

import math

import numpy as np
import pytest
from opacus.accountants import PRVAccountant, RDPAccountant

from leakage_core.defenses import DEFENSES, defense_from_key
from leakage_core.defenses.accounting import (
    analytic_gaussian_delta,
    analytic_gaussian_epsilon,
    check_adjacency,
    gaussian_epsilon,
    noise_for_epsilon,
    noise_multiplier,
    randomized_response_epsilon,
    randomized_response_keep_probability,
)
from leakage_core.federated import LDP

DELTA = 1e-5


def exact_epsilon(z: float, delta: float, steps: int = 1) -> float:
    """The exact epsilon of ``steps`` Gaussian mechanisms (sample rate 1) by bisection on the analytic delta.

    With sample rate 1, k compositions of the Gaussian mechanism with noise multiplier z are one Gaussian mechanism
    with z / sqrt(k) (Dong, Roth & Su 2019, Gaussian differential privacy, Cor. 3.3); delta(eps) is decreasing.
    """
    z = z / math.sqrt(steps)
    lo, hi = 0.0, 1.0
    while analytic_gaussian_delta(hi, z) > delta:
        hi *= 2
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if analytic_gaussian_delta(mid, z) > delta else (lo, mid)
    return hi


def test_gaussian_epsilon_equals_opacus_accountants_stepped_directly():
    z, q, steps = 1.3, 0.05, 40
    for accountant, cls in (("rdp", RDPAccountant), ("prv", PRVAccountant)):
        acc = cls()
        for _ in range(steps):
            acc.step(noise_multiplier=z, sample_rate=q)
        assert gaussian_epsilon(z, DELTA, steps=steps, sample_rate=q, accountant=accountant) == pytest.approx(
            acc.get_epsilon(delta=DELTA), rel=1e-12
        )


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # Opacus's PRV at q = 1, stepped directly
@pytest.mark.parametrize("adjacency, z", [("replace", 0.75), ("add_remove", 1.5)])
@pytest.mark.parametrize("accountant, cls", [("rdp", RDPAccountant), ("prv", PRVAccountant)])
def test_ldp_epsilon_is_opacus_for_its_noise_multiplier(adjacency, z, accountant, cls):
    """The epsilon of the paper's LDP equals Opacus's, q = 1, k steps, for z = sigma / (2 rho) when the batch's
    contents change (replace, the default) and z = sigma / rho when the batch is added or removed."""
    ldp = LDP(sigma=0.3, rho=0.2)
    acc = cls()
    for _ in range(5):
        acc.step(noise_multiplier=z, sample_rate=1.0)
    want = acc.get_epsilon(delta=DELTA)
    got = ldp.epsilon(DELTA, updates=5, accountant=accountant, adjacency=adjacency)
    assert got == pytest.approx(want, rel=1e-12)
    if adjacency == "replace":  # the default
        assert ldp.epsilon(DELTA, 5, accountant) == got


def test_paper_setting_is_noise_multiplier_one_half_for_the_batchs_contents():
    # sigma = rho = 0.1 (the paper's LDP): the replace sensitivity is 2 rho, so z = sigma / (2 rho) = 0.5; the
    # add/remove sensitivity is rho, so z = sigma / rho = 1
    assert noise_multiplier(0.1, 0.1) == 1.0 and noise_multiplier(0.1, 0.1, "replace") == 0.5
    paper = LDP(sigma=0.1, rho=0.1)
    assert paper.epsilon(DELTA) == gaussian_epsilon(0.5, DELTA) == paper.epsilon(DELTA, adjacency="replace")
    assert paper.epsilon(DELTA, adjacency="add_remove") == gaussian_epsilon(1.0, DELTA)
    assert round(paper.epsilon(DELTA), 2) == 10.73 and round(paper.epsilon(DELTA, adjacency="add_remove"), 2) == 4.73
    # replace is the stronger statement: the same noise buys a larger epsilon
    assert paper.epsilon(DELTA, 67) > paper.epsilon(DELTA, 67, adjacency="add_remove")


def test_check_adjacency():
    assert check_adjacency("replace") == "replace" and check_adjacency("add_remove") == "add_remove"
    for bad in ("bounded", "", None, 1):
        with pytest.raises(ValueError, match="adjacency"):
            check_adjacency(bad)


def test_noise_multiplier_known_cases():
    assert noise_multiplier(2.0, 0.5) == 4.0
    assert noise_multiplier(2.0, 0.5, adjacency="replace") == 2.0  # sensitivity 2 rho
    assert noise_multiplier(1.0, 1.0, "replace") == 0.5
    for bad in ({"sigma": 0.0, "rho": 1.0}, {"sigma": 1.0, "rho": -1.0}, {"sigma": math.inf, "rho": 1.0}):
        with pytest.raises(ValueError, match="sigma|rho"):
            noise_multiplier(**bad)
    with pytest.raises(ValueError, match="adjacency"):
        noise_multiplier(1.0, 1.0, adjacency="bounded")


def test_analytic_delta_known_values():
    # z -> the Gaussian mechanism at eps = 0 has delta = total variation = 2 Phi(1/(2z)) - 1
    z = 0.7
    assert analytic_gaussian_delta(0.0, z) == pytest.approx(math.erf(1 / (2 * z) / math.sqrt(2)), rel=1e-12)
    # decreasing in epsilon and in z; 0 far out; no overflow at large epsilon
    deltas = [analytic_gaussian_delta(e, 1.0) for e in (0.5, 1, 2, 4)]
    assert all(a > b > 0 for a, b in zip(deltas, deltas[1:]))
    assert analytic_gaussian_delta(1.0, 2.0) < analytic_gaussian_delta(1.0, 1.0)  # more noise, smaller delta


def phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


def test_analytic_delta_is_balle_and_wang_theorem_8():
    for eps, z in ((0.5, 1.0), (2.0, 0.6), (4.0, 1.0), (1.0, 3.0)):  # the formula, evaluated directly
        direct = phi(1 / (2 * z) - eps * z) - math.exp(eps) * phi(-1 / (2 * z) - eps * z)
        assert analytic_gaussian_delta(eps, z) == pytest.approx(direct, rel=1e-9)
    # where e^eps overflows and Phi underflows, log space still gives the value (checked at 50 digits)
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    eps, z = 800, mpmath.mpf("0.05")
    want = mpmath.ncdf(1 / (2 * z) - eps * z) - mpmath.exp(eps) * mpmath.ncdf(-1 / (2 * z) - eps * z)
    assert analytic_gaussian_delta(800.0, 0.05) == pytest.approx(float(want), rel=1e-9)


def test_prv_matches_the_exact_gaussian_and_rdp_bounds_it():
    for z, steps in ((1.0, 1), (0.8, 1), (2.0, 4)):  # (2, 4 steps) is exactly one step of z = 1
        exact = exact_epsilon(z, DELTA, steps)
        prv = gaussian_epsilon(z, DELTA, steps=steps, accountant="prv")
        rdp = gaussian_epsilon(z, DELTA, steps=steps, accountant="rdp")
        assert exact - 1e-6 <= prv <= exact + 0.05, (z, steps, exact, prv)  # PRV: an upper estimate, eps_error 0.01
        assert analytic_gaussian_delta(prv, z / math.sqrt(steps)) <= DELTA * (1 + 1e-6)
        assert rdp >= exact, (z, steps, exact, rdp)  # RDP is an upper bound


@pytest.mark.parametrize("z, steps", [(0.5, 1), (1.0, 1), (1.0, 67), (4.0, 10), (10.0, 100)])
def test_analytic_gaussian_epsilon_inverts_the_exact_delta(z, steps):
    eps = analytic_gaussian_epsilon(z, DELTA, steps=steps)
    assert eps == pytest.approx(exact_epsilon(z, DELTA, steps), rel=1e-9)
    assert analytic_gaussian_delta(eps, z / math.sqrt(steps)) == pytest.approx(DELTA, rel=1e-6)
    assert eps <= gaussian_epsilon(z, DELTA, steps=steps, accountant="prv") <= gaussian_epsilon(z, DELTA, steps=steps)


@pytest.mark.parametrize("z, steps, q", [(0.6, 1000, 1.0), (10.0, 280, 0.0036)])
def test_gaussian_epsilon_does_not_warn_when_rdp_hits_an_end_of_its_orders(z, steps, q):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Opacus warns here: the best order is its smallest, or its largest
        eps = gaussian_epsilon(z, DELTA, steps=steps, sample_rate=q)
    assert eps > 0 and (q < 1 or eps >= analytic_gaussian_epsilon(z, DELTA, steps=steps))


def test_analytic_gaussian_epsilon_edge_cases_and_errors():
    assert analytic_gaussian_epsilon(1e6, DELTA) == 0.0  # so much noise that epsilon = 0 meets delta
    assert analytic_gaussian_epsilon(1.0, DELTA) == pytest.approx(4.3772, abs=1e-4)
    for bad in ({"noise_multiplier": 0.0, "delta": DELTA}, {"noise_multiplier": 1.0, "delta": 1.5}):
        with pytest.raises(ValueError):
            analytic_gaussian_epsilon(**bad)
    with pytest.raises(ValueError, match="steps"):
        analytic_gaussian_epsilon(1.0, DELTA, steps=0)


def test_epsilon_decreases_in_noise_and_grows_with_steps_and_sample_rate():
    eps_z = [gaussian_epsilon(z, DELTA) for z in (0.5, 1.0, 2.0, 4.0)]
    assert all(a > b for a, b in zip(eps_z, eps_z[1:]))
    eps_k = [gaussian_epsilon(1.0, DELTA, steps=k) for k in (1, 10, 100)]
    assert all(a < b for a, b in zip(eps_k, eps_k[1:]))
    assert gaussian_epsilon(1.0, DELTA, steps=100, sample_rate=0.01) < eps_k[-1]  # subsampling amplifies
    assert gaussian_epsilon(1.0, 1e-3) < gaussian_epsilon(1.0, 1e-6)


def test_ldp_epsilon_defined_only_with_noise_and_clipping():
    assert LDP(sigma=0.1).epsilon(DELTA) is None
    assert LDP(rho=0.1).epsilon(DELTA) is None
    assert LDP(sigma=0.1).epsilon(DELTA, adjacency="add_remove") is None
    both = LDP(sigma=0.1, rho=0.1, scope="all")  # all-layer clipping bounds the last layer's norm too
    assert both.epsilon(DELTA, updates=10) == gaussian_epsilon(0.5, DELTA, steps=10)
    assert both.epsilon(DELTA, updates=10, adjacency="add_remove") == gaussian_epsilon(1.0, DELTA, steps=10)
    assert LDP(sigma=0.2, rho=0.1).epsilon(DELTA) < LDP(sigma=0.1, rho=0.1).epsilon(DELTA)


def test_ldp_is_a_registered_defence_with_unchanged_fields():
    import dataclasses

    ldp = LDP(sigma=0.1, rho=0.1)
    assert DEFENSES["ldp"] is LDP and LDP.stage == "update"
    assert dataclasses.asdict(ldp) == {"sigma": 0.1, "rho": 0.1, "scope": "last_layer"}
    assert ldp.key() == {"defense": "ldp", "sigma": 0.1, "rho": 0.1, "scope": "last_layer"}
    assert defense_from_key(ldp.key()) == ldp and hash(defense_from_key(ldp.key())) == hash(ldp)
    assert ldp.label == "clip 0.1 + noise 0.1"


def test_noise_for_epsilon_inverts_gaussian_epsilon():
    for eps, steps in ((1.0, 1), (4.0, 1), (8.0, 10)):
        z = noise_for_epsilon(eps, DELTA, steps=steps)
        got = gaussian_epsilon(z, DELTA, steps=steps)
        assert eps - 0.011 <= got <= eps  # Opacus's bisection: at most the target, within its tolerance 0.01


def test_randomized_response_epsilon_and_its_inverse():
    for c in (2, 6, 11):
        for eps in (0.1, 1.0, 3.0):
            p = randomized_response_keep_probability(eps, c)
            assert p == pytest.approx(math.exp(eps) / (math.exp(eps) + c - 1), rel=1e-12)
            assert randomized_response_epsilon(p, c) == pytest.approx(eps, rel=1e-9)
    assert randomized_response_keep_probability(math.inf, 5) == 1.0
    assert randomized_response_epsilon(1.0, 5) == math.inf
    assert randomized_response_epsilon(0.2, 5) == 0.0  # p = 1/C: the output ignores the label
    # binary randomized response, the textbook case: keep with probability 3/4 -> eps = ln 3
    assert randomized_response_epsilon(0.75, 2) == pytest.approx(math.log(3), rel=1e-12)


@pytest.mark.parametrize(
    "call, word",
    [
        (lambda: gaussian_epsilon(0.0, DELTA), "noise multiplier"),
        (lambda: gaussian_epsilon(-1.0, DELTA), "noise multiplier"),
        (lambda: gaussian_epsilon(1.0, 0.0), "delta"),
        (lambda: gaussian_epsilon(1.0, 1.0), "delta"),
        (lambda: gaussian_epsilon(1.0, DELTA, sample_rate=0.0), "sample_rate"),
        (lambda: gaussian_epsilon(1.0, DELTA, sample_rate=1.5), "sample_rate"),
        (lambda: gaussian_epsilon(1.0, DELTA, steps=0), "steps"),
        (lambda: gaussian_epsilon(1.0, DELTA, steps=2.5), "steps"),
        (lambda: gaussian_epsilon(1.0, DELTA, accountant="gdp"), "accountant"),
        (lambda: noise_for_epsilon(0.0, DELTA), "epsilon"),
        (lambda: noise_for_epsilon(1.0, 2.0), "delta"),
        (lambda: analytic_gaussian_delta(-1.0, 1.0), "epsilon"),
        (lambda: analytic_gaussian_delta(1.0, 0.0), "noise multiplier"),
        (lambda: randomized_response_epsilon(0.0, 5), "keep_probability"),
        (lambda: randomized_response_epsilon(0.5, 1), "n_classes"),
        (lambda: randomized_response_keep_probability(0.0, 5), "epsilon"),
        (lambda: LDP(sigma=0.1, rho=0.1).epsilon(0.0), "delta"),
        (lambda: LDP(sigma=0.1, rho=0.1).epsilon(DELTA, updates=0), "updates"),
        (lambda: LDP(sigma=0.1, rho=0.1).epsilon(DELTA, adjacency="bounded"), "adjacency"),
        (lambda: LDP(sigma=0.1).epsilon(DELTA, adjacency="bounded"), "adjacency"),
    ],
)
def test_errors_are_clear(call, word):
    with pytest.raises(ValueError, match=word):
        call()


def test_numpy_numbers_are_accepted():
    assert gaussian_epsilon(np.float64(1.0), np.float64(DELTA), steps=np.int64(3)) == gaussian_epsilon(1.0, DELTA, 3)


def test_ldp_has_the_sensitivity_and_noise_scale_the_accountant_assumes():
    """The accountant assumes: the clipped update has L2 norm <= rho (add/remove sensitivity rho; replace 2 rho)
    and the noise is N(0, sigma^2) per entry, so z = sigma / rho."""
    from leakage_core.federated import LastLayerUpdate, privatize

    rng = np.random.default_rng(0)
    clip = LDP(rho=0.1)
    clipped = []
    for scale in (1e-3, 0.05, 1.0, 100.0):
        u = LastLayerUpdate(rng.normal(size=(6, 20)) * scale, rng.normal(size=6) * scale, 8)
        c = privatize(u, clip)
        norm = math.sqrt((c.weight_grad**2).sum() + (c.bias_grad**2).sum())
        raw = math.sqrt((u.weight_grad**2).sum() + (u.bias_grad**2).sum())
        assert norm <= 0.1 * (1 + 1e-12) and norm == pytest.approx(min(raw, 0.1), rel=1e-12)
        clipped.append(np.concatenate([c.weight_grad.ravel(), c.bias_grad]))
    # replace adjacency: two clipped updates differ by at most 2 rho, attained for opposite directions
    assert max(np.linalg.norm(a - b) for a in clipped for b in clipped) <= 0.2 * (1 + 1e-12)
    u = LastLayerUpdate(rng.normal(size=(6, 20)), rng.normal(size=6), 8)
    flipped = LastLayerUpdate(-u.weight_grad, -u.bias_grad, 8)
    gap = privatize(u, clip).weight_grad - privatize(flipped, clip).weight_grad
    gap_b = privatize(u, clip).bias_grad - privatize(flipped, clip).bias_grad
    assert math.sqrt((gap**2).sum() + (gap_b**2).sum()) == pytest.approx(0.2, rel=1e-12)
    # the noise: i.i.d. N(0, sigma^2) per entry, added after clipping
    ldp = LDP(sigma=0.3, rho=0.1)
    big = LastLayerUpdate(rng.normal(size=(50, 400)), rng.normal(size=50), 8)
    noise = ldp.transform_update(big, seed=1).weight_grad - privatize(big, clip).weight_grad
    assert stats_normal_pvalue(noise.ravel(), 0.3) > 1e-3
    assert stats_normal_pvalue(noise.ravel(), 0.27) < 1e-6  # the test sees a 10% error in the noise scale


def stats_normal_pvalue(x: np.ndarray, sigma: float) -> float:
    from scipy import stats

    return float(stats.kstest(x, "norm", args=(0.0, sigma)).pvalue)


def test_one_default_delta_for_the_package():
    import inspect

    from leakage_core.defenses import DPSGD
    from leakage_core.defenses.accounting import DEFAULT_DELTA
    from leakage_core.models import training
    from leakage_core.study import run, session_epsilons

    assert DEFAULT_DELTA == 1e-5  # the chapters' captions say "delta 1e-5"
    assert DPSGD(1.0).delta == DEFAULT_DELTA
    assert inspect.signature(session_epsilons).parameters["delta"].default == DEFAULT_DELTA
    assert not hasattr(training, "TRAINING_DELTA") and not hasattr(run, "PROVENANCE_DELTA")
    assert training.DEFAULT_DELTA is DEFAULT_DELTA


def test_the_shared_checks_of_delta_and_the_number_of_releases():
    from leakage_core.defenses.accounting import check_delta, check_steps

    assert check_delta(1e-5) == 1e-5 and check_steps(np.int64(3)) == 3 and type(check_steps(np.int64(3))) is int
    for bad in (0, 1, 5.0, -1e-5, True, "1e-5", float("nan")):
        with pytest.raises(ValueError, match="delta must lie in"):
            check_delta(bad)
    for bad in (0, -3, 1.5, True, "2"):
        with pytest.raises(ValueError, match="updates .* must be an integer >= 1"):
            check_steps(bad, "updates")
