"""The uniform blind reference: ``N / C`` windows per class, without reading the gradient.

Contract: reads only ``N`` and ``C`` of the update (``reads_gradient`` is False); the counts are
``N / C`` rounded by largest remainder (ties: lowest class first). The bar every attack's leakage is
measured against (:func:`leakage_core.metrics.advantage`, Chapter 7).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...federated.update import LastLayerUpdate
from ...counts import round_to_total
from ..base import Attack, NoPreparation
from ..registry import register_attack


@register_attack("blind_uniform", family="baseline", reads_gradient=False)
@dataclass(eq=False)
class BlindUniform(Attack):
    """The uniform guess (see :func:`blind_uniform`); no options."""

    def _count(self, update: LastLayerUpdate, preparation: NoPreparation) -> np.ndarray:
        c = update.n_classes
        return round_to_total(np.full(c, update.n_windows / c), update.n_windows)


def blind_uniform(update: LastLayerUpdate) -> np.ndarray:
    """``N / C`` windows per class, rounded to integers that sum to ``N`` (ties: lowest class first).

    Introduced in Chapter 7. Uses ``update.n_windows`` and ``update.n_classes`` only.
    """
    return BlindUniform().prepare().count(update)
