"""Classifiers without a bias (``bias=False``): the models, the client's update, the attacks, the grid, training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from leakage_core.attacks import ATTACKS, NoBiasError
from leakage_core.data import make_synthetic
from leakage_core.federated import (
    LDP,
    LastLayerUpdate,
    fedavg_update,
    fedsgd_update,
    has_bias,
    model_classifier,
    privatize,
)
from leakage_core.models import MODELS, TrainConfig, build_model, fold_model
from leakage_core.study import Setting, run_grid

from attack_helpers import LinearHead


@pytest.fixture(scope="module")
def data():
    return make_synthetic("wetlab", n_subjects=3, minutes=3, seed=0)


@pytest.mark.parametrize("name", MODELS)
def test_models_build_without_a_classifier_bias(data, name):
    model = build_model(name, data.n_channels, data.n_classes, bias=False)
    assert model.classifier.bias is None and not has_bias(model)
    assert has_bias(build_model(name, data.n_channels, data.n_classes))
    n_with = sum(p.numel() for p in build_model(name, data.n_channels, data.n_classes).parameters())
    assert n_with - sum(p.numel() for p in model.parameters()) == data.n_classes
    w, b = model_classifier(model)
    assert w.shape == (data.n_classes, model.classifier.in_features) and np.array_equal(b, np.zeros(data.n_classes))
    with pytest.raises(ValueError, match="bias must be True or False"):
        build_model(name, data.n_channels, data.n_classes, bias="no")


@pytest.mark.parametrize("method", ["closed_form", "autograd"])
def test_fedsgd_update_of_a_bias_free_model_has_no_bias_row(data, method):
    model = build_model("tinyhar", data.n_channels, data.n_classes, bias=False)
    x, y = data.subjects[1].windows[:20], data.subjects[1].labels[:20]
    update = fedsgd_update(model, x, y, mode="eval", method=method)
    assert update.bias_grad is None and not update.has_bias
    other = fedsgd_update(model, x, y, mode="eval", method="autograd" if method == "closed_form" else "closed_form")
    np.testing.assert_allclose(update.weight_grad, other.weight_grad, atol=1e-6)


def test_fedavg_and_ldp_keep_the_update_bias_free(data):
    model = build_model("deepconvlstm", data.n_channels, data.n_classes, bias=False)
    x, y = data.subjects[1].windows[:20], data.subjects[1].labels[:20]
    update = fedavg_update(model, x, y, n_steps=2, lr=1e-3, seed=1)
    assert update.bias_grad is None and update.weight_grad.shape[0] == data.n_classes
    noised = privatize(update, LDP(sigma=0.1, rho=0.1))
    assert noised.bias_grad is None
    assert np.linalg.norm(noised.weight_grad - update.weight_grad) > 0  # the noise is there
    clipped = privatize(update, LDP(rho=1e-3))
    assert np.linalg.norm(clipped.weight_grad) == pytest.approx(1e-3)  # clipped on the weight alone


def test_bias_attacks_refuse_a_bias_free_update_with_one_clear_error():
    rng = np.random.default_rng(0)
    update = LastLayerUpdate(rng.normal(size=(4, 3)), None, 10)
    for name in ("llbg", "ebi", "ilrg", "existence"):
        attack = ATTACKS[name].build()
        assert attack.reads_bias
        with pytest.raises(NoBiasError, match="without bias"):
            attack.prepare(model=_head(4, 3), aux=_aux(4)).count(update)
    for name, options in (("llg", {}), ("geng", {}), ("geng", {"row": "bias"})):
        attack = ATTACKS[name].build(**options)
        assert attack.reads_bias == (options.get("row") == "bias")


def test_the_grid_runs_a_bias_free_model_without_the_bias_attacks(data, tmp_path):
    st = Setting("tinyhar", bias=False, batch_size=20)
    df = run_grid(data, st, attacks=["llg", "llbg", "geng", "blind_prior"], subjects=[1], progress=False)
    assert set(df.attack) == {"llg", "geng", "blind_prior"}  # llbg reads the bias: left out
    assert (df["bias"] == False).all()  # noqa: E712 - a column of numpy bools
    cached = [
        run_grid(data, st, attacks=["llg", "llbg", "blind_prior"], subjects=[1], progress=False, cache_dir=tmp_path)
        for _ in range(2)  # computed, then read back from the cache: the same rows, llbg absent from both
    ]
    assert set(cached[1].attack) == {"llg", "blind_prior"}
    pd.testing.assert_frame_equal(cached[0].astype(str), cached[1].astype(str))
    with_bias = run_grid(data, Setting("tinyhar", batch_size=20), attacks=["llbg"], subjects=[1], progress=False)
    assert set(with_bias.attack) == {"llbg"} and with_bias["bias"].all()


def test_a_bias_free_fold_model_is_trained_cached_and_reloaded_without_bias(data, tmp_path):
    cfg = TrainConfig(epochs=1, lr=1e-3)
    model = fold_model(data, "tinyhar", 1, cfg, cache_dir=tmp_path, progress=False, committed=False, bias=False)
    assert model.classifier.bias is None and 1 not in model.training_subjects
    files = sorted((tmp_path / "checkpoints").glob("*.pt"))
    again = fold_model(data, "tinyhar", 1, cfg, cache_dir=tmp_path, progress=False, committed=False, bias=False)
    assert sorted((tmp_path / "checkpoints").glob("*.pt")) == files  # loaded, not retrained
    assert again.classifier.bias is None
    torch.testing.assert_close(again.classifier.weight, model.classifier.weight)
    with_bias = fold_model(data, "tinyhar", 1, cfg, cache_dir=tmp_path, progress=False, committed=False)
    assert with_bias.classifier.bias is not None
    assert len(list((tmp_path / "checkpoints").glob("*.pt"))) == 2  # its own checkpoint


def _head(n_classes: int, d: int) -> LinearHead:
    return LinearHead(2, n_classes, d=d, window_size=4)


def _aux(n_classes: int):
    rng = np.random.default_rng(1)
    return rng.normal(size=(30, 4, 2)).astype(np.float32), np.arange(30) % n_classes
