"""The update the server sees: :class:`LastLayerUpdate`, and its closed form (identities I1, I2).

Part of pipeline stage 2 (:mod:`leakage_core.federated`). Contract: plain numpy, no torch; a
:class:`LastLayerUpdate` is validated and read-only once built, and is all an attack reads. The torch client
side (FedSGD, FedAvg, features) is in :mod:`leakage_core.federated.client`, local DP in
:mod:`leakage_core.federated.ldp`. Chapter 3 derives the closed form.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LastLayerUpdate:
    """What an honest-but-curious server sees of a client's classifier update.

    Introduced in Chapter 4.

    Parameters
    ----------
    weight_grad : numpy.ndarray
        ``(C, d)`` gradient of the loss w.r.t. the classifier weight. For a
        multi-step (FedAvg) update this is the attacker's view
        ``-delta_W / lr``, i.e. the *sum* of the per-step batch-mean gradients.
    bias_grad : numpy.ndarray or None
        ``(C,)`` gradient w.r.t. the classifier bias (same convention); ``None`` for a classifier without
        bias (``bias=False``), whose update has no bias row.
    n_windows : int
        ``N``, the number of windows the update was computed on.
    n_steps : int, default 1
        ``S``, the number of local SGD steps (1 = FedSGD).
    lr : float or None
        Local learning rate for FedAvg updates (``None`` for FedSGD).
    sampler : str or None
        How the client drew the batch (``"shuffle"``, ``"sequential"``, ``"balanced"``), when the server's
        protocol sets it, as it sets ``N``, ``S`` and ``lr``; ``None``: not known.
    defense : dict or None
        What the server knows of the defences the update went through (the protocol sets them): the
        defence's :meth:`~leakage_core.defenses.Defense.public`, a JSON-able dict naming it under ``"defense"``
        (kept as a JSON copy); ``None``: no defence.

    Raises
    ------
    ValueError
        On inconsistent shapes, ``N < 1``, ``S < 1``, ``N`` not divisible by
        ``S``, non-finite gradients or a ``defense`` that is not such a dict.
    """

    weight_grad: np.ndarray
    bias_grad: np.ndarray | None
    n_windows: int
    n_steps: int = 1
    lr: float | None = None
    sampler: str | None = None
    defense: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        w = np.asarray(self.weight_grad, dtype=np.float64)
        b = None if self.bias_grad is None else np.asarray(self.bias_grad, dtype=np.float64)
        if w.ndim != 2:
            raise ValueError(
                f"weight_grad must be a (C, d) matrix, got shape {w.shape}; "
                "pass the classifier weight gradient, not a flattened vector."
            )
        if b is not None and (b.ndim != 1 or b.shape[0] != w.shape[0]):
            raise ValueError(
                f"bias_grad has shape {b.shape} but weight_grad has {w.shape[0]} rows; "
                "both must come from the same classifier (C classes)."
            )
        if not (np.all(np.isfinite(w)) and (b is None or np.all(np.isfinite(b)))):
            raise ValueError(
                "the update contains NaN or inf gradients; check the client's loss "
                "(learning rate, input scaling) before attacking it."
            )
        n, s = int(self.n_windows), int(self.n_steps)
        if n != self.n_windows or n < 1:
            raise ValueError(f"n_windows must be a positive integer, got {self.n_windows!r}.")
        if s != self.n_steps or s < 1:
            raise ValueError(f"n_steps must be a positive integer, got {self.n_steps!r}.")
        if n % s:
            raise ValueError(
                f"n_windows={n} is not divisible by n_steps={s}; FedAvg splits the N "
                "windows into S equal local mini-batches."
            )
        if self.lr is not None and not (np.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive finite number or None, got {self.lr!r}.")
        if self.sampler is not None and not isinstance(self.sampler, str):
            raise ValueError(f"sampler must be the name of the client's sampler or None, got {self.sampler!r}.")
        if self.defense is not None:
            object.__setattr__(self, "defense", _checked_defense(self.defense))
        w.setflags(write=False)
        if b is not None:
            b.setflags(write=False)
        object.__setattr__(self, "weight_grad", w)
        object.__setattr__(self, "bias_grad", b)
        object.__setattr__(self, "n_windows", n)
        object.__setattr__(self, "n_steps", s)

    @property
    def has_bias(self) -> bool:
        """Whether the classifier has a bias (else ``bias_grad`` is ``None``)."""
        return self.bias_grad is not None

    @property
    def n_classes(self) -> int:
        """``C``, the number of classes (rows of the classifier)."""
        return int(self.weight_grad.shape[0])

    @property
    def feature_dim(self) -> int:
        """``d``, the size of the features feeding the classifier."""
        return int(self.weight_grad.shape[1])

    @property
    def step_size(self) -> int:
        """Windows per local step, ``N / S``."""
        return self.n_windows // self.n_steps


def _checked_defense(defense: Any) -> dict[str, Any]:
    """A JSON copy of ``defense`` (a dict naming the defence under ``"defense"``), or a clear ``ValueError``."""
    hint = "pass the defence's public() (e.g. {'defense': 'ldp', 'sigma': 0.1, ...}) or None"
    if not isinstance(defense, dict) or not isinstance(defense.get("defense"), str):
        raise ValueError(f"defense must be a dict naming the defence under 'defense', got {defense!r}; {hint}.")
    try:
        return json.loads(json.dumps(defense))
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"defense must hold JSON values only (strings, numbers, lists, dicts): {err}; {hint}."
        ) from None


def last_layer_gradients(
    features: np.ndarray, labels: np.ndarray, weight: np.ndarray, bias: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form last-layer gradients of the mean cross-entropy loss.

    Introduced in Chapter 4, equations I1 and I2::

        P = softmax(H W^T + b),   dW = (P - Y)^T H / N,   db = mean_k (P_k - Y_k)

    Parameters
    ----------
    features : numpy.ndarray
        ``(N, d)`` features ``H`` feeding the classifier.
    labels : numpy.ndarray
        ``(N,)`` integer class labels in ``[0, C)``.
    weight, bias : numpy.ndarray
        Classifier parameters, ``(C, d)`` and ``(C,)``.

    Returns
    -------
    (dW, db) : tuple of numpy.ndarray
        ``(C, d)`` and ``(C,)`` float64 gradients.
    """
    h = np.asarray(features, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    b = np.asarray(bias, dtype=np.float64)
    y = np.asarray(labels)
    if h.ndim != 2 or w.ndim != 2 or h.shape[1] != w.shape[1]:
        raise ValueError(f"features {h.shape} and weight {w.shape} do not fit: expected (N, d) and (C, d).")
    if b.shape != (w.shape[0],):
        raise ValueError(f"bias has shape {b.shape}, expected ({w.shape[0]},).")
    if y.shape != (h.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be N={h.shape[0]} integers, got shape {y.shape} dtype {y.dtype}.")
    if h.shape[0] == 0:
        raise ValueError("no windows given: a gradient needs N >= 1.")
    c = w.shape[0]
    if y.min() < 0 or y.max() >= c:
        raise ValueError(f"labels must lie in [0, {c}); got range [{y.min()}, {y.max()}].")
    z = h @ w.T + b
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(h.shape[0]), y] -= 1.0
    n = h.shape[0]
    return p.T @ h / n, p.mean(axis=0)
