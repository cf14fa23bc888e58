"""The defence-aware attack: the base attack's counts, de-biased by the defence the update records."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pytest

from leakage_core.attacks import ATTACKS, Aware, Needs, NoBiasError, aware
from leakage_core.data import make_synthetic
from leakage_core.defenses import DEFENSES, Defense, register_defense
from leakage_core.federated import fedsgd_update
from leakage_core.models import build_model


@dataclass(frozen=True)
class Roll(Defense):
    """A test-only defence whose de-biasing is known: the counts move one class up (cyclically)."""

    name = "test_roll"
    stage = "update"
    by: int = 1

    def debias_counts(self, counts, update):
        return np.roll(counts, self.by)


@dataclass(frozen=True)
class Broken(Defense):
    """A test-only defence whose de-biasing breaks the counts' total."""

    name = "test_broken"
    stage = "update"

    def debias_counts(self, counts, update):
        return counts + 1


@pytest.fixture
def registered():
    for cls in (Roll, Broken):
        register_defense(cls)
    yield
    for cls in (Roll, Broken):
        DEFENSES.pop(cls.name, None)


@pytest.fixture(scope="module")
def server():
    """A small untrained model, auxiliary windows (two subjects) and FedSGD updates of the third."""
    data = make_synthetic("wetlab", n_subjects=3, minutes=3, seed=1)
    model = build_model("tinyhar", data.n_channels, data.n_classes, seed=0)
    split = data.loso(1)
    x, y = split.client.windows, split.client.labels
    updates = [fedsgd_update(model, x[k : k + 100], y[k : k + 100], seed=k) for k in (0, 100, 200)]
    return model, split.aux, updates


def test_without_a_defence_it_is_the_base_attack(server):
    model, aux, updates = server
    for base, options in [("lmmse", {"n_sim": 50}), ("llbg", {}), ("llg", {}), ("blind_prior", {})]:
        attack = Aware(base=base, base_options=options).prepare(model, aux)
        reference = ATTACKS[base].build(**options).prepare(model, aux)
        for u in updates:
            assert u.defense is None and np.array_equal(attack.count(u), reference.count(u))
    assert np.array_equal(aware(updates[0], model, aux, base="llbg"), ATTACKS["llbg"](updates[0], model, aux))


def test_with_a_defence_it_returns_the_defences_debiasing(server, registered):
    model, aux, updates = server
    attack = Aware(base="lmmse", base_options={"n_sim": 50}).prepare(model, aux)
    base = ATTACKS["lmmse"].build(n_sim=50).prepare(model, aux)
    for by in (1, 3):
        for u in updates:
            told = replace(u, defense=Roll(by).public())
            counts = attack.count(told)
            assert np.array_equal(counts, np.roll(base.count(u), by)) and counts.dtype == np.int64
    assert not np.array_equal(attack.count(told), base.count(told))  # the shift matters on these counts
    with pytest.raises(ValueError, match="summing to N"):
        attack.count(replace(updates[0], defense=Broken().public()))
    with pytest.raises(ValueError, match="unknown defence 'nope'"):
        attack.count(replace(updates[0], defense={"defense": "nope"}))


def test_it_reads_and_needs_what_its_base_does(server):
    model, aux, updates = server
    assert Aware().needs is Needs.MODEL_AUX and Aware(base="llg").needs is Needs.UPDATE
    assert Aware(base="llbg").reads_bias and not Aware(base="llg").reads_bias
    assert Aware(base="llbg", base_options={"confidence": "aux"}).needs is Needs.MODEL_AUX
    with pytest.raises(NoBiasError):
        Aware(base="llbg").prepare(model, aux).count(replace(updates[0], bias_grad=None))
    with pytest.raises(ValueError, match="needs aux"):
        Aware().prepare(model, None)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"base": "nope"}, "base='nope' is not supported"),
        ({"base": "aware"}, "base='aware' is not supported"),
        ({"base": "lmmse", "base_options": {"nope": 1}}, "base_options of aware .* no option 'nope'"),
        ({"base": "lmmse", "base_options": {"n_sim": 1}}, "base_options of aware .* n_sim"),
        ({"base_options": [("n_sim", 5)]}, "base_options must be a mapping"),
    ],
)
def test_bad_options_are_refused_clearly(options, message):
    with pytest.raises(ValueError, match=message):
        Aware(**options)
    with pytest.raises(ValueError, match=message):
        ATTACKS["aware"].build(**options)
