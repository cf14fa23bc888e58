"""Our own count attack: the linear minimum-mean-squared-error (Bayes-linear) estimate of the counts.

Contract: needs the server's model and auxiliary labelled windows ``aux=(windows, labels)`` (the other
subjects: the population); ``prepare`` runs every auxiliary window through the model once and keeps its
softmax probabilities, its feature sum and its label (:class:`AuxStream`); ``count`` is a pure function of
the update and that preparation. The model is not modified (:func:`~leakage_core.federated.client.client_features`).

Derivation. The server knows the update (``N``, ``S``, ``lr``, the sampler of its protocol), its model and
the population. Per class ``c`` it reads one scalar statistic of the update (``G = -delta/lr``, the sum of
the ``S`` per-step mean gradients, so ``-(N/S) G`` is a sum over the ``N`` windows):

- bias row: ``x_c = -(N/S) G_b,c = sum_k (y_kc - p_kc) = n_c - sum_k p_kc`` (identity I1, exact at ``S = 1``);
- weight row (no bias, or ``row="weight"``): ``x_c = -(N/S) sum_j G_W,cj = sum_k (y_kc - p_kc) O_k``,
  ``O_k`` the sum of window ``k``'s classifier input (identity I2).

Treat the client's batch as a random draw of ``N`` windows from the population by the update's sampler.
Among all estimators ``a + b x_c`` the one of least expected squared error is
``nhat_c = E n_c + beta_c (x_c - E x_c)``, ``beta_c = Cov(n_c, x_c) / Var(x_c)`` (the Bayes-linear or
LMMSE estimate; ``beta_c = 0`` when ``x_c`` does not vary: it carries no information). The server estimates
the moments by simulation: it draws ``n_sim`` batches of ``N`` auxiliary windows with the sampler and
computes their true counts and the statistic they would give at ``S = 1`` (from the stored ``P``, ``O``).
The means ``E n_c = N share_c`` and ``E x_c = N mean_aux[(y_c - p_c) O]`` (``O = 1`` on the bias row) are
the population's, exact for ``"shuffle"`` (every slot of a batch is a uniform draw from the population) and
used for ``"sequential"`` too, so with ``beta = 0`` the estimate is the blind prior's value
``N share_c``; for ``"balanced"`` (not the population's shares) both means are the simulation's. Only
``beta`` comes from the simulated covariance. The estimate is clipped to ``[0, N]`` and rounded to ``N``
(largest remainder).

Why it cannot do worse than the blind guess in expectation: the constant ``E n_c`` (``b = 0``) is one of the
estimators ``a + b x_c``, so the LMMSE's expected squared error per class is at most the constant's — for
batches distributed as the simulation (the server's aux windows under its model). A client's batch is
drawn from another subject, and a model trained on the aux windows is more confident on them than on the
client's: the guarantee holds up to that shift, which the chapter measures. Clipping to ``[0, N]`` only
moves an estimate towards the truth.

Simulated batches: ``"shuffle"`` and ``"balanced"`` are :func:`~leakage_core.federated.sampling.make_batches`
on the auxiliary labels with seeds ``seed, seed + 1, ...`` until ``n_sim`` batches; ``"sequential"``
would give the same partition for every seed, so it draws ``n_sim`` random contiguous stretches (offsets
uniform in ``[0, n - N]``; a stretch may cross from one subject to the next, as the aux stream is the
subjects' windows one after the other). The sampler is the option ``sampler``, else the update's
(``update.sampler``, set by the server's protocol), else ``"shuffle"``. ``S`` does not enter the
simulation (the statistic is per window); for ``S > 1`` the model moves during the steps and the
simulation at the server's model is an approximation. The simulation is deterministic and memoised per
``(N, sampler, row)`` on the prepared attack.

Local DP (option ``noise``): Gaussian noise of standard deviation ``sigma`` on every entry of the update is
independent of the counts, so it leaves ``Cov(n_c, x_c)`` unchanged and adds ``(N sigma / S)^2`` to ``Var(x_c)`` on
the bias row and ``d (N sigma / S)^2`` on a weight row (a sum of ``d`` noisy entries);
the estimate then trusts the statistic less (:meth:`Regression.with_noise`). Clipping is not modelled.

Reference: the Bayes-linear estimator as in M. Goldstein and D. Wooff, "Bayes Linear Statistics: Theory and
Methods", Wiley (2007), ch. 3 (adjusted expectation); identities I1 and I2 as in Chapter 3.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...federated.client import MODES, client_features, model_classifier
from ...federated.sampling import SAMPLERS, make_batches
from ...federated.update import LastLayerUpdate
from ...counts import round_to_total
from .._common import check_aux, check_classifier_shape, check_count, check_option, softmax_rows
from ..base import Attack, Needs
from ..registry import register_attack

#: which gradient row the statistic reads: the bias if the update has one (``"auto"``), the bias, the weight rows
ROWS: tuple[str, ...] = ("auto", "bias", "weight")
#: a statistic whose simulated variance is below this share of its mean square carries no information
NO_INFORMATION = 1e-10


@dataclass(frozen=True)
class AuxStream:
    """The preparation of :class:`LMMSE`: the auxiliary windows at the server's classifier, in stream order.

    ``probabilities`` ``(n, C)`` softmax outputs, ``feature_sums`` ``(n,)`` sums of the classifier input,
    ``labels`` ``(n,)`` the windows' labels, ``classifier_shape`` ``(C, d)`` of the server's classifier.
    """

    probabilities: np.ndarray
    feature_sums: np.ndarray
    labels: np.ndarray
    classifier_shape: tuple[int, int]

    @property
    def n_classes(self) -> int:
        return self.classifier_shape[0]

    def one_hot(self) -> np.ndarray:
        """``(n, C)`` one-hot labels."""
        return np.eye(self.n_classes)[self.labels]

    def residuals(self, bias_row: bool) -> np.ndarray:
        """``(n, C)`` each window's term of the statistic: ``y - p`` (bias row) or ``(y - p) O`` (weight row)."""
        r = self.one_hot() - self.probabilities
        return r if bias_row else r * self.feature_sums[:, None]

    def shares(self) -> np.ndarray:
        """The population's class shares (``(C,)``, summing to 1)."""
        return np.bincount(self.labels, minlength=self.n_classes) / self.labels.size


