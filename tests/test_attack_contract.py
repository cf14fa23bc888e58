"""The attack contract (check_attack) on every registered attack, the registry, and that the check can fail."""

from dataclasses import dataclass

import numpy as np
import pytest

from leakage_core.attacks import (
    ATTACKS,
    BLIND,
    PAPER_ATTACKS,
    Attack,
    Needs,
    NoPreparation,
    NotPreparedError,
    attack_classes,
    attacks_of,
    check_attack,
    is_blind,
    parse_key,
    register_attack,
    register_variant,
)
from leakage_core.attacks.registry import AttackSpec, resolve_attacks
from leakage_core.federated import LastLayerUpdate


@pytest.mark.parametrize("attack", attack_classes(), ids=lambda c: f"{c.name}:{c.variant}")
def test_every_registered_attack_honours_the_contract(attack):
    checked = check_attack(attack)
    assert checked[0] == f"{attack.__name__}()" and len(checked) == 1 + len(attack.examples)


def test_check_attack_by_name_covers_the_variants():
    assert [c.split("(")[0] for c in check_attack("llg")] == ["LLG", "LLGPaperCode"]
    with pytest.raises(ValueError, match="unknown attack 'nope'"):
        check_attack("nope")


# ---- the check can fail: attacks that break one rule each (not registered) ---------------------------


@dataclass(eq=False)
class Honest(Attack):
    """Every window to class 0."""

    def _count(self, update, preparation):
        counts = np.zeros(update.n_classes, dtype=np.int64)
        counts[0] = update.n_windows
        return counts


@dataclass(eq=False)
class WrongTotal(Honest):
    def _count(self, update, preparation):
        return np.ones(update.n_classes, dtype=np.int64)


@dataclass(eq=False)
class Floats(Honest):
    def _count(self, update, preparation):
        return super()._count(update, preparation).astype(float)


@dataclass(eq=False)
class UndeclaredModel(Honest):
    """Reads the model without declaring it."""

    def _prepare(self, model, aux):
        return NoPreparation() if model.classifier is not None else None


@dataclass(eq=False)
class UndeclaredAux(Honest):
    """Uses aux when given but declares nothing: counts change with it."""

    @dataclass(frozen=True)
    class Shift:
        by: int

    def _prepare(self, model, aux):
        return self.Shift(0 if aux is None else 1)

    def _count(self, update, preparation):
        counts = np.zeros(update.n_classes, dtype=np.int64)
        counts[preparation.by] = update.n_windows
        return counts


@dataclass(eq=False)
class DictPreparation(Honest):
    def _prepare(self, model, aux):
        return {"nothing": None}


@dataclass(eq=False)
class Random(Honest):
    def _count(self, update, preparation):
        return np.random.default_rng().multinomial(update.n_windows, np.ones(update.n_classes) / update.n_classes)


@dataclass(eq=False)
class Stateful(Honest):
    """Its counts depend on how many updates it has counted (prepare once != prepare per batch)."""

    def _count(self, update, preparation):
        self.calls = getattr(self, "calls", 0) + 1
        counts = np.zeros(update.n_classes, dtype=np.int64)
        counts[self.calls % update.n_classes] = update.n_windows
        return counts


@dataclass(eq=False)
class UncheckedOption(Honest):
    mode: str = "train"


@dataclass(eq=False)
class TypeErrorOption(Honest):
    n_probe: int = 4

    def _check(self):
        if self.n_probe < 1:
            raise TypeError("n_probe")


@dataclass(eq=False)
class FalseNeed(Honest):
    """Declares a model but does not fail clearly without one (overrides the base class's check)."""

    needs = Needs.MODEL

    def prepare(self, model=None, aux=None):
        self.preparation = NoPreparation()
        return self


@pytest.mark.parametrize(
    "broken, rule",
    [
        (WrongTotal, "sum to N"),
        (Floats, "int64"),
        (UndeclaredModel, "it runs with what it declares"),
        (UndeclaredAux, "what it does not declare it does not use"),
        (DictPreparation, "dataclass instance"),
        (Random, "once equals preparing per batch|count is pure"),
        (Stateful, "count is pure"),
        (UncheckedOption, "bad option value"),
        (TypeErrorOption, "bad option value"),
        (FalseNeed, "fails clearly without one"),
    ],
)
def test_check_attack_catches_each_broken_rule(broken, rule):
    assert check_attack(Honest) == ["Honest()"]
    with pytest.raises(AssertionError, match=rule):
        check_attack(broken)


def test_count_before_prepare_raises_clearly():
    update = LastLayerUpdate(np.zeros((3, 2)), np.array([-0.1, 0.05, 0.05]), 4)
    with pytest.raises(NotPreparedError, match=r"call prepare\(model, aux\) before count"):
        ATTACKS["ebi"].build().count(update)
    assert issubclass(NotPreparedError, ValueError)


# ---- the registry --------------------------------------------------------------------------------


def test_registry_order_and_groups():
    # the book's attacks in the order tables and menus show them (a new attack file is appended after them)
    assert tuple(ATTACKS)[:10] == (
        "llg",
        "llg_star",
        "llg_plus",
        "llbg",
        "ebi",
        "ilrg",
        "idlg",
        "existence",
        "blind_uniform",
        "blind_prior",
    )
    assert PAPER_ATTACKS == attacks_of(in_paper=True) == ("llg", "llg_star", "llbg", "ebi", "ilrg")
    assert BLIND == attacks_of(reads_gradient=False) == ("blind_uniform", "blind_prior")
    assert attacks_of(family="weight")[:3] == ("llg", "llg_star", "llg_plus")
    assert attacks_of(family="bias", in_paper=True) == ("llbg", "ebi", "ilrg")
    with pytest.raises(ValueError, match="family must be one of"):
        attacks_of(family="weights")
    assert [c.__name__ for c in ATTACKS["ilrg"].variants.values()] == ["ILRG", "ILRGPaperCode"]
    assert all(c.name == n for n, e in ATTACKS.items() for c in e.variants.values())


