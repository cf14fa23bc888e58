"""Local differential privacy applied by the client to its last-layer update (clipping, Gaussian noise).

Contract: pure post-processing of a :class:`~leakage_core.federated.update.LastLayerUpdate` (plain numpy,
seeded), so one clean update serves every LDP variant. Clipping on all layers' norm (``scope="all"``, what
the paper's code does) needs one extra number from the client's pass, the squared norm of the other layers'
gradient. Reference: the Gaussian mechanism with clipping as in M. Abadi et al., "Deep Learning with
Differential Privacy", CCS 2016, applied once per update. Chapter 11 introduces it.

:class:`LDP` is also the registered update-stage defence ``"ldp"`` (:mod:`leakage_core.defenses`):
``transform_update`` is :func:`privatize`, and ``epsilon`` the Gaussian mechanism's guarantee for the contents of
the client's batch (replace adjacency by default; :mod:`leakage_core.defenses.accounting`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from numbers import Real

import numpy as np

from ..defenses.base import Defense, register_defense
from .update import LastLayerUpdate


@register_defense
@dataclass(frozen=True)
class LDP(Defense):
    """Local differential privacy applied by the client to its update.

    Introduced in Chapter 11.

    Parameters
    ----------
    sigma : float or None
        Standard deviation of the i.i.d. Gaussian noise added to every element (absolute scale).
    rho : float or None
        L2 clipping bound: the update is scaled by ``min(1, rho / ||g||)``.
    scope : {"last_layer", "all"}
        Norm used for clipping: the last layer only (the paper's text) or all layers (the paper's code).

    As a :class:`~leakage_core.defenses.base.Defense` (name ``"ldp"``, stage ``"update"``), its options are
    exactly ``sigma``, ``rho`` and ``scope`` (cache keys depend on it).
    """

    name = "ldp"
    stage = "update"
    reference = (
        "Bock et al., Label Leakage in Federated Inertial-based Human Activity Recognition (last-layer clipping "
        "and Gaussian noise)"
    )

    sigma: float | None = None
    rho: float | None = None
    scope: str = "last_layer"

    def __post_init__(self) -> None:
        for name in ("sigma", "rho"):
            v = getattr(self, name)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, Real) or not (math.isfinite(v) and v > 0):
                raise ValueError(f"LDP {name} must be a positive number or None, got {v!r}.")
            object.__setattr__(self, name, float(v))  # 1 and 1.0 are one defence: one key (cache keys hash its JSON)
        if self.scope not in ("last_layer", "all"):
            raise ValueError(f"LDP scope must be 'last_layer' or 'all', got {self.scope!r}.")
        if self.sigma is None and self.rho is None:
            raise ValueError("an LDP needs sigma (noise), rho (clipping) or both; use ldp=None for no defence.")

    @property
    def label(self) -> str:
        """A short readable name, e.g. ``"clip 0.1 + noise 0.1"`` (``" (all layers)"`` for that scope)."""
        parts = ([f"clip {self.rho:g}"] if self.rho is not None else []) + (
            [f"noise {self.sigma:g}"] if self.sigma is not None else []
        )
        scope = " (all layers)" if self.scope == "all" and self.rho is not None else ""
        return " + ".join(parts) + scope

    def check_as_defense(self) -> None:
        """Refuse ``scope="all"`` with clipping as a defence (``ClientSetting``/``Setting(defense=...)``,
        ``TrainConfig(defense=...)``): clipping on all layers' norm needs the other layers' gradient norm, which a
        defence's hooks do not receive. The setting's ``ldp=`` computes it (or clip on the last layer)."""
        if self.scope == "all" and self.rho is not None:
            raise ValueError(
                f"LDP(scope='all') with clipping cannot be a defence ({self.label}): clipping on all layers' norm "
                "needs the other layers' gradient norm, which a defence does not receive. Use the setting's ldp= "
                "(Setting(..., ldp=LDP(..., scope='all'))), which computes it, or LDP(..., scope='last_layer')."
            )

    def transform_update(self, update: LastLayerUpdate, seed: int) -> LastLayerUpdate:
        """:func:`privatize` (clip, then noise; seeded). ``scope="all"`` with clipping needs the other layers'
        norm, which an update does not carry: that raises :func:`privatize`'s error (call :func:`privatize`); a
        setting or training configuration refuses it as a defence when built (:meth:`check_as_defense`)."""
        return privatize(update, self, seed)

    def epsilon(
        self, delta: float, updates: int = 1, accountant: str = "rdp", *, adjacency: str = "replace"
    ) -> float | None:
        """The (epsilon, delta) guarantee of ``updates`` releases of the clipped, noised last-layer update.

        ``None`` unless both ``sigma`` and ``rho`` are set (clipping alone or unbounded noise give no guarantee).
        Otherwise each release is a Gaussian mechanism on the client's batch: the clipped update has L2 norm at
        most ``rho``. ``adjacency="replace"`` (the default) compares two batches of the same size in the same
        place: any change of the batch's contents (its label histogram, one label, one window, all of them), which
        moves the clipped update by at most ``2 rho``; the noise multiplier is ``sigma / (2 rho)``. This is the
        guarantee that hides what is *in* the batch. ``adjacency="add_remove"`` compares the batch with no batch
        (Opacus's convention; the client would send pure noise with the same metadata): sensitivity ``rho``,
        noise multiplier ``sigma / rho``, a guarantee for the batch's presence; for its contents it gives only,
        by group privacy over two steps (a batch, no batch, another batch), ``(2 epsilon, (1 + e^epsilon) delta)``,
        weaker than the replace guarantee (:func:`~leakage_core.defenses.accounting.noise_multiplier`).
        ``updates`` releases compose with sample rate 1 (no subsampling amplification), accounted by Opacus's
        ``accountant`` (``"rdp"`` or ``"prv"``): the guarantee for a unit that enters all ``updates`` updates (for
        ``updates`` = all of a client's batches, the contents of all its batches). It protects the last layer's
        update only: the layers below it are sent unprotected.
        """
        from ..defenses.accounting import check_adjacency, check_delta, check_steps, gaussian_epsilon, noise_multiplier

        check_adjacency(adjacency)
        d, steps = check_delta(delta), check_steps(updates, "updates")
        if self.sigma is None or self.rho is None:
            return None
        z = noise_multiplier(self.sigma, self.rho, adjacency)
        return gaussian_epsilon(z, d, steps=steps, sample_rate=1.0, accountant=accountant)


def ldp_label(ldp: LDP | None) -> str:
    """``"none"`` or :attr:`LDP.label`: the readable name of a defence or of none."""
    return "none" if ldp is None else ldp.label


def privatize(update: LastLayerUpdate, ldp: LDP, seed: int = 0, rest_sq_norm: float | None = None) -> LastLayerUpdate:
    """Clip, then add Gaussian noise to, the last-layer update (local DP as in the paper).

    Introduced in Chapter 11. Clipping scales weight and bias gradients jointly by
    ``min(1, rho / ||g||)`` where ``||g||`` is the last layer's L2 norm (``scope="last_layer"``) or
    includes ``rest_sq_norm``, the squared norm of all other layers (``scope="all"``). Noise is i.i.d.
    ``N(0, sigma^2)`` per element, from a seeded generator.
    """
    if not isinstance(ldp, LDP):
        raise ValueError("ldp must be an leakage_core.federated.LDP(sigma=..., rho=..., scope=...).")
    if ldp.scope == "all" and ldp.rho is not None and rest_sq_norm is None:
        raise ValueError(
            "clipping with scope='all' needs rest_sq_norm, the squared gradient norm of every other layer: "
            "build the update with leakage_core.federated.client_update(..., rest_norm=True)."
        )
    if rest_sq_norm is not None and not (np.isfinite(rest_sq_norm) and rest_sq_norm >= 0):
        raise ValueError("rest_sq_norm is a squared norm and must be finite and non-negative.")
    w = update.weight_grad.copy()
    b = np.zeros(0) if update.bias_grad is None else update.bias_grad.copy()
    if ldp.rho is not None:
        sq = float((w**2).sum() + (b**2).sum())
        if ldp.scope == "all":
            sq += float(rest_sq_norm)
        norm = np.sqrt(sq)
        factor = min(1.0, ldp.rho / norm) if norm > 0 else 1.0
        w, b = w * factor, b * factor
    if ldp.sigma is not None:
        rng = np.random.default_rng(seed)
        w = w + rng.normal(0.0, ldp.sigma, size=w.shape)
        b = b + rng.normal(0.0, ldp.sigma, size=b.shape)
    return replace(update, weight_grad=w, bias_grad=b if update.has_bias else None)
