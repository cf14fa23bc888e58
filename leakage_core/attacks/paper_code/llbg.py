"""LLBG as the seed paper's code ran it (strategy ``'llbgAVG'``): ``variant="paper_code"`` of ``llbg``.

Contract: reads the update only; LLG's empirical impact scaled by one constant confidence, no offset,
stage 1 in class order (uncapped), the correct greedy stage 2. Reference:
github.com/mariusbock/leakage_har, ``breaching/attacks/base_attack.py``,
``_BaseAttacker._recover_label_information``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...federated.update import LastLayerUpdate
from .._common import _greedy_picks, check_option, check_update, empirical_impact
from ..base import Attack, NoPreparation
from ..bias.llbg import IMPACTS
from ..registry import register_variant
from ._solvers import PAPER_CODE, _negative_in_index_order


def _check_code_confidence(confidence) -> float:
    if confidence is None:
        return 0.0
    if isinstance(confidence, (str, tuple, list, np.ndarray)) or not np.isscalar(confidence):
        raise ValueError(
            "with variant='paper_code', confidence is the code's one constant approx_avg_conf for every class: "
            f"None (its config's 0.0) or a number in [0, 1]; got {confidence!r}."
        )
    conf = float(confidence)
    if not 0.0 <= conf <= 1.0:
        raise ValueError(f"confidence must lie in [0, 1], got {conf}.")
    return conf


@register_variant("llbg", PAPER_CODE)
@dataclass(eq=False)
class LLBGPaperCode(Attack):
    """LLBG as the paper's code ran it (see :func:`llbg_code`).

    ``confidence`` is the code's constant ``approx_avg_conf`` (``None``: its config's 0.0). ``impact``
    is accepted as LLBG's option, ``"analytic"`` (its default) or ``"empirical"``: the code uses the
    empirical impact either way. Through the registry LLBG's ``mode`` and ``seed`` must keep their defaults.
    """

    reads_bias = True

    impact: str = "analytic"
    confidence: float | None = None

    examples = ({"confidence": 0.5},)

    def _check(self) -> None:
        check_option("impact", self.impact, IMPACTS)
        _check_code_confidence(self.confidence)

    def _count(self, update: LastLayerUpdate, preparation: NoPreparation) -> np.ndarray:
        conf = _check_code_confidence(self.confidence)
        b = update.bias_grad
        c_, n = update.n_classes, update.n_windows
        negative, done = _negative_in_index_order(b, n)
        if done is not None:
            return done
        step = empirical_impact(b, n) * (1.0 - conf)  # <= 0
        v = b.copy()
        v[negative] -= step
        counts = np.zeros(c_, dtype=np.int64)
        counts[negative] = 1
        return counts + _greedy_picks(v, np.full(c_, step), n - negative.size)


def llbg_code(update: LastLayerUpdate, confidence: float | None = None) -> np.ndarray:
    """LLBG as the seed paper's code ran it (strategy ``'llbgAVG'``).

    Reproduces the ``'llbgAVG'`` branch of ``_BaseAttacker._recover_label_information``
    (``breaching/attacks/base_attack.py``, github.com/mariusbock/leakage_har). Compared with the
    published LLBG (:func:`~leakage_core.attacks.bias.llbg.llbg`, ``impact="analytic"``):

    - the per-window impact is LLG's empirical estimate ``m = (1 + 1/C) * sum_{b_c<0} b_c / N``
      (a comment in the code: the analytic impact was "too high" for DeepConvLSTM and TinyHAR),
      scaled by ``1 - conf`` with one constant ``conf`` for every class (``approx_avg_conf`` of the
      attack config, 0.0 in ``breaching/config/attack/_default_optimization_attack.yaml``);
    - no offset is subtracted (the line subtracting ``S / C`` is commented out). With one impact for
      every class a uniform offset cannot change a greedy pick, so this alone changes no count;
    - stage 1 takes every negative class in class order, uncapped (cut to the ``N`` lowest indices).

    With ``confidence=None`` (0.0) the counts equal the book's ``llbg(update, impact="empirical")``
    except when more than ``N`` classes are negative (tested). Stage 2 is the correct greedy one.

    Parameters
    ----------
    update : LastLayerUpdate
        The attacked update.
    confidence : float or None
        The code's ``approx_avg_conf`` (``None``: its config's 0.0); 1.0 makes the impact 0, so every
        window after stage 1 goes to ``argmin b``.

    Returns
    -------
    numpy.ndarray
        ``(C,)`` int64 counts, non-negative, summing to ``N``.
    """
    check_update(update)
    return LLBGPaperCode(confidence=confidence).prepare().count(update)
