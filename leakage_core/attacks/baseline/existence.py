"""Label existence from the bias sign: the classes with ``db_c < 0``, the windows spread evenly over them.

Contract: reads the update only; the predicted set is certain (identity I1, Chapter 3), the counts are
an even split (largest remainder to the most negative entry). Reference for the sign rule: A. Gat and
M. Sharif, "Harmful Bias", AISec 2024.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...federated.update import LastLayerUpdate
from ...counts import round_to_total
from ..base import Attack, NoPreparation
from ..registry import register_attack


@register_attack("existence", family="baseline")
@dataclass(eq=False)
class Existence(Attack):
    """Label existence (see :func:`existence`); no options."""

    reads_bias = True

    def _count(self, update: LastLayerUpdate, preparation: NoPreparation) -> np.ndarray:
        b = update.bias_grad
        present = np.flatnonzero(b < 0)
        if present.size == 0:
            present = np.array([int(np.argmin(b))])
        share = np.zeros(update.n_classes)
        order = present[np.argsort(b[present], kind="stable")]
        share[order] = update.n_windows / present.size + np.linspace(1e-9, 0, order.size)
        return round_to_total(share, update.n_windows)


def existence(update: LastLayerUpdate) -> np.ndarray:
    """Label existence from the bias sign: the classes with ``db_c < 0``, windows spread over them.

    Introduced in Chapter 16.

    The set ``{c : db_c < 0}`` is certain (identity I1) but says nothing about counts; to return counts
    summing to ``N`` the windows are split evenly over the predicted classes (largest remainder to the
    most negative). No negative entry: all windows to ``argmin db``.
    """
    return Existence().prepare().count(update)
