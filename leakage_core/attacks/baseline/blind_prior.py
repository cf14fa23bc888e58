"""The prior blind reference: ``N`` times the population's class shares, without reading the gradient.

Contract: reads only ``N`` and ``C`` of the update (``reads_gradient`` is False) and the population's
class shares: given as ``shares=``, or counted once by ``prepare`` from the labels of ``aux`` (the
other subjects', which a leave-one-subject-out server trained on) into :class:`Population`. Counts are
rounded by largest remainder. The bar every attack's leakage is measured against (Chapter 7).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...federated.update import LastLayerUpdate
from ...counts import round_to_total
from .._common import check_aux, check_update
from ..base import Attack, Needs
from ..registry import register_attack


def label_shares(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """The share of each class among ``labels`` (length ``n_classes``, sums to 1).

    Introduced in Chapter 3. Raises if ``labels`` is empty or holds a label outside ``[0, n_classes)``.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError("label_shares needs a non-empty 1-D array of labels.")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must be integers in [0, {n_classes}).")
    return np.bincount(labels, minlength=n_classes) / labels.size


def blind_prior(update: LastLayerUpdate, shares: np.ndarray) -> np.ndarray:
    """``N`` times the population's class ``shares``, rounded to integers that sum to ``N``.

    Introduced in Chapter 7. ``shares`` (length ``C``, non-negative, summing to 1) is what an honest
    server knows without the update: the class shares of the subjects it trained on, or of the
    other clients (see :class:`BlindPrior`).
    """
    check_update(update)
    s = np.asarray(shares, dtype=np.float64)
    if s.shape != (update.n_classes,) or np.any(s < 0) or not np.isclose(s.sum(), 1.0):
        raise ValueError(
            f"shares must be {update.n_classes} non-negative class shares summing to 1, "
            f"got shape {s.shape}; build them with leakage_core.attacks.label_shares(labels, C)."
        )
    return round_to_total(update.n_windows * s, update.n_windows)


@dataclass(frozen=True)
class Population:
    """The prior's preparation: the label counts of the population the server knows (``None``: ``shares`` given)."""

    label_counts: np.ndarray | None = None


@register_attack("blind_prior", family="baseline", reads_gradient=False)
@dataclass(eq=False)
class BlindPrior(Attack):
    """The prior guess: ``shares`` if given, else the class shares of the labels in ``aux``.

    :func:`leakage_core.study.run_grid` hands a client's attacks ``aux`` = the other subjects' windows and
    labels, which are exactly the subjects a leave-one-subject-out model was trained on (for an untrained
    model: the other clients, whose class shares the server is assumed to know).
    """

    shares: np.ndarray | None = None

    aux_hint = (
        "the labels of the population the server knows (the grid passes the other subjects'), "
        "or pass shares=<C class shares> instead"
    )

    @property
    def needs(self) -> Needs:
        return Needs.of(aux=self.shares is None)

    def _check(self) -> None:
        if self.shares is not None:
            self.shares = np.asarray(self.shares, dtype=np.float64)

    def _prepare(self, model, aux) -> Population:
        if self.shares is not None:
            return Population()
        labels = np.asarray(aux[1])
        check_aux(aux, int(labels.max()) + 1 if labels.size and np.issubdtype(labels.dtype, np.integer) else 1)
        return Population(np.bincount(labels))

    def _count(self, update: LastLayerUpdate, preparation: Population) -> np.ndarray:
        if self.shares is not None:
            return blind_prior(update, self.shares)
        counts = preparation.label_counts
        if counts.size > update.n_classes:
            raise ValueError(
                f"the auxiliary labels go up to class {counts.size - 1} but the update has {update.n_classes} classes."
            )
        counts = np.pad(counts, (0, update.n_classes - counts.size)).astype(np.float64)
        return blind_prior(update, counts / counts.sum())