@dataclass(frozen=True)
class Regression:
    """The per-class linear estimate ``nhat = mean_n + beta (x - mean_x)`` of one ``(N, sampler, row)``;
    ``var_x`` is the statistic's simulated variance (``beta = Cov(n, x) / var_x``)."""

    mean_n: np.ndarray
    mean_x: np.ndarray
    beta: np.ndarray
    var_x: np.ndarray

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.mean_n + self.beta * (np.asarray(x, dtype=np.float64) - self.mean_x)

    def with_noise(self, variance: float) -> Regression:
        """The estimate when independent zero-mean noise of ``variance`` is added to every statistic: the
        covariance is unchanged, the variance grows, so ``beta`` shrinks by ``var_x / (var_x + variance)``."""
        if variance == 0:
            return self
        total = self.var_x + variance
        return Regression(self.mean_n, self.mean_x, self.beta * self.var_x / total, total)


def aux_stream(model, aux, mode: str = "train", seed: int = 0) -> AuxStream:
    """Every auxiliary window's probabilities and feature sum at the server's model (in ``mode``, dropout
    seeded with ``seed``), with its label; the model is left as it was."""
    w, b = model_classifier(model)
    windows, labels = check_aux(aux, w.shape[0])
    h = client_features(model, windows, mode=mode, seed=seed)
    p = softmax_rows(h @ w.T + b)
    return AuxStream(p, h.sum(axis=1), labels.astype(np.int64), (int(w.shape[0]), int(w.shape[1])))


