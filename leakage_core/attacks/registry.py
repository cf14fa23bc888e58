"""The attack protocol: one record per attack, ``prepare`` once, ``count`` per update.

Used by the experiment functions of Chapter 4 on and by the grid engine. Every attack splits into

- ``prepare(model, aux, **options)``: everything that depends on the server's model or its auxiliary
  data but not on the update (LLG*/LLG+ impact matrices, LLBG's trained-model confidences, iLRG's
  classifier), run once per (model state, client);
- ``count(update, prepared)``: a pure function of one update and that preparation.

``ATTACKS[name](update, **options)`` runs both, so one call still attacks one update. A record also
says the attack's family (``"weight"``, ``"bias"``, ``"baseline"``) and what the threat model must
grant it (``"update"``, ``"model"``, ``"aux"`` or ``"model+aux"``), which may depend on its options.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from ..updates.update import LastLayerUpdate

FAMILIES: tuple[str, ...] = ("weight", "bias", "baseline")
NEEDS: tuple[str, ...] = ("update", "model", "aux", "model+aux")


@dataclass(frozen=True)
class Attack:
    """One attack of the registry. Not used in a chapter yet.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"llbg"``.
    family : {"weight", "bias", "baseline"}
        Which gradient the attack reads (the paper's grouping), or a baseline.
    needs : str or callable
        ``"update"``, ``"model"``, ``"aux"`` (labelled data the server holds, no model: the prior
        guess) or ``"model+aux"``; a callable ``needs(**options) -> str`` when it
        depends on the options (LLBG needs auxiliary data only with ``confidence="aux"``).
    prepare : callable
        ``prepare(model, aux, **options) -> prepared``, run once per model and auxiliary data.
    count : callable
        ``count(update, prepared) -> counts``: int64, length C, non-negative, summing to N.
    in_paper : bool
        Whether the seed paper evaluates it.
    reads_gradient : bool
        ``False`` for the blind references (:mod:`leakage_core.attacks.blind`), which guess from ``N``,
        ``C`` and the population alone: the bar every attack's leakage is measured against.
    """

    name: str
    family: str
    needs: str | Callable[..., str]
    prepare: Callable[..., Any]
    count: Callable[[LastLayerUpdate, Any], np.ndarray]
    in_paper: bool = False
    reads_gradient: bool = True

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {self.family!r}.")
        if isinstance(self.needs, str) and self.needs not in NEEDS:
            raise ValueError(f"needs must be one of {NEEDS} or a callable, got {self.needs!r}.")

    @property
    def options(self) -> tuple[str, ...]:
        """The option names ``prepare`` accepts (besides ``model`` and ``aux``)."""
        params = inspect.signature(self.prepare).parameters
        return tuple(p for p in params if p not in ("model", "aux"))

    def requires(self, **options) -> str:
        """What the attack needs with these options: one of :data:`NEEDS`."""
        self.check_options(options)
        return self.needs(**options) if callable(self.needs) else self.needs

    def check_options(self, options: Mapping[str, Any]) -> None:
        """Raise one clear error for an option this attack does not have."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise ValueError(f"attack {self.name!r} has no option {unknown[0]!r}; its options are {list(self.options)}.")

    def prepare_with(self, model=None, aux=None, **options) -> Any:
        """``prepare(model, aux, **options)`` after checking the option names."""
        self.check_options(options)
        return self.prepare(model, aux, **options)

    def __call__(self, update: LastLayerUpdate, model=None, aux=None, **options) -> np.ndarray:
        """Attack one update: ``count(update, prepare(model, aux, **options))``."""
        return self.count(update, self.prepare_with(model, aux, **options))


@dataclass(frozen=True)
class AttackSpec:
    """One attack to run, under a result key: ``"llbg"`` or a labelled variant ``"llbg:empirical"``.

    Not used in a chapter yet.
    """

    key: str
    name: str
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def kwargs(self) -> dict[str, Any]:
        """The options as a dict."""
        return dict(self.options)


def resolve_attacks(
    registry: Mapping[str, Attack],
    attacks: Iterable[str] | Mapping[str, Mapping[str, Any]],
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[AttackSpec]:
    """Turn attack names (or a mapping key -> options) plus extra ``options`` into checked specs.

    Not used in a chapter yet. A key is a registry name or ``"name:label"`` (a variant with options);
    keys of ``options`` not in ``attacks`` are added after them. Unknown names and options raise.
    """
    attacks = dict(attacks) if isinstance(attacks, Mapping) else {k: {} for k in attacks}
    for key, opts in dict(options or {}).items():
        attacks[key] = {**attacks.get(key, {}), **opts}
    specs = []
    for key, opts in attacks.items():
        name = key.split(":")[0]
        if name not in registry:
            raise ValueError(f"unknown attack {name!r}; available: {sorted(registry)}.")
        registry[name].check_options(opts)
        specs.append(AttackSpec(key, name, tuple(sorted(dict(opts).items()))))
    return specs
