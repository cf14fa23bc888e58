"""Pipeline stage 3: label-recovery attacks on a :class:`~leakage_core.federated.LastLayerUpdate`.

Contract: every attack returns int64 counts of shape ``(C,)``, non-negative, summing to ``N``, and never
sees raw client windows or true labels. An attack is a class in its own file
(:class:`~leakage_core.attacks.base.Attack`: options in the constructor, ``prepare(model, aux)`` once,
a pure ``count(update)``), registered where it is defined; :data:`ATTACKS` maps a name to it, and
``ATTACKS[name](update, model=..., aux=..., **options)`` runs it. :func:`check_attack` verifies the
contract (the test suite runs it on every registered attack).

Layout: :mod:`.weight` (LLG, LLG*, LLG+), :mod:`.bias` (LLBG, EBI, iLRG), :mod:`.baseline` (iDLG, label
existence, the blind references), :mod:`.count` (Geng's and Dimitrov's closed-form counts and our own
Bayes-linear ``lmmse``, beyond the paper; ``aware``, any attack de-biased for the defence an update records),
:mod:`.paper_code` (the seed paper's code, ``variant="paper_code"``
of ``llg``, ``llg_star``, ``llbg`` and ``ilrg``, e.g. ``attacks={"llg": {}, "llg:code": {"variant":
"paper_code"}}``). Importing the package imports every module in it, and so registers every attack; the
explicit imports below fix the registry's order (which tables and menus follow) and re-export the
attacks' functions.

Adding an attack: one file in the folder of its family, holding a ``@register_attack``
``@dataclass(eq=False)`` subclass of :class:`~leakage_core.attacks.base.Attack` (``_count``, and
``_prepare``, ``needs`` and ``_check`` when it has a preparation, needs or options) and its function;
:func:`check_attack` then runs on it in the test suite (``tests/test_attack_contract.py``). A variant of
an existing attack is a ``@register_variant`` class, the seed paper's code's in :mod:`.paper_code`.
"""

from __future__ import annotations

import importlib
import pkgutil

from ..counts import round_to_total
from ._common import class_mean_probabilities, empirical_impact, greedy_counts
from .base import Attack, Needs, NoBiasError, NoPreparation, NotPreparedError
from .registry import (
    ATTACKS,
    BOOK,
    FAMILIES,
    NEEDS,
    AttackSpec,
    RegisteredAttack,
    attack_classes,
    is_blind,
    parse_key,
    register_attack,
    register_variant,
    resolve_attacks,
)

# the attacks, in the registry's order (each module registers its attack as it is imported)
# isort: off
from .weight.llg import LLG, llg
from .weight.llg_star import STAGE1_RULES, LLGStar, class_impacts, estimate_impacts, llg_star, solve_with_impacts
from .weight.llg_plus import LLGPlus, llg_plus
from .bias.llbg import LLBG, class_confidences, llbg
from .bias.ebi import EBI, ebi
from .bias.ilrg import ILRG, ilrg, ilrg_probabilities
from .baseline.idlg import IDLG, idlg
from .baseline.existence import Existence, existence
from .baseline.blind_uniform import BlindUniform, blind_uniform
from .baseline.blind_prior import BlindPrior, blind_prior, label_shares
from .baseline.blind import blind_guesses, counts_only_update
from .paper_code import VARIANTS, ilrg_code, llbg_code, llg_code, llg_star_code
from .count.geng import Geng, geng
from .count.dimitrov import Dimitrov, dimitrov
from .count.lmmse import LMMSE, lmmse
from .count.aware import Aware, aware
from .contract import check_attack
# isort: on


def _import_every_attack_module() -> None:
    """Import the modules not imported above: a new attack file registers itself without further edits."""
    for info in pkgutil.walk_packages(__path__, prefix=f"{__name__}."):
        importlib.import_module(info.name)


_import_every_attack_module()

#: the paper's attacks, in its order
PAPER_ATTACKS: tuple[str, ...] = tuple(name for name, a in ATTACKS.items() if a.in_paper)
#: the paper groups LLG and LLG* as weight-based, LLBG, EBI and iLRG as bias-based
WEIGHT_BASED: tuple[str, ...] = tuple(n for n in PAPER_ATTACKS if ATTACKS[n].family == "weight")
BIAS_BASED: tuple[str, ...] = tuple(n for n in PAPER_ATTACKS if ATTACKS[n].family == "bias")
#: the blind references: guesses that read no gradient (leakage is measured beyond the better of them)
BLIND: tuple[str, ...] = tuple(name for name, a in ATTACKS.items() if not a.reads_gradient)


def attacks_of(
    family: str | None = None, in_paper: bool | None = None, reads_gradient: bool | None = None
) -> tuple[str, ...]:
    """Registry names of the attacks with these properties (``None``: any), in the registry's order."""
    if family is not None and family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}.")
    return tuple(
        name
        for name, a in ATTACKS.items()
        if (family is None or a.family == family)
        and (in_paper is None or a.in_paper == in_paper)
        and (reads_gradient is None or a.reads_gradient == reads_gradient)
    )


__all__ = [
    "ATTACKS",
    "Attack",
    "AttackSpec",
    "RegisteredAttack",
    "Needs",
    "NoPreparation",
    "NotPreparedError",
    "NoBiasError",
    "FAMILIES",
    "NEEDS",
    "BOOK",
    "register_attack",
    "register_variant",
    "attack_classes",
    "attacks_of",
    "parse_key",
    "resolve_attacks",
    "check_attack",
    "WEIGHT_BASED",
    "BIAS_BASED",
    "PAPER_ATTACKS",
    "BLIND",
    "is_blind",
    "LLG",
    "LLGStar",
    "LLGPlus",
    "LLBG",
    "EBI",
    "ILRG",
    "IDLG",
    "Existence",
    "BlindUniform",
    "BlindPrior",
    "blind_uniform",
    "blind_prior",
    "blind_guesses",
    "label_shares",
    "counts_only_update",
    "llg",
    "llg_star",
    "llg_plus",
    "llbg",
    "ebi",
    "class_confidences",
    "ilrg",
    "ilrg_probabilities",
    "class_mean_probabilities",
    "idlg",
    "existence",
    "class_impacts",
    "estimate_impacts",
    "solve_with_impacts",
    "STAGE1_RULES",
    "greedy_counts",
    "round_to_total",
    "empirical_impact",
    "VARIANTS",
    "llg_code",
    "llg_star_code",
    "llbg_code",
    "ilrg_code",
    "Geng",
    "Dimitrov",
    "geng",
    "dimitrov",
    "LMMSE",
    "lmmse",
    "Aware",
    "aware",
]
