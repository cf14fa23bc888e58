"""Input scaling applied to a batch of windows just before a forward pass.

Contract: :data:`SCALINGS` are the choices of the ``scaling`` option of the client's updates and of
:class:`leakage_core.study.Setting`: ``"none"`` (default) or ``"batch_minmax"``, which min-max scales every
batch to ``[0, 1]`` with one minimum and one maximum over the whole batch (all windows, all channels), as the
paper's code does before the forward pass (``single_step_leakage.py`` in github.com/mariusbock/leakage_har).
It changes an untrained model's logits and so every attack's premise.
"""

from __future__ import annotations

import numpy as np

SCALINGS: tuple[str, ...] = ("none", "batch_minmax")


def check_scaling(scaling: str) -> str:
    """Raise a clear error for an unknown scaling name; return it unchanged."""
    if scaling not in SCALINGS:
        raise ValueError(f"unknown input scaling {scaling!r}; choose one of {SCALINGS}.")
    return scaling


def scale_batch(windows: np.ndarray, scaling: str = "none") -> np.ndarray:
    """One batch of windows scaled as the client does before its forward pass.

    Parameters
    ----------
    windows : numpy.ndarray
        ``(N, T, channels)`` windows of one batch (one local step's mini-batch in FedAvg).
    scaling : {"none", "batch_minmax"}
        ``"none"`` returns the windows as float32; ``"batch_minmax"`` returns
        ``(x - x.min()) / (x.max() - x.min())`` with one min and max over the whole batch, as the
        paper's code does. A constant batch (max == min) maps to zeros instead of dividing by zero.

    Returns
    -------
    numpy.ndarray
        float32 array of the same shape.
    """
    check_scaling(scaling)
    x = np.asarray(windows, dtype=np.float32)
    if scaling == "none":
        return x
    lo, hi = float(x.min()), float(x.max())
    if hi == lo:
        return np.zeros_like(x)
    return ((x - lo) / (hi - lo)).astype(np.float32)
