"""Sliding windows over one subject's continuous recording (paper: 50 samples, step 25)."""

from __future__ import annotations

import numpy as np


def sliding_windows(
    signals: np.ndarray, sample_labels: np.ndarray, window_size: int = 50, step: int = 25
) -> tuple[np.ndarray, np.ndarray]:
    """Cut one subject's recording into overlapping windows; a window's label is its last sample's.

    Introduced in Chapter 2. Windows never cross subjects because this is called per subject.

    Parameters
    ----------
    signals : numpy.ndarray
        ``(T, channels)`` continuous recording.
    sample_labels : numpy.ndarray
        ``(T,)`` integer label per sample.
    window_size, step : int
        Window length and hop in samples (1 s and 50 % overlap at 50 Hz).

    Returns
    -------
    windows : numpy.ndarray
        ``(n, window_size, channels)`` float32 with ``n = 1 + (T - window_size) // step`` (0 if
        ``T < window_size``).
    labels : numpy.ndarray
        ``(n,)`` int64, the label of each window's last sample.
    """
    x = np.asarray(signals)
    y = np.asarray(sample_labels)
    if x.ndim != 2:
        raise ValueError(f"signals must be (T, channels), got shape {x.shape}.")
    if y.shape != (x.shape[0],):
        raise ValueError(f"sample_labels must have shape ({x.shape[0]},), got {y.shape}.")
    if int(window_size) != window_size or window_size < 1 or int(step) != step or step < 1:
        raise ValueError(f"window_size and step must be positive integers, got {window_size!r}, {step!r}.")
    if x.shape[0] < window_size:
        return np.zeros((0, window_size, x.shape[1]), np.float32), np.zeros(0, np.int64)
    n = 1 + (x.shape[0] - window_size) // step
    view = np.lib.stride_tricks.sliding_window_view(x, window_size, axis=0)[::step][:n]  # (n, ch, W)
    windows = np.ascontiguousarray(view.transpose(0, 2, 1), dtype=np.float32)
    labels = y[np.arange(n) * step + window_size - 1].astype(np.int64)
    return windows, labels
