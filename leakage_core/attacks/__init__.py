"""Pipeline stage 4: label-recovery attacks on a :class:`~leakage_core.updates.LastLayerUpdate`.

Every attack is ``attack(update, **options) -> numpy.ndarray`` of int64 counts, length ``C``,
non-negative, summing to ``N``. Attacks never see raw client windows or true labels; those that need
the server's model or auxiliary data take them as ``model=`` / ``aux=``.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .baselines import existence, idlg
from .bias_based import class_confidences, ebi, llbg
from .ilrg import class_mean_probabilities, ilrg, ilrg_probabilities
from .weight_based import class_impacts, estimate_impacts, llg, llg_plus, llg_star, solve_with_impacts

ATTACKS: dict[str, Callable[..., np.ndarray]] = {
    "llg": llg,
    "llg_star": llg_star,
    "llg_plus": llg_plus,
    "llbg": llbg,
    "ebi": ebi,
    "ilrg": ilrg,
    "idlg": idlg,
    "existence": existence,
}
#: the paper groups LLG and LLG* as weight-based, LLBG, EBI and iLRG as bias-based
WEIGHT_BASED: tuple[str, ...] = ("llg", "llg_star")
BIAS_BASED: tuple[str, ...] = ("llbg", "ebi", "ilrg")
PAPER_ATTACKS: tuple[str, ...] = ("llg", "llg_star", "llbg", "ebi", "ilrg")
#: attacks that need the server's model (and, for llg_plus, auxiliary data)
NEEDS_MODEL: tuple[str, ...] = ("llg_star", "llg_plus", "ilrg")

__all__ = [
    "ATTACKS", "WEIGHT_BASED", "BIAS_BASED", "PAPER_ATTACKS", "NEEDS_MODEL", "llg", "llg_star", "llg_plus",
    "llbg", "ebi", "class_confidences", "ilrg", "ilrg_probabilities", "class_mean_probabilities", "idlg", "existence", "class_impacts", "estimate_impacts", "solve_with_impacts",
]
