"""Geng et al.'s zero-shot label counts: ``n_c = N pbar_c - N G_c / (S Obar)`` from the server's statistics.

Contract: needs the server's model (and, with ``stats="aux"``, auxiliary windows); ``prepare`` runs the probe
windows (Gaussian dummies or auxiliary windows) through the model once and keeps their classifier inputs
(:class:`Probe`); ``count`` is pure: the statistics ``pbar`` (mean softmax) and ``Obar`` (mean feature sum)
at the server's classifier, the formula (:func:`raw_counts`), then :func:`~leakage_core.counts.round_to_total`.
The model is not modified (features come from :func:`~leakage_core.federated.client.client_features`).

Derivation (mean loss over ``N`` windows, ``S`` local steps of ``N/S`` windows, the update's
``G = -delta/lr`` = sum of the per-step mean gradients): the row sum of one step's gradient is
``(S/N) sum_k (p_kc - y_kc) O_k``; with ``O_k = Obar`` and ``p_kc = pbar_c`` for every window,
``sum_j G_cj = Obar (S pbar_c - S n_c / N)``, so ``n_c = N pbar_c - N sum_j G_cj / (S Obar)``. Exact when
every window's features sum to ``Obar`` and its probabilities equal ``pbar``. The bias is a weight on the
constant feature 1, so ``row="bias"`` is the same formula with ``Obar = 1``: ``n_c = N (pbar_c - G_bc / S)``,
identity I1 with only ``pbar`` estimated.

Reference: J. Geng et al., "Towards General Deep Leakage in Federated Learning", arXiv:2110.09074 (2021);
the multi-step factor ``S`` as in D. I. Dimitrov et al., "Data Leakage in Federated Averaging", TMLR 2022.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...federated.client import MODES, client_features, model_classifier
from ...federated.update import LastLayerUpdate
from ...counts import round_to_total
from .._common import check_aux, check_classifier_shape, check_count, check_option, softmax_rows
from ..base import Attack, Needs
from ..registry import register_attack
from ..weight.llg_star import DUMMIES, dummy_windows

#: where the statistics come from: Gaussian (or other) dummy windows (Geng's original) or auxiliary windows
STATS: tuple[str, ...] = ("dummy", "aux")
#: which gradient row the formula reads: the weight row sums (Geng's original) or the bias (``Obar = 1``)
ROWS: tuple[str, ...] = ("weight", "bias")


@dataclass(frozen=True)
class Probe:
    """The preparation of the count attacks: the probe windows' classifier inputs and the server's classifier.

    ``features`` ``(n, d)`` are the classifier inputs of the probe windows at the server's model; ``weight``
    ``(C, d)`` and ``bias`` ``(C,)`` its classifier.
    """

    features: np.ndarray
    weight: np.ndarray
    bias: np.ndarray

    def statistics(self, weight: np.ndarray | None = None, bias: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        """``(pbar, Obar)`` of the probe at the server's classifier, or at ``weight``/``bias`` (same features)."""
        return count_statistics(
            self.features, self.weight if weight is None else weight, self.bias if bias is None else bias
        )

    def checked(self, update: LastLayerUpdate) -> Probe:
        """Itself, after checking that the classifier fits the update."""
        check_classifier_shape(self.weight.shape, update)
        return self


def count_statistics(features: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, float]:
    """The statistics of the count attacks: ``pbar`` ``(C,)``, the mean softmax of the probe windows, and
    ``Obar``, the mean over windows of the sum of their classifier input (``features`` ``(n, d)``)."""
    h = np.asarray(features, dtype=np.float64)
    if h.ndim != 2 or h.shape[0] == 0 or h.shape[1] != np.shape(weight)[1]:
        raise ValueError(f"features must be a non-empty (n, {np.shape(weight)[1]}) matrix, got shape {h.shape}.")
    p = softmax_rows(h @ np.asarray(weight, dtype=np.float64).T + np.asarray(bias, dtype=np.float64))
    return p.mean(axis=0), float(h.sum(axis=1).mean())


