"""The defence contract (check_defense) on every registered defence, the examples, and that the check can fail."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

import numpy as np
import pytest

import leakage_core.defenses  # noqa: F401  (registers every defence)
from leakage_core.cache import stable_hash
from leakage_core.defenses import (
    DEFENSES,
    DPSGD,
    Defense,
    Quantize,
    RandomizedResponse,
    TopK,
    WeightedLoss,
    make_defense,
    register_defense,
)
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


# ---- identity: one defence, one key (code review 18, #3) and clear errors from the registry (#7) -----------


@pytest.mark.parametrize(
    "given, floats",
    [
        (lambda: RandomizedResponse(2), lambda: RandomizedResponse(2.0)),
        (lambda: RandomizedResponse(np.float32(4)), lambda: RandomizedResponse(4.0)),
        (lambda: TopK(1), lambda: TopK(1.0)),
        (lambda: LDP(sigma=1, rho=2), lambda: LDP(sigma=1.0, rho=2.0)),
        (lambda: LDP(rho=np.int64(3)), lambda: LDP(rho=3.0)),
        (lambda: DPSGD(1, 2), lambda: DPSGD(1.0, 2.0)),
        (lambda: WeightedLoss((1, 2, 0)), lambda: WeightedLoss((1.0, 2.0, 0.0))),
    ],
    ids=["rr", "rr-numpy", "topk", "ldp", "ldp-numpy", "dp_sgd", "weighted_loss"],
)
def test_int_and_float_options_give_one_key_hash_and_label(given, floats):
    a, b = given(), floats()
    assert a == b and hash(a) == hash(b) and a.label == b.label
    assert json.dumps(a.key(), sort_keys=True) == json.dumps(b.key(), sort_keys=True)
    assert stable_hash(a.key()) == stable_hash(b.key())


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_float_option_holds_a_python_float(name):
    example = EXAMPLES[name]()
    for f in dataclasses.fields(example):
        if "float" not in str(f.type) or "tuple" in str(f.type):
            continue
        value = getattr(example, f.name)
        assert value is None or type(value) is float, f"{name}.{f.name} = {value!r}"
        if value is not None and value == int(value) and math.isfinite(value):  # an int given: the same key
            again = dataclasses.replace(example, **{f.name: int(value)})
            assert type(getattr(again, f.name)) is float and stable_hash(again.key()) == stable_hash(example.key())


#: the cache keys (stable_hash of key()) of the book's defences before float options were coerced: committed
#: results and checkpoints are stored under them
STUDY_KEYS = {
    "clip 0.1 + noise 0.1": "aa62cd3e05b886a1",
    "clip 0.1 + noise 0.4": "0c0dbadad227b49a",
    "clip 0.1 + noise 1": "1691a4a714d97331",
    "top-k 10%": "c10780dad8b54c47",
    "top-k 1%": "aab471f2898b322f",
    "scaled sign": "93ee9401445e2109",
    "8-bit": "d5cc96aa5b4e95ff",
    "label RR eps=1": "bfb8a8a71a305bcc",
    "label RR eps=2": "69da16317c9c2cb8",
    "label RR eps=4": "44e85b828f669c08",
    "weighted loss": "6f796dc70014dab5",
    "no bias": "a5a3d6372eb084c5",
    "DP-SGD z=0.6, C=1": "6fca96f7b088ca10",
    "DP-SGD z=1, C=1": "c21d58fc274e8f92",
    "DP-SGD z=2, C=1": "9cf9985fbc9b2b1b",
}
LDP_KEYS = {
    "noise 0.1": "c69e49e26a537e70",
    "clip 0.1": "ec3546f92b9dfa74",
    "clip 0.1 + noise 0.1": "aa62cd3e05b886a1",
    "clip 0.1 (all layers)": "9aa5a2fd4bc65cc6",
    "clip 0.1 + noise 0.1 (all layers)": "564d195e3dcdb79b",
}


def test_the_keys_and_labels_of_the_studys_defences_are_unchanged():
    from leakage_core.study.grids import DEFENSE_STRENGTHS, LDP_VARIANTS, defense_instances

    assert {d.label: stable_hash(d.key()) for d in defense_instances(DEFENSE_STRENGTHS)} == STUDY_KEYS
    assert {v.label: stable_hash(v.key()) for v in LDP_VARIANTS} == LDP_KEYS


def test_make_defense_tells_a_wrong_name_from_a_wrong_value():
    with pytest.raises(ValueError, match=r"takes the options \['sigma', 'rho', 'scope'\].*unknown.*'sgima'"):
        make_defense("ldp", sgima=0.1)
    with pytest.raises(ValueError, match=r"needs the option\(s\) \['noise_multiplier'\]"):
        make_defense("dp_sgd", max_grad_norm=1.0)
    for value in ("0.1", True, [0.1], float("nan"), -1.0):
        with pytest.raises(ValueError, match=r"LDP sigma must be a positive number or None") as err:
            make_defense("ldp", sigma=value)
        assert "takes the options" not in str(err.value)
    with pytest.raises(ValueError, match="LDP rho must be a positive number"):
        LDP(rho="1")
    with pytest.raises(ValueError, match="TopK fraction"):
        make_defense("topk", fraction="0.1")
    with pytest.raises(ValueError, match="RandomizedResponse eps"):
        make_defense("label_dp", eps=None)


@dataclass(frozen=True)
class Fussy(Defense):
    """A test-only defence whose check raises TypeError on a string."""

    name = "test_fussy"
    stage = "update"
    level: int = 1

    def __post_init__(self):
        if self.level < 0:  # a string raises TypeError here
            raise ValueError("Fussy level must be >= 0.")


def test_a_type_error_of_a_defences_own_checks_is_a_value_error_of_the_registry(monkeypatch):
    monkeypatch.setitem(DEFENSES, "test_fussy", Fussy)
    with pytest.raises(ValueError, match="test_fussy.*wrong type") as err:
        make_defense("test_fussy", level="high")
    assert "takes the options" not in str(err.value)
    assert make_defense("test_fussy", level=2) == Fussy(2)


def test_round_to_total_has_one_public_home_for_attacks_and_defences():
    import leakage_core.attacks as attacks
    import leakage_core.counts as counts
    from leakage_core.attacks import _common

    assert attacks.round_to_total is counts.round_to_total
    assert not hasattr(_common, "round_to_total")
