"""Shared pieces of the attacks: input checks, the empirical impact and the count solvers.

Contract: every function here is a pure function of numpy arrays (no model, no torch). The two-stage
greedy solver (:func:`greedy_counts`) and the empirical impact (:func:`empirical_impact`) follow
A. Wainakh et al., "User-Level Label Leakage from Gradients in Federated Learning", PoPETs 2022;
the attacks' final rounding is :func:`leakage_core.counts.round_to_total` (largest-remainder rounding, shared with
the defences).
"""

from __future__ import annotations

import numpy as np

from ..federated.client import model_classifier
from ..federated.update import LastLayerUpdate

#: impacts closer to zero than this are treated as this (avoids dividing by ~0)
MIN_IMPACT = 1e-12


def check_update(update: LastLayerUpdate) -> LastLayerUpdate:
    """Raise a clear error unless ``update`` is a :class:`LastLayerUpdate`."""
    if not isinstance(update, LastLayerUpdate):
        raise ValueError(
            f"attacks take a leakage_core.LastLayerUpdate, got {type(update).__name__}; build one with "
            "leakage_core.federated.fedsgd_update / fedavg_update or LastLayerUpdate(weight_grad, bias_grad, N)."
        )
    return update


def check_option(name: str, value: object, allowed: tuple) -> None:
    """Raise a clear error for an unknown option value."""
    if not (isinstance(value, str) or value is None or isinstance(value, (int, float))) or value not in allowed:
        raise ValueError(f"{name}={value!r} is not supported; choose one of {allowed}.")


def check_count(name: str, value: object, low: int = 1) -> int:
    """Raise a clear error unless ``value`` is an integer ``>= low`` (not a bool); return it as ``int``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")
    return int(value)


def check_classifier_shape(shape: tuple[int, int] | None, update: LastLayerUpdate) -> None:
    """Raise a clear error unless a classifier of ``shape`` (C, d) produced ``update`` (``None``: skip)."""
    if shape is not None and tuple(shape) != (update.n_classes, update.feature_dim):
        raise ValueError(
            f"the model's classifier is {shape[0]} x {shape[1]} but the update is "
            f"{update.n_classes} x {update.feature_dim}; attack the update with the model it was computed on."
        )


def check_model_fits(model, update: LastLayerUpdate) -> None:
    """Raise a clear error unless ``update`` is an update and ``model`` the model (classifier) it came from."""
    check_update(update)
    check_classifier_shape(model_classifier(model)[0].shape, update)


def check_aux(aux, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate auxiliary labelled windows ``aux=(windows, labels)``."""
    if aux is None:
        raise ValueError("this attack needs aux=(windows, labels): labelled windows the server holds.")
    windows, labels = aux
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(windows) or len(labels) == 0:
        raise ValueError("aux must be (windows (n, T, channels), labels (n,)) with matching, non-empty lengths.")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"aux labels must be integers in [0, {n_classes}).")
    return np.asarray(windows), labels


def softmax_rows(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of scores (numerically stable)."""
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def class_mean_probabilities(probabilities: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Row ``j``: the mean probability vector of the windows labelled ``j`` (uniform if there are none).

    Introduced in Chapter 6. With a batch's true per-window probabilities this is the oracle for which
    iLRG's system is exact; with auxiliary data it is what a server can estimate (see
    :func:`~leakage_core.attacks.bias.llbg.class_confidences`; iLRG's system in :mod:`leakage_core.attacks.bias.ilrg`).
    """
    p = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels)
    if p.ndim != 2 or p.shape != (labels.shape[0], n_classes):
        raise ValueError(f"probabilities must be (n, {n_classes}) for n={labels.shape[0]} labels, got {p.shape}.")
    out = np.full((n_classes, n_classes), 1.0 / n_classes)
    for j in np.unique(labels):
        out[j] = p[labels == j].mean(axis=0)
    return out


