"""LLBG: label counts from the bias gradient, with the trained-model extension (confidences from ``aux``).

Contract: reads the update only, unless ``confidence="aux"`` (then the server's model and auxiliary
labelled windows, read once by ``prepare`` into :class:`Confidence`); counts from the two-stage
greedy solver. Reference: A. Gat and M. Sharif, "Harmful Bias: A General Label-Leakage Attack on
Federated Learning from Bias Gradients", AISec 2024.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...federated.client import MODES, client_features, model_classifier
from ...federated.update import LastLayerUpdate
from .._common import (
    check_aux,
    check_count,
    check_option,
    class_mean_probabilities,
    empirical_impact,
    greedy_counts,
    softmax_rows,
)
from ..base import Attack, Needs
from ..registry import register_attack

IMPACTS: tuple[str, ...] = ("analytic", "empirical")


def class_confidences(
    model, windows: np.ndarray, labels: np.ndarray, mode: str = "train", seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Per class: the model's mean confidence on windows of that class, and its mean probability for
    that class on windows of other classes — ``(conf, off)`` of LLBG's trained-model extension.

    Introduced in Chapter 5. Computed once from labelled windows the server holds (e.g. the other
    subjects); pass the result as ``llbg(update, confidence=(conf, off))``. Classes without windows
    get the uninformed value ``1/C``.
    """
    w, b = model_classifier(model)
    n_classes = w.shape[0]
    windows, labels = check_aux((windows, labels), n_classes)
    p = softmax_rows(client_features(model, windows, mode=mode, seed=seed) @ w.T + b)
    conf = np.diag(class_mean_probabilities(p, labels, n_classes)).copy()
    off = np.full(n_classes, 1.0 / n_classes)
    for c in range(n_classes):
        if np.any(labels != c):
            off[c] = p[labels != c, c].mean()
    return conf, off


