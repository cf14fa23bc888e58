"""Training under a defence (TrainConfig(defense=...)): the configuration and its cache keys, the hooks the
training loop calls, defended fold models and their checkpoints, and the no-bias defence."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pytest
import torch
from opacus.accountants import RDPAccountant

from leakage_core.attacks import ATTACKS, NoBiasError
from leakage_core.book.checkpoints import book_checkpoints
from leakage_core.data import make_synthetic
from leakage_core.defenses import DEFENSES, DPSGD, Defense, NoBias, WeightedLoss, register_defense
from leakage_core.federated import fedsgd_update
from leakage_core.models import TrainConfig, build_model, checkpoint_path, class_weights, fold_model, train_model
from leakage_core.models import training
from leakage_core.defenses.accounting import DEFAULT_DELTA
from leakage_core.models.training import RunControl, step_seed


@pytest.fixture(scope="module")
def data():
    return make_synthetic("wetlab", n_subjects=3, minutes=1, seed=0)


def tiny(seed: int = 0, **kwargs) -> torch.nn.Module:
    return build_model("tinyhar", 2, 3, seed=seed, filters=4, kernel=3, window_size=12, **kwargs)


def windows(n: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 12, 2)).astype(np.float32), np.arange(n) % 3


@dataclass(frozen=True)
class Recorder(Defense):
    """An update-stage defence that zeroes the classifier's weight gradient and records every call."""

    name = "test_recorder"
    stage = "update"
    calls: list = None  # type: ignore[assignment]

    def on_step(self, model, seed):
        self.calls.append((seed, model.classifier.weight.grad is not None))
        model.classifier.weight.grad.zero_()


@dataclass(frozen=True)
class ShiftLabels(Defense):
    """A labels-stage defence with a stated epsilon: labels shifted by one class, once before training."""

    name = "test_shift_labels"
    stage = "labels"

    def training_labels(self, labels, n_classes, seed):
        return (np.asarray(labels) + 1) % n_classes

    def epsilon(self, delta, updates=1):
        return 3.0 + delta  # a made-up guarantee, to see that the fold records this defence's number


@pytest.fixture
def shift_labels():
    register_defense(ShiftLabels)
    yield ShiftLabels()
    DEFENSES.pop(ShiftLabels.name)


# ------------------------------------------------------------------ the configuration
def test_the_defense_is_checked_and_enters_the_key_only_when_given(data):
    with pytest.raises(ValueError, match="defense must be a leakage_core.defenses.Defense"):
        TrainConfig(defense="dp_sgd")
    plain = TrainConfig(epochs=1)
    assert "defense" not in plain.as_dict()  # every existing checkpoint keeps its cache key
    defended = replace(plain, defense=DPSGD(1.0))
    assert defended.as_dict() == {**plain.as_dict(), "defense": DPSGD(1.0).key()}
    configs = (plain, defended, replace(plain, defense=NoBias()))
    assert len({checkpoint_path(data, "tinyhar", 1, cfg).name for cfg in configs}) == 3


def test_on_step_changes_every_steps_gradient_with_its_own_seed():
    x, y = windows(30)
    defense = Recorder(calls=[])
    cfg = TrainConfig(epochs=2, batch_size=10, lr=1e-2, weight_decay=0.0, seed=4, defense=defense)
    model = tiny()
    before = model.classifier.weight.detach().clone()
    conv_before = model.conv[0].weight.detach().clone()
    train_model(model, x, y, cfg, progress=False)
    assert [s for s, _ in defense.calls] == [step_seed(4, k) for k in range(6)]  # 2 epochs x 3 batches
    assert all(had_grad for _, had_grad in defense.calls) and len({s for s, _ in defense.calls}) == 6
    assert torch.equal(model.classifier.weight, before)  # its zeroed gradient reached Adam: no step
    assert not torch.equal(model.conv[0].weight, conv_before)  # the other layers trained


def test_training_labels_are_drawn_once_and_used(shift_labels):
    x, y = windows(30)
    cfg = TrainConfig(epochs=1, batch_size=10, lr=1e-2, class_weighted=True)
    defended, shifted = tiny(), tiny()
    history = train_model(defended, x, y, replace(cfg, defense=shift_labels), progress=False)
    assert history == train_model(shifted, x, (y + 1) % 3, cfg, progress=False)
    for key, value in shifted.state_dict().items():
        assert torch.equal(defended.state_dict()[key], value)


def test_a_defence_with_its_own_loop_replaces_the_standard_one():
    @dataclass(frozen=True)
    class OwnLoop(Defense):
        name = "test_own_loop"
        stage = "training"

        def fit(self, model, windows, labels, config, control):
            seen.append(control)
            return [42.0]

    seen = []
    model = tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert train_model(model, *windows(), TrainConfig(epochs=1, defense=OwnLoop()), progress=False) == [42.0]
    (control,) = seen
    assert isinstance(control, RunControl) and control.progress is False and control.state_file is None
    assert control.device == torch.device("cpu") and control.on_epoch is None
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


