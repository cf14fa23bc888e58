"""Uniform quantisation of the update to a few bits per entry (update stage).

Clients quantise updates to save bandwidth (e.g. QSGD, D. Alistarh et al., "QSGD: Communication-Efficient SGD
via Gradient Quantization and Encoding", NeurIPS 2017, with stochastic rounding; here rounding is deterministic).
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral
from typing import TYPE_CHECKING

import numpy as np

from .base import Defense, register_defense
from .measure import update_vector, with_vector

if TYPE_CHECKING:  # pragma: no cover
    from ..federated.update import LastLayerUpdate


@register_defense
@dataclass(frozen=True)
class Quantize(Defense):
    """Symmetric uniform quantisation with one scale per update, rounded to the nearest level.

    Introduced in Chapter 16.

    With ``L = 2^(bits-1) - 1`` and step ``s = max|g| / L`` (over weight and bias together), each entry becomes
    ``s * round(g / s)``: one of the ``2L + 1 = 2^bits - 1`` levels ``-L s, ..., 0, ..., L s``, at most ``s / 2``
    from ``g``. The server receives the levels and ``s``, so it sees the de-quantised update.

    Parameters
    ----------
    bits : int
        Bits per entry, 2 to 32 (8: 255 levels).
    """

    name = "quantize"
    stage = "update"
    reference = "Alistarh et al. 2017, QSGD (gradient quantisation); deterministic rounding here"

    bits: int = 8

    def __post_init__(self) -> None:
        b = self.bits
        if isinstance(b, bool) or not isinstance(b, Integral) or not 2 <= b <= 32:
            raise ValueError(f"Quantize bits must be an integer from 2 to 32, got {b!r}.")

    @property
    def label(self) -> str:
        """E.g. ``"8-bit"``."""
        return f"{self.bits}-bit"

    @property
    def levels(self) -> int:
        """``L = 2^(bits-1) - 1``, the positive levels (the update takes ``2L + 1`` values at most)."""
        return 2 ** (int(self.bits) - 1) - 1

    def step(self, update: "LastLayerUpdate") -> float:
        """The quantisation step ``max|g| / L`` of ``update`` (0 for an all-zero update)."""
        return float(np.abs(update_vector(update)).max()) / self.levels

    def transform_update(self, update: "LastLayerUpdate", seed: int) -> "LastLayerUpdate":
        """The quantised update (``seed`` is unused; rounding is to the nearest level, ties to even)."""
        v = update_vector(update)
        s = self.step(update)
        return with_vector(update, v if s == 0 else np.round(v / s) * s)
