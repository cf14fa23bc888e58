"""EBI (empirical bias impact): the baseline of Gat & Sharif (2024) that the seed paper evaluates.

Contract: reads the update only; counts from the two-stage greedy solver with one impact per window
estimated from the bias gradient, no offset. Reference: A. Gat and M. Sharif, "Harmful Bias: A
General Label-Leakage Attack on Federated Learning from Bias Gradients", AISec 2024 (eq. 2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...federated.update import LastLayerUpdate
from .._common import greedy_counts
from ..base import Attack, NoPreparation
from ..registry import register_attack


@register_attack("ebi", family="bias", in_paper=True)
@dataclass(eq=False)
class EBI(Attack):
    """EBI (see :func:`ebi`); no options."""

    reads_bias = True

    def _count(self, update: LastLayerUpdate, preparation: NoPreparation) -> np.ndarray:
        b = update.bias_grad
        m = b[b < 0].sum() / update.n_windows
        if m == 0:
            counts = np.zeros(update.n_classes, dtype=np.int64)
            counts[int(np.argmin(b))] = update.n_windows
            return counts
        return greedy_counts(b, np.full(update.n_classes, m), update.n_windows)


def ebi(update: LastLayerUpdate) -> np.ndarray:
    """EBI (empirical bias impact): the baseline of Gat & Sharif (2024), used by the seed paper.

    Introduced in Chapter 5. ``m = sum_{b_c<0} b_c / N`` (paper eq. 2) is one window's impact,
    estimated from the gradient itself. Stage 1: the negative classes, most negative first, at most
    ``N``, are added once each, compensated by ``-m``; stage 2 greedy. No offset is subtracted. With no
    negative component ``m = 0``: every window goes to the ``argmin`` class (defined and tested).
    Multi-step: ``m`` is read off the summed gradient and therefore already carries the factor ``S``.
    """
    return EBI().prepare().count(update)
