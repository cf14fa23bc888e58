"""iLRG as the seed paper's code ran it (strategy ``'iLRG'``): ``variant="paper_code"`` of ``ilrg``.

Contract: reads the update only; uniform probabilities, the summed bias gradient not divided by ``S``,
the code's rounding and its seeded random padding. Reference: github.com/mariusbock/leakage_har,
``breaching/attacks/base_attack.py``, ``_BaseAttacker._recover_label_information`` (adapted there
from github.com/BUAA-CST/iLRG).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from ...federated.update import LastLayerUpdate
from .._common import check_count, check_update
from ..base import Attack, NoPreparation
from ..bias.ilrg import PROBABILITIES
from ..registry import register_variant
from ._solvers import PAPER_CODE


def ilrg_code_solution(update: LastLayerUpdate) -> np.ndarray:
    """The real-valued counts the code's iLRG solves for (before its rounding).

    Least squares (pseudo-inverse) of ``sum_j n_j = N`` and ``sum_j (1/C - delta_ij) n_j = N b_i``:
    iLRG's system with every class's probability vector replaced by the uniform one. ``b`` is the
    update's bias gradient as is: for FedAvg the sum of the ``S`` step gradients, **not divided by**
    ``S`` (the book divides). When ``sum_i b_i = 0`` the solution is ``n_i = N (1/C - b_i)``.
    """
    c_, n = update.n_classes, update.n_windows
    a = np.vstack([np.ones((1, c_)), np.full((c_, c_), 1.0 / c_) - np.eye(c_)])
    rhs = np.concatenate([[float(n)], n * update.bias_grad])
    return np.linalg.pinv(a) @ rhs


@register_variant("ilrg", PAPER_CODE)
@dataclass(eq=False)
class ILRGPaperCode(Attack):
    """iLRG as the paper's code ran it (see :func:`ilrg_code`).

    ``seed`` seeds the code's random padding. ``probabilities`` is accepted as iLRG's option, ``"model"``
    (its default) or ``"uniform"``: the code always uses uniform probabilities.
    """

    reads_bias = True

    probabilities: object = "model"
    seed: int = 0

    examples = ({"seed": 3},)

    def _check(self) -> None:
        if not (isinstance(self.probabilities, str) and self.probabilities in PROBABILITIES):
            raise ValueError(
                "with variant='paper_code' iLRG always uses uniform probabilities: "
                "leave probabilities at its default or pass 'uniform'."
            )
        check_count("seed", self.seed, low=0)

    def _count(self, update: LastLayerUpdate, preparation: NoPreparation) -> np.ndarray:
        c_, n = update.n_classes, update.n_windows
        x = ilrg_code_solution(update)
        rounded = np.round(np.where(x > 0, x, 0.0)).astype(np.int64)
        rounded[rounded > n] = 0
        before = np.cumsum(rounded) - rounded
        counts = np.minimum(rounded, np.maximum(n - before, 0))
        short = n - int(counts.sum())
        if short > 0:
            key = zlib.crc32(np.ascontiguousarray(update.bias_grad, dtype=np.float64).tobytes())
            rng = np.random.default_rng([int(self.seed), key])
            counts += np.bincount(rng.integers(0, c_, short), minlength=c_)
        return counts


def ilrg_code(update: LastLayerUpdate, seed: int = 0) -> np.ndarray:
    """iLRG as the seed paper's code ran it (strategy ``'iLRG'``).

    Reproduces the ``'iLRG'`` branch of ``_BaseAttacker._recover_label_information``
    (``breaching/attacks/base_attack.py``, github.com/mariusbock/leakage_har; adapted there from
    BUAA-CST/iLRG). Compared with the published iLRG (:func:`~leakage_core.attacks.bias.ilrg.ilrg`):

    - uniform probabilities for every class instead of the model's (:func:`ilrg_code_solution`);
    - for FedAvg the summed bias gradient is not divided by ``S``: with the untrained model's
      ``b_i ~ S/C - S n_i/N`` the estimate becomes ``S n_i - (S - 1) N / C``;
    - rounding: negatives set to 0, ``numpy.round`` (half to even), and a class whose rounded count
      exceeds ``N`` is set to **0**. The code computes a total repair but does not use it: the labels
      are filled in class order from the rounded counts, cut when ``N`` is reached (the highest
      classes lose windows when the total is too large), and a shortfall is filled by the method's
      final padding with labels drawn **uniformly at random**.

    The random padding is reproduced with a generator seeded by ``seed`` and the update's bias
    gradient, so a call is deterministic and different updates get different draws. (The repository
    holds two versions of this file; in one, the class-order fill stops at a hard-coded 100 instead
    of ``N``. They agree for ``N <= 100``, the single-step batch size; for FedAvg's ``N = 500`` that
    version would keep at most 100 labels and draw the other 400 at random. This function follows
    the ``N`` version.)

    Parameters
    ----------
    update : LastLayerUpdate
        The attacked update.
    seed : int
        Seeds the random padding.

    Returns
    -------
    numpy.ndarray
        ``(C,)`` int64 counts, non-negative, summing to ``N``.
    """
    check_update(update)
    return ILRGPaperCode(seed=seed).prepare().count(update)
