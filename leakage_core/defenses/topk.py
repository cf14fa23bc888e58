"""Top-k sparsification of the update: the client sends only its largest entries (update stage).

Federated clients sparsify updates to save bandwidth: A. F. Aji and K. Heafield, "Sparse Communication for
Distributed Gradient Descent", EMNLP 2017; Y. Lin et al., "Deep Gradient Compression", ICLR 2018. Here the last
layer's weight and bias gradients form one vector (:func:`~leakage_core.defenses.measure.update_vector`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from typing import TYPE_CHECKING

import numpy as np

from .base import Defense, register_defense
from .measure import update_vector, with_vector

if TYPE_CHECKING:  # pragma: no cover
    from ..federated.update import LastLayerUpdate


@register_defense
@dataclass(frozen=True)
class TopK(Defense):
    """Keep the ``ceil(fraction * size)`` entries of largest magnitude of the update, set the rest to 0.

    Introduced in Chapter 16.

    ``size`` counts weight and bias entries together. Ties in magnitude are broken by position (the earlier
    entry of :func:`~leakage_core.defenses.measure.update_vector` is kept), so the output is deterministic.

    Parameters
    ----------
    fraction : float
        The share of entries kept, in (0, 1] (1 sends the update unchanged).
    """

    name = "topk"
    stage = "update"
    reference = "Aji & Heafield 2017, Sparse Communication for Distributed Gradient Descent (top-k sparsification)"

    fraction: float = 0.1

    def __post_init__(self) -> None:
        f = self.fraction
        if isinstance(f, bool) or not isinstance(f, Real) or not 0 < f <= 1:
            raise ValueError(f"TopK fraction must lie in (0, 1] (the share of entries kept), got {f!r}.")
        object.__setattr__(self, "fraction", float(f))  # 1 and 1.0 are one defence: one key

    @property
    def label(self) -> str:
        """E.g. ``"top-k 10%"``."""
        return f"top-k {100 * self.fraction:g}%"

    def kept(self, size: int) -> int:
        """How many of ``size`` entries are kept: ``ceil(fraction * size)`` (at least 1; a 1e-9 slack absorbs
        floating-point error, so 0.3 of 10 keeps 3)."""
        return min(size, max(1, math.ceil(self.fraction * size - 1e-9)))

    def transform_update(self, update: "LastLayerUpdate", seed: int) -> "LastLayerUpdate":
        """The update with all but its :meth:`kept` largest-magnitude entries set to 0 (``seed`` is unused)."""
        v = update_vector(update)
        order = np.argsort(-np.abs(v), kind="stable")  # stable: equal magnitudes keep their order
        out = np.zeros_like(v)
        top = order[: self.kept(v.size)]
        out[top] = v[top]
        return with_vector(update, out)