@dataclass(frozen=True)
class Confidence:
    """LLBG's trained-model terms: ``conf_c`` (mean probability of the true class on class-``c`` windows)
    and ``off_c`` (mean probability of class ``c`` on the other windows); ``None`` is the untrained
    model's ``1/C``."""

    conf: np.ndarray | None = None
    off: np.ndarray | None = None

    @classmethod
    def of(cls, confidence: object) -> Confidence:
        """From the forms ``llbg`` accepts: ``None``, an array of ``conf`` or a ``(conf, off)`` pair."""
        if confidence is None:
            return cls()
        if isinstance(confidence, tuple) and len(confidence) == 2:
            return cls(*(np.asarray(v, dtype=np.float64) for v in confidence))
        if isinstance(confidence, tuple):
            confidence = tuple(np.asarray(v, dtype=np.float64) for v in confidence)
        return cls(np.asarray(confidence, dtype=np.float64))

    def pair(self, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
        """``(conf, off)`` for ``n_classes`` classes; raises ``ValueError`` naming the accepted forms."""
        uniform = np.full(n_classes, 1.0 / n_classes)
        if self.conf is None and self.off is None:
            return uniform, uniform.copy()
        conf = uniform if self.conf is None else self.conf
        off = uniform if self.off is None else self.off
        if (
            conf.shape != (n_classes,)
            or off.shape != (n_classes,)
            or np.any(conf < 0)
            or np.any(conf >= 1)
            or np.any(off < 0)
            or np.any(off >= 1)
        ):
            raise ValueError(
                f"confidence must be None (untrained), 'aux' (estimated from auxiliary windows), {n_classes} values "
                f"in [0, 1) (each class's mean probability of its true class) or a (conf, off) pair of such arrays, "
                f"e.g. from class_confidences."
            )
        return conf, off


def confidence_pair(confidence: object, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(conf, off)`` of LLBG's equation from the forms ``llbg`` accepts (see :class:`Confidence`).

    ``None`` is the untrained model (``conf = off = 1/C``); an array gives ``conf`` with the uninformed
    ``off = 1/C``; a pair gives both. Raises ``ValueError`` naming the accepted forms for anything else.
    """
    return Confidence.of(confidence).pair(n_classes)


@register_attack("llbg", family="bias", in_paper=True)
@dataclass(eq=False)
class LLBG(Attack):
    """LLBG (see :func:`llbg`); the options are that function's."""

    reads_bias = True

    impact: str = "analytic"
    confidence: object = None
    mode: str = "train"
    seed: int = 0

    examples = ({"impact": "empirical"}, {"confidence": "aux"})

    @property
    def needs(self) -> Needs:
        return Needs.of(model=self._from_aux, aux=self._from_aux)

    @property
    def _from_aux(self) -> bool:
        return isinstance(self.confidence, str)

    def _check(self) -> None:
        check_option("impact", self.impact, IMPACTS)
        if self._from_aux:
            check_option("confidence", self.confidence, ("aux",))
        check_option("mode", self.mode, MODES)
        check_count("seed", self.seed, low=0)

    def _prepare(self, model, aux) -> Confidence:
        if self._from_aux:
            windows, labels = check_aux(aux, model_classifier(model)[0].shape[0])
            return Confidence(*class_confidences(model, windows, labels, mode=self.mode, seed=self.seed))
        return Confidence.of(self.confidence)

    def _count(self, update: LastLayerUpdate, preparation: Confidence) -> np.ndarray:
        b = update.bias_grad
        c_, n, s = update.n_classes, update.n_windows, update.n_steps
        conf, off = preparation.pair(c_)
        if self.impact == "analytic":
            per_window = -(1.0 - conf + off) * s / n
        else:
            per_window = np.full(c_, empirical_impact(b, n))
        return greedy_counts(b, per_window, n, offset=s * off)


def llbg(
    update: LastLayerUpdate,
    impact: str = "analytic",
    confidence: object = None,
    model=None,
    aux=None,
    mode: str = "train",
    seed: int = 0,
) -> np.ndarray:
    """LLBG: label counts from the bias gradient (Gat & Sharif, AISec 2024).

    Introduced in Chapter 5.

    Algorithm (``b`` = bias gradient, ``n_step = N / S`` windows per local step):

    1. every class with ``b_c < 0`` is present: add it once (most negative first, at most ``N``
       classes) and compensate ``b_c`` by one window's impact;
    2. subtract the offset, the bias gradient an absent class would have (``S / C`` untrained);
    3. stage 2: add windows greedily to the most negative compensated entry.

    Per-window impact: ``impact="analytic"`` (the published method) uses ``-(1 - conf_c + off_c) / n_step``
    with ``conf_c = off_c = 1/C`` for an untrained model, i.e. ``-S/N`` (``-1/N`` for FedSGD); it is
    exact for a zero-initialised classifier. ``impact="empirical"`` replaces it by LLG's estimate
    ``(1 + 1/C) * sum_{b_c<0} b_c / N`` (:func:`~leakage_core.attacks._common.empirical_impact`): what
    the seed paper's code used, because ``-1/N`` was "too high" for its models.

    ``confidence=None`` assumes an untrained model (``conf_c = off_c = 1/C``); an array ``(C,)`` gives
    ``conf_c``, the mean probability of the true class, with the uninformed offset ``off_c = 1/C`` (so
    ``np.full(C, 1/C)`` is the same as ``None``); ``confidence="aux"`` estimates, from auxiliary labelled windows
    ``aux=(windows, labels)`` and the server's ``model``, both ``conf_c`` (mean probability of the true
    class) and the offset ``off_c`` (mean probability of class ``c`` on other classes' windows), so that
    ``b_c ~ S * (off_c - n_c (1 - conf_c + off_c) / N)`` — the trained-model extension; a precomputed
    pair from :func:`class_confidences` can be passed as ``confidence=(conf, off)``.

    Multi-step updates: the attacker's view ``-delta/lr`` sums ``S`` step gradients, so offsets scale by
    ``S`` and a window's impact is ``S/N`` times its FedSGD impact ``per window``.
    """
    return LLBG(impact=impact, confidence=confidence, mode=mode, seed=seed).prepare(model, aux).count(update)
