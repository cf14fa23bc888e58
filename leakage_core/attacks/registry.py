"""The attack registry: every attack registers itself where it is defined; one parser for result keys.

Contract:

- ``@register_attack(name, family=...)`` on an :class:`~leakage_core.attacks.base.Attack` subclass adds
  ``ATTACKS[name]``, a :class:`RegisteredAttack`; ``@register_variant(name, label)`` adds a variant of
  it (e.g. ``"paper_code"``, the attack as the seed paper's code ran it), chosen with the option
  ``variant=label``. The registry's order is the order of registration (the imports of
  :mod:`leakage_core.attacks`).
- ``ATTACKS[name](update, model=None, aux=None, **options)`` builds, prepares and runs one attack;
  ``ATTACKS[name].build(**options)`` returns the attack object (``prepare`` once, ``count`` per update).
- A result key is ``"name"`` or ``"name:label"`` (the same attack with other options, stored under
  another key): :func:`parse_key` is the one parser, :func:`resolve_attacks` turns keys and options
  into checked :class:`AttackSpec`.

Registration by decorator follows Opacus' ``register_grad_sampler`` (github.com/pytorch/opacus,
``opacus/grad_sample/utils.py``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from ..federated.update import LastLayerUpdate
from ._common import check_option
from .base import Attack, Needs

FAMILIES: tuple[str, ...] = ("weight", "bias", "count", "baseline")
#: the values of :class:`~leakage_core.attacks.base.Needs`
NEEDS: tuple[str, ...] = tuple(n.value for n in Needs)
#: the label of an attack's published form, the default of its ``variant`` option
BOOK = "book"


class RegisteredAttack:
    """One entry of :data:`ATTACKS`: an attack and its variants, callable as ``entry(update, **options)``.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"llbg"``.
    family : {"weight", "bias", "count", "baseline"}
        Which gradient the attack reads (the paper's grouping), or a baseline.
    attack : type
        The attack's class (its published form, variant ``"book"``).
    variants : dict
        Variant label -> class, ``"book"`` first.
    in_paper : bool
        Whether the seed paper evaluates it.
    reads_gradient : bool
        ``False`` for the blind references, which guess from ``N``, ``C`` and the population alone.
    """

    def __init__(self, attack: type[Attack]) -> None:
        self.attack = attack
        self.variants: dict[str, type[Attack]] = {BOOK: attack}

    @property
    def name(self) -> str:
        return self.attack.name

    @property
    def family(self) -> str:
        return self.attack.family

    @property
    def in_paper(self) -> bool:
        return self.attack.in_paper

    @property
    def reads_gradient(self) -> bool:
        return self.attack.reads_gradient

    def __repr__(self) -> str:
        return f"<attack {self.name!r} ({self.family}): {', '.join(c.__name__ for c in self.variants.values())}>"

    @property
    def options(self) -> tuple[str, ...]:
        """Every option name the entry accepts: the published attack's, its variants' and ``variant``."""
        names = dict.fromkeys(n for cls in self.variants.values() for n in cls.option_defaults())
        return tuple(names) + (("variant",) if len(self.variants) > 1 else ())

    def _default(self, option: str) -> Any:
        return next(cls.option_defaults()[option] for cls in self.variants.values() if option in cls.option_defaults())

    def build(self, **options) -> Attack:
        """The attack object for these options (the variant chosen by ``variant=``), options checked.

        Raises ``ValueError`` for an option the attack does not have, an unknown variant, a bad value, or
        an option of another variant that is not at its default (it has no counterpart in this one).
        """
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise ValueError(
                f"attack {self.name!r} has no option {unknown[0]!r}; its options are {list(self.options)}."
            )
        label = options.pop("variant", BOOK)
        check_option("variant", label, tuple(self.variants))
        cls = self.variants[label]
        own = cls.option_defaults()
        for option, value in options.items():
            if option not in own and not _is_default(value, self._default(option)):
                raise ValueError(
                    f"option {option}={value!r} has no counterpart in variant={label!r} of {self.name!r} "
                    f"({cls.__name__}); leave it at its default {self._default(option)!r}."
                )
        return cls(**{k: v for k, v in options.items() if k in own})

    def requires(self, **options) -> Needs:
        """What the attack needs with these options (a :class:`~leakage_core.attacks.base.Needs`)."""
        return self.build(**options).needs

    def check_options(self, options: Mapping[str, Any]) -> None:
        """Raise one clear ``ValueError`` for an option (name or value) this attack does not accept."""
        self.build(**options)

    def __call__(self, update: LastLayerUpdate, model=None, aux=None, **options) -> np.ndarray:
        """Attack one update: ``build(**options).prepare(model, aux).count(update)``."""
        return self.build(**options).prepare(model, aux).count(update)


def _is_default(value: Any, default: Any) -> bool:
    """Whether an option value is its default (``None``, a string or a number; no array is)."""
    if default is None:
        return value is None
    if isinstance(default, str):
        return isinstance(value, str) and value == default
    if isinstance(default, (int, float)):
        return (
            isinstance(value, (int, float, np.integer, np.floating))
            and not isinstance(value, bool)
            and value == default
        )
    return value is default


#: every registered attack, by name, in registration order
ATTACKS: dict[str, RegisteredAttack] = {}


def _check_class(cls: type) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Attack)):
        raise TypeError(f"only subclasses of leakage_core.attacks.Attack can be registered, got {cls!r}.")
    if "__dataclass_fields__" not in vars(cls):
        raise TypeError(
            f"{cls.__name__} must be a dataclass (decorate it with @dataclass(eq=False) below the "
            "registration decorator): its fields are its options."
        )
    missing = [f.name for f in dataclasses.fields(cls) if f.init and f.default is dataclasses.MISSING]
    if missing:
        raise TypeError(f"every option of {cls.__name__} needs a default; {missing} have none.")


def register_attack(
    name: str, *, family: str, in_paper: bool = False, reads_gradient: bool = True
) -> Callable[[type[Attack]], type[Attack]]:
    """Class decorator: register an attack as ``ATTACKS[name]`` (its published form, variant ``"book"``)."""
    check_option("family", family, FAMILIES)

    def decorate(cls: type[Attack]) -> type[Attack]:
        _check_class(cls)
        if name in ATTACKS:
            raise ValueError(f"an attack named {name!r} is registered already ({ATTACKS[name].attack.__name__}).")
        cls.name, cls.family, cls.variant = name, family, BOOK
        cls.in_paper, cls.reads_gradient = bool(in_paper), bool(reads_gradient)
        ATTACKS[name] = RegisteredAttack(cls)
        return cls

    return decorate


def register_variant(name: str, label: str) -> Callable[[type[Attack]], type[Attack]]:
    """Class decorator: register a variant of ``ATTACKS[name]``, run with the option ``variant=label``."""

    def decorate(cls: type[Attack]) -> type[Attack]:
        _check_class(cls)
        if name not in ATTACKS:
            raise ValueError(f"register the attack {name!r} before its variant {label!r}.")
        entry = ATTACKS[name]
        if label in entry.variants:
            raise ValueError(f"attack {name!r} has a variant {label!r} already.")
        base = entry.attack
        cls.name, cls.family, cls.variant = name, base.family, label
        cls.in_paper, cls.reads_gradient = base.in_paper, base.reads_gradient
        entry.variants[label] = cls
        return cls

    return decorate


def attack_classes() -> list[type[Attack]]:
    """Every registered attack class, variants included (what the contract suite runs on)."""
    return [cls for entry in ATTACKS.values() for cls in entry.variants.values()]


def parse_key(key: str) -> tuple[str, str | None]:
    """Split a result key ``"name"`` or ``"name:label"`` into the registry name and the label (or ``None``).

    Introduced in Chapter 15.
    """
    name, sep, label = str(key).partition(":")
    return name, (label if sep else None)


@dataclasses.dataclass(frozen=True)
class AttackSpec:
    """One attack to run, under a result key: ``"llbg"`` or a labelled variant ``"llbg:empirical"``."""

    key: str
    name: str
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def kwargs(self) -> dict[str, Any]:
        """The options as a dict."""
        return dict(self.options)

    def build(self, registry: Mapping[str, RegisteredAttack] | None = None) -> Attack:
        """The attack object of this spec (from :data:`ATTACKS` unless another ``registry`` is given)."""
        return (ATTACKS if registry is None else registry)[self.name].build(**self.kwargs)


def resolve_attacks(
    registry: Mapping[str, RegisteredAttack],
    attacks: Iterable[str] | Mapping[str, Mapping[str, Any]],
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[AttackSpec]:
    """Turn attack names (or a mapping key -> options) plus extra ``options`` into checked specs.

    A key is a registry name or ``"name:label"`` (:func:`parse_key`); keys of ``options`` not in
    ``attacks`` are added after them. Unknown names, options and option values raise ``ValueError``.
    """
    attacks = dict(attacks) if isinstance(attacks, Mapping) else {k: {} for k in attacks}
    for key, opts in dict(options or {}).items():
        attacks[key] = {**attacks.get(key, {}), **opts}
    specs = []
    for key, opts in attacks.items():
        name, _ = parse_key(key)
        if name not in registry:
            raise ValueError(f"unknown attack {name!r}; available: {sorted(registry)}.")
        registry[name].check_options(opts)
        specs.append(AttackSpec(key, name, tuple(sorted(dict(opts).items()))))
    return specs


def is_blind(key: str) -> bool:
    """Whether a result key (``"blind_prior"`` or a variant ``"blind_prior:label"``) names a blind reference."""
    name, _ = parse_key(key)
    return name in ATTACKS and not ATTACKS[name].reads_gradient
