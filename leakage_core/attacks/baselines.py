"""Baselines: iDLG's single-label rule and bias-sign label existence."""
from __future__ import annotations

import numpy as np

from ..updates.update import LastLayerUpdate
from ._common import check_update, round_to_total


def idlg(update: LastLayerUpdate) -> np.ndarray:
    """iDLG (Zhao et al., 2020): the one label of a single-window update.

    Introduced in Chapter 4. With non-negative features only the true class has a negative weight-row
    sum, so ``argmin_c sum_j dW_cj`` is the label of a window (exact for ``N = 1`` and ReLU
    features). For ``N > 1`` it assigns every window to that one class: a single-label attack.
    """
    check_update(update)
    counts = np.zeros(update.num_classes, dtype=np.int64)
    counts[int(np.argmin(update.weight_grad.sum(axis=1)))] = update.n_windows
    return counts


def existence(update: LastLayerUpdate) -> np.ndarray:
    """Label existence from the bias sign: the classes with ``db_c < 0``, windows spread over them.

    Not used in a chapter yet. The set ``{c : db_c < 0}`` is certain (identity I1) but says nothing about
    counts; to return counts summing to ``N`` the windows are split evenly over the predicted classes
    (largest remainder to the most negative). No negative entry: all windows to ``argmin db``.
    """
    check_update(update)
    b = update.bias_grad
    present = np.flatnonzero(b < 0)
    if present.size == 0:
        present = np.array([int(np.argmin(b))])
    share = np.zeros(update.num_classes)
    order = present[np.argsort(b[present], kind="stable")]
    share[order] = update.n_windows / present.size + np.linspace(1e-9, 0, order.size)
    return round_to_total(share, update.n_windows)



def count_idlg(update: LastLayerUpdate, prepared: dict) -> np.ndarray:
    """:func:`idlg` in the prepare/count protocol. Not used in a chapter yet."""
    return idlg(update)


def count_existence(update: LastLayerUpdate, prepared: dict) -> np.ndarray:
    """:func:`existence` in the prepare/count protocol. Not used in a chapter yet."""
    return existence(update)
