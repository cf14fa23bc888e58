"""The HAR classifiers (DeepConvLSTM, TinyHAR) and their leave-one-subject-out training.

- :mod:`~leakage_core.models.architectures` — the two networks and :func:`build_model`;
- :mod:`~leakage_core.models.training` — :class:`TrainConfig`, :func:`train_model`, the cached LOSO
  models :func:`fold_model` (trained once per held-out client, never on it);
- :mod:`~leakage_core.models.train` — the command line ``python -m leakage_core.models.train``.
"""

from __future__ import annotations

from .architectures import MODELS, DeepConvLSTM, TinyHAR, build_model, count_parameters, init_paper, zero_last_layer
from .training import (
    CHECKPOINT_FORMAT,
    TrainConfig,
    accuracy,
    checkpoint_path,
    class_weights,
    committed_checkpoint,
    fold_model,
    fold_snapshots,
    list_checkpoints,
    macro_f1,
    predict,
    read_checkpoint_info,
    resolve_device,
    train_model,
    train_on_subjects,
)

__all__ = [
    "MODELS",
    "DeepConvLSTM",
    "TinyHAR",
    "build_model",
    "count_parameters",
    "init_paper",
    "zero_last_layer",
    "CHECKPOINT_FORMAT",
    "TrainConfig",
    "accuracy",
    "checkpoint_path",
    "class_weights",
    "committed_checkpoint",
    "fold_model",
    "fold_snapshots",
    "list_checkpoints",
    "macro_f1",
    "predict",
    "read_checkpoint_info",
    "resolve_device",
    "train_model",
    "train_on_subjects",
]
