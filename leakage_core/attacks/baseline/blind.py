"""What the two blind references share: an update that carries only ``N`` and ``C``, and both guesses
for a stack of batches.

Contract: a blind reference reads ``N``, ``C`` and the population's class shares, never a gradient
entry, so it can be computed from true counts alone. Leakage is what an attack recovers beyond the
better of the two (:func:`leakage_core.metrics.advantage`, Chapter 7).
"""

from __future__ import annotations

import numpy as np

from ...federated.update import LastLayerUpdate
from .blind_prior import blind_prior
from .blind_uniform import blind_uniform


def counts_only_update(n_windows: int, n_classes: int) -> LastLayerUpdate:
    """An update that carries only ``N`` and ``C`` (zero gradients): all a blind reference reads.

    Introduced in Chapter 7. Used to add the blind references to results stored without them
    (:func:`leakage_core.study.add_blind_references`).
    """
    return LastLayerUpdate(np.zeros((int(n_classes), 1)), np.zeros(int(n_classes)), int(n_windows))


def blind_guesses(true_counts_per_batch, shares: np.ndarray) -> dict[str, np.ndarray]:
    """Both blind references for every batch: ``{"blind_uniform": (B, C), "blind_prior": (B, C)}``.

    Introduced in Chapter 3. Each guess reads only the batch's ``N`` (the row sum of ``true_counts_per_batch``),
    ``C`` and the population's class ``shares`` (see :func:`~leakage_core.attacks.baseline.blind_prior.label_shares`),
    so the dictionary can be merged with attacks' predictions for :func:`leakage_core.metrics.metrics_table`.
    """
    truth = np.asarray(true_counts_per_batch)
    if truth.ndim != 2 or truth.shape[0] == 0 or np.any(truth < 0):
        raise ValueError(
            "true_counts_per_batch must be a non-empty (batches, C) array of non-negative counts, "
            f"got shape {truth.shape}; stack np.bincount(labels, minlength=C) of each batch."
        )
    updates = [counts_only_update(int(t.sum()), truth.shape[1]) for t in truth]
    return {
        "blind_uniform": np.stack([blind_uniform(u) for u in updates]),
        "blind_prior": np.stack([blind_prior(u, shares) for u in updates]),
    }
