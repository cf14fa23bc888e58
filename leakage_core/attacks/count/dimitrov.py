"""Dimitrov et al.'s multi-step FedAvg label counts: Geng's formula with statistics interpolated over the steps.

Contract: needs the server's model (and, with ``stats="aux"``, auxiliary windows) and, for ``S > 1``, the
update's local learning rate; ``prepare`` is Geng's (:class:`~leakage_core.attacks.count.geng.Probe`);
``count`` is pure. At ``S = 1`` it equals :func:`~leakage_core.attacks.count.geng.geng` exactly.

Method: the ``S`` local steps run at models ``theta_0, ..., theta_{S-1}``; Dimitrov et al. estimate
``(pbar, Obar)`` at the server's model ``theta_0`` and at an estimate of the client's final model
``theta_S = theta_0 + delta = theta_0 - lr G``, interpolate them linearly to step ``s`` (weight ``s/S``,
``s = 0 .. S-1``), apply Geng's formula ``N pbar_s - N G_c / (S Obar_s)`` at each step and average
(``interpolation="steps"``; ``"start"`` and ``"end"`` use one end only, as their code offers), then round to ``N``.
With ``S = 1`` the one gradient is taken at the server's model, so every interpolation is Geng's formula there.

Approximation here: a :class:`~leakage_core.federated.LastLayerUpdate` holds the classifier's update
only, so the final model is the server's body with the classifier ``W_0 - lr G_W``, ``b_0 - lr G_b``: the
probe's features (hence ``Obar``) stay those of ``theta_0``; only ``pbar`` moves.

Reference: D. I. Dimitrov, M. Balunović, N. Konstantinov and M. Vechev, "Data Leakage in Federated
Averaging", TMLR 2022 (public code github.com/eth-sri/fedavg_leakage, ``fedavg/utils/flax_losses.py``,
``restore_labels``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...federated.update import LastLayerUpdate
from ...counts import round_to_total
from .._common import check_option
from ..registry import register_attack
from .geng import CountAttack, Probe, gradient_row, raw_counts

#: which statistics the per-step counts use: interpolated per step (the paper), the server's, the client's
INTERPOLATIONS: tuple[str, ...] = ("steps", "start", "end")


def step_weights(n_steps: int, interpolation: str = "steps") -> np.ndarray:
    """Interpolation weights of the final model's statistics, one per count averaged: ``s/S`` for
    ``s = 0 .. S-1`` (``"steps"``), ``[0]`` (``"start"``) or ``[1]`` (``"end"``).

    With one step (FedSGD) the only gradient is taken at the server's model: ``[0]`` whatever the interpolation.
    """
    check_option("interpolation", interpolation, INTERPOLATIONS)
    if interpolation == "start" or n_steps == 1:
        return np.zeros(1)
    if interpolation == "end":
        return np.ones(1)
    return np.arange(n_steps) / n_steps


def final_classifier(probe: Probe, update: LastLayerUpdate) -> tuple[np.ndarray, np.ndarray]:
    """The client's final classifier ``(W_0 - lr G_W, b_0 - lr G_b)`` (``b_0`` when the classifier has no bias);
    raises if the update has no ``lr``."""
    if update.lr is None:
        raise ValueError(
            f"dimitrov needs the local learning rate of this {update.n_steps}-step FedAvg update, but update.lr is "
            "None: build it with fedavg_update(..., lr=...) or LastLayerUpdate(..., n_steps=S, lr=lr)."
        )
    bias = probe.bias if update.bias_grad is None else probe.bias - update.lr * update.bias_grad
    return probe.weight - update.lr * update.weight_grad, bias


def dimitrov_raw_counts(
    update: LastLayerUpdate, probe: Probe, row: str = "weight", interpolation: str = "steps"
) -> np.ndarray:
    """Real-valued counts: Geng's formula at each step's interpolated statistics, averaged over the steps."""
    weights = step_weights(update.n_steps, interpolation)
    p0, o0 = probe.statistics()
    if np.any(weights > 0):
        p1, o1 = probe.statistics(*final_classifier(probe, update))
    else:  # only the server's statistics are needed (S = 1, or interpolation "start"): no lr required
        p1, o1 = p0, o0
    g, is_bias = gradient_row(update, row)
    n, s = update.n_windows, update.n_steps
    per_step = [raw_counts(g, (1 - a) * p0 + a * p1, 1.0 if is_bias else (1 - a) * o0 + a * o1, n, s) for a in weights]
    return np.mean(per_step, axis=0)


@register_attack("dimitrov", family="count")
@dataclass(eq=False)
class Dimitrov(CountAttack):
    """Dimitrov et al.'s multi-step counts (see :func:`dimitrov`); the options are that function's."""

    interpolation: str = "steps"

    examples = ({"stats": "aux", "n_probe": 16, "interpolation": "end"}, {"row": "bias"})

    def _check(self) -> None:
        super()._check()
        check_option("interpolation", self.interpolation, INTERPOLATIONS)

    def _count(self, update: LastLayerUpdate, preparation: Probe) -> np.ndarray:
        raw = dimitrov_raw_counts(update, preparation.checked(update), self.row, self.interpolation)
        return round_to_total(raw, update.n_windows)


def dimitrov(
    update: LastLayerUpdate,
    model=None,
    aux=None,
    stats: str = "dummy",
    row: str = "weight",
    interpolation: str = "steps",
    dummy: str = "gaussian",
    n_probe: int = 256,
    mode: str = "train",
    seed: int = 0,
) -> np.ndarray:
    """Dimitrov et al.'s label counts for ``S``-step FedAvg updates (TMLR 2022); Geng's at ``S = 1``.

    Per local step ``s = 0 .. S-1`` the statistics are interpolated between the server's model and the
    client's final model (weight ``s/S``), Geng's formula ``N pbar_s - N sum_j G_cj / (S Obar_s)`` is applied,
    and the counts are averaged and rounded to ``N``. The final model is estimated from the update's
    classifier part only (``W_0 - lr G_W``, ``b_0 - lr G_b``; the body is the server's): see the module
    docstring. ``interpolation`` = ``"steps"`` (the paper), ``"start"`` (server's statistics) or ``"end"``
    (client's). ``stats``, ``row``, ``dummy``, ``n_probe``, ``mode``, ``seed`` as in
    :func:`~leakage_core.attacks.count.geng.geng`. Needs ``update.lr`` when ``S > 1`` (``ValueError``
    otherwise) and the model's ``classifier`` Linear.
    """
    attack = Dimitrov(
        stats=stats, row=row, interpolation=interpolation, dummy=dummy, n_probe=n_probe, mode=mode, seed=seed
    )
    return attack.prepare(model, aux).count(update)
