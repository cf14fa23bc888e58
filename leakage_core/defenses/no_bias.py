"""No bias in the classifier: the model-stage defence that removes the input of the bias-based attacks.

Contract: :class:`NoBias` builds every model without the classifier's bias (``build_model(..., bias=False)``),
so no update carries a bias row; the attacks that read it refuse such an update with
:class:`~leakage_core.attacks.NoBiasError`, the weight-based and count attacks still run. No option, no
differential-privacy guarantee. Reference: D. Scheliga, P. Mäder and M. Seeland, "Combining Stochastic Defenses
to Resist Gradient Inversion: An Ablation Study", arXiv:2208.04767 (2022), and the paper's recommendation
(Bock et al. 2025).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .base import Defense, register_defense


@register_defense
@dataclass(frozen=True)
class NoBias(Defense):
    """A classifier without bias (``model_kwargs() == {"bias": False}``); the update has no bias row.

    Introduced in Chapter 16.
    """

    name = "no_bias"
    stage = "model"
    reference = "Scheliga et al. 2022; the paper's recommendation (Bock et al. 2025)"

    @property
    def label(self) -> str:
        """``"no bias"``."""
        return "no bias"

    def model_kwargs(self) -> dict[str, Any]:
        """``{"bias": False}``: the classifier is built without its bias."""
        return {"bias": False}
