"""iLRG: instance-wise batch label restoration, a linear system for the counts from the bias gradient.

Contract: needs the server's model with ``probabilities="model"`` (the published method; ``prepare``
reads its classifier once into :class:`~leakage_core.attacks.bias.ilrg.Classifier`), nothing with
``"uniform"`` or a given ``(C, C)`` matrix; ``count`` solves the system by least squares and rounds to
``N`` (:func:`~leakage_core.counts.round_to_total`). Reference: K. Ma et al., "Instance-wise
Batch Label Restoration via Gradients in Federated Learning", ICLR 2023.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...federated.client import model_classifier
from ...federated.update import LastLayerUpdate
from ...counts import round_to_total
from .._common import check_classifier_shape, check_model_fits, check_option, softmax_rows
from ..base import Attack, Needs, NoPreparation
from ..registry import register_attack

PROBABILITIES: tuple[str, ...] = ("model", "uniform")


def ilrg_probabilities(update: LastLayerUpdate, weight: np.ndarray, bias: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """Per-class probability vectors ``P[c] = softmax(W e_c + b)`` from the update.

    Introduced in Chapter 6. ``e_c = dW_c / db_c`` is the mean feature of class ``c``'s windows
    (weighted by ``p - y``) whenever one class dominates row ``c``. Guard: where
    ``|db_c| <= tol * max|db|`` the ratio is meaningless and ``P[c] = softmax(b)`` (zero features) is used.
    """
    db = update.bias_grad
    ok = np.abs(db) > tol * max(np.abs(db).max(), 1e-300)
    e = np.zeros_like(update.weight_grad)
    e[ok] = update.weight_grad[ok] / db[ok, None]
    return softmax_rows(e @ weight.T + bias)


@dataclass(frozen=True)
class Classifier:
    """The server model's last layer as float64 arrays: weight ``(C, d)`` and bias ``(C,)``."""

    weight: np.ndarray
    bias: np.ndarray


@register_attack("ilrg", family="bias", in_paper=True)
@dataclass(eq=False)
class ILRG(Attack):
    """iLRG (see :func:`ilrg`); ``probabilities`` is that function's option."""

    reads_bias = True

    probabilities: object = "model"

    examples = ({"probabilities": "uniform"},)

    @property
    def needs(self) -> Needs:
        return Needs.of(model=self._from_model)

    @property
    def _from_model(self) -> bool:
        return isinstance(self.probabilities, str) and self.probabilities == "model"

    def _check(self) -> None:
        if isinstance(self.probabilities, str):
            check_option("probabilities", self.probabilities, PROBABILITIES)
            return
        p = np.asarray(self.probabilities, dtype=np.float64)
        if p.ndim != 2 or p.shape[0] != p.shape[1] or not np.all(np.isfinite(p)) or np.any(p < 0):
            raise ValueError("probabilities must be 'model', 'uniform' or a (C, C) array of probability vectors.")
        self.probabilities = p

    def _prepare(self, model, aux) -> Classifier | NoPreparation:
        if self._from_model:
            return Classifier(*model_classifier(model))
        return NoPreparation()

    def _count(self, update: LastLayerUpdate, preparation: Classifier | NoPreparation) -> np.ndarray:
        c_, n, s = update.n_classes, update.n_windows, update.n_steps
        db = update.bias_grad / s
        if isinstance(self.probabilities, str) and self.probabilities == "uniform":
            return round_to_total(n * (1.0 / c_ - db), n)
        if self._from_model:
            check_classifier_shape(preparation.weight.shape, update)
            p = ilrg_probabilities(update, preparation.weight, preparation.bias)
        else:
            p = self.probabilities
            if p.shape != (c_, c_):
                raise ValueError(
                    f"probabilities must be 'model', 'uniform' or a ({c_}, {c_}) array of probability vectors."
                )
        a = np.vstack([p.T - np.eye(c_), np.ones((1, c_))])
        rhs = np.concatenate([n * db, [n]])
        x, *_ = np.linalg.lstsq(a, rhs, rcond=None)
        return round_to_total(x, n)


def ilrg(update: LastLayerUpdate, model=None, probabilities="model") -> np.ndarray:
    """iLRG: solve the linear system that identity I1 gives for the counts.

    Introduced in Chapter 6. Ma et al. (ICLR 2023). With ``P[j]`` the probability vector of a window
    of class ``j``, identity I1 reads ``sum_j n_j (P[j][i] - delta_ij) = (N/S) db_i`` for every class
    ``i``; together with ``sum_j n_j = N`` these are ``C + 1`` equations for ``C`` unknowns, solved by
    least squares; negatives are clipped, the result rounded and the total repaired to exactly ``N``
    (:func:`~leakage_core.counts.round_to_total`; public code's repair has a sign bug).

    ``probabilities="model"`` (the published method) estimates ``P[j]`` from the update and the
    server's ``model`` (:func:`ilrg_probabilities`); exact when all windows of a class share one
    feature vector. ``probabilities="uniform"`` sets ``P[j] = 1/C`` (what the seed paper's code used),
    reducing the solution to ``n_i = N (1/C - db_i / S)``; exact for a zero-initialised classifier.
    A ``(C, C)`` array passes known per-class probability vectors (row ``j`` = ``P[j]``): with the true
    ones the system is exact whenever the windows of a class share one probability vector (the
    oracle of the tests). Multi-step updates divide the summed bias gradient by ``S``.
    """
    attack = ILRG(probabilities=probabilities)
    if attack.needs.model:
        check_model_fits(model, update)
    return attack.prepare(model).count(update)