def test_needs_is_an_enum_with_flags():
    assert Needs.of() is Needs.UPDATE and Needs.of(model=True, aux=True) is Needs.MODEL_AUX
    assert (Needs.MODEL.model, Needs.MODEL.aux, Needs.AUX.model, Needs.AUX.aux) == (True, False, False, True)
    assert Needs.MODEL_AUX == "model+aux" and str(Needs.AUX) == "aux"
    assert ATTACKS["llbg"].requires(confidence="aux") is Needs.MODEL_AUX
    assert ATTACKS["blind_prior"].requires(shares=np.full(3, 1 / 3)) is Needs.UPDATE


def test_one_key_parser():
    assert parse_key("llbg") == ("llbg", None) and parse_key("llbg:aux") == ("llbg", "aux")
    assert parse_key("llg:code:2") == ("llg", "code:2")
    assert is_blind("blind_prior:shares") and not is_blind("llbg:aux") and not is_blind("nope")
    specs = resolve_attacks(ATTACKS, {"llg": {}, "llg:code": {"variant": "paper_code"}})
    assert specs == [AttackSpec("llg", "llg"), AttackSpec("llg:code", "llg", (("variant", "paper_code"),))]
    assert type(specs[1].build()).__name__ == "LLGPaperCode"


def test_options_of_another_variant_must_keep_their_defaults():
    assert type(ATTACKS["ilrg"].build(seed=0)).__name__ == "ILRG"  # the code's option, at its default
    with pytest.raises(ValueError, match=r"seed=3 has no counterpart in variant='book' of 'ilrg'"):
        ATTACKS["ilrg"].build(seed=3)
    with pytest.raises(ValueError, match=r"mode='eval' has no counterpart in variant='paper_code' of 'llbg'"):
        ATTACKS["llbg"].build(variant="paper_code", mode="eval")
    with pytest.raises(ValueError, match="n_dummy must be an integer >= 1"):
        ATTACKS["llg_star"].build(n_dummy=0)


def test_registration_is_checked():
    with pytest.raises(ValueError, match="is registered already"):
        register_attack("llg", family="weight")(Honest)
    with pytest.raises(ValueError, match="family=.* is not supported"):
        register_attack("new", family="label")
    with pytest.raises(ValueError, match="register the attack 'nope' before its variant"):
        register_variant("nope", "paper_code")(Honest)
    with pytest.raises(ValueError, match="has a variant 'paper_code' already"):
        register_variant("llg", "paper_code")(Honest)

    class NotADataclass(Attack):
        pass

    with pytest.raises(TypeError, match="must be a dataclass"):
        register_attack("new", family="weight")(NotADataclass)

    @dataclass(eq=False)
    class NoDefault(Honest):
        size: int

    with pytest.raises(TypeError, match="needs a default"):
        register_attack("new", family="weight")(NoDefault)
    with pytest.raises(TypeError, match="subclasses of leakage_core.attacks.Attack"):
        register_attack("new", family="weight")(dict)
    assert "new" not in ATTACKS and "llg" in ATTACKS and len(ATTACKS["llg"].variants) == 2


def test_importing_the_package_registers_every_attack_module():
    import importlib
    import pkgutil

    import leakage_core.attacks as package

    before = [(name, label) for name, entry in ATTACKS.items() for label in entry.variants]
    for info in pkgutil.walk_packages(package.__path__, prefix="leakage_core.attacks."):
        importlib.import_module(info.name)
    assert [(name, label) for name, entry in ATTACKS.items() for label in entry.variants] == before
    assert len(attack_classes()) == len(before) >= 14


NEW_ATTACK = '''"""Majority: every window to the class with the most negative bias-gradient entry (an example
attack)."""
from dataclasses import dataclass

import numpy as np

from ..base import Attack
from ..registry import register_attack


@register_attack("majority", family="bias")
@dataclass(eq=False)
class Majority(Attack):
    """Every window to argmin of the bias gradient."""

    def _count(self, update, preparation):
        counts = np.zeros(update.n_classes, dtype=np.int64)
        counts[int(np.argmin(update.bias_grad))] = update.n_windows
        return counts
'''


def test_adding_an_attack_is_one_file(tmp_path):
    """A copy of the package plus one new file: registered, callable through ATTACKS, contract-checked."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    shutil.copytree(root / "leakage_core", tmp_path / "leakage_core", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "leakage_core" / "attacks" / "bias" / "majority.py").write_text(NEW_ATTACK, encoding="utf-8")
    code = (
        "import numpy as np; from leakage_core.attacks import ATTACKS, attacks_of, check_attack; "
        "from leakage_core.federated import LastLayerUpdate; "
        "assert tuple(ATTACKS)[-1] == 'majority' and 'majority' in attacks_of(family='bias'); "
        "u = LastLayerUpdate(np.zeros((3, 2)), np.array([0.2, -0.3, 0.1]), 5); "
        "assert ATTACKS['majority'](u).tolist() == [0, 5, 0]; print(check_attack('majority'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(tmp_path), "PATH": ""},
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['Majority()']"
