"""leakage_core: label leakage in federated inertial-based HAR.

The companion module of the *leakage_har* book, one folder per pipeline stage: ``data`` ->
``federated`` (batches, client updates, local DP) -> ``attacks`` -> ``metrics`` -> ``study`` (grids, results)
-> ``book`` (figures, explorer); ``models`` holds the HAR classifiers and their leave-one-subject-out training.

Importing the package is cheap: submodules (and torch) load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> submodule that defines it (loaded lazily, see __getattr__)
_EXPORTS = {
    "HARDataset": "leakage_core.data",
    "SubjectData": "leakage_core.data",
    "load_dataset": "leakage_core.data",
    "make_synthetic": "leakage_core.data",
    "load_real": "leakage_core.data",
    "make_batches": "leakage_core.federated",
    "build_model": "leakage_core.models",
    "LastLayerUpdate": "leakage_core.federated",
    "ATTACKS": "leakage_core.attacks",
    "ln_acc": "leakage_core.metrics",
    "class_acc_per_class": "leakage_core.metrics",
    "label_confusion": "leakage_core.metrics",
    "le_acc": "leakage_core.metrics",
    "le_recall": "leakage_core.metrics",
    "class_acc": "leakage_core.metrics",
    "Setting": "leakage_core.study",
    "run_grid": "leakage_core.study",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'leakage_core' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
