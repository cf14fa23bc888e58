"""Weight-based attacks: LLG, LLG* and LLG+ (after Wainakh et al., PoPETs 2022).

They read the row sums of the classifier's weight gradient, ``g_c = sum_j dL/dW_cj``. By identity I2
(Chapter 3), ``g_c = (1/N) sum_k (p_kc - y_kc) 1^T h_k``: negative for present classes only when the
features are non-negative — which LSTM heads do not guarantee (Chapter 4 shows the consequences).
"""
from __future__ import annotations

import numpy as np

from ..updates.client import client_features
from ..updates.update import LastLayerUpdate, last_layer_gradients
from ._common import (
    check_aux, check_classifier_shape, check_option, check_update, classifier_arrays, classifier_shape, greedy_counts, model_classifier, no_preparation,
)

DUMMIES: tuple[str, ...] = ("zeros", "gaussian", "uniform")
#: how LLG*/LLG+ decide presence in stage 1 (see :func:`solve_with_impacts`)
STAGE1_RULES: tuple[str, ...] = ("paper", "offset")


def llg(update: LastLayerUpdate) -> np.ndarray:
    """LLG: label counts from the weight-gradient row sums with an empirical impact.

    Introduced in Chapter 4. Wainakh et al. (PoPETs 2022). ``g`` = row sums of the weight gradient;
    one window's impact is estimated from the gradient itself as
    ``m = (1 + 1/C) * sum_{g_c<0} g_c / N``; offset 0. Then the two-stage greedy solver
    (:func:`~leakage_core.attacks._common.greedy_counts`): stage 1 adds each negative class once
    (at most ``N``), stage 2 adds windows to the most negative compensated class. Multi-step
    updates: ``m`` is read off the summed gradient, so it already carries the factor ``S`` of the
    summed per-window impact (no further division). Public LLG code compensates a stale loop index in
    stage 2 (regression-tested). If no row sum is negative, ``m = 0`` and all windows go to ``argmin g``.
    """
    return count_llg(update, no_preparation())



def count_llg(update: LastLayerUpdate, prepared: dict) -> np.ndarray:
    """LLG's counts for one update (see :func:`llg`). Not used in a chapter yet."""
    check_update(update)
    g = update.weight_grad.sum(axis=1)
    m = (1.0 + 1.0 / update.num_classes) * g[g < 0].sum() / update.n_windows
    return greedy_counts(g, np.full(update.num_classes, m), update.n_windows)


def _dummy_windows(model, kind: str, n: int, seed: int) -> np.ndarray:
    check_option("dummy", kind, DUMMIES)
    shape = (n, int(model.window_size), int(model.n_channels))
    rng = np.random.default_rng(seed)
    if kind == "zeros":
        return np.zeros(shape, np.float32)
    if kind == "gaussian":
        return rng.normal(size=shape).astype(np.float32)
    return rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)


