"""The label-list solvers shared by the paper code's strategies (see :mod:`leakage_core.attacks.paper_code`)."""

from __future__ import annotations

import numpy as np

#: the variant label of the attacks as the seed paper's code ran them
PAPER_CODE = "paper_code"


def _negative_in_index_order(v: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Stage 1 as the code does it: every negative class once, in class order.

    Returns the stage-1 classes and, when there are at least ``n`` of them, the final counts (the
    code's cut of its label list to the first ``n`` entries); otherwise ``None``.
    """
    negative = np.flatnonzero(v < 0)
    if negative.size >= n:
        counts = np.zeros(v.size, dtype=np.int64)
        counts[negative[:n]] = 1
        return negative, counts
    return negative, None


def _stale_index_stage2(v: np.ndarray, m: float, r: int) -> np.ndarray:
    """Stage 2 of the code's Wainakh strategies: ``r`` picks of ``argmin v``, each followed by
    ``v[C-1] -= m`` whatever was picked (the stage-1 loop variable, left at ``C - 1``, is compensated).

    Only ``v[C-1]`` ever changes, so: while ``v[C-1]`` is strictly below every other entry, class
    ``C-1`` is picked; every other pick is the lowest-index minimum of the other classes, which never
    changes. The values of ``v[C-1]`` are accumulated by the same subtractions as the loop.
    """
    counts = np.zeros(v.size, dtype=np.int64)
    if r <= 0:
        return counts
    last = v.size - 1
    if last == 0:
        counts[0] = r
        return counts
    other = int(np.argmin(v[:last]))
    steps = np.full(r, -float(m))
    steps[0] = v[last]
    picks_last = int(np.count_nonzero(np.add.accumulate(steps) < v[other]))
    counts[last] = picks_last
    counts[other] = r - picks_last
    return counts


def _wainakh_code_counts(g: np.ndarray, m: float, offset: np.ndarray | float, n: int) -> np.ndarray:
    """The recovery loop shared by ``'wainakh-simple'`` and ``'wainakh-whitebox'``.

    Stage 1: every class with ``g_c < 0`` (class order, uncapped) is added once and ``g_c -= m``;
    then ``g -= offset``; stage 2 with the stale index (:func:`_stale_index_stage2`).
    """
    v = np.asarray(g, dtype=np.float64).copy()
    negative, done = _negative_in_index_order(v, n)
    if done is not None:
        return done
    counts = np.zeros(v.size, dtype=np.int64)
    counts[negative] = 1
    v[negative] -= m
    v = v - offset
    return counts + _stale_index_stage2(v, m, n - negative.size)
