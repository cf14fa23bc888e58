"""Bias-based attacks: LLBG (Gat & Sharif, 2024) and EBI, its empirical-impact baseline.

Both read the classifier's bias gradient, whose structure is identity I1 (Chapter 3):
``db_c = (sum_k p_kc - n_c) / N``. A negative entry proves the class is present.
"""
from __future__ import annotations

import numpy as np

from ..updates.update import LastLayerUpdate
from .ilrg import class_mean_probabilities
from ._common import (
    check_aux, check_option, check_update, greedy_counts, model_classifier, no_preparation, softmax_rows,
)


def class_confidences(model, windows: np.ndarray, labels: np.ndarray, mode: str = "train", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per class: the model's mean confidence on windows of that class, and its mean probability for
    that class on windows of other classes — ``(conf, off)`` of LLBG's trained-model extension.

    Introduced in Chapter 5. Computed once from labelled windows the server holds (e.g. the other
    subjects); pass the result as ``llbg(update, confidence=(conf, off))``. Classes without windows
    get the uninformed value ``1/C``.
    """
    from ..updates.client import client_features

    num_classes = model.classifier.out_features
    windows, labels = check_aux((windows, labels), num_classes)
    w, b = model.classifier.weight.detach().double().numpy(), model.classifier.bias.detach().double().numpy()
    p = softmax_rows(client_features(model, windows, mode=mode, seed=seed) @ w.T + b)
    conf = np.diag(class_mean_probabilities(p, labels, num_classes)).copy()
    off = np.full(num_classes, 1.0 / num_classes)
    for c in range(num_classes):
        if np.any(labels != c):
            off[c] = p[labels != c, c].mean()
    return conf, off


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
    ``(1 + 1/C) * sum_{b_c<0} b_c / N``: what the seed paper's code used, because ``-1/N`` was "too
    high" for its models.

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
    check_update(update)
    return count_llbg(update, prepare_llbg(model, aux, impact, confidence, mode, seed))


def prepare_llbg(model=None, aux=None, impact: str = "analytic", confidence: object = None,
                 mode: str = "train", seed: int = 0) -> dict:
    """LLBG's preparation: the option checks and, for ``confidence="aux"``, the trained-model
    confidences estimated once from auxiliary windows (:func:`class_confidences`).

    Not used in a chapter yet.
    """
    check_option("impact", impact, ("analytic", "empirical"))
    if isinstance(confidence, str):
        check_option("confidence", confidence, ("aux",))
        num_classes = model_classifier(model)[0].shape[0]
        confidence = class_confidences(model, *check_aux(aux, num_classes), mode=mode, seed=seed)
    if isinstance(confidence, tuple):
        confidence = tuple(np.asarray(v, dtype=np.float64) for v in confidence)
    elif confidence is not None:
        confidence = np.asarray(confidence, dtype=np.float64)
    return {"impact": impact, "confidence": confidence}


def confidence_pair(confidence: object, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(conf, off)`` of LLBG's equation from the forms ``llbg`` accepts.

    Not used in a chapter yet. ``conf_c`` is the mean probability of the true class on class-``c``
    windows, ``off_c`` the mean probability of class ``c`` on the other windows. ``None`` is the
    untrained model (``conf = off = 1/C``); an array gives ``conf`` with the uninformed ``off = 1/C``;
    a pair gives both. Raises ``ValueError`` naming the accepted forms for anything else.
    """
    uniform = np.full(num_classes, 1.0 / num_classes)
    if confidence is None:
        return uniform, uniform.copy()
    conf, off = confidence if isinstance(confidence, tuple) and len(confidence) == 2 else (confidence, uniform)
    conf, off = np.asarray(conf, dtype=np.float64), np.asarray(off, dtype=np.float64)
    if conf.shape != (num_classes,) or off.shape != (num_classes,) or np.any(conf < 0) or np.any(conf >= 1) \
            or np.any(off < 0) or np.any(off >= 1):
        raise ValueError(
            f"confidence must be None (untrained), 'aux' (estimated from auxiliary windows), {num_classes} values "
            f"in [0, 1) (each class's mean probability of its true class) or a (conf, off) pair of such arrays, "
            f"e.g. from class_confidences."
        )
    return conf, off


def count_llbg(update: LastLayerUpdate, prepared: dict) -> np.ndarray:
    """LLBG's counts for one update from its preparation (see :func:`llbg`). Not used in a chapter yet."""
    check_update(update)
    b = update.bias_grad
    c_, n, s = update.num_classes, update.n_windows, update.n_steps
    conf, off = confidence_pair(prepared["confidence"], c_)
    if prepared["impact"] == "analytic":
        per_window = -(1.0 - conf + off) * s / n
    else:
        neg = b[b < 0]
        per_window = np.full(c_, (1.0 + 1.0 / c_) * neg.sum() / n)
    return greedy_counts(b, per_window, n, offset=s * off)


def ebi(update: LastLayerUpdate) -> np.ndarray:
    """EBI (empirical bias impact): the baseline of Gat & Sharif (2024), used by the seed paper.

    Introduced in Chapter 5. ``m = sum_{b_c<0} b_c / N`` (paper eq. 2) is one window's impact,
    estimated from the gradient itself. Stage 1: the negative classes, most negative first, at most
    ``N``, are added once each, compensated by ``-m``; stage 2 greedy. No offset is subtracted. With no
    negative component ``m = 0``: every window goes to the ``argmin`` class (defined and tested).
    Multi-step: ``m`` is read off the summed gradient and therefore already carries the factor ``S``.
    """
    return count_ebi(update, no_preparation())



def count_ebi(update: LastLayerUpdate, prepared: dict) -> np.ndarray:
    """EBI's counts for one update (see :func:`ebi`). Not used in a chapter yet."""
    check_update(update)
    b = update.bias_grad
    m = b[b < 0].sum() / update.n_windows
    if m == 0:
        counts = np.zeros(update.num_classes, dtype=np.int64)
        counts[int(np.argmin(b))] = update.n_windows
        return counts
    return greedy_counts(b, np.full(update.num_classes, m), update.n_windows)
