"""What an attack is: :class:`Attack`, the base class of every label-recovery attack, and :class:`Needs`.

The contract (checked for every registered attack by :func:`leakage_core.attacks.check_attack`):

- **options** are the constructor's keyword arguments (an attack is a dataclass); a bad value raises
  ``ValueError`` naming the option when the attack is built, before any model or data is seen;
- :attr:`Attack.needs` declares what ``prepare`` must be given: nothing, the server's ``model``, its
  auxiliary labelled data ``aux=(windows, labels)``, or both; it may depend on the options;
- ``prepare(model=None, aux=None)`` computes, once per model and auxiliary data, everything that does
  not depend on the update, and stores it as a typed, named preparation (a frozen dataclass);
- ``count(update)`` is a pure function of the update and that preparation: int64 counts of shape
  ``(C,)``, non-negative, summing to ``N`` (:class:`~leakage_core.federated.LastLayerUpdate`);
- :attr:`Attack.reads_bias`: an attack that reads the bias gradient refuses the update of a classifier
  without bias with :class:`NoBiasError`; every other attack counts it.

The split follows scikit-learn's estimators (options in ``__init__``, ``fit`` stores state, ``predict`` is
pure): L. Buitinck et al., "API design for machine learning software: experiences from the scikit-learn
project", ECML PKDD Workshop (2013).
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..federated.update import LastLayerUpdate
from ._common import check_update


class Needs(str, enum.Enum):
    """What an attack needs besides the update: the server's model, its auxiliary data, both or neither.

    A string enum (``Needs.MODEL == "model"``); read it through :attr:`model` and :attr:`aux`.
    """

    UPDATE = "update"
    MODEL = "model"
    AUX = "aux"
    MODEL_AUX = "model+aux"

    @property
    def model(self) -> bool:
        """Whether ``prepare`` needs the server's model."""
        return self in (Needs.MODEL, Needs.MODEL_AUX)

    @property
    def aux(self) -> bool:
        """Whether ``prepare`` needs auxiliary labelled windows ``aux=(windows, labels)``."""
        return self in (Needs.AUX, Needs.MODEL_AUX)

    @classmethod
    def of(cls, model: bool = False, aux: bool = False) -> Needs:
        """The member for these two flags."""
        return {
            (False, False): cls.UPDATE,
            (True, False): cls.MODEL,
            (False, True): cls.AUX,
            (True, True): cls.MODEL_AUX,
        }[(bool(model), bool(aux))]

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class NoPreparation:
    """The preparation of an attack that reads nothing but the update."""


class NotPreparedError(ValueError, AttributeError):
    """``count`` was called before ``prepare``."""


class NoBiasError(ValueError):
    """An attack that reads the bias gradient was given the update of a classifier without bias.

    Introduced in Chapter 16.
    """


class Attack:
    """Base class of an attack: options in the constructor, ``prepare(model, aux)``, a pure ``count(update)``.

    A subclass is a ``@dataclass(eq=False)`` whose fields are its options (each with a default), registered
    with :func:`~leakage_core.attacks.registry.register_attack` (or ``register_variant``), and implements

    - ``_prepare(model, aux)`` returning its preparation (a frozen dataclass; the default: nothing to
      prepare) — :meth:`prepare` has already checked that what :attr:`needs` declares was given;
    - ``_count(update, preparation)`` returning the counts;
    - optionally ``_check()``, validating the options (raise ``ValueError`` naming the option);
    - ``needs`` as a class attribute, or a property when it depends on the options.
    """

    #: registry name, family and variant label (set by the registry's decorators)
    name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    variant: ClassVar[str] = ""
    in_paper: ClassVar[bool] = False
    #: False for the blind references, which guess from ``N``, ``C`` and the population alone
    reads_gradient: ClassVar[bool] = True
    #: True for attacks that read the bias gradient (a property where the options decide)
    reads_bias: ClassVar[bool] = False
    #: what ``prepare`` needs (a property in subclasses where the options decide)
    needs: ClassVar[Needs] = Needs.UPDATE
    #: what to pass as ``aux`` (completes the error raised when it is missing)
    aux_hint: ClassVar[str] = "labelled windows the server holds (e.g. the other subjects')"
    #: option sets :func:`~leakage_core.attacks.check_attack` runs besides the defaults
    examples: ClassVar[tuple[dict[str, Any], ...]] = ()

    def __post_init__(self) -> None:
        self.preparation: Any = None
        self._check()

    def _check(self) -> None:
        """Validate the options (override; raise ``ValueError`` naming the bad option)."""

    @classmethod
    def option_defaults(cls) -> dict[str, Any]:
        """The options (constructor arguments) and their defaults, in declaration order."""
        return {f.name: f.default for f in dataclasses.fields(cls) if f.init}

    def prepare(self, model=None, aux=None) -> Attack:
        """Compute and store everything that depends on the model and auxiliary data only; returns ``self``.

        Raises ``ValueError`` when :attr:`needs` declares a model or auxiliary data that was not given.
        """
        needs = self.needs
        if needs.model and model is None:
            raise ValueError(
                f"attack {self.name or type(self).__name__!r} needs the server's model: "
                "pass model=<the model the client trained>."
            )
        if needs.aux and aux is None:
            raise ValueError(
                f"attack {self.name or type(self).__name__!r} needs aux=(windows, labels): {self.aux_hint}."
            )
        self.preparation = self._prepare(model, aux)
        return self

    def _prepare(self, model, aux) -> Any:
        return NoPreparation()

    def count(self, update: LastLayerUpdate) -> np.ndarray:
        """The attack's label counts for one update: int64, shape ``(C,)``, non-negative, summing to ``N``."""
        check_update(update)
        if self.preparation is None:
            raise NotPreparedError(f"{type(self).__name__}: call prepare(model, aux) before count(update).")
        if self.reads_bias and not update.has_bias:
            raise NoBiasError(
                f"attack {self.name or type(self).__name__!r} reads the classifier's bias gradient, but this update "
                "comes from a classifier without bias (bias=False); attack it with one that reads the weights "
                "(llg, llg_star, geng or dimitrov with row='weight', lmmse with row='auto' or 'weight')."
            )
        return self._count(update, self.preparation)

    def _count(self, update: LastLayerUpdate, preparation: Any) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, update: LastLayerUpdate, model=None, aux=None) -> np.ndarray:
        """``prepare(model, aux)`` then ``count(update)``: one attack on one update."""
        return self.prepare(model, aux).count(update)
