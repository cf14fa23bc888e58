"""Privacy accounting: noise levels to (epsilon, delta) with Opacus's accountants, and two exact known answers.

Contract: pure functions of numbers; Opacus (and scipy) are imported inside the functions, never at import.
The accounting itself is Opacus's (``opacus/accountants/rdp.py``, ``opacus/accountants/prv.py`` and
``opacus/accountants/utils.py`` in the pytorch/opacus repository, version 1.6): an accountant's ``history`` is a
list of ``(noise_multiplier, sample_rate, steps)`` and ``get_epsilon(delta)`` composes it. Nothing here
re-implements it. Two closed forms serve as known answers: the exact privacy profile of one Gaussian mechanism
(:func:`analytic_gaussian_delta`, inverted by :func:`analytic_gaussian_epsilon`) and the guarantee of
randomized response (:func:`randomized_response_epsilon`).
"""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from numbers import Integral, Real
from typing import Iterator

#: the Opacus accountants :func:`gaussian_epsilon` accepts
ACCOUNTANTS: tuple[str, ...] = ("rdp", "prv")
#: the neighbouring relations :func:`noise_multiplier` accepts
ADJACENCIES: tuple[str, ...] = ("add_remove", "replace")
#: the delta at which the package reports epsilons unless told otherwise: DP-SGD's default, the training epsilon a
#: fold records for a labels-stage defence, the grid's provenance (epsilon per update) and
#: :func:`~leakage_core.study.session_epsilons`
DEFAULT_DELTA: float = 1e-5


def _check_noise(z: float) -> float:
    if isinstance(z, bool) or not isinstance(z, Real) or not (math.isfinite(z) and z > 0):
        raise ValueError(f"the noise multiplier must be a positive finite number, got {z!r}.")
    return float(z)


def check_delta(delta: float) -> float:
    """``delta`` as a float if it lies in (0, 1), else one clear ``ValueError``; what every accountant and every
    defence's ``epsilon(delta, ...)`` checks.

    Not used in a chapter yet.
    """
    if isinstance(delta, bool) or not isinstance(delta, Real) or not 0 < delta < 1:
        raise ValueError(f"delta must lie in (0, 1), e.g. 1e-5, got {delta!r}.")
    return float(delta)


def _check_sample_rate(q: float) -> float:
    if isinstance(q, bool) or not isinstance(q, Real) or not 0 < q <= 1:
        raise ValueError(f"sample_rate must lie in (0, 1] (1: every step releases the whole data), got {q!r}.")
    return float(q)


def check_steps(steps: int, name: str = "steps") -> int:
    """``steps`` as an int if it is an integer >= 1, else one clear ``ValueError`` naming it ``name``: the number of
    releases composed (an accountant's ``steps``, a defence's ``epsilon(delta, updates)``).

    Not used in a chapter yet.
    """
    if isinstance(steps, bool) or not isinstance(steps, Integral) or steps < 1:
        raise ValueError(f"{name} (the number of releases composed) must be an integer >= 1, got {steps!r}.")
    return int(steps)


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence Opacus's PRV at sample rate 1: it evaluates ``log(1 - q) = log(0)`` in a branch it masks."""
    import numpy as np

    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _accountant(name: str):
    if name not in ACCOUNTANTS:
        raise ValueError(f"accountant must be one of {ACCOUNTANTS}, got {name!r}.")
    from opacus.accountants import PRVAccountant, RDPAccountant

    return RDPAccountant() if name == "rdp" else PRVAccountant()


