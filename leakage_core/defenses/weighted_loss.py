"""Class-weighted cross-entropy: the training-stage defence the paper expects to make rare classes leak more.

Contract: :class:`WeightedLoss` trains with the class-weighted loss (``TrainConfig.class_weighted``; its weights,
or the inverse class frequencies of the training labels) and computes the client's FedSGD update with the same
weighted loss, in closed form (:func:`~leakage_core.federated.client.weighted_last_layer_gradients`). A server
that knows the weights undoes their effect on recovered counts (:meth:`WeightedLoss.debias_counts`). No
differential-privacy guarantee. Reference: the hypothesis of the paper's Limitations section (Bock et al. 2025).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .base import Defense, register_defense

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from ..federated.update import LastLayerUpdate
    from ..models.training import TrainConfig


@register_defense
@dataclass(frozen=True)
class WeightedLoss(Defense):
    """Class-weighted cross-entropy in training and in the client's update.

    Introduced in Chapter 16.

    ``weights``: one non-negative weight per class (at least one positive), or ``None``: the inverse class
    frequencies of the training labels (:func:`leakage_core.models.class_weights`), which training records as
    ``model.class_weights``.
    """

    name = "weighted_loss"
    stage = "training"
    reference = "Bock et al. 2025, Limitations (weighted losses may make rare classes leak more)"

    weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.weights is None:
            return
        try:
            values = tuple(float(w) for w in self.weights)
        except (TypeError, ValueError):
            values = ()
        if len(values) < 2 or not all(math.isfinite(w) and w >= 0 for w in values) or max(values) <= 0:
            raise ValueError(
                f"WeightedLoss weights must be one finite non-negative number per class (at least 2, one "
                f"positive), or None for the inverse class frequencies; got {self.weights!r}."
            )
        object.__setattr__(self, "weights", values)

    @property
    def label(self) -> str:
        """``"weighted loss"`` (inverse frequencies), or for given weights ``"weighted loss (given weights <h>)"``
        with ``<h>`` the first 8 hex digits of the weights' :func:`~leakage_core.cache.stable_hash`: labels name the
        defence in results and records, so different weights get different labels."""
        if self.weights is None:
            return "weighted loss"
        from ..cache import stable_hash

        return f"weighted loss (given weights {stable_hash(list(self.weights), length=8)})"

    # ------------------------------------------------------------------ training
    def train_config(self, config: "TrainConfig") -> "TrainConfig":
        """The configuration with ``class_weighted=True``."""
        return replace(config, class_weighted=True)

    def loss_weights(self, labels: np.ndarray, n_classes: int) -> np.ndarray:
        """The weights of the training loss: the given ones, else the inverse class frequencies of ``labels``."""
        from ..models.training import class_weights

        if self.weights is None:
            return class_weights(labels, n_classes)
        return self._checked(self.weights, n_classes)

    def weights_for(self, model: "nn.Module") -> np.ndarray:
        """The weights of ``model``'s loss: the given ones, else ``model.class_weights`` (set by training)."""
        n_classes = int(model.classifier.out_features)
        if self.weights is not None:
            return self._checked(self.weights, n_classes)
        recorded = getattr(model, "class_weights", None)
        if recorded is None:
            raise ValueError(
                "WeightedLoss() takes its weights from model.class_weights, which this model lacks: train it "
                "with TrainConfig(defense=WeightedLoss()) (fold_model records them), or give the weights."
            )
        return self._checked(recorded, n_classes)

    @staticmethod
    def _checked(weights: Any, n_classes: int) -> np.ndarray:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (n_classes,):
            raise ValueError(f"WeightedLoss has {w.size} weights but the model has {n_classes} classes.")
        return w

    # ------------------------------------------------------------------ the client's update
    def public_with(self, weights: np.ndarray) -> dict[str, Any]:
        """What the server knows of an update computed with ``weights``: the key with the weights explicit."""
        return {**self.key(), "weights": [float(w) for w in weights]}

    def client_update(
        self, model: "nn.Module", windows: np.ndarray, labels: np.ndarray, setting: Any, batch: int
    ) -> "LastLayerUpdate":
        """The client's FedSGD update of one batch with the class-weighted loss (closed form).

        ``setting`` (a :class:`~leakage_core.federated.ClientSetting`) gives the mode, input scaling, sampler
        and seed (``setting.batch_seed(batch)``); FedSGD only (``setting.n_steps == 1``). The update records the
        sampler and, as ``defense``, :meth:`public_with` the weights used.
        """
        from ..federated.client import client_update, record_defense

        if setting.n_steps != 1:
            raise ValueError(
                f"WeightedLoss computes FedSGD updates (n_steps=1), got n_steps={setting.n_steps}: its "
                "de-biasing (debias_counts) is derived for one step. Use a setting with n_steps=1."
            )
        weights = self.weights_for(model)
        update, _ = client_update(
            model,
            windows,
            labels,
            mode=setting.mode,
            seed=setting.batch_seed(batch),
            scaling=setting.scaling,
            class_weights=weights,
        )
        return record_defense(replace(update, sampler=setting.sampler), self.public_with(weights))

    # ------------------------------------------------------------------ the server's side
    def debias_counts(self, counts: np.ndarray, update: "LastLayerUpdate") -> np.ndarray:
        """Counts recovered from a weighted update, with the weights divided out (integers summing to ``N``).

        Derivation (FedSGD, one batch of ``N`` windows, ``n_c`` of class ``c``, class weights ``w``,
        ``W = sum_i w_{y_i} = sum_c w_c n_c``). The weighted mean cross-entropy gives window ``i`` the
        coefficient ``a_i = w_{y_i} / W`` (PyTorch's weighted-mean reduction), so the bias gradient is
        ``g_c = sum_i a_i (p_ic - 1[y_i = c])`` and::

            -N g_c = N sum_i a_i (1[y_i = c] - p_ic) = (N / W) (w_c n_c - sum_i w_{y_i} p_ic).

        The count term of class ``c`` is ``n_c`` scaled by ``w_c N / W``; an attack calibrated on the unweighted
        loss (whose count term is ``n_c``) therefore recovers ``r_c ~ w_c n_c N / W``. Dividing by ``w_c`` gives
        ``n_c N / W``, proportional to ``n_c`` with a factor common to all classes; renormalising to ``N`` removes
        it: ``n_c = N (r_c / w_c) / sum_k (r_k / w_k)``. Exact where ``r`` is exact, e.g. for a zero last layer
        (``p_ic = 1/C``: ``-N g_c + N/C = w_c n_c N / W``). Classes of weight 0 carry no count signal: they get 0.
        Largest-remainder rounding (:func:`leakage_core.counts.round_to_total`) makes integers summing
        to ``N``.

        The weights are the update's (``update.defense["weights"]``), else this defence's; without either:
        ``ValueError``.
        """
        from ..counts import round_to_total

        recorded = getattr(update, "defense", None) or {}
        weights = recorded.get("weights") if recorded.get("defense") == self.name else None
        weights = self.weights if weights is None else weights
        if weights is None:
            raise ValueError(
                "debias_counts needs the class weights the update was computed with: the update records none "
                "(update.defense) and this WeightedLoss has none; pass WeightedLoss(weights=...)."
            )
        w = self._checked(weights, update.n_classes)
        r = np.clip(np.asarray(counts, dtype=np.float64), 0.0, None)
        if r.shape != w.shape:
            raise ValueError(f"counts must hold one value per class ({w.size}), got shape {r.shape}.")
        scaled = np.divide(r, w, out=np.zeros_like(r), where=w > 0)
        if scaled.sum() <= 0:
            return round_to_total(r, update.n_windows)
        return round_to_total(update.n_windows * scaled / scaled.sum(), update.n_windows)
