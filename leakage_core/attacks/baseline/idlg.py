"""iDLG's label rule: the one label of a single-window update, ``argmin`` of the weight-row sums.

Contract: reads the update only; every window goes to one class (a single-label attack). Reference:
B. Zhao, K. R. Mopuri and H. Bilen, "iDLG: Improved Deep Leakage from Gradients", arXiv:2001.02610 (2020).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...federated.update import LastLayerUpdate
from ..base import Attack, NoPreparation
from ..registry import register_attack


@register_attack("idlg", family="baseline")
@dataclass(eq=False)
class IDLG(Attack):
    """iDLG (see :func:`idlg`); no options."""

    def _count(self, update: LastLayerUpdate, preparation: NoPreparation) -> np.ndarray:
        counts = np.zeros(update.n_classes, dtype=np.int64)
        counts[int(np.argmin(update.weight_grad.sum(axis=1)))] = update.n_windows
        return counts


def idlg(update: LastLayerUpdate) -> np.ndarray:
    """iDLG (Zhao et al., 2020): the one label of a single-window update.

    Introduced in Chapter 4. With non-negative features only the true class has a negative weight-row
    sum, so ``argmin_c sum_j dW_cj`` is the label of a window (exact for ``N = 1`` and ReLU
    features). For ``N > 1`` it assigns every window to that one class: a single-label attack.
    """
    return IDLG().prepare().count(update)