def class_impacts(features: np.ndarray, labels: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Per-class effect of one window on every weight-row sum: ``A[c, j]`` for a window of class ``c``.

    Introduced in Chapter 4. For each class ``c`` the features of windows labelled ``c`` (or, for
    classes without windows, all features relabelled ``c``) give the batch-mean weight gradient; its row
    sums are ``A[c]``. ``A[c, c]`` is the impact on the class's own row, ``A[c, j != c]`` its offset on
    other rows. (Summing ``A[c]`` over all rows gives 0 by the softmax identity — the quantity public
    LLG* code used as "impact": see the regression test.)
    """
    h = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    c_ = weight.shape[0]
    impacts = np.zeros((c_, c_))
    for c in range(c_):
        own = h[labels == c] if (labels == c).any() else h
        dw, _ = last_layer_gradients(own, np.full(len(own), c), weight, bias)
        impacts[c] = dw.sum(axis=1)
    return impacts


def solve_with_impacts(update: LastLayerUpdate, impacts: np.ndarray, stage1: str = "paper") -> np.ndarray:
    """Counts from row sums given per-class impacts ``A`` (see :func:`class_impacts`).

    Not used in a chapter yet. With ``m_j = A[j, j]`` and ``o_j`` = mean of ``A[c, j]`` over
    ``c != j``: ``g_j ~ (S/N) (n_j m_j + (N - n_j) o_j)``, so the signal ``g_j - S o_j`` has per-window
    impact ``S (m_j - o_j) / N``; then the two-stage solver. ``stage1`` decides which classes stage 1
    declares present:

    - ``"paper"`` (default): the sign of the raw row sums ``g`` (relative to the impact's sign), then
      the offset ``S o`` is subtracted before stage 2 — as in Wainakh et al. (PoPETs 2022) and their
      public code (github.com/tklab-tud/LLG, ``Code/Predictor.py``: ``v2_prediction`` and
      ``v3_prediction`` take the classes with a negative raw row sum, then subtract the offset);
    - ``"offset"``: the sign of the offset-corrected ``g - S o`` (this book's earlier rule).
    """
    check_option("stage1", stage1, STAGE1_RULES)
    c_, n, s = update.num_classes, update.n_windows, update.n_steps
    g = update.weight_grad.sum(axis=1)
    own = np.diag(impacts)
    other = (impacts.sum(axis=0) - own) / (c_ - 1)
    if stage1 == "paper":
        return greedy_counts(g, s * (own - other) / n, n, offset=s * other)
    return greedy_counts(g - s * other, s * (own - other) / n, n)


def estimate_impacts(
    model,
    aux=None,
    dummy: str = "gaussian",
    n_dummy: int = 64,
    n_aux: int = 64,
    mode: str = "train",
    seed: int = 0,
) -> np.ndarray:
    """The ``(C, C)`` impact matrix of :func:`class_impacts` as LLG* (dummy inputs) or LLG+ (``aux``) measure it.

    Not used in a chapter yet. It depends only on the model and the probe data, not on the update: compute
    it once per model and pass it as ``impacts=`` to attack many updates (as
    :func:`leakage_core.experiments.attack_client` does).
    """
    w, b = model_classifier(model)
    if aux is None:
        if int(n_dummy) != n_dummy or n_dummy < 1:
            raise ValueError(f"n_dummy must be a positive integer, got {n_dummy!r}.")
        h = client_features(model, _dummy_windows(model, dummy, int(n_dummy), seed), mode=mode, seed=seed)
        return class_impacts(h, np.full(len(h), -1), w, b)
    windows, labels = check_aux(aux, w.shape[0])
    rng = np.random.default_rng(seed)
    pick = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:n_aux] for c in np.unique(labels)])
    h = client_features(model, windows[pick], mode=mode, seed=seed)
    return class_impacts(h, labels[pick], w, b)


def _checked_impacts(impacts, update: LastLayerUpdate) -> np.ndarray:
    a = np.asarray(impacts, dtype=np.float64)
    if a.shape != (update.num_classes, update.num_classes) or not np.all(np.isfinite(a)):
        raise ValueError(f"impacts must be a finite ({update.num_classes}, {update.num_classes}) matrix from estimate_impacts.")
    return a


def llg_star(
    update: LastLayerUpdate,
    model=None,
    dummy: str = "gaussian",
    n_dummy: int = 64,
    mode: str = "train",
    seed: int = 0,
    impacts: np.ndarray | None = None,
    stage1: str = "paper",
) -> np.ndarray:
    """LLG*: LLG with impacts and offsets estimated on dummy inputs through the server's model.

    Introduced in Chapter 4. Wainakh et al. (PoPETs 2022), white-box variant. The attacker feeds
    ``n_dummy`` dummy windows (``"zeros"``, ``"gaussian"`` or ``"uniform"`` noise shaped like real
    windows) through its copy of the model (in ``mode``, dropout seeded), labels them with each class
    in turn, and measures per class the impact on its own weight row and the offset on the other rows
    (:func:`class_impacts`); then :func:`solve_with_impacts`. Public code estimated the impact by
    summing over all classes, which is ~0 by construction (regression-tested): not repeated here.
    ``impacts`` takes a precomputed matrix from :func:`estimate_impacts`; ``stage1`` chooses the
    presence rule (:func:`solve_with_impacts`; default: the LLG paper's raw row-sum sign).
    """
    check_update(update)
    classifier_arrays(model, update)
    return count_with_impacts(update, prepare_llg_star(model, None, dummy, n_dummy, mode, seed, impacts, stage1))


def prepare_llg_star(
    model=None,
    aux=None,
    dummy: str = "gaussian",
    n_dummy: int = 64,
    mode: str = "train",
    seed: int = 0,
    impacts: np.ndarray | None = None,
    stage1: str = "paper",
) -> dict:
    """LLG*'s preparation, run once per model: the impact matrix from dummy inputs (or the given one).

    Not used in a chapter yet. It depends on the model and the probe, not on the update, so the
    experiment engine computes it once per (model state, client) and reuses it for every batch.
    """
    check_option("dummy", dummy, DUMMIES)
    check_option("stage1", stage1, STAGE1_RULES)
    if impacts is None:
        impacts = estimate_impacts(model, None, dummy=dummy, n_dummy=n_dummy, mode=mode, seed=seed)
    return _impact_preparation(impacts, model, stage1)


def _impact_preparation(impacts, model, stage1: str) -> dict:
    """What :func:`count_with_impacts` reads: the impact matrix, the classifier's shape, the stage-1 rule."""
    return {"impacts": np.asarray(impacts, dtype=np.float64), "classifier_shape": classifier_shape(model),
            "stage1": stage1}


def count_with_impacts(update: LastLayerUpdate, prepared: dict) -> np.ndarray:
    """LLG*'s and LLG+'s counts for one update from a prepared impact matrix. Not used in a chapter yet."""
    check_update(update)
    check_classifier_shape(prepared["classifier_shape"], update)
    return solve_with_impacts(update, _checked_impacts(prepared["impacts"], update), prepared["stage1"])


def llg_plus(
    update: LastLayerUpdate,
    model=None,
    aux=None,
    n_aux: int = 64,
    mode: str = "train",
    seed: int = 0,
    impacts: np.ndarray | None = None,
    stage1: str = "paper",
) -> np.ndarray:
    """LLG+: LLG* with impacts estimated from auxiliary *real* labelled windows.

    Introduced in Chapter 4. Not in the seed paper: in the leave-one-subject-out setting the server
    holds the other subjects' windows, so it can measure each class's impact on real features
    (up to ``n_aux`` windows per class, drawn with ``seed``). Classes missing from ``aux`` fall back to
    all auxiliary windows relabelled with that class. ``impacts`` takes a precomputed matrix from
    :func:`estimate_impacts`.
    """
    check_update(update)
    classifier_arrays(model, update)
    return count_with_impacts(update, prepare_llg_plus(model, aux, n_aux, mode, seed, impacts, stage1))


def prepare_llg_plus(
    model=None,
    aux=None,
    n_aux: int = 64,
    mode: str = "train",
    seed: int = 0,
    impacts: np.ndarray | None = None,
    stage1: str = "paper",
) -> dict:
    """LLG+'s preparation, run once per (model, auxiliary data): the impact matrix from real windows.

    Not used in a chapter yet.
    """
    check_option("stage1", stage1, STAGE1_RULES)
    if impacts is None:
        if aux is None:
            check_aux(aux, 0)
        impacts = estimate_impacts(model, aux, n_aux=n_aux, mode=mode, seed=seed)
    return _impact_preparation(impacts, model, stage1)
