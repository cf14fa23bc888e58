"""Counts shared by the attacks and the defences: real-valued class counts rounded to a batch's integer counts.

The bottom of the pipeline, like :mod:`leakage_core.validation`: pure numpy, it imports nothing from the package, so
both :mod:`leakage_core.attacks` (every attack's final rounding) and :mod:`leakage_core.defenses` (a server's
de-biased counts) import it.
"""

from __future__ import annotations

import numpy as np


def round_to_total(x: np.ndarray, n: int) -> np.ndarray:
    """Clip at zero and round real-valued counts to integers summing exactly to ``n``.

    Not used in a chapter yet.

    iLRG's rounding (Chapter 6 explains it). Largest-remainder rounding: floor everything, then give the
    missing windows to the largest fractional parts, or — when the floors already exceed ``n`` — take
    windows from the classes with the smallest fractional parts. (Public iLRG code repairs the total
    with a sign error when the sum falls short; both directions are tested.) Values are first clipped
    to ``[0, n]`` (no class holds more than the batch): an ill-conditioned solve can return counts of
    1e15 or ``inf``, which would otherwise make the repair loop run (practically) forever.
    """
    x = np.asarray(x, dtype=np.float64)
    x = np.clip(np.nan_to_num(x, nan=0.0, posinf=float(n), neginf=0.0), 0.0, float(n))
    counts = np.floor(x).astype(np.int64)
    frac = x - counts
    missing = n - int(counts.sum())
    if missing > 0:
        order = np.argsort(-frac, kind="stable")
        for i in range(missing):
            counts[order[i % order.size]] += 1
    while missing < 0:
        candidates = np.flatnonzero(counts > 0)
        c = candidates[np.argmin(frac[candidates])]
        counts[c] -= 1
        frac[c] = np.inf if counts[c] == 0 else frac[c] + 1.0
        missing += 1
    return counts