def raw_counts(row: np.ndarray, pbar: np.ndarray, obar: float, n: int, s: int = 1) -> np.ndarray:
    """Real-valued counts ``N pbar - N row / (S Obar)`` (``row``: weight row sums or bias, of ``-delta/lr``).

    Not rounded; an ``Obar`` of 0 gives infinities (which :func:`round_to_total` clips to ``[0, N]``).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return n * np.asarray(pbar, dtype=np.float64) - n * np.asarray(row, dtype=np.float64) / (s * obar)


def gradient_row(update: LastLayerUpdate, row: str) -> tuple[np.ndarray, bool]:
    """The ``(C,)`` vector the formula reads and whether it is the bias (then ``Obar = 1`` exactly)."""
    check_option("row", row, ROWS)
    if row == "bias":
        return update.bias_grad, True
    return update.weight_grad.sum(axis=1), False


def probe_features(
    model,
    aux=None,
    stats: str = "dummy",
    dummy: str = "gaussian",
    n_probe: int = 256,
    mode: str = "train",
    seed: int = 0,
) -> np.ndarray:
    """Classifier inputs ``(n, d)`` of the probe windows: ``n_probe`` seeded dummies shaped like windows
    (``stats="dummy"``), or up to ``n_probe`` auxiliary windows drawn with ``seed`` (``stats="aux"``).

    Run through the server's model in ``mode`` (dropout seeded); the model is left as it was.
    """
    check_option("stats", stats, STATS)
    n_probe = check_count("n_probe", n_probe)
    if stats == "dummy":
        windows = dummy_windows(model, dummy, n_probe, seed)
    else:
        windows, _ = check_aux(aux, model_classifier(model)[0].shape[0])
        pick = np.sort(np.random.default_rng(seed).permutation(len(windows))[:n_probe])
        windows = windows[pick]
    return client_features(model, windows, mode=mode, seed=seed)


@dataclass(eq=False)
class CountAttack(Attack):
    """The options and preparation shared by Geng's and Dimitrov's attacks (not registered itself)."""

    stats: str = "dummy"
    row: str = "weight"
    dummy: str = "gaussian"
    n_probe: int = 256
    mode: str = "train"
    seed: int = 0

    aux_hint = "windows the server holds to estimate pbar and Obar (e.g. the other subjects')"

    @property
    def reads_bias(self) -> bool:  # type: ignore[override]
        """Only the bias row needs a bias."""
        return self.row == "bias"

    @property
    def needs(self) -> Needs:
        return Needs.of(model=True, aux=self.stats == "aux")

    def _check(self) -> None:
        check_option("stats", self.stats, STATS)
        check_option("row", self.row, ROWS)
        check_option("dummy", self.dummy, DUMMIES)
        check_count("n_probe", self.n_probe)
        check_option("mode", self.mode, MODES)
        check_count("seed", self.seed, low=0)

    def _prepare(self, model, aux) -> Probe:
        w, b = model_classifier(model)
        h = probe_features(model, aux, self.stats, self.dummy, self.n_probe, self.mode, self.seed)
        return Probe(h, w, b)


@register_attack("geng", family="count")
@dataclass(eq=False)
class Geng(CountAttack):
    """Geng et al.'s zero-shot counts (see :func:`geng`); the options are that function's."""

    examples = ({"stats": "aux", "n_probe": 16}, {"row": "bias", "dummy": "uniform"})

    def _count(self, update: LastLayerUpdate, preparation: Probe) -> np.ndarray:
        pbar, obar = preparation.checked(update).statistics()
        g, is_bias = gradient_row(update, self.row)
        n = update.n_windows
        return round_to_total(raw_counts(g, pbar, 1.0 if is_bias else obar, n, update.n_steps), n)


def geng(
    update: LastLayerUpdate,
    model=None,
    aux=None,
    stats: str = "dummy",
    row: str = "weight",
    dummy: str = "gaussian",
    n_probe: int = 256,
    mode: str = "train",
    seed: int = 0,
) -> np.ndarray:
    """Geng et al.'s zero-shot label counts: ``n_c = N pbar_c - N sum_j G_cj / (S Obar)``, rounded to ``N``.

    Introduced in Chapter 15.

    J. Geng et al., "Towards General Deep Leakage in Federated Learning" (2021). The server runs probe
    windows through its ``model`` (in ``mode``, dropout seeded with ``seed``) and estimates ``pbar``, the mean
    softmax, and ``Obar``, the mean sum of the classifier's input; ``G`` is the update's weight gradient
    (``-delta/lr`` for FedAvg, so the ``S`` in the denominator; ``S = 1`` for FedSGD). Counts are clipped
    at zero and rounded to integers summing to ``N`` (largest remainder).

    Options: ``stats="dummy"`` (Geng's original: ``n_probe`` dummy windows of kind ``dummy``) or ``"aux"``
    (up to ``n_probe`` of the server's auxiliary windows ``aux=(windows, labels)``; labels unused);
    ``row="weight"`` (Geng's original) or ``"bias"`` (the bias gradient with ``Obar = 1``, exact by
    identity I1 up to ``pbar``). The weight form assumes features of one sign (ReLU): with the LSTM
    outputs of DeepConvLSTM and TinyHAR (in (-1, 1)) ``Obar`` can be near 0 and the estimate explodes.
    Raises ``ValueError`` if the model has no ``classifier`` Linear or it does not fit the update.
    """
    attack = Geng(stats=stats, row=row, dummy=dummy, n_probe=n_probe, mode=mode, seed=seed)
    return attack.prepare(model, aux).count(update)
