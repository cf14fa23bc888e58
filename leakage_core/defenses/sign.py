"""Scaled sign compression of the update: one bit per entry and one scale (update stage).

signSGD sends the sign of each gradient entry (J. Bernstein et al., "signSGD: Compressed Optimisation for
Non-Convex Problems", ICML 2018); the scaled sign ``(||g||_1 / D) sign(g)`` keeps the gradient's magnitude
(S. P. Karimireddy et al., "Error Feedback Fixes SignSGD and other Gradient Compression Schemes", ICML 2019).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .base import Defense, register_defense
from .measure import update_vector, with_vector

if TYPE_CHECKING:  # pragma: no cover
    from ..federated.update import LastLayerUpdate


@register_defense
@dataclass(frozen=True)
class SignCompression(Defense):
    """Send ``mean(|g|) * sign(g)``: every entry becomes +-(the mean magnitude), zeros stay 0.

    Introduced in Chapter 16.

    ``g`` is the weight and bias gradient as one vector of ``D`` entries, so the scale ``||g||_1 / D`` is
    their mean absolute value. No options.
    """

    name = "sign"
    stage = "update"
    reference = "Bernstein et al. 2018 (signSGD); Karimireddy et al. 2019 (scaled sign)"

    @property
    def label(self) -> str:
        """``"scaled sign"``."""
        return "scaled sign"

    def transform_update(self, update: "LastLayerUpdate", seed: int) -> "LastLayerUpdate":
        """The scaled sign of the update (``seed`` is unused)."""
        v = update_vector(update)
        return with_vector(update, np.sign(v) * np.abs(v).mean())
