"""LLG+: LLG* with impacts measured on auxiliary *real* labelled windows instead of dummies.

Contract: needs the server's model and auxiliary data ``aux=(windows, labels)`` unless a precomputed
impact matrix is given (``impacts=``); ``prepare`` measures the impact matrix once
(:class:`~leakage_core.attacks.weight.llg_star.Impacts`), ``count`` solves with it
(:func:`~leakage_core.attacks.weight.llg_star.solve_with_impacts`). Not in the seed paper; the
solver is LLG*'s (A. Wainakh et al., "User-Level Label Leakage from Gradients in Federated
Learning", PoPETs 2022).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...federated.client import MODES
from ...federated.update import LastLayerUpdate
from .._common import check_count, check_model_fits, check_option
from ..base import Attack, Needs
from ..registry import register_attack
from .llg_star import STAGE1_RULES, Impacts, estimate_impacts, solve_with_impacts


@register_attack("llg_plus", family="weight")
@dataclass(eq=False)
class LLGPlus(Attack):
    """LLG+ (see :func:`llg_plus`); the options are that function's."""

    n_aux: int = 64
    mode: str = "train"
    seed: int = 0
    impacts: np.ndarray | None = None
    stage1: str = "paper"

    examples = ({"n_aux": 8, "stage1": "offset"},)

    @property
    def needs(self) -> Needs:
        return Needs.of(model=self.impacts is None, aux=self.impacts is None)

    def _check(self) -> None:
        check_count("n_aux", self.n_aux)
        check_option("mode", self.mode, MODES)
        check_count("seed", self.seed, low=0)
        check_option("stage1", self.stage1, STAGE1_RULES)

    def _prepare(self, model, aux) -> Impacts:
        impacts = self.impacts
        if impacts is None:
            impacts = estimate_impacts(model, aux, n_aux=self.n_aux, mode=self.mode, seed=self.seed)
        return Impacts.of(impacts, model)

    def _count(self, update: LastLayerUpdate, preparation: Impacts) -> np.ndarray:
        return solve_with_impacts(update, preparation.checked(update), self.stage1)


def llg_plus(
    update: LastLayerUpdate,
    model=None,
    aux=None,
    n_aux: int = 64,
    mode: str = "train",
    seed: int = 0,
    impacts: np.ndarray | None = None,
    stage1: str = "paper",
) -> np.ndarray:
    """LLG+: LLG* with impacts estimated from auxiliary *real* labelled windows.

    Introduced in Chapter 4. Not in the seed paper: in the leave-one-subject-out setting the server
    holds the other subjects' windows, so it can measure each class's impact on real features
    (up to ``n_aux`` windows per class, drawn with ``seed``). Classes missing from ``aux`` fall back to
    all auxiliary windows relabelled with that class. ``impacts`` takes a precomputed matrix from
    :func:`~leakage_core.attacks.weight.llg_star.estimate_impacts`. The model is required (its
    classifier is checked against the update) even with ``impacts``.
    """
    check_model_fits(model, update)
    attack = LLGPlus(n_aux=n_aux, mode=mode, seed=seed, impacts=impacts, stage1=stage1)
    return attack.prepare(model, aux).count(update)
