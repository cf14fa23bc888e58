"""Pipeline stage 4: label-recovery attacks on a :class:`~leakage_core.updates.LastLayerUpdate`.

Every attack is ``attack(update, **options) -> numpy.ndarray`` of int64 counts, length ``C``,
non-negative, summing to ``N``. Attacks never see raw client windows or true labels; those that need
the server's model or auxiliary data take them as ``model=`` / ``aux=``. ``ATTACKS`` holds one
:class:`~leakage_core.attacks.registry.Attack` record per attack: its family, what it needs, and its
``prepare`` (once per model) / ``count`` (per update) split, which the experiment engine uses.

``llg``, ``llg_star``, ``llbg`` and ``ilrg`` take the option ``variant``: ``"book"`` (default, the
published attack) or ``"paper_code"`` (the attack as the seed paper's public code ran it,
:mod:`leakage_core.attacks.paper_code`), e.g. ``attacks={"llg": {}, "llg:code": {"variant": "paper_code"}}``.
"""
from __future__ import annotations

from ._common import greedy_counts, no_preparation, round_to_total
from .baselines import count_existence, count_idlg, existence, idlg
from .blind import (
    blind_guesses, blind_prior, blind_uniform, class_shares, count_prior, count_uniform, counts_only_update, needs_prior,
    prepare_prior, prepare_uniform,
)
from .bias_based import class_confidences, count_ebi, count_llbg, ebi, llbg, prepare_llbg
from .ilrg import class_mean_probabilities, count_ilrg, ilrg, ilrg_probabilities, prepare_ilrg
from .paper_code import (
    VARIANTS, count_ilrg_variant, count_llbg_variant, count_llg_star_variant, count_llg_variant, ilrg_code, llbg_code,
    llg_code, llg_star_code, prepare_ilrg_variant, prepare_llbg_variant, prepare_llg_star_variant, prepare_llg_variant,
)
from .registry import FAMILIES, NEEDS, Attack, AttackSpec, resolve_attacks
from .weight_based import (
    STAGE1_RULES, class_impacts, count_llg, count_with_impacts, estimate_impacts, llg, llg_plus, llg_star, prepare_llg_plus,
    prepare_llg_star, solve_with_impacts,
)


def _paper_code(variant) -> bool:
    return isinstance(variant, str) and variant == "paper_code"


def _llbg_needs(confidence=None, variant="book", **_) -> str:
    if _paper_code(variant):
        return "update"
    return "model+aux" if isinstance(confidence, str) and confidence == "aux" else "update"


def _ilrg_needs(probabilities="model", variant="book", **_) -> str:
    if _paper_code(variant):
        return "update"
    return "model" if isinstance(probabilities, str) and probabilities == "model" else "update"


def _llg_star_needs(impacts=None, **_) -> str:
    return "model" if impacts is None else "update"


def _llg_plus_needs(impacts=None, **_) -> str:
    return "model+aux" if impacts is None else "update"


ATTACKS: dict[str, Attack] = {
    a.name: a
    for a in (
        Attack("llg", "weight", "update", prepare_llg_variant, count_llg_variant, in_paper=True),
        Attack("llg_star", "weight", _llg_star_needs, prepare_llg_star_variant, count_llg_star_variant, in_paper=True),
        Attack("llg_plus", "weight", _llg_plus_needs, prepare_llg_plus, count_with_impacts),
        Attack("llbg", "bias", _llbg_needs, prepare_llbg_variant, count_llbg_variant, in_paper=True),
        Attack("ebi", "bias", "update", no_preparation, count_ebi, in_paper=True),
        Attack("ilrg", "bias", _ilrg_needs, prepare_ilrg_variant, count_ilrg_variant, in_paper=True),
        Attack("idlg", "baseline", "update", no_preparation, count_idlg),
        Attack("existence", "baseline", "update", no_preparation, count_existence),
        Attack("blind_uniform", "baseline", "update", prepare_uniform, count_uniform, reads_gradient=False),
        Attack("blind_prior", "baseline", needs_prior, prepare_prior, count_prior, reads_gradient=False),
    )
}
#: the paper's attacks, in its order
PAPER_ATTACKS: tuple[str, ...] = tuple(name for name, a in ATTACKS.items() if a.in_paper)
#: the paper groups LLG and LLG* as weight-based, LLBG, EBI and iLRG as bias-based
WEIGHT_BASED: tuple[str, ...] = tuple(n for n in PAPER_ATTACKS if ATTACKS[n].family == "weight")
BIAS_BASED: tuple[str, ...] = tuple(n for n in PAPER_ATTACKS if ATTACKS[n].family == "bias")
#: the blind references: guesses that read no gradient (leakage is measured beyond the better of them)
BLIND: tuple[str, ...] = tuple(name for name, a in ATTACKS.items() if not a.reads_gradient)


def is_blind(key: str) -> bool:
    """Whether a result key (``"blind_prior"`` or a variant ``"blind_prior:label"``) names a blind reference."""
    name = str(key).split(":")[0]
    return name in ATTACKS and not ATTACKS[name].reads_gradient

__all__ = [
    "ATTACKS", "Attack", "AttackSpec", "FAMILIES", "NEEDS", "resolve_attacks", "WEIGHT_BASED", "BIAS_BASED",
    "PAPER_ATTACKS", "BLIND", "is_blind", "blind_uniform", "blind_prior", "blind_guesses", "class_shares", "counts_only_update", "llg", "llg_star", "llg_plus", "llbg", "ebi", "class_confidences", "ilrg",
    "ilrg_probabilities", "class_mean_probabilities", "idlg", "existence", "class_impacts", "estimate_impacts",
    "solve_with_impacts", "STAGE1_RULES", "greedy_counts", "round_to_total", "VARIANTS", "llg_code", "llg_star_code",
    "llbg_code", "ilrg_code",
]
