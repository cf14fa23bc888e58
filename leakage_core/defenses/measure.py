"""An update as one vector (weight rows and bias together), and how far a defended update is from the clean one.

Contract: plain numpy on :class:`~leakage_core.federated.update.LastLayerUpdate`; never modifies its input.
The update-stage defences (:mod:`~leakage_core.defenses.topk`, :mod:`~leakage_core.defenses.sign`,
:mod:`~leakage_core.defenses.quantize`) treat the weight and bias gradients jointly, as one vector.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ..federated.update import LastLayerUpdate


def update_vector(update: "LastLayerUpdate") -> np.ndarray:
    """The update as one float64 vector: the weight gradient row by row, then the bias gradient (if any); a copy.

    Introduced in Chapter 16.
    """
    parts = [np.asarray(update.weight_grad, dtype=np.float64).ravel()]
    if update.bias_grad is not None:
        parts.append(np.asarray(update.bias_grad, dtype=np.float64).ravel())
    return np.concatenate(parts)


def with_vector(update: "LastLayerUpdate", vector: np.ndarray) -> "LastLayerUpdate":
    """``update`` with its gradients replaced by ``vector`` (laid out as :func:`update_vector`); all else kept."""
    w = update.weight_grad
    vector = np.asarray(vector, dtype=np.float64)
    size = w.size + (0 if update.bias_grad is None else update.bias_grad.size)
    if vector.shape != (size,):
        raise ValueError(f"the vector has shape {vector.shape}, the update has {size} entries (weight and bias).")
    weight = vector[: w.size].reshape(w.shape).copy()
    bias = None if update.bias_grad is None else vector[w.size :].copy()
    return dataclasses.replace(update, weight_grad=weight, bias_grad=bias)


def update_distance(clean: "LastLayerUpdate", defended: "LastLayerUpdate") -> dict[str, float]:
    """How far ``defended`` is from ``clean``, over weight and bias together.

    Introduced in Chapter 16.

    Returns ``{"relative_error": ||d - c|| / ||c||, "cosine": <c, d> / (||c|| ||d||)}`` (L2 norms of the
    :func:`update_vector`); ``nan`` where a norm in the denominator is 0. Raises ``ValueError`` if the two
    updates differ in shape or one has a bias and the other not.
    """
    same_bias = (clean.bias_grad is None) == (defended.bias_grad is None)
    if clean.weight_grad.shape != defended.weight_grad.shape or not same_bias:
        raise ValueError("the clean and defended updates need the same weight shape and both (or neither) a bias.")
    c, d = update_vector(clean), update_vector(defended)
    nc, nd = float(np.linalg.norm(c)), float(np.linalg.norm(d))
    relative = float(np.linalg.norm(d - c)) / nc if nc > 0 else float("nan")
    cosine = float(c @ d) / (nc * nd) if nc > 0 and nd > 0 else float("nan")
    return {"relative_error": relative, "cosine": cosine}
