"""The seed paper's attacks as its public code ran them: the ``variant="paper_code"`` of each attack.

Contract: one file per attack, each a class registered with
:func:`~leakage_core.attacks.registry.register_variant` under the attack it deviates from, so
``ATTACKS["llg"](update, variant="paper_code")`` runs it; counts obey the same contract as every
attack. EBI has no variant: the code's counts equal the book's (tested).

Reference: the public repository of Bock et al., github.com/mariusbock/leakage_har: a copy of the
``breaching`` library whose label strategies live in ``breaching/attacks/base_attack.py``, method
``_BaseAttacker._recover_label_information``, driven by ``single_step_leakage.py`` (FedSGD) and
``multi_step_leakage.py`` (FedAvg). The classes re-implement, from a reading of that code (nothing is
copied), what its strategies ``'wainakh-simple'`` (:mod:`.llg`), ``'wainakh-whitebox'``
(:mod:`.llg_star`), ``'llbgAVG'`` (:mod:`.llbg`) and ``'iLRG'`` (:mod:`.ilrg`) compute. Facts common
to every strategy of that method (all checked against the code):

- it builds a *list of labels* and finally forces its length to ``N``: a longer list is cut to its
  first ``N`` entries, a shorter one is padded with labels drawn uniformly at random; the classes
  return the counts of that final list;
- stage 1 of LLG, LLG* and LLBG appends *every* class with a negative entry, in class-index order,
  with no cap; when more than ``N`` classes are negative the cut keeps the ``N`` lowest class indices;
- ``argmin`` returns the first index on ties, as here;
- for FedAvg the attacker works on ``-delta/lr``, the sum of the ``S`` step gradients, with ``N`` = all
  windows of the update: :class:`~leakage_core.federated.LastLayerUpdate`'s convention;
- the code computes in float32, these classes in float64 (except where float32 rounding *is* the
  result, LLG*'s estimates): this can only matter at exact ties.
"""

from __future__ import annotations

from ..registry import BOOK
from ._solvers import PAPER_CODE, _negative_in_index_order, _stale_index_stage2, _wainakh_code_counts
from .ilrg import ILRGPaperCode, ilrg_code, ilrg_code_solution
from .llbg import LLBGPaperCode, llbg_code
from .llg import LLGPaperCode, llg_code
from .llg_star import (
    DummyGradientSums,
    LLGStarPaperCode,
    count_llg_star_code,
    llg_star_code,
    llg_star_code_estimates,
    prepare_llg_star_code,
)

#: values of the ``variant`` option of the attacks that have a paper-code variant
VARIANTS: tuple[str, ...] = (BOOK, PAPER_CODE)

__all__ = [
    "PAPER_CODE",
    "VARIANTS",
    "LLGPaperCode",
    "LLGStarPaperCode",
    "LLBGPaperCode",
    "ILRGPaperCode",
    "DummyGradientSums",
    "llg_code",
    "llg_star_code",
    "llbg_code",
    "ilrg_code",
    "ilrg_code_solution",
    "prepare_llg_star_code",
    "count_llg_star_code",
    "llg_star_code_estimates",
    "_negative_in_index_order",
    "_stale_index_stage2",
    "_wainakh_code_counts",
]
