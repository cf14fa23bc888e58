"""The defence contract (check_defense) on every registered defence, the examples, and that the check can fail."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

import leakage_core.defenses  # noqa: F401  (registers every defence)
from leakage_core.defenses import DEFENSES, Defense, Quantize, RandomizedResponse, TopK, register_defense
from leakage_core.defenses.contract import CHECKS, EXAMPLES, check_defense
from leakage_core.federated import LDP


@pytest.mark.parametrize("name", sorted(DEFENSES))
def test_every_registered_defence_has_an_example(name):
    assert name in EXAMPLES, f"add a typical instance of {DEFENSES[name].__name__} to contract.EXAMPLES"
    assert type(EXAMPLES[name]()) is DEFENSES[name]


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_example_honours_the_contract(name):
    assert check_defense(EXAMPLES[name]()) == list(CHECKS)


@pytest.mark.parametrize(
    "defense",
    [LDP(sigma=0.5), LDP(rho=0.05), LDP(sigma=1.0, rho=0.1), TopK(1.0), Quantize(2), RandomizedResponse(math.inf)],
    ids=repr,
)
def test_more_instances_honour_the_contract(defense):
    assert check_defense(defense) == list(CHECKS)


# ---- the check can fail: defences that break one rule each (registered only for their test) ----------------


@dataclass(frozen=True)
class _Base(Defense):
    name = "broken"
    stage = "update"
    reference = "a test"

    strength: float = 1.0

    def __post_init__(self) -> None:
        if not self.strength > 0:
            raise ValueError(f"strength must be positive, got {self.strength!r}.")


@dataclass(frozen=True)
class Unchecked(_Base):
    def __post_init__(self) -> None:
        pass


@dataclass(frozen=True)
class DropsBias(_Base):
    def transform_update(self, update, seed):
        from dataclasses import replace

        return replace(update, bias_grad=None)


@dataclass(frozen=True)
class Unseeded(_Base):
    def transform_update(self, update, seed):
        from dataclasses import replace

        noise = np.random.default_rng().normal(size=update.weight_grad.shape)
        return replace(update, weight_grad=update.weight_grad + noise)


@dataclass(frozen=True)
class ForgetsWindows(_Base):
    def transform_update(self, update, seed):
        from dataclasses import replace

        return replace(update, n_windows=update.n_windows * 2, n_steps=1)


@dataclass(frozen=True)
class LabelsOutOfRange(_Base):
    def client_labels(self, labels, n_classes, seed):
        return labels + 1


@dataclass(frozen=True)
class ChangesLabelsInPlace(_Base):
    def training_labels(self, labels, n_classes, seed):
        labels[:] = 0
        return labels


@dataclass(frozen=True)
class LosesWindows(_Base):
    def debias_counts(self, counts, update):
        return np.maximum(counts - 1, 0)


@dataclass(frozen=True)
class FloatCounts(_Base):
    def debias_counts(self, counts, update):
        return counts.astype(float)


@dataclass(frozen=True)
class EpsilonGrowsWithDelta(_Base):
    def epsilon(self, delta, updates=1):
        return delta * updates


@dataclass(frozen=True)
class EpsilonShrinks(_Base):
    def epsilon(self, delta, updates=1):
        return 1.0 / updates


@dataclass(frozen=True)
class NoLabel(_Base):
    @property
    def label(self):
        return ""


@dataclass(frozen=True)
class SecretOption(_Base):
    def key(self):
        return {"defense": self.name}


@dataclass(frozen=True)
class StepIgnoresTransform(_Base):
    def transform_update(self, update, seed):
        from dataclasses import replace

        return replace(update, weight_grad=update.weight_grad * 0.5)

    def on_step(self, model, seed):
        pass


@pytest.mark.parametrize(
    "cls, check",
    [
        (Unchecked, "bad option value (strength=-1)"),
        (DropsBias, "keeps the shapes"),
        (Unseeded, "deterministic given the seed"),
        (ForgetsWindows, "transform_update keeps ('n_windows'"),
        (LabelsOutOfRange, "labels in [0, C)"),
        (ChangesLabelsInPlace, "does not modify its input"),
        (LosesWindows, "sums to N"),
        (FloatCounts, "int64 counts"),
        (EpsilonGrowsWithDelta, "does not grow with delta"),
        (EpsilonShrinks, "does not shrink with more updates"),
        (NoLabel, "label is a non-empty"),
        (SecretOption, "defense_from_key(key) equals"),
        (StepIgnoresTransform, "on_step changes"),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else "",
)
def test_the_check_fails_on_a_broken_defence(monkeypatch, cls, check):
    monkeypatch.setitem(DEFENSES, "broken", cls)
    with pytest.raises(AssertionError, match=f"{cls.__name__}.*fails the defence contract .*{_escape(check)}"):
        check_defense(cls(strength=0.5))


def _escape(text: str) -> str:
    import re

    return re.escape(text)


def test_the_check_fails_on_an_unregistered_or_foreign_object(monkeypatch):
    monkeypatch.setitem(DEFENSES, "broken", Unchecked)
    with pytest.raises(AssertionError, match="registered under its name"):
        check_defense(DropsBias())
    with pytest.raises(AssertionError, match="Defense instance"):
        check_defense(object())


def test_a_broken_defence_passes_once_fixed(monkeypatch):
    monkeypatch.setitem(DEFENSES, "broken", _Base)
    assert check_defense(_Base(0.5)) == list(CHECKS)
    assert register_defense(_Base) is _Base
