"""Pipeline stage 2: what a federated client does and sends — batches, local updates, local DP.

- :mod:`~leakage_core.federated.sampling` — a client's batches (shuffled, sequential, balanced);
- :mod:`~leakage_core.federated.update` — the numpy :class:`LastLayerUpdate` and the closed-form
  last-layer gradients (all an attack imports);
- :mod:`~leakage_core.federated.client` — the torch client side: FedSGD, FedAvg, features;
- :mod:`~leakage_core.federated.ldp` — local DP (clipping, noise) as post-processing of an update;
- :mod:`~leakage_core.federated.setting` — :class:`ClientSetting`, how a client forms its batches and updates
  (under a client-side defence too).

Importing this package does not import torch.
"""

from __future__ import annotations

from .client import (
    MODES,
    as_batch,
    client_features,
    client_mode,
    client_update,
    fedavg_update,
    fedsgd_update,
    has_bias,
    model_classifier,
    update_from_features,
)
from .ldp import LDP, ldp_label, privatize
from .sampling import SAMPLERS, batch_composition, make_batches
from .setting import ClientSetting, clean_update, defended_update
from .update import LastLayerUpdate, last_layer_gradients

__all__ = [
    "LastLayerUpdate",
    "last_layer_gradients",
    "LDP",
    "ldp_label",
    "privatize",
    "MODES",
    "as_batch",
    "client_features",
    "client_mode",
    "client_update",
    "fedavg_update",
    "fedsgd_update",
    "has_bias",
    "model_classifier",
    "update_from_features",
    "SAMPLERS",
    "batch_composition",
    "make_batches",
    "ClientSetting",
    "clean_update",
    "defended_update",
]