# ------------------------------------------------------------------ no bias
def test_no_bias_builds_a_bias_free_fold_model_whose_update_the_bias_attacks_refuse(data, tmp_path):
    cfg = TrainConfig(epochs=1, lr=1e-3, defense=NoBias())
    assert NoBias().model_kwargs() == {"bias": False} and NoBias().epsilon(1e-5) is None
    assert NoBias().epsilon(1e-5, 10, adjacency="add_remove") is None  # the base class accepts and ignores it
    model = fold_model(data, "tinyhar", 1, cfg, cache_dir=tmp_path, progress=False, committed=False)
    assert model.classifier.bias is None
    info = model.checkpoint_info
    assert info["defense"] == {"defense": "no_bias"} and info["epsilon"] is None and info["delta"] is None
    again = fold_model(data, "tinyhar", 1, cfg, cache_dir=tmp_path, progress=False, committed=False)
    assert again.classifier.bias is None and torch.equal(again.classifier.weight, model.classifier.weight)
    update = fedsgd_update(model, data.subjects[1].windows[:20], data.subjects[1].labels[:20], seed=0)
    assert update.bias_grad is None
    for name in ("llbg", "ebi", "ilrg", "existence"):
        attack = ATTACKS[name].build()
        with pytest.raises(NoBiasError, match="without bias"):
            attack.prepare(model=model, aux=(data.subjects[2].windows, data.subjects[2].labels)).count(update)
    assert ATTACKS["llg"].build().prepare(model=model).count(update).sum() == 20  # a weight attack still counts


# ------------------------------------------------------------------ defended fold models
def test_a_dp_sgd_fold_model_records_its_epsilon_and_reloads_as_the_dp_variant(data, tmp_path, monkeypatch):
    defense = DPSGD(noise_multiplier=1.0)
    cfg = TrainConfig(epochs=1, lr=1e-3, defense=defense)
    model = fold_model(data, "tinyhar", 1, cfg, cache_dir=tmp_path, progress=False, committed=False)
    info = model.checkpoint_info
    n = info["n_train_windows"]
    accountant = RDPAccountant()  # one epoch: ceil(n / 100) Poisson steps at q = 100 / n
    for _ in range(-(-n // 100)):
        accountant.step(noise_multiplier=1.0, sample_rate=100 / n)
    assert info["epsilon"] == pytest.approx(accountant.get_epsilon(1e-5)) and info["delta"] == 1e-5
    assert info["defense"] == defense.key() and info["config"]["defense"] == defense.key()
    monkeypatch.setattr(training, "train_model", lambda *a, **k: pytest.fail("retrained a cached DP-SGD model"))
    again = fold_model(data, "tinyhar", 1, cfg, cache_dir=tmp_path, progress=False, committed=False)
    assert again.dp_compatible and again.dp_epsilon == info["epsilon"]
    for key, value in model.state_dict().items():
        assert torch.equal(again.state_dict()[key], value)


def test_a_dp_sgd_run_continues_a_shorter_one_exactly(data, tmp_path):
    cfg = TrainConfig(epochs=2, lr=1e-3, defense=DPSGD(noise_multiplier=2.0))
    fresh = fold_model(data, "tinyhar", 2, cfg, cache_dir=tmp_path / "a", progress=False, committed=False)
    fold_model(data, "tinyhar", 2, replace(cfg, epochs=1), cache_dir=tmp_path / "b", progress=False, committed=False)
    continued = fold_model(data, "tinyhar", 2, cfg, cache_dir=tmp_path / "b", progress=False, committed=False)
    assert continued.checkpoint_info["resumed_from"] == 1
    assert continued.checkpoint_info["epsilon"] == fresh.checkpoint_info["epsilon"]
    assert continued.checkpoint_info["history"] == fresh.checkpoint_info["history"]
    for key, value in fresh.state_dict().items():
        assert torch.equal(continued.state_dict()[key], value)


def test_a_weighted_fold_model_records_and_restores_its_class_weights(data, tmp_path):
    cfg = TrainConfig(epochs=1, lr=1e-3, defense=WeightedLoss())
    model = fold_model(data, "tinyhar", 1, cfg, cache_dir=tmp_path, progress=False, committed=False)
    want = class_weights(data.windows_of([2, 3])[1], data.n_classes)
    np.testing.assert_allclose(model.class_weights, want)
    assert model.checkpoint_info["class_weights"] == list(model.class_weights)
    assert model.checkpoint_info["config"]["class_weighted"] is False  # the defence's key, not its effect
    again = fold_model(data, "tinyhar", 1, cfg, cache_dir=tmp_path, progress=False, committed=False)
    assert again.class_weights == model.class_weights


def test_a_labels_stage_defence_records_its_epsilon_for_the_training(data, tmp_path, shift_labels):
    cfg = TrainConfig(epochs=1, lr=1e-3, defense=shift_labels)
    model = fold_model(data, "tinyhar", 1, cfg, cache_dir=tmp_path, progress=False, committed=False)
    info = model.checkpoint_info
    assert info["epsilon"] == shift_labels.epsilon(DEFAULT_DELTA) and info["delta"] == DEFAULT_DELTA


def test_committed_class_weighted_checkpoints_load_with_their_class_weights():
    spec = next(s for s in book_checkpoints() if s.config.class_weighted)
    data = spec.dataset()
    model = fold_model(data, spec.model, spec.held_out, spec.config, progress=False)
    assert "class_weights" not in model.checkpoint_info  # written before the weights were recorded
    labels = data.windows_of(list(model.training_subjects))[1]
    np.testing.assert_allclose(model.class_weights, class_weights(labels, data.n_classes))
