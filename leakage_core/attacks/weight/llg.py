"""LLG: label counts from the weight-gradient row sums with an empirical impact.

Contract: reads the update only (``needs`` is nothing); counts from the two-stage greedy solver
(:func:`~leakage_core.attacks._common.greedy_counts`). Reference: A. Wainakh et al., "User-Level Label
Leakage from Gradients in Federated Learning", PoPETs 2022.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...federated.update import LastLayerUpdate
from .._common import empirical_impact, greedy_counts
from ..base import Attack, NoPreparation
from ..registry import register_attack


@register_attack("llg", family="weight", in_paper=True)
@dataclass(eq=False)
class LLG(Attack):
    """LLG (see :func:`llg`); no options."""

    def _count(self, update: LastLayerUpdate, preparation: NoPreparation) -> np.ndarray:
        g = update.weight_grad.sum(axis=1)
        m = empirical_impact(g, update.n_windows)
        return greedy_counts(g, np.full(update.n_classes, m), update.n_windows)


def llg(update: LastLayerUpdate) -> np.ndarray:
    """LLG: label counts from the weight-gradient row sums with an empirical impact.

    Introduced in Chapter 4. Wainakh et al. (PoPETs 2022). ``g`` = row sums of the weight gradient;
    one window's impact is estimated from the gradient itself as
    ``m = (1 + 1/C) * sum_{g_c<0} g_c / N`` (:func:`~leakage_core.attacks._common.empirical_impact`);
    offset 0. Then the two-stage greedy solver (:func:`~leakage_core.attacks._common.greedy_counts`):
    stage 1 adds each negative class once (at most ``N``), stage 2 adds windows to the most negative
    compensated class. Multi-step updates: ``m`` is read off the summed gradient, so it already carries
    the factor ``S`` of the summed per-window impact (no further division). If no row sum is negative,
    ``m = 0`` and all windows go to ``argmin g``.
    """
    return LLG().prepare().count(update)