def empirical_impact(signal: np.ndarray, n: int) -> float:
    """One window's impact estimated from the gradient itself: ``(1 + 1/C) * sum_{v_c < 0} v_c / N``.

    ``signal`` is the ``(C,)`` vector an attack reads (LLG: the weight-gradient row sums; LLBG with
    ``impact="empirical"``: the bias gradient), ``n`` the update's ``N``. Wainakh et al. (PoPETs 2022);
    0 when no entry is negative. Multi-step updates: the summed gradient already carries the factor ``S``.
    """
    v = np.asarray(signal)
    return (1.0 + 1.0 / v.size) * v[v < 0].sum() / n


def greedy_counts(signal: np.ndarray, impact: np.ndarray, n: int, offset: np.ndarray | float = 0.0) -> np.ndarray:
    """Two-stage greedy label counting used by LLG, LLG*, LLBG and EBI.

    Introduced in Chapter 4. ``signal`` is the (offset-corrected) gradient vector, ``impact`` the
    (negative) change one window of class ``c`` causes in ``signal[c]``, ``offset`` the value an absent
    class would show (LLBG: ``S/C``; LLG and EBI: 0).

    Stage 1: every class with a negative signal is added once, most negative first, at most ``n`` of
    them; each addition is compensated (``signal[c] -= impact[c]``). Then the offset is subtracted
    from every class. Stage 2: until ``n`` windows are
    assigned, add one window to ``argmin`` of the compensated signal and compensate **that** class.
    (Public LLG code compensated a stale loop index in stage 2 and so piled every window onto one
    class; tested.) Impacts of either sign are accepted: a class with a positive impact is handled in
    the mirrored way (its signal and impact are negated), so the solver always counts
    ``signal / impact`` down.

    Returns
    -------
    numpy.ndarray
        ``(C,)`` int64 counts, non-negative, summing to ``n``.
    """
    v = np.asarray(signal, dtype=np.float64).copy()
    m = np.asarray(impact, dtype=np.float64).copy()
    if v.ndim != 1 or m.shape != v.shape:
        raise ValueError(f"signal and impact must be vectors of one length, got {v.shape} and {m.shape}.")
    if not (np.all(np.isfinite(v)) and np.all(np.isfinite(m))):
        raise ValueError("signal and impact must be finite.")
    flip = m > 0
    off = np.broadcast_to(np.asarray(offset, dtype=np.float64), v.shape).copy()
    v[flip], m[flip], off[flip] = -v[flip], -m[flip], -off[flip]
    m = np.minimum(m, -MIN_IMPACT)
    counts = np.zeros(v.size, dtype=np.int64)
    negative = np.flatnonzero(v < 0)
    for c in negative[np.argsort(v[negative], kind="stable")][:n]:  # stage 1, capped at n
        counts[c] += 1
        v[c] -= m[c]
    v -= off
    remaining = n - int(counts.sum())
    if remaining > 0:  # stage 2
        counts += _greedy_picks(v, m, remaining)
    return counts


def _greedy_picks(v: np.ndarray, m: np.ndarray, r: int) -> np.ndarray:
    """Stage 2 without a Python loop: how often ``r`` greedy steps pick each class.

    The loop "pick ``c = argmin(v)`` (lowest index on ties), then ``v[c] -= m[c]``" visits, per class,
    the values ``v_c, v_c - m_c, v_c - m_c - m_c, ...`` (non-decreasing, as ``m < 0``), so its ``r``
    picks are the ``r`` smallest of all these values, ordered by (value, class, step). The values are
    accumulated by the same sequence of floating-point subtractions as the loop, so the result is
    identical to it (property-tested against the loop).
    """
    steps = np.empty((v.size, r))
    steps[:, 0] = v
    steps[:, 1:] = -m[:, None]
    values = np.add.accumulate(steps, axis=1).ravel()
    cls = np.repeat(np.arange(v.size), r)
    step = np.tile(np.arange(r), v.size)
    chosen = np.lexsort((step, cls, values))[:r]
    return np.bincount(cls[chosen], minlength=v.size)
