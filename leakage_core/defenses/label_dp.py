"""Label differential privacy by randomized response: the client randomizes its labels once (labels stage).

B. Ghazi et al., "Deep Learning with Label Differential Privacy", NeurIPS 2021: randomized response on the
labels (their baseline RR mechanism) keeps a label with probability ``p = e^eps / (e^eps + C - 1)`` and otherwise
draws one of the other ``C - 1`` classes uniformly; every label is then eps-label-DP. The client trains on, and
computes its updates from, the randomized labels. A server that knows eps de-biases the histogram an attack
recovers (:meth:`RandomizedResponse.debias_counts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real
from typing import TYPE_CHECKING

import numpy as np

from .accounting import randomized_response_keep_probability
from .base import Defense, register_defense

if TYPE_CHECKING:  # pragma: no cover
    from ..federated.update import LastLayerUpdate


@register_defense
@dataclass(frozen=True)
class RandomizedResponse(Defense):
    """Randomized response on every label, once, before training and before the client's update.

    Introduced in Chapter 16.

    Parameters
    ----------
    eps : float
        The label-DP budget epsilon, > 0 (``math.inf`` keeps every label). Named ``eps`` because
        :meth:`epsilon` is the guarantee every defence reports.
    """

    name = "label_dp"
    stage = "labels"
    reference = "Ghazi et al. 2021, Deep Learning with Label Differential Privacy (randomized response)"

    eps: float = 2.0

    def __post_init__(self) -> None:
        e = self.eps
        if isinstance(e, bool) or not isinstance(e, Real) or not e > 0:
            raise ValueError(f"RandomizedResponse eps must be a positive number (math.inf: no noise), got {e!r}.")
        object.__setattr__(self, "eps", float(e))  # 2 and 2.0 are one defence: one key (cache keys hash its JSON)

    @property
    def label(self) -> str:
        """E.g. ``"label RR eps=2"``."""
        return f"label RR eps={self.eps:g}"

    # ------------------------------------------------------------------ the mechanism
    def keep_probability(self, n_classes: int) -> float:
        """``p = e^eps / (e^eps + C - 1)``, the probability that a label is kept."""
        return randomized_response_keep_probability(self.eps, n_classes)

    def transition_matrix(self, n_classes: int) -> np.ndarray:
        """``M[j, i]`` = P(noisy label j | true label i): ``p`` on the diagonal, ``q = (1 - p) / (C - 1)`` off it.

        Columns sum to 1; ``E[noisy histogram] = M @ true histogram``.
        """
        p = self.keep_probability(n_classes)
        q = (1.0 - p) / (n_classes - 1)
        return np.full((n_classes, n_classes), q) + (p - q) * np.eye(n_classes)

    def randomize(self, labels: np.ndarray, n_classes: int, seed: int) -> np.ndarray:
        """Each label kept with probability ``p``, else replaced by a uniformly drawn other class (seeded).

        Returns a new int64 array; ``labels`` must be integers in ``[0, n_classes)``.
        """
        y = _check_labels(labels, n_classes)
        rng = np.random.default_rng(seed)
        flip = rng.random(y.size) >= self.keep_probability(n_classes)
        shift = rng.integers(1, n_classes, size=y.size)  # 1..C-1: any class but the true one, uniformly
        return np.where(flip, (y + shift) % n_classes, y)

    def training_labels(self, labels: np.ndarray, n_classes: int, seed: int) -> np.ndarray:
        """The labels the model is trained on: :meth:`randomize` (each label randomized once)."""
        return self.randomize(labels, n_classes, seed)

    def client_labels(self, labels: np.ndarray, n_classes: int, seed: int) -> np.ndarray:
        """The labels the client's update is computed on: :meth:`randomize`, the same function as for training,
        so the same labels and seed give the same randomized labels."""
        return self.randomize(labels, n_classes, seed)

    # ------------------------------------------------------------------ guarantee and the server's side
    def epsilon(self, delta: float, updates: int = 1, *, adjacency: str = "replace") -> float | None:
        """``eps`` (pure label-DP, for every valid ``delta`` and number of updates).

        Each label is randomized once; training and every update read only the randomized labels (and the
        windows, which label-DP does not protect), so they are post-processing and the guarantee does not grow
        with ``updates``. The unit is one label, and its neighbours differ in that label's value (a replacement):
        ``adjacency`` is checked and accepted for the common interface, but does not change the value (the
        windows, whose presence add/remove would concern, are not protected either way). ``delta`` (in (0, 1)) and
        ``updates`` (an integer >= 1) are checked as every defence checks them
        (:func:`~leakage_core.defenses.accounting.check_delta`, :func:`~leakage_core.defenses.accounting.check_steps`):
        a bad value raises ``ValueError``.
        """
        from .accounting import check_adjacency, check_delta, check_steps

        check_delta(delta)
        check_steps(updates, "updates")
        check_adjacency(adjacency)
        return float(self.eps)

    def unbiased_counts(self, counts: np.ndarray) -> np.ndarray:
        """The unbiased estimate of the true histogram from a histogram ``m`` of randomized labels (floats).

        ``E[m] = M n`` with ``M = (p - q) I + q 1 1^T`` (:meth:`transition_matrix`) and ``1^T n = N``, so
        ``n_hat = (m - q N 1) / (p - q)``; it sums to N but may be negative or fractional. ``N`` is the sum of
        ``counts``; needs ``p > q`` (eps > 0).
        """
        m = np.asarray(counts, dtype=np.float64)
        if m.ndim != 1 or m.size < 2:
            raise ValueError(f"counts must be a histogram over C >= 2 classes, got shape {m.shape}.")
        c = int(m.size)
        p = self.keep_probability(c)
        q = (1.0 - p) / (c - 1)
        return (m - q * m.sum()) / (p - q)

    def debias_counts(self, counts: np.ndarray, update: "LastLayerUpdate") -> np.ndarray:
        """:meth:`unbiased_counts`, projected onto non-negative integers summing to ``N = update.n_windows``.

        Clipped at 0, rescaled to sum to N, then rounded by largest remainder
        (:func:`leakage_core.counts.round_to_total`).
        """
        from ..counts import round_to_total

        m = np.asarray(counts)
        if m.shape != (update.n_classes,):
            raise ValueError(f"counts has shape {m.shape}, the update has {update.n_classes} classes.")
        n = update.n_windows
        x = np.clip(self.unbiased_counts(m), 0.0, None)
        total = float(x.sum())
        x = x * (n / total) if total > 0 else np.full(x.size, n / x.size)
        return round_to_total(x, n)


def _check_labels(labels: np.ndarray, n_classes: int) -> np.ndarray:
    if isinstance(n_classes, bool) or not isinstance(n_classes, Integral) or n_classes < 2:
        raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}.")
    y = np.asarray(labels)
    if y.ndim != 1 or (y.size and not np.issubdtype(y.dtype, np.integer)):
        raise ValueError(f"labels must be a 1-d array of integer class indices, got {y.dtype} of shape {y.shape}.")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}), got values from {y.min()} to {y.max()}.")
    return y.astype(np.int64)
