"""LLG*: LLG with per-class impacts and offsets measured on dummy inputs through the server's model.

Contract: needs the server's model unless a precomputed impact matrix is given (``impacts=``);
``prepare`` measures the ``(C, C)`` impact matrix once (:class:`Impacts`), ``count`` solves with it
(:func:`solve_with_impacts`). Also the impact machinery LLG+ (:mod:`.llg_plus`) reuses. Reference:
A. Wainakh et al., "User-Level Label Leakage from Gradients in Federated Learning", PoPETs 2022
(white-box variant); public code github.com/tklab-tud/LLG.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...federated.client import MODES, client_features, model_classifier
from ...federated.update import LastLayerUpdate, last_layer_gradients
from .._common import check_aux, check_classifier_shape, check_count, check_model_fits, check_option, greedy_counts
from ..base import Attack, Needs
from ..registry import register_attack

DUMMIES: tuple[str, ...] = ("zeros", "gaussian", "uniform")
#: how LLG*/LLG+ decide presence in stage 1 (see :func:`solve_with_impacts`)
STAGE1_RULES: tuple[str, ...] = ("paper", "offset")


def dummy_windows(model, kind: str, n: int, seed: int) -> np.ndarray:
    """``n`` dummy windows shaped like the model's input: ``"zeros"``, ``"gaussian"`` or ``"uniform"`` noise.

    Introduced in Chapter 15.
    """
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

    With ``m_j = A[j, j]`` and ``o_j`` = mean of ``A[c, j]`` over ``c != j``:
    ``g_j ~ (S/N) (n_j m_j + (N - n_j) o_j)``, so the signal ``g_j - S o_j`` has per-window impact
    ``S (m_j - o_j) / N``; then the two-stage solver. ``stage1`` decides which classes stage 1 declares
    present:

    - ``"paper"`` (default): the sign of the raw row sums ``g`` (relative to the impact's sign), then
      the offset ``S o`` is subtracted before stage 2 — as in Wainakh et al. (PoPETs 2022) and their
      public code (github.com/tklab-tud/LLG, ``Code/Predictor.py``: ``v2_prediction`` and
      ``v3_prediction`` take the classes with a negative raw row sum, then subtract the offset);
    - ``"offset"``: the sign of the offset-corrected ``g - S o``.
    """
    check_option("stage1", stage1, STAGE1_RULES)
    c_, n, s = update.n_classes, update.n_windows, update.n_steps
    g = update.weight_grad.sum(axis=1)
    own = np.diag(impacts)
    other = (impacts.sum(axis=0) - own) / (c_ - 1)
    if stage1 == "paper":
        return greedy_counts(g, s * (own - other) / n, n, offset=s * other)
    return greedy_counts(g - s * other, s * (own - other) / n, n)


def estimate_impacts(
    model, aux=None, dummy: str = "gaussian", n_dummy: int = 64, n_aux: int = 64, mode: str = "train", seed: int = 0
) -> np.ndarray:
    """The ``(C, C)`` impact matrix of :func:`class_impacts` as LLG* (dummy inputs) or LLG+ (``aux``) measure it.

    Introduced in Chapter 4. It depends only on the model and the probe data, not on the update: LLG*'s and
    LLG+'s ``prepare`` compute it once per model; a matrix computed here can be passed to them (and to
    :func:`llg_star` / :func:`~leakage_core.attacks.weight.llg_plus.llg_plus`) as ``impacts=``.
    """
    w, b = model_classifier(model)
    if aux is None:
        if int(n_dummy) != n_dummy or n_dummy < 1:
            raise ValueError(f"n_dummy must be a positive integer, got {n_dummy!r}.")
        h = client_features(model, dummy_windows(model, dummy, int(n_dummy), seed), mode=mode, seed=seed)
        return class_impacts(h, np.full(len(h), -1), w, b)
    windows, labels = check_aux(aux, w.shape[0])
    rng = np.random.default_rng(seed)
    pick = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:n_aux] for c in np.unique(labels)])
    h = client_features(model, windows[pick], mode=mode, seed=seed)
    return class_impacts(h, labels[pick], w, b)


@dataclass(frozen=True)
class Impacts:
    """LLG*'s and LLG+'s preparation: the ``(C, C)`` impact matrix and the classifier's ``(C, d)`` (if known)."""

    matrix: np.ndarray
    classifier_shape: tuple[int, int] | None

    @classmethod
    def of(cls, impacts: np.ndarray, model) -> Impacts:
        """The matrix as float64 and, with a model, its classifier's shape (checked against each update)."""
        shape = None if model is None else tuple(model_classifier(model)[0].shape)
        return cls(np.asarray(impacts, dtype=np.float64), shape)

    def checked(self, update: LastLayerUpdate) -> np.ndarray:
        """The matrix, after checking that it (and the model) fit the update."""
        check_classifier_shape(self.classifier_shape, update)
        a = self.matrix
        if a.shape != (update.n_classes, update.n_classes) or not np.all(np.isfinite(a)):
            raise ValueError(
                f"impacts must be a finite ({update.n_classes}, {update.n_classes}) matrix from estimate_impacts."
            )
        return a


@register_attack("llg_star", family="weight", in_paper=True)
@dataclass(eq=False)
class LLGStar(Attack):
    """LLG* (see :func:`llg_star`); the options are that function's."""

    dummy: str = "gaussian"
    n_dummy: int = 64
    mode: str = "train"
    seed: int = 0
    impacts: np.ndarray | None = None
    stage1: str = "paper"

    examples = ({"n_dummy": 8}, {"dummy": "zeros", "stage1": "offset"})

    @property
    def needs(self) -> Needs:
        return Needs.of(model=self.impacts is None)

    def _check(self) -> None:
        check_option("dummy", self.dummy, DUMMIES)
        check_count("n_dummy", self.n_dummy)
        check_option("mode", self.mode, MODES)
        check_count("seed", self.seed, low=0)
        check_option("stage1", self.stage1, STAGE1_RULES)

    def _prepare(self, model, aux) -> Impacts:
        impacts = self.impacts
        if impacts is None:
            impacts = estimate_impacts(
                model, None, dummy=self.dummy, n_dummy=self.n_dummy, mode=self.mode, seed=self.seed
            )
        return Impacts.of(impacts, model)

    def _count(self, update: LastLayerUpdate, preparation: Impacts) -> np.ndarray:
        return solve_with_impacts(update, preparation.checked(update), self.stage1)


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
    presence rule (:func:`solve_with_impacts`; default: the LLG paper's raw row-sum sign). The model is
    required (its classifier is checked against the update) even with ``impacts``.
    """
    check_model_fits(model, update)
    attack = LLGStar(dummy=dummy, n_dummy=n_dummy, mode=mode, seed=seed, impacts=impacts, stage1=stage1)
    return attack.prepare(model).count(update)
