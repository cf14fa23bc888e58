"""Batch samplers over one client's windows: shuffle, sequential, balanced.

Part of pipeline stage 2 (:mod:`leakage_core.federated`). Contract: a sampler (one of :data:`SAMPLERS`)
returns int64 index arrays into one client's windows, ``batch_size`` each; the incomplete last batch is
dropped, as in the paper; the same seed gives the same batches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

SAMPLERS: tuple[str, ...] = ("shuffle", "sequential", "balanced")


def make_batches(labels: np.ndarray, batch_size: int, sampler: str = "shuffle", seed: int = 0) -> list[np.ndarray]:
    """Split one client's windows into batches of ``batch_size`` window indices.

    Introduced in Chapter 1.

    Parameters
    ----------
    labels : numpy.ndarray
        ``(n,)`` integer window labels of one client, in time order.
    batch_size : int
        ``N``, windows per batch.
    sampler : {"shuffle", "sequential", "balanced"}
        ``sequential``: consecutive windows in time order (what a streaming wearable sends);
        ``shuffle``: a random permutation cut into batches;
        ``balanced``: every batch draws (about) equally from each class present in the client, at
        random, with replacement only for classes that have too few windows.
    seed : int
        Seed of the random draws (unused by ``sequential``).

    Returns
    -------
    list of numpy.ndarray
        ``len(labels) // batch_size`` int64 index arrays of length ``batch_size``; the incomplete last
        batch is dropped (a client with fewer than ``batch_size`` windows gets an empty list).
    """
    y = np.asarray(labels)
    if y.ndim != 1 or (y.size and not np.issubdtype(y.dtype, np.integer)):
        raise ValueError(f"labels must be a 1-D integer array, got shape {y.shape} dtype {y.dtype}.")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {SAMPLERS}.")
    n_batches = y.size // batch_size
    if n_batches == 0:
        return []
    rng = np.random.default_rng(seed)
    if sampler == "sequential":
        order = np.arange(n_batches * batch_size)
    elif sampler == "shuffle":
        order = rng.permutation(y.size)[: n_batches * batch_size]
    else:
        return [_balanced_batch(y, batch_size, rng) for _ in range(n_batches)]
    return [order[i * batch_size : (i + 1) * batch_size].astype(np.int64) for i in range(n_batches)]


def _balanced_batch(y: np.ndarray, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """One balanced batch: ``batch_size`` split evenly over the present classes (remainder at random)."""
    classes = np.unique(y)
    per_class = np.full(classes.size, batch_size // classes.size)
    per_class[rng.choice(classes.size, size=batch_size % classes.size, replace=False)] += 1
    parts = []
    for cls, k in zip(classes, per_class):
        pool = np.flatnonzero(y == cls)
        parts.append(rng.choice(pool, size=k, replace=k > pool.size))
    idx = np.concatenate(parts).astype(np.int64)
    return idx[rng.permutation(idx.size)]


def batch_composition(true_counts_per_batch) -> "pd.DataFrame":
    """What each batch holds: distinct labels, label-exclusive or not, NULL share, largest class share.

    Introduced in Chapter 8.

    Parameters
    ----------
    true_counts_per_batch : array-like
        ``(B, C)`` true label counts per batch (class 0 = NULL), e.g. the ``true`` column of a grid.

    Returns
    -------
    pandas.DataFrame
        One row per batch: ``distinct`` (classes present), ``exclusive`` (exactly one class),
        ``null_share`` and ``top_share`` (share of the batch's most frequent class).
    """
    import pandas as pd

    counts = np.asarray(
        np.stack(list(true_counts_per_batch))
        if not isinstance(true_counts_per_batch, np.ndarray)
        else true_counts_per_batch
    )
    if counts.ndim != 2 or counts.shape[0] == 0 or (counts < 0).any() or (counts.sum(axis=1) == 0).any():
        raise ValueError(
            "true_counts_per_batch must be a non-empty (B, C) array of non-negative counts, "
            f"each batch non-empty; got shape {counts.shape}."
        )
    n = counts.sum(axis=1)
    distinct = (counts > 0).sum(axis=1)
    return pd.DataFrame(
        {
            "distinct": distinct,
            "exclusive": distinct == 1,
            "null_share": counts[:, 0] / n,
            "top_share": counts.max(axis=1) / n,
        }
    )
