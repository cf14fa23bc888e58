"""LLG as the seed paper's code ran it (strategy ``'wainakh-simple'``): ``variant="paper_code"`` of ``llg``.

Contract: reads the update only; LLG's signal and empirical impact with the code's solver (stage 1 in
class order, uncapped; stage 2 compensating a stale index). Reference: github.com/mariusbock/leakage_har,
``breaching/attacks/base_attack.py``, ``_BaseAttacker._recover_label_information``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...federated.update import LastLayerUpdate
from .._common import empirical_impact
from ..base import Attack, NoPreparation
from ..registry import register_variant
from ._solvers import PAPER_CODE, _wainakh_code_counts


@register_variant("llg", PAPER_CODE)
@dataclass(eq=False)
class LLGPaperCode(Attack):
    """LLG as the paper's code ran it (see :func:`llg_code`); no options."""

    def _count(self, update: LastLayerUpdate, preparation: NoPreparation) -> np.ndarray:
        g = update.weight_grad.sum(axis=1)
        return _wainakh_code_counts(g, float(empirical_impact(g, update.n_windows)), 0.0, update.n_windows)


def llg_code(update: LastLayerUpdate) -> np.ndarray:
    """LLG as the seed paper's code ran it (strategy ``'wainakh-simple'``).

    Reproduces ``breaching/attacks/base_attack.py``, ``_BaseAttacker._recover_label_information``,
    branch ``"wainakh" in label_strategy`` with ``'wainakh-simple'``, of github.com/mariusbock/leakage_har.
    Signal and impact are the book's :func:`~leakage_core.attacks.weight.llg.llg`'s: weight-row sums
    ``g`` and ``m = (1 + 1/C) * sum_{g_c<0} g_c / N``, offset 0. It differs in the solver:

    - stage 2 compensates ``g[C-1]`` (the stage-1 loop index, left at its last value) instead of the
      class it just picked. Unless class ``C-1`` is the current minimum, the picked class never moves
      and **every remaining window goes to one class**; class ``C-1`` itself is picked only while it
      stays strictly below all others;
    - stage 1 takes every negative class in class order, uncapped; with more than ``N`` of them the
      code's final cut keeps the ``N`` lowest class indices.

    Parameters
    ----------
    update : LastLayerUpdate
        The attacked update (FedSGD gradient or the FedAvg sum of step gradients).

    Returns
    -------
    numpy.ndarray
        ``(C,)`` int64 counts, non-negative, summing to ``N``.
    """
    return LLGPaperCode().prepare().count(update)
