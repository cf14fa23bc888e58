"""Pipeline stage between the client and the attacks: the defences a client applies, and their guarantees.

Every defence is one file, a :class:`Defense` registered in :data:`DEFENSES` where it is defined (see
:mod:`leakage_core.defenses.base` for the contract); :mod:`leakage_core.defenses.accounting` turns noise into
(epsilon, delta) with Opacus's accountants. The Defenses part of the book (Chapters 16 and 17) derives and measures
them. Importing this package imports neither torch nor Opacus.
"""

from __future__ import annotations

from .base import (
    DEFENSES,
    STAGES,
    Defense,
    defense_from_key,
    defense_label,
    list_defenses,
    make_defense,
    register_defense,
)

# the defences register themselves on import (one module each):
from ..federated import ldp as _ldp  # noqa: F401  (LDP, "ldp": the paper's defence lives in federated)
from .label_dp import RandomizedResponse
from .quantize import Quantize
from .sign import SignCompression
from .topk import TopK
from .dp_sgd import DPSGD
from .no_bias import NoBias
from .weighted_loss import WeightedLoss

__all__ = [
    "DPSGD",
    "NoBias",
    "WeightedLoss",
    "DEFENSES",
    "STAGES",
    "Defense",
    "defense_from_key",
    "defense_label",
    "list_defenses",
    "make_defense",
    "register_defense",
    "RandomizedResponse",
    "Quantize",
    "SignCompression",
    "TopK",
]