def update_statistic(update: LastLayerUpdate, bias_row: bool) -> np.ndarray:
    """``x = -(N/S) G_b`` (bias row) or ``-(N/S) sum_j G_W`` (weight row) of the update, ``(C,)``."""
    g = update.bias_grad if bias_row else update.weight_grad.sum(axis=1)
    return -(update.n_windows / update.n_steps) * np.asarray(g, dtype=np.float64)


def simulated_batches(labels: np.ndarray, n: int, sampler: str, n_sim: int, seed: int = 0) -> np.ndarray:
    """``(n_sim, N)`` window indices of simulated batches of the auxiliary stream (see the module docstring).

    Raises ``ValueError`` when the stream holds fewer than ``N`` windows.
    """
    check_option("sampler", sampler, SAMPLERS)
    if labels.size < n:
        raise ValueError(
            f"aux holds {labels.size} windows, fewer than the update's N = {n}: the simulation needs batches of N "
            "auxiliary windows; pass more auxiliary windows (e.g. every other subject's)."
        )
    if sampler == "sequential":
        offsets = np.random.default_rng(seed).integers(0, labels.size - n + 1, size=n_sim)
        return offsets[:, None] + np.arange(n)[None, :]
    batches: list[np.ndarray] = []
    k = 0
    while len(batches) < n_sim:
        batches.extend(make_batches(labels, n, sampler=sampler, seed=seed + k))
        k += 1
    return np.stack(batches[:n_sim])


def fit_regression(stream: AuxStream, n: int, sampler: str, bias_row: bool, n_sim: int, seed: int = 0) -> Regression:
    """The per-class LMMSE coefficients for batches of ``N`` windows drawn by ``sampler`` from the stream."""
    idx = simulated_batches(stream.labels, n, sampler, n_sim, seed)
    y, r = stream.one_hot(), stream.residuals(bias_row)
    counts, x = y[idx].sum(axis=1), r[idx].sum(axis=1)  # (n_sim, C) each
    x_mean = x.mean(axis=0)
    dx = x - x_mean
    var_x = (dx**2).mean(axis=0)
    cov = ((counts - counts.mean(axis=0)) * dx).mean(axis=0)
    informative = var_x > NO_INFORMATION * (x**2).mean(axis=0)
    beta = np.where(informative, cov / np.where(informative, var_x, 1.0), 0.0)
    if sampler == "balanced":
        return Regression(counts.mean(axis=0), x_mean, beta, var_x)
    return Regression(n * stream.shares(), n * r.mean(axis=0), beta, var_x)