def gaussian_epsilon(
    noise_multiplier: float, delta: float, steps: int = 1, sample_rate: float = 1.0, accountant: str = "rdp"
) -> float:
    """Epsilon of ``steps`` compositions of the (Poisson-subsampled) Gaussian mechanism, by Opacus's accountant.

    Introduced in Chapter 16.

    ``noise_multiplier`` is the noise's standard deviation over the L2 sensitivity (see :func:`noise_multiplier`),
    ``sample_rate`` the probability that a step sees the protected unit (1: every step does; no amplification).
    ``accountant="rdp"`` (Renyi DP, an upper bound) or ``"prv"`` (numerical composition of privacy loss random
    variables, Gopi et al. 2021; Opacus returns its upper estimate). Done as Opacus's own
    ``get_noise_multiplier`` does (``opacus/accountants/utils.py``): ``history = [(z, q, steps)]``, then
    ``get_epsilon(delta)``; RDP's warning that its best order is the largest or smallest it tries (a looser,
    still valid bound) is silenced. Raises ``ValueError`` for ``z <= 0``, ``delta`` outside (0, 1), ``q`` outside (0, 1]
    or ``steps < 1``.
    """
    z, d, q = _check_noise(noise_multiplier), check_delta(delta), _check_sample_rate(sample_rate)
    s = check_steps(steps)
    acc = _accountant(accountant)
    acc.history = [(z, q, s)]
    with _quiet(), warnings.catch_warnings():
        # RDP warns when its best order is the largest or smallest it tries: the bound is looser, still valid
        warnings.filterwarnings("ignore", message="Optimal order is the (largest|smallest) alpha")
        return float(acc.get_epsilon(delta=d))


