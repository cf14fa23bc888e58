"""Blind references: what the server can guess without reading the gradient at all.

Introduced in Chapter 7. A server that knows only the batch size ``N`` and the number of classes ``C``
can guess ``N / C`` windows per class; one that trained the model (or simply knows the population)
can guess ``N`` times the population's class shares. Neither reads a single gradient entry, so an
attack leaks only what it recovers *beyond* the better of the two
(:func:`leakage_core.metrics.advantage`). Both are registered as gradient-free baselines
(``Attack.reads_gradient`` is ``False``) and computed by the grid like any attack.
"""
from __future__ import annotations

import numpy as np

from ..updates.update import LastLayerUpdate
from ._common import check_aux, check_update, round_to_total


def blind_uniform(update: LastLayerUpdate) -> np.ndarray:
    """``N / C`` windows per class, rounded to integers that sum to ``N`` (ties: lowest class first).

    Introduced in Chapter 7. Uses ``update.n_windows`` and ``update.num_classes`` only.
    """
    check_update(update)
    c = update.num_classes
    return round_to_total(np.full(c, update.n_windows / c), update.n_windows)


def class_shares(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """The share of each class among ``labels`` (length ``num_classes``, sums to 1).

    Introduced in Chapter 7. Raises if ``labels`` is empty or holds a label outside ``[0, num_classes)``.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError("class_shares needs a non-empty 1-D array of labels.")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must be integers in [0, {num_classes}).")
    return np.bincount(labels, minlength=num_classes) / labels.size


def blind_prior(update: LastLayerUpdate, shares: np.ndarray) -> np.ndarray:
    """``N`` times the population's class ``shares``, rounded to integers that sum to ``N``.

    Introduced in Chapter 7. ``shares`` (length ``C``, non-negative, summing to 1) is what an honest
    server knows without the update: the class shares of the subjects it trained on, or of the
    other clients (see :func:`prepare_prior`).
    """
    check_update(update)
    s = np.asarray(shares, dtype=np.float64)
    if s.shape != (update.num_classes,) or np.any(s < 0) or not np.isclose(s.sum(), 1.0):
        raise ValueError(f"shares must be {update.num_classes} non-negative class shares summing to 1, "
                         f"got shape {s.shape}; build them with leakage_core.attacks.class_shares(labels, C).")
    return round_to_total(update.n_windows * s, update.n_windows)


def prepare_uniform(model=None, aux=None) -> dict:
    """The uniform guess needs nothing. Not used in a chapter yet."""
    return {}


def prepare_prior(model=None, aux=None, shares: np.ndarray | None = None) -> dict:
    """The class shares of the prior guess: ``shares`` if given, else those of the labels in ``aux``.

    Not used in a chapter yet. The grid hands a client's attacks ``aux`` = the other subjects'
    windows and labels, which are exactly the subjects a leave-one-subject-out model was trained on
    (for an untrained model: the other clients, whose class shares the server is assumed to know).
    """
    if shares is not None:
        return {"shares": np.asarray(shares, dtype=np.float64)}
    if aux is None:
        raise ValueError("blind_prior needs the population's class shares: pass shares=<C shares> or "
                         "aux=(windows, labels) of the subjects the server knows (the grid does this).")
    labels = np.asarray(aux[1])
    check_aux(aux, int(labels.max()) + 1 if labels.size and np.issubdtype(labels.dtype, np.integer) else 1)
    return {"label_counts": np.bincount(labels)}


def count_uniform(update: LastLayerUpdate, prepared: dict) -> np.ndarray:
    """:func:`blind_uniform` in the prepare/count protocol. Not used in a chapter yet."""
    return blind_uniform(update)


def count_prior(update: LastLayerUpdate, prepared: dict) -> np.ndarray:
    """:func:`blind_prior` in the prepare/count protocol. Not used in a chapter yet."""
    if "shares" in prepared:
        return blind_prior(update, prepared["shares"])
    counts = prepared["label_counts"]
    if counts.size > update.num_classes:
        raise ValueError(f"the auxiliary labels go up to class {counts.size - 1} but the update has "
                         f"{update.num_classes} classes.")
    counts = np.pad(counts, (0, update.num_classes - counts.size)).astype(np.float64)
    return blind_prior(update, counts / counts.sum())


def counts_only_update(n_windows: int, num_classes: int) -> LastLayerUpdate:
    """An update that carries only ``N`` and ``C`` (zero gradients): all a blind reference reads.

    Introduced in Chapter 7. Used to add the blind references to results stored without them
    (:func:`leakage_core.grid.add_blind_references`).
    """
    return LastLayerUpdate(np.zeros((int(num_classes), 1)), np.zeros(int(num_classes)), int(n_windows))


def blind_guesses(true_counts_per_batch, shares: np.ndarray) -> dict[str, np.ndarray]:
    """Both blind references for every batch: ``{"blind_uniform": (B, C), "blind_prior": (B, C)}``.

    Not used in a chapter yet. Each guess reads only the batch's ``N`` (the row sum of
    ``true_counts_per_batch``), ``C`` and the population's class ``shares`` (see :func:`class_shares`),
    so the dictionary can be merged with attacks' predictions for :func:`leakage_core.metrics.metrics_table`.
    """
    truth = np.asarray(true_counts_per_batch)
    if truth.ndim != 2 or truth.shape[0] == 0 or np.any(truth < 0):
        raise ValueError("true_counts_per_batch must be a non-empty (batches, C) array of non-negative counts, "
                         f"got shape {truth.shape}; stack np.bincount(labels, minlength=C) of each batch.")
    updates = [counts_only_update(int(t.sum()), truth.shape[1]) for t in truth]
    return {"blind_uniform": np.stack([blind_uniform(u) for u in updates]),
            "blind_prior": np.stack([blind_prior(u, shares) for u in updates])}


def needs_prior(shares=None, **_) -> str:
    """What :func:`blind_prior` needs: the other subjects' labels (``"aux"``) unless given ``shares``.

    Not used in a chapter yet.
    """
    return "update" if shares is not None else "aux"
