"""The defence-aware attack: any registered attack, then what a server that knows the client's defence does with
its counts.

Contract: options ``base`` (a registered attack's name, default ``"lmmse"``) and ``base_options`` (that attack's
options; ``None``: none). ``prepare`` prepares the base attack (it needs what the base needs, and reads the bias
iff the base does); ``count`` runs it and, when the update records a defence (``update.defense``, the defence's
:meth:`~leakage_core.defenses.Defense.public`, which the protocol sets and so the server knows), returns
``defense_from_key(update.defense).debias_counts(counts, update)``
(:func:`leakage_core.defenses.defense_from_key`); without one, the base attack's counts unchanged. The
defence's own ``debias_counts`` says what knowing it buys (e.g. inverting randomized response's label flips, or
dividing out a weighted loss's class weights); a defence that defines none leaves the counts as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ...defenses.base import defense_from_key
from ...federated.update import LastLayerUpdate
from .._common import check_option
from ..base import Attack, Needs
from ..registry import ATTACKS, register_attack


@dataclass(frozen=True)
class BasePrepared:
    """The preparation of :class:`Aware`: the base attack, prepared with the server's model and data."""

    attack: Attack


@register_attack("aware", family="count")
@dataclass(eq=False)
class Aware(Attack):
    """A registered attack (``base`` with ``base_options``) whose counts are de-biased for the update's defence."""

    base: str = "lmmse"
    base_options: Mapping[str, Any] | None = None

    examples = (
        {"base": "llbg"},
        {"base": "geng", "base_options": {"row": "bias"}},
        {"base": "lmmse", "base_options": {"n_sim": 8, "row": "weight"}},
        {"base": "blind_prior"},
    )

    def _check(self) -> None:
        check_option("base", self.base, tuple(n for n in ATTACKS if n != "aware"))
        if self.base_options is not None and not isinstance(self.base_options, Mapping):
            raise ValueError(
                f"base_options must be a mapping of the base attack's options (or None), got {self.base_options!r}."
            )
        self._base = self.build_base()

    def build_base(self) -> Attack:
        """A fresh, unprepared base attack (``ValueError`` naming ``base_options`` for an option it lacks)."""
        try:
            return ATTACKS[self.base].build(**dict(self.base_options or {}))
        except ValueError as err:
            raise ValueError(f"base_options of aware (base={self.base!r}): {err}") from None

    @property
    def needs(self) -> Needs:  # type: ignore[override]
        """What the base attack needs."""
        return self._base.needs

    @property
    def reads_bias(self) -> bool:  # type: ignore[override]
        """Whether the base attack reads the bias gradient."""
        return self._base.reads_bias

    @property
    def aux_hint(self) -> str:  # type: ignore[override]
        """The base attack's hint for ``aux``."""
        return self._base.aux_hint

    def _prepare(self, model, aux) -> BasePrepared:
        return BasePrepared(self.build_base().prepare(model, aux))

    def _count(self, update: LastLayerUpdate, preparation: BasePrepared) -> np.ndarray:
        counts = preparation.attack.count(update)
        if update.defense is None:
            return counts
        return debiased(counts, update)


def debiased(counts: np.ndarray, update: LastLayerUpdate) -> np.ndarray:
    """``counts`` as the defence recorded in ``update.defense`` de-biases them (``counts`` if it records none).

    Raises ``ValueError`` when the defence is not registered or its ``debias_counts`` does not return
    non-negative integer counts of shape ``(C,)`` summing to ``N``.
    """
    if update.defense is None:
        return counts
    defense = defense_from_key(update.defense)
    out = np.asarray(defense.debias_counts(counts, update))
    if (
        out.shape != (update.n_classes,)
        or not np.issubdtype(out.dtype, np.integer)
        or out.min() < 0
        or int(out.sum()) != update.n_windows
    ):
        raise ValueError(
            f"{type(defense).__name__}.debias_counts must return {update.n_classes} non-negative integer counts "
            f"summing to N = {update.n_windows}, got {out.tolist()}."
        )
    return out.astype(np.int64)


def aware(
    update: LastLayerUpdate, model=None, aux=None, base: str = "lmmse", base_options: Mapping[str, Any] | None = None
) -> np.ndarray:
    """The ``base`` attack's counts (with ``base_options``, given the server's ``model`` and ``aux`` as it needs
    them), de-biased for the defence the update records (``update.defense``); see :class:`Aware`."""
    return Aware(base=base, base_options=base_options).prepare(model, aux).count(update)
