"""How a client forms its batches and its updates: one validated :class:`ClientSetting`.

Pipeline stage 2 (data -> **federated** -> attacks -> metrics -> study -> book). The setting gathers what
the client decides: the sampler and batch size ``N`` (:mod:`~leakage_core.federated.sampling`), the local
steps ``S``, learning rate, model mode and input scaling of its update
(:func:`~leakage_core.federated.client.client_update`), its local DP
(:mod:`~leakage_core.federated.ldp`) and the seed. It checks itself once, when built; the experiment
engine, its grid cells (:class:`leakage_core.study.Setting` extends it) and the explorer pass it around.
Batch ``b`` of a client is computed with dropout and LDP noise seeded by ``seed + b`` (:meth:`batch_seed`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..data.scaling import SCALINGS
from ..validation import Constraint, InstanceOf, Integer, OneOf, Optional, Real, check_params
from .client import MODES, client_update
from .ldp import LDP
from .sampling import SAMPLERS, make_batches
from .update import LastLayerUpdate

#: what each field of :class:`ClientSetting` may be
CLIENT_CONSTRAINTS: dict[str, Constraint] = {
    "sampler": OneOf(SAMPLERS),
    "batch_size": Integer(low=1),
    "n_steps": Integer(low=1),
    "lr": Real(gt=0),
    "ldp": Optional(InstanceOf(LDP, "a leakage_core.federated.LDP(sigma=..., rho=...)")),
    "scaling": OneOf(SCALINGS),
    "seed": Integer(low=0),
    "mode": OneOf(MODES),
}


@dataclass(frozen=True, kw_only=True)
class ClientSetting:
    """How a client cuts its windows into batches and computes the update of each (validated when built).

    Introduced in Chapter 15.

    Every field defaults to the paper's single-step setting.

    Attributes
    ----------
    sampler : {"shuffle", "sequential", "balanced"}
        How the client cuts its windows into batches (:func:`~leakage_core.federated.make_batches`).
    batch_size : int
        ``N``, windows per update (100 in the paper's single-step experiments).
    n_steps : int
        ``S``, local SGD steps per update (1 = FedSGD); must divide ``N``.
    lr : float
        Local learning rate of FedAvg updates (1e-4 in the paper; unused when ``S == 1``).
    ldp : LDP or None
        Local differential privacy applied to the update (None: no defence).
    scaling : {"none", "batch_minmax"}
        Input scaling before every forward pass (the paper's code min-max scales each batch).
    seed : int
        Seeds the sampler, dropout masks and LDP noise (batch ``b`` uses ``seed + b``).
    mode : {"train", "eval"}
        Model mode of the client's passes (train: dropout on, as in local training).

    Raises
    ------
    ValueError
        One line naming the first bad field, what it must be and what was given.
    """

    sampler: str = "shuffle"
    batch_size: int = 100
    n_steps: int = 1
    lr: float = 1e-4
    ldp: LDP | None = None
    scaling: str = "none"
    seed: int = 0
    mode: str = "train"

    def __post_init__(self) -> None:
        check_params({name: getattr(self, name) for name in CLIENT_CONSTRAINTS}, CLIENT_CONSTRAINTS)
        if self.batch_size % self.n_steps:
            raise ValueError(f"n_steps={self.n_steps} must divide batch_size={self.batch_size} (equal local batches).")

    def batches(self, labels: np.ndarray) -> list[np.ndarray]:
        """The client's batches (index arrays into its windows) under this sampler, ``N`` and seed."""
        return make_batches(labels, self.batch_size, self.sampler, seed=self.seed)

    def batch_seed(self, batch: int) -> int:
        """The seed of batch ``batch``'s dropout masks and LDP noise: ``seed + batch``."""
        return self.seed + int(batch)


def clean_update(
    model, windows: np.ndarray, labels: np.ndarray, setting: ClientSetting, batch: int, rest_norm: bool = False
) -> tuple[LastLayerUpdate, float | None]:
    """The un-privatized update of batch number ``batch`` (its windows and labels given) under ``setting``.

    FedSGD (closed form) for ``S == 1``, otherwise FedAvg; dropout seeded by ``setting.batch_seed(batch)``.
    The update records the setting's sampler (part of the protocol the server set). With ``rest_norm`` also
    the squared norm of the other layers' gradient (for LDP clipping on all layers), else None in its place
    (see :func:`~leakage_core.federated.client.client_update`).
    """
    update, rest_sq = client_update(
        model,
        windows,
        labels,
        n_steps=setting.n_steps,
        lr=setting.lr,
        mode=setting.mode,
        seed=setting.batch_seed(batch),
        scaling=setting.scaling,
        rest_norm=rest_norm,
    )
    return replace(update, sampler=setting.sampler), rest_sq
