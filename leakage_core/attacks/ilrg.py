"""iLRG: instance-wise batch label restoration (Ma et al., ICLR 2023)."""
from __future__ import annotations

import numpy as np

from ..updates.update import LastLayerUpdate
from ._common import (
    check_classifier_shape, check_option, check_update, classifier_arrays, model_classifier, round_to_total, softmax_rows,
)


def class_mean_probabilities(probabilities: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Row ``j``: the mean probability vector of the windows labelled ``j`` (uniform if there are none).

    Introduced in Chapter 6. With a batch's true per-window probabilities this is the oracle for which
    iLRG's system is exact; with auxiliary data it is what a server can estimate (see
    :func:`~leakage_core.attacks.bias_based.class_confidences`).
    """
    p = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels)
    if p.ndim != 2 or p.shape != (labels.shape[0], num_classes):
        raise ValueError(f"probabilities must be (n, {num_classes}) for n={labels.shape[0]} labels, got {p.shape}.")
    out = np.full((num_classes, num_classes), 1.0 / num_classes)
    for j in np.unique(labels):
        out[j] = p[labels == j].mean(axis=0)
    return out


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


def ilrg(update: LastLayerUpdate, model=None, probabilities="model") -> np.ndarray:
    """iLRG: solve the linear system that identity I1 gives for the counts.

    Introduced in Chapter 6. Ma et al. (ICLR 2023). With ``P[j]`` the probability vector of a window
    of class ``j``, identity I1 reads ``sum_j n_j (P[j][i] - delta_ij) = (N/S) db_i`` for every class
    ``i``; together with ``sum_j n_j = N`` these are ``C + 1`` equations for ``C`` unknowns, solved by
    least squares; negatives are clipped, the result rounded and the total repaired to exactly ``N``
    (:func:`~leakage_core.attacks._common.round_to_total`; public code's repair has a sign bug).

    ``probabilities="model"`` (the published method) estimates ``P[j]`` from the update and the
    server's ``model`` (:func:`ilrg_probabilities`); exact when all windows of a class share one
    feature vector. ``probabilities="uniform"`` sets ``P[j] = 1/C`` (what the seed paper's code used),
    reducing the solution to ``n_i = N (1/C - db_i / S)``; exact for a zero-initialised classifier.
    A ``(C, C)`` array passes known per-class probability vectors (row ``j`` = ``P[j]``): with the true
    ones the system is exact whenever the windows of a class share one probability vector (the
    oracle of the tests). Multi-step updates divide the summed bias gradient by ``S``.
    """
    check_update(update)
    if isinstance(probabilities, str) and probabilities == "model":
        classifier_arrays(model, update)
    return count_ilrg(update, prepare_ilrg(model, None, probabilities))


def prepare_ilrg(model=None, aux=None, probabilities="model") -> dict:
    """iLRG's preparation: the classifier's weight and bias (``"model"``), or the fixed probabilities.

    Not used in a chapter yet. With ``"model"`` the per-class probability vectors depend on the update
    and are computed in :func:`count_ilrg`; only the classifier is read here, once.
    """
    if isinstance(probabilities, str):
        check_option("probabilities", probabilities, ("model", "uniform"))
        if probabilities == "uniform":
            return {"probabilities": "uniform"}
        w, b = model_classifier(model)
        return {"probabilities": "model", "weight": w, "bias": b}
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] != p.shape[1] or not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError("probabilities must be 'model', 'uniform' or a (C, C) array of probability vectors.")
    return {"probabilities": p}


def count_ilrg(update: LastLayerUpdate, prepared: dict) -> np.ndarray:
    """iLRG's counts for one update from its preparation (see :func:`ilrg`). Not used in a chapter yet."""
    check_update(update)
    c_, n, s = update.num_classes, update.n_windows, update.n_steps
    db = update.bias_grad / s
    probabilities = prepared["probabilities"]
    if isinstance(probabilities, str) and probabilities == "uniform":
        return round_to_total(n * (1.0 / c_ - db), n)
    if isinstance(probabilities, str):
        w, b = prepared["weight"], prepared["bias"]
        check_classifier_shape(w.shape, update)
        p = ilrg_probabilities(update, w, b)
    else:
        p = probabilities
        if p.shape != (c_, c_):
            raise ValueError(f"probabilities must be 'model', 'uniform' or a ({c_}, {c_}) array of probability vectors.")
    a = np.vstack([p.T - np.eye(c_), np.ones((1, c_))])
    rhs = np.concatenate([n * db, [n]])
    x, *_ = np.linalg.lstsq(a, rhs, rcond=None)
    return round_to_total(x, n)
