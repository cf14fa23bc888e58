"""Pipeline stage 3: client updates as the server sees them (the last layer's gradients).

Introduced in Chapter 3. Three parts, each importable on its own:

- :mod:`~leakage_core.updates.update` — the numpy :class:`LastLayerUpdate` and the closed-form
  gradients (all an attack imports);
- :mod:`~leakage_core.updates.client` — the torch client side: FedSGD, FedAvg, features;
- :mod:`~leakage_core.updates.ldp` — local DP (clipping, noise) as post-processing of an update.

Importing this package does not import torch.
"""
from __future__ import annotations

from .client import (
    MODES, as_batch, client_features, client_update, fedavg_update, fedsgd_update, model_classifier,
    update_from_features,
)
from .ldp import LDP, ldp_label, privatize
from .update import LastLayerUpdate, last_layer_gradients

__all__ = [
    "LastLayerUpdate", "last_layer_gradients", "LDP", "ldp_label", "privatize", "MODES", "as_batch", "client_features",
    "client_update", "fedavg_update", "fedsgd_update", "model_classifier", "update_from_features",
]
