"""How a client forms its batches and its updates: one validated :class:`ClientSetting`.

Pipeline stage 2 (data -> **federated** -> attacks -> metrics -> study -> book). The setting gathers what
the client decides: the sampler and batch size ``N`` (:mod:`~leakage_core.federated.sampling`), the local
steps ``S``, learning rate, model mode and input scaling of its update
(:func:`~leakage_core.federated.client.client_update`), its local DP
(:mod:`~leakage_core.federated.ldp`), a client-side defence (:mod:`leakage_core.defenses`) and the seed. It
checks itself once, when built; the experiment engine, its grid cells (:class:`leakage_core.study.Setting` extends
it) and the explorer pass it around. Batch ``b`` of a client is computed with dropout and LDP noise seeded by
``seed + b`` (:meth:`batch_seed`).

Under a defence the client's side is (:meth:`ClientSetting.client_labels`, :func:`defended_update`): its labels
go through the defence's ``client_labels`` once for the whole client, its batches are drawn on those labels, each
batch's update is the defence's ``client_update`` (or the clean update on those labels), then its
``transform_update``; the update records the defence's ``public()``. The defence's model and training hooks act
on the model the caller passes (the study grid builds and trains it, :class:`leakage_core.study.Setting`).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace

import numpy as np

from ..data.scaling import SCALINGS
from ..defenses.base import Defense
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
    "defense": Optional(InstanceOf(Defense, "a leakage_core.defenses.Defense (make_defense(name, **options))")),
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
    defense : Defense or None
        A client-side defence (:mod:`leakage_core.defenses`; None: none), applied to the client's labels and
        updates by :meth:`client_labels` and :func:`defended_update` (see the module docstring). One the defence
        refuses to be (its ``check_as_defense``: e.g. ``LDP(scope="all")`` with clipping, which belongs in ``ldp``)
        raises ``ValueError``.

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
    defense: Defense | None = None

    def __post_init__(self) -> None:
        check_params({name: getattr(self, name) for name in CLIENT_CONSTRAINTS}, CLIENT_CONSTRAINTS)
        if self.batch_size % self.n_steps:
            raise ValueError(f"n_steps={self.n_steps} must divide batch_size={self.batch_size} (equal local batches).")
        if self.defense is not None:
            self.defense.check_as_defense()  # e.g. LDP(scope="all") with clipping belongs in ldp=

    def batches(self, labels: np.ndarray) -> list[np.ndarray]:
        """The client's batches (index arrays into its windows) under this sampler, ``N`` and seed."""
        return make_batches(labels, self.batch_size, self.sampler, seed=self.seed)

    def batch_seed(self, batch: int) -> int:
        """The seed of batch ``batch``'s dropout masks and LDP noise: ``seed + batch``."""
        return self.seed + int(batch)

    def stream_seed(self, purpose: str, batch: int) -> int:
        """A seed for ``purpose``'s draws at batch ``batch`` (e.g. ``"dp_noise"``), from numpy's ``SeedSequence``
        of the setting's seed, a tag of ``purpose`` and ``batch``: its stream is unrelated to the sampler's
        (``default_rng(seed)``), to :meth:`batch_seed`'s and to another purpose's or batch's."""
        if not isinstance(purpose, str) or not purpose:
            raise ValueError(f"purpose must be a non-empty string naming what the seed is for, got {purpose!r}.")
        tag = zlib.crc32(purpose.encode("utf-8"))
        return int(np.random.SeedSequence([int(self.seed), tag, int(batch)]).generate_state(1)[0])

    def client_labels(self, labels: np.ndarray, n_classes: int) -> np.ndarray:
        """The labels the client draws its batches from and computes its updates on.

        Without a defence, ``labels``; under one, ``defense.client_labels(labels, n_classes, seed=seed)``, called
        once on all the client's labels (each window's label is randomized once, whichever batches it joins).
        """
        if self.defense is None:
            return labels
        out = np.asarray(self.defense.client_labels(labels, n_classes, seed=self.seed))
        if out.shape != np.shape(labels) or not np.issubdtype(out.dtype, np.integer):
            raise ValueError(
                f"{type(self.defense).__name__}.client_labels must return one integer label per window "
                f"({np.shape(labels)}), got {out.dtype} of shape {out.shape}."
            )
        return out


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


def defended_update(
    model, windows: np.ndarray, labels: np.ndarray, setting: ClientSetting, batch: int, rest_norm: bool = False
) -> tuple[LastLayerUpdate, float | None]:
    """The update of batch number ``batch`` under ``setting.defense`` (:func:`clean_update` without one).

    ``labels`` are the batch's labels as the client has them (:meth:`ClientSetting.client_labels`). The update is
    the defence's ``client_update(model, windows, labels, setting, batch)``, or where that is ``None`` the clean
    update; then the defence's ``transform_update`` (seeded by ``setting.batch_seed(batch)``); it records
    ``defense.public()`` (merged with what the defence's own ``client_update`` recorded, e.g. its weights). With
    ``rest_norm`` also the squared norm of the other layers' gradient of the clean pass; a defence with its own
    ``client_update`` does not report it, so ``rest_norm`` raises ``ValueError`` then.
    """
    defense = setting.defense
    if defense is None:
        return clean_update(model, windows, labels, setting, batch, rest_norm=rest_norm)
    own = defense.client_update(model, windows, labels, setting, batch)
    if own is None:
        update, rest_sq = clean_update(model, windows, labels, setting, batch, rest_norm=rest_norm)
    elif rest_norm:
        raise ValueError(
            f"{type(defense).__name__} computes the client's update itself and does not report the other layers' "
            "norm that LDP clipping on all layers (scope='all') needs; clip on the last layer (scope='last_layer')."
        )
    elif not isinstance(own, LastLayerUpdate):
        raise ValueError(
            f"{type(defense).__name__}.client_update must return a LastLayerUpdate or None, got {type(own).__name__}."
        )
    else:
        update, rest_sq = own, None
    update = defense.transform_update(update, seed=setting.batch_seed(batch))
    return replace(update, defense={**defense.public(), **(update.defense or {})}), rest_sq
