"""Declarative checks of a public entry point's parameters: one clear error per bad argument.

The bottom of the pipeline: it imports nothing from the package, and every stage may use it. An entry point
declares what each parameter may be, a mapping ``name -> constraint``, and calls :func:`check_params` once;
the first parameter that breaks its constraint raises :class:`InvalidParameterError` (a ``ValueError``) with
one line naming the parameter, what it must be (the fix) and what was given. Relations between parameters
(``n_steps`` dividing ``batch_size``) stay explicit code next to the call.

Reference: scikit-learn's parameter constraints (``sklearn.utils._param_validation``,
https://scikit-learn.org/stable/developers/develop.html#parameter-validation).
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass
from typing import Any, Mapping


class InvalidParameterError(ValueError):
    """A parameter of a public function breaks its declared constraint (the message names the fix)."""


class Constraint:
    """What a parameter may be: :meth:`accepts` tests a value, :meth:`describe` says it in words."""

    def accepts(self, value: Any) -> bool:  # pragma: no cover - every constraint overrides it
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - every constraint overrides it
        raise NotImplementedError

    def detail(self, value: Any) -> str:
        """Extra words on a rejected value (empty by default)."""
        return ""

    def culprit(self, value: Any) -> "Constraint":
        """The constraint to explain a rejected value with (itself; a combination names its failing part)."""
        return self


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class OneOf(Constraint):
    """One of a fixed tuple of options."""

    options: tuple

    def accepts(self, value: Any) -> bool:
        try:
            return value in self.options
        except TypeError:  # an unhashable value in a comparison
            return False

    def describe(self) -> str:
        return repr(self.options[0]) if len(self.options) == 1 else f"one of {tuple(self.options)}"


@dataclass(frozen=True)
class Integer(Constraint):
    """An integer (not a bool) in ``[low, high]``; either bound may be None."""

    low: int | None = None
    high: int | None = None

    def accepts(self, value: Any) -> bool:
        return _is_int(value) and (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return f"an integer from {self.low} to {self.high}"
        if self.low == 1 and self.high is None:
            return "a positive integer"
        if self.low is not None:
            return f"an integer >= {self.low}"
        return "an integer" if self.high is None else f"an integer <= {self.high}"


@dataclass(frozen=True)
class Real(Constraint):
    """A finite real number (not a bool) above ``gt`` (exclusive) or from ``ge`` (inclusive)."""

    gt: float | None = None
    ge: float | None = None

    def accepts(self, value: Any) -> bool:
        if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value):
            return False
        return (self.gt is None or value > self.gt) and (self.ge is None or value >= self.ge)

    def describe(self) -> str:
        if self.gt == 0:
            return "a positive number"
        if self.ge == 0:
            return "a non-negative number"
        bound = f" > {self.gt}" if self.gt is not None else (f" >= {self.ge}" if self.ge is not None else "")
        return f"a finite number{bound}"


@dataclass(frozen=True)
class InstanceOf(Constraint):
    """An instance of ``types``, described to the reader as ``what``."""

    types: type | tuple[type, ...]
    what: str

    def accepts(self, value: Any) -> bool:
        return isinstance(value, self.types)

    def describe(self) -> str:
        return self.what


@dataclass(frozen=True)
class Optional(Constraint):
    """None, or a value that ``inner`` accepts."""

    inner: Constraint

    def accepts(self, value: Any) -> bool:
        return value is None or self.inner.accepts(value)

    def describe(self) -> str:
        return f"None or {self.inner.describe()}"

    def detail(self, value: Any) -> str:
        return self.inner.detail(value)


@dataclass(frozen=True)
class AnyOf(Constraint):
    """A value that at least one of ``constraints`` accepts."""

    constraints: tuple[Constraint, ...]

    def accepts(self, value: Any) -> bool:
        return any(c.accepts(value) for c in self.constraints)

    def describe(self) -> str:
        return " or ".join(c.describe() for c in self.constraints)


@dataclass(frozen=True)
class AllOf(Constraint):
    """A value that every one of ``constraints`` accepts (the first rejecting one explains an error)."""

    constraints: tuple[Constraint, ...]

    def accepts(self, value: Any) -> bool:
        return all(c.accepts(value) for c in self.constraints)

    def describe(self) -> str:
        return " and ".join(c.describe() for c in self.constraints)

    def culprit(self, value: Any) -> Constraint:
        return next((c.culprit(value) for c in self.constraints if not c.accepts(value)), self)


@dataclass(frozen=True)
class NonEmpty(Constraint):
    """A sized object (list, array, DataFrame) with at least one element, described as ``what``."""

    what: str = "a non-empty collection"

    def accepts(self, value: Any) -> bool:
        try:
            return len(value) > 0
        except TypeError:
            return False

    def describe(self) -> str:
        return self.what


@dataclass(frozen=True)
class SubsetOf(Constraint):
    """A collection of names, each one of ``options`` (e.g. the columns of a table)."""

    options: tuple
    what: str = "names"

    def accepts(self, value: Any) -> bool:
        try:
            return not isinstance(value, str) and all(v in self.options for v in value)
        except TypeError:  # not iterable, or an unhashable element
            return False

    def describe(self) -> str:
        return f"{self.what} from {list(self.options)}"

    def detail(self, value: Any) -> str:
        if isinstance(value, str):
            return "a string, not a list of names"
        try:
            return f"{[v for v in value if v not in self.options]} not among them"
        except TypeError:
            return "not a list of names"


@dataclass(frozen=True)
class Directory(Constraint):
    """A path that is a directory or does not exist yet (it will be created); never an existing file."""

    def accepts(self, value: Any) -> bool:
        if not isinstance(value, (str, os.PathLike)):
            return False
        path = os.path.expanduser(os.fspath(value))
        return os.path.isdir(path) or not os.path.exists(path)

    def describe(self) -> str:
        return "a folder (existing or to be created)"

    def detail(self, value: Any) -> str:
        if isinstance(value, (str, os.PathLike)) and os.path.exists(os.path.expanduser(os.fspath(value))):
            return "that path is a file: pass its parent folder or another folder"
        return ""


def check_params(
    params: Mapping[str, Any], constraints: Mapping[str, Constraint], hints: Mapping[str, str] | None = None
) -> None:
    """Check every parameter of ``params`` that has a constraint; raise on the first that breaks it.

    ``constraints`` maps a parameter name to a :class:`Constraint`; ``hints`` optionally maps a name to a
    sentence appended to its error (why the constraint holds, or another way out). Parameters without a
    constraint are not checked.

    Raises
    ------
    InvalidParameterError
        ``"<name> must be <description>, got <value>[ (<detail>)][; <hint>]."`` on one line.
    """
    for name, constraint in constraints.items():
        if name not in params:
            continue
        value = params[name]
        if constraint.accepts(value):
            continue
        culprit = constraint.culprit(value)
        detail = culprit.detail(value)
        hint = (hints or {}).get(name)
        message = f"{name} must be {culprit.describe()}, got {_short_repr(value)}" + (f" ({detail})" if detail else "")
        raise InvalidParameterError(message + (f"; {hint}" if hint else "") + ".")


def _short_repr(value: Any, limit: int = 80) -> str:
    """A one-line repr of ``value``, cut to ``limit`` characters (a path is shown whole, as a string)."""
    if isinstance(value, os.PathLike):
        return repr(os.fspath(value))
    text = " ".join(repr(value).split())
    if len(text) > limit:
        text = f"{type(value).__name__} {text[: limit - 20]}..."
    return text


# ---------------------------------------------------------------- shared by the contract suites
#: the value a string option is given to check that it is refused (attack and defence contracts)
BAD_STRING = "<not an option>"


def bad_option_value(default: Any) -> Any | None:
    """A value an option with this default must refuse: :data:`BAD_STRING` for a string, ``-1`` for a number (not a
    bool), ``None`` (nothing to check) for anything else. Used by the attack and defence contract suites."""
    if isinstance(default, str):
        return BAD_STRING
    if isinstance(default, numbers.Real) and not isinstance(default, bool):
        return -1
    return None


def raises_value_error(fn: Any, *must_mention: str) -> str | None:
    """None if ``fn()`` raises a ``ValueError`` whose message names every word of ``must_mention``; else why not
    (it raised nothing, another exception, or a message that misses a word). Used by the contract suites."""
    try:
        fn()
    except ValueError as err:
        missing = [w for w in must_mention if w not in str(err)]
        return f"its ValueError ({err}) does not name {missing}" if missing else None
    except Exception as err:  # noqa: BLE001 - any other exception is what the contracts forbid
        return f"it raised {type(err).__name__}: {err} instead of a ValueError"
    return "it raised nothing"