def noise_multiplier(sigma: float, rho: float, adjacency: str = "add_remove") -> float:
    """The Gaussian mechanism's noise multiplier of clipping to ``rho`` and adding ``N(0, sigma^2)`` noise.

    Introduced in Chapter 16.

    Derivation: the released vector is ``clip(g) + N(0, sigma^2 I)`` with ``||clip(g)|| <= rho``. The noise
    multiplier is ``sigma`` over the L2 sensitivity Delta, the largest change of ``clip(g)`` between neighbouring
    inputs. ``"add_remove"`` (Opacus's convention): the protected unit (here the client's whole batch) is present
    or absent; absent, it contributes nothing, so Delta = ``||clip(g) - 0|| <= rho`` and z = ``sigma / rho``.
    ``"replace"``: the unit is replaced by any other; Delta = ``||clip(g) - clip(g')|| <= 2 rho`` (equality for
    opposite directions), so z = ``sigma / (2 rho)``.
    """
    for name, v in (("sigma", sigma), ("rho", rho)):
        if isinstance(v, bool) or not isinstance(v, Real) or not (math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a positive finite number, got {v!r}.")
    check_adjacency(adjacency)
    return float(sigma) / (float(rho) if adjacency == "add_remove" else 2.0 * float(rho))


def check_adjacency(adjacency: str) -> str:
    """``adjacency`` if it is one of :data:`ADJACENCIES` (``"add_remove"``, ``"replace"``), else one clear
    ``ValueError``; what every defence's ``epsilon(..., adjacency=...)`` checks.

    Not used in a chapter yet.
    """
    if not isinstance(adjacency, str) or adjacency not in ADJACENCIES:
        raise ValueError(
            f"adjacency must be one of {ADJACENCIES} ('replace': the unit's contents change, 'add_remove': the unit "
            f"is added or removed), got {adjacency!r}."
        )
    return adjacency


def noise_for_epsilon(
    epsilon: float, delta: float, steps: int = 1, sample_rate: float = 1.0, accountant: str = "rdp"
) -> float:
    """The noise multiplier reaching ``(epsilon, delta)`` after ``steps`` releases, by Opacus's search.

    Opacus's ``opacus.accountants.utils.get_noise_multiplier`` (a bisection): the returned z gives an epsilon at
    most ``epsilon`` and within its tolerance 0.01 of it.
    """
    if isinstance(epsilon, bool) or not isinstance(epsilon, Real) or not (math.isfinite(epsilon) and epsilon > 0):
        raise ValueError(f"epsilon must be a positive finite number, got {epsilon!r}.")
    d, q, s = check_delta(delta), _check_sample_rate(sample_rate), check_steps(steps)
    _accountant(accountant)  # checks the name
    from opacus.accountants.utils import get_noise_multiplier

    with _quiet(), warnings.catch_warnings():
        # the search's first, large trial noises put RDP's best order at the largest alpha (a looser, still valid
        # bound); Opacus warns about each of them
        warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
        return float(
            get_noise_multiplier(
                target_epsilon=float(epsilon), target_delta=d, sample_rate=q, steps=s, accountant=accountant
            )
        )


def analytic_gaussian_delta(epsilon: float, noise_multiplier: float) -> float:
    """The exact delta(epsilon) of one Gaussian mechanism with sensitivity 1 and noise standard deviation z.

    Introduced in Chapter 16.

    B. Balle and Y.-X. Wang, "Improving the Gaussian mechanism for differential privacy: analytical calibration
    and optimal denoising", ICML 2018, Theorem 8: ``delta = Phi(1/(2z) - eps z) - e^eps Phi(-1/(2z) - eps z)``
    (Phi the standard normal CDF). The mechanism is ``(eps, delta)``-DP exactly for this delta and no smaller;
    ``k`` compositions with sample rate 1 equal one mechanism with noise multiplier ``z / sqrt(k)``. Computed in
    log space (scipy's ``log_ndtr``) so that large epsilon neither overflows nor loses the difference.
    """
    z = _check_noise(noise_multiplier)
    if isinstance(epsilon, bool) or not isinstance(epsilon, Real) or not (epsilon >= 0 and math.isfinite(epsilon)):
        raise ValueError(f"epsilon must be a finite number >= 0, got {epsilon!r}.")
    from scipy.special import log_ndtr

    a, b = 1.0 / (2.0 * z) - epsilon * z, -1.0 / (2.0 * z) - epsilon * z
    log_first, log_second = float(log_ndtr(a)), float(epsilon + log_ndtr(b))
    if log_second >= log_first:
        return 0.0
    return float(math.exp(log_first) * -math.expm1(log_second - log_first))


def analytic_gaussian_epsilon(noise_multiplier: float, delta: float, steps: int = 1) -> float:
    """The exact epsilon at ``delta`` of ``steps`` Gaussian mechanisms with sample rate 1 (no accountant).

    Introduced in Chapter 16.

    ``steps`` compositions of the Gaussian mechanism with noise multiplier z are one Gaussian mechanism with
    noise multiplier ``z / sqrt(steps)`` (see :func:`analytic_gaussian_delta`), whose exact ``delta(epsilon)``
    decreases in epsilon; this inverts it by bisection (to a relative 1e-12). The known answer that Opacus's
    accountants (:func:`gaussian_epsilon`: RDP an upper bound, PRV an upper estimate) are checked against.
    Returns 0 when even ``epsilon = 0`` meets ``delta``.
    """
    z = _check_noise(noise_multiplier) / math.sqrt(check_steps(steps))
    d = check_delta(delta)
    if analytic_gaussian_delta(0.0, z) <= d:
        return 0.0
    lo, hi = 0.0, 1.0
    while analytic_gaussian_delta(hi, z) > d:
        lo, hi = hi, 2.0 * hi
    while hi - lo > 1e-12 * hi:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if analytic_gaussian_delta(mid, z) > d else (lo, mid)
    return hi


def randomized_response_epsilon(keep_probability: float, n_classes: int) -> float:
    """Epsilon of randomized response on ``n_classes`` labels that keeps a label with ``keep_probability``.

    Introduced in Chapter 16.

    Otherwise the label becomes one of the other ``C - 1`` classes, uniformly, so each output has probability p
    (the true label) or q = (1 - p) / (C - 1); the worst ratio over two inputs is p / q, and epsilon =
    ``|ln(p (C - 1) / (1 - p))|`` (``inf`` for p = 1; 0 for p = 1 / C, the output ignores the label).
    """
    c = _check_classes(n_classes)
    p = keep_probability
    if isinstance(p, bool) or not isinstance(p, Real) or not 0 < p <= 1:
        raise ValueError(f"keep_probability must lie in (0, 1], got {p!r}.")
    if p == 1:
        return math.inf
    return abs(math.log(p * (c - 1) / (1 - p)))


def randomized_response_keep_probability(epsilon: float, n_classes: int) -> float:
    """The keep probability ``p = e^eps / (e^eps + C - 1)`` of epsilon-DP randomized response (inverse of
    :func:`randomized_response_epsilon` on ``p >= 1 / C``); ``epsilon = inf`` keeps every label."""
    c = _check_classes(n_classes)
    if isinstance(epsilon, bool) or not isinstance(epsilon, Real) or not epsilon > 0:
        raise ValueError(f"epsilon must be a positive number (inf: keep every label), got {epsilon!r}.")
    return 1.0 / (1.0 + (c - 1) * math.exp(-float(epsilon)))


def _check_classes(n_classes: int) -> int:
    if isinstance(n_classes, bool) or not isinstance(n_classes, Integral) or n_classes < 2:
        raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}.")
    return n_classes