@register_attack("lmmse", family="count")
@dataclass(eq=False)
class LMMSE(Attack):
    """The Bayes-linear posterior mean of the counts (see :func:`lmmse`); the options are that function's."""

    row: str = "auto"
    sampler: str | None = None
    n_sim: int = 400
    mode: str = "train"
    seed: int = 0
    noise: float = 0.0

    needs = Needs.MODEL_AUX
    aux_hint = "the population's labelled windows the batches are simulated from (e.g. the other subjects')"
    examples = (
        {"n_sim": 8, "row": "weight"},
        {"n_sim": 5, "sampler": "sequential"},
        {"n_sim": 6, "sampler": "balanced", "row": "bias"},
        {"n_sim": 4, "noise": 0.1},
    )

    @property
    def reads_bias(self) -> bool:  # type: ignore[override]
        """Only ``row="bias"`` needs a bias; ``"auto"`` reads the weight rows of a bias-free update."""
        return self.row == "bias"

    def _check(self) -> None:
        check_option("row", self.row, ROWS)
        check_option("sampler", self.sampler, (None, *SAMPLERS))
        check_count("n_sim", self.n_sim, low=2)
        check_option("mode", self.mode, MODES)
        check_count("seed", self.seed, low=0)
        if isinstance(self.noise, bool) or not isinstance(self.noise, (int, float)) or not 0 <= self.noise < np.inf:
            raise ValueError(
                f"noise must be the standard deviation (>= 0) of the Gaussian noise the client adds to every entry "
                f"of its update (local DP's sigma; 0: none), got {self.noise!r}."
            )

    def _prepare(self, model, aux) -> AuxStream:
        self._fits: dict[tuple[int, str, bool], Regression] = {}
        return aux_stream(model, aux, self.mode, self.seed)

    def sampler_of(self, update: LastLayerUpdate) -> str:
        """The sampler the simulation uses: the option, else the update's, else ``"shuffle"``."""
        sampler = self.sampler or update.sampler or "shuffle"
        check_option("update.sampler", sampler, SAMPLERS)
        return sampler

    def bias_row(self, update: LastLayerUpdate) -> bool:
        """Whether the statistic reads the bias row (``"auto"``: if the update has one)."""
        return self.row == "bias" or (self.row == "auto" and update.has_bias)

    def regression(self, update: LastLayerUpdate, preparation: AuxStream) -> Regression:
        """The (memoised) coefficients for this update's ``N``, sampler and row."""
        key = (update.n_windows, self.sampler_of(update), self.bias_row(update))
        if key not in self._fits:
            self._fits[key] = fit_regression(preparation, *key, n_sim=self.n_sim, seed=self.seed)
        return self._fits[key]

    def _count(self, update: LastLayerUpdate, preparation: AuxStream) -> np.ndarray:
        check_classifier_shape(preparation.classifier_shape, update)
        regression = self.regression(update, preparation)
        if self.noise:  # x = -(N/S) g: noise of sd sigma on each entry of g adds (N sigma / S)^2 per entry read
            entries = 1 if self.bias_row(update) else update.feature_dim  # the weight row sums d noisy entries
            regression = regression.with_noise(entries * (update.n_windows / update.n_steps * self.noise) ** 2)
        estimate = regression(update_statistic(update, self.bias_row(update)))
        return round_to_total(estimate, update.n_windows)


def lmmse(
    update: LastLayerUpdate,
    model=None,
    aux=None,
    row: str = "auto",
    sampler: str | None = None,
    n_sim: int = 400,
    mode: str = "train",
    seed: int = 0,
    noise: float = 0.0,
) -> np.ndarray:
    """The Bayes-linear (LMMSE) estimate of the counts given one statistic of the update per class.

    ``nhat_c = E n_c + beta_c (x_c - E x_c)`` with ``x_c = -(N/S) G_b,c`` (``row="bias"``, or ``"auto"``
    when the update has a bias) or ``-(N/S) sum_j G_W,cj`` (``row="weight"``, or ``"auto"`` without a
    bias), ``beta_c = Cov(n_c, x_c) / Var(x_c)`` from ``n_sim`` batches of ``N`` auxiliary windows
    ``aux=(windows, labels)`` drawn with ``sampler`` (default: the update's, else ``"shuffle"``), their
    probabilities and feature sums taken at the server's ``model`` in ``mode`` (default ``"train"``, the
    client's default; dropout seeded with ``seed``). The means are the population's (``N share_c``: the
    blind prior's value when the update carries no information), the simulation's for ``"balanced"``.
    ``noise``: the standard deviation of Gaussian noise the client adds to every entry of its update (local
    DP, Chapter 11; clipping is not modelled), known to the server from its protocol: it adds
    ``(N noise / S)^2`` (bias row; ``d`` times that on a weight row) to the statistic's variance and shrinks
    ``beta`` accordingly (0: none).
    Clipped to ``[0, N]`` and rounded to integers summing to ``N``. See the module docstring for the
    derivation and why it does no worse than the blind prior in expectation on batches like the
    simulation's. Raises :class:`~leakage_core.attacks.base.NoBiasError` for ``row="bias"`` on an update
    without a bias gradient, ``ValueError`` for a model without a ``classifier`` Linear or one that does not
    fit the update, bad aux, or fewer aux windows than ``N``.
    """
    attack = LMMSE(row=row, sampler=sampler, n_sim=n_sim, mode=mode, seed=seed, noise=noise)
    return attack.prepare(model, aux).count(update)
