"""The class-weighted loss (leakage_core.defenses.weighted_loss): the closed form against PyTorch's weighted
cross-entropy, the client's update, training with it, and the server's de-biasing of recovered counts."""

from __future__ import annotations

import copy
from dataclasses import fields

import numpy as np
import pytest
import torch

from leakage_core.attacks import llbg
from leakage_core.defenses import WeightedLoss, make_defense
from leakage_core.federated import ClientSetting, LastLayerUpdate, client_update, last_layer_gradients
from leakage_core.federated.client import weighted_last_layer_gradients
from leakage_core.models import TrainConfig, build_model, class_weights, train_model, zero_last_layer

WEIGHTS = (0.5, 1.0, 3.0, 2.0)


def tiny(seed: int = 0) -> torch.nn.Module:
    return build_model("tinyhar", 2, 4, seed=seed, filters=4, kernel=3, window_size=12)


def batch(labels=(0, 0, 0, 0, 0, 1, 2, 2, 2, 3, 3, 1), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.asarray(labels, dtype=np.int64)
    return rng.normal(size=(len(y), 12, 2)).astype(np.float32), y


def torch_weighted_gradients(model, x, y, weights) -> tuple[np.ndarray, np.ndarray]:
    """The reference: autograd through nn.CrossEntropyLoss(weight=...) (mean reduction), eval mode."""
    model.eval()
    loss = torch.nn.CrossEntropyLoss(weight=torch.tensor(weights, dtype=torch.float32))
    out = loss(model(torch.as_tensor(x)), torch.as_tensor(y))
    gw, gb = torch.autograd.grad(out, [model.classifier.weight, model.classifier.bias])
    return gw.double().numpy(), gb.double().numpy()


def test_closed_form_and_autograd_equal_torch_weighted_cross_entropy():
    model, (x, y) = tiny(), batch()
    want_w, want_b = torch_weighted_gradients(model, x, y, WEIGHTS)
    for method in ("closed_form", "autograd"):
        update, _ = client_update(model, x, y, mode="eval", method=method, class_weights=WEIGHTS)
        np.testing.assert_allclose(update.weight_grad, want_w, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(update.bias_grad, want_b, rtol=1e-5, atol=1e-7)
    plain, _ = client_update(model, x, y, mode="eval")
    assert not np.allclose(plain.bias_grad, want_b)  # the weights matter


def test_weighted_fedavg_is_sgd_on_the_weighted_loss():
    model, (x, y) = tiny(), batch()
    update, _ = client_update(model, x, y, n_steps=2, lr=0.1, mode="eval", class_weights=WEIGHTS)
    client = copy.deepcopy(model).eval()
    start = client.classifier.weight.detach().clone()
    opt = torch.optim.SGD(client.parameters(), lr=0.1)
    loss = torch.nn.CrossEntropyLoss(weight=torch.tensor(WEIGHTS))
    for s in range(2):
        opt.zero_grad()
        loss(client(torch.as_tensor(x[6 * s : 6 * s + 6])), torch.as_tensor(y[6 * s : 6 * s + 6])).backward()
        opt.step()
    want = ((start - client.classifier.weight.detach()) / 0.1).double().numpy()
    np.testing.assert_allclose(update.weight_grad, want, rtol=1e-4, atol=1e-6)


def test_unit_weights_give_the_unweighted_identities_and_weights_are_checked():
    rng = np.random.default_rng(1)
    h, w, b, y = rng.normal(size=(7, 5)), rng.normal(size=(3, 5)), rng.normal(size=3), np.array([0, 1, 2, 2, 1, 0, 0])
    for got, want in zip(weighted_last_layer_gradients(h, y, w, b, np.full(3, 2.5)), last_layer_gradients(h, y, w, b)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="weight 0"):
        weighted_last_layer_gradients(h, np.zeros(7, dtype=int), w, b, np.array([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="class_weights"):
        weighted_last_layer_gradients(h, y, w, b, np.ones(4))
    with pytest.raises(ValueError, match="labels"):
        weighted_last_layer_gradients(h, y + 1, w, b, np.ones(3))


def test_the_client_update_takes_the_given_weights_else_the_models():
    model, (x, y) = tiny(), batch()
    setting = ClientSetting(batch_size=12, mode="eval", sampler="balanced", seed=3)
    given = WeightedLoss(weights=WEIGHTS).client_update(model, x, y, setting, batch=2)
    want_w, want_b = torch_weighted_gradients(model, x, y, WEIGHTS)
    np.testing.assert_allclose(given.bias_grad, want_b, rtol=1e-5, atol=1e-7)
    assert given.sampler == "balanced" and given.n_windows == 12
    if "defense" in {f.name for f in fields(LastLayerUpdate)}:
        assert given.defense == {"defense": "weighted_loss", "weights": list(WEIGHTS)}
    with pytest.raises(ValueError, match="model.class_weights"):
        WeightedLoss().client_update(model, x, y, setting, 0)
    model.class_weights = WEIGHTS  # what training records
    recorded = WeightedLoss().client_update(model, x, y, setting, batch=2)
    np.testing.assert_array_equal(recorded.bias_grad, given.bias_grad)
    with pytest.raises(ValueError, match="n_steps=1"):
        WeightedLoss().client_update(model, x, y, ClientSetting(batch_size=12, n_steps=2), 0)
    with pytest.raises(ValueError, match="3 weights but the model has 4 classes"):
        WeightedLoss(weights=(1, 2, 3)).client_update(model, x, y, setting, 0)


def test_debias_recovers_the_true_counts_on_a_zeroed_last_layer():
    model, (x, y) = zero_last_layer(tiny()), batch()
    n, c = len(y), 4
    counts = np.bincount(y, minlength=c)
    w = np.asarray(WEIGHTS)
    defense = WeightedLoss(weights=WEIGHTS)
    update = defense.client_update(model, x, y, ClientSetting(batch_size=n), 0)
    # the exact bias-gradient estimate of an unweighted-calibrated attack: -N g_c + N/C (p_ic = 1/C)
    recovered = -n * update.bias_grad + n / c
    np.testing.assert_allclose(recovered, w * counts * n / (w @ counts), rtol=1e-6)  # the derivation's r_c
    assert not np.allclose(recovered, counts)  # without de-biasing the counts are off
    np.testing.assert_array_equal(defense.debias_counts(recovered, update), counts)
    attacked = llbg(update)  # the paper's LLBG (integer counts) on the weighted update
    fixed = defense.debias_counts(attacked, update)
    assert fixed.sum() == n and np.abs(fixed - counts).sum() < np.abs(attacked - counts).sum()


def test_debias_needs_the_weights_and_gives_weight_zero_classes_nothing():
    update = LastLayerUpdate(np.zeros((3, 2)), np.zeros(3), n_windows=10)
    with pytest.raises(ValueError, match="class weights"):
        WeightedLoss().debias_counts(np.array([5, 3, 2]), update)
    out = WeightedLoss(weights=(0.0, 1.0, 2.0)).debias_counts(np.array([5.0, 3.0, 4.0]), update)
    np.testing.assert_array_equal(out, [0, 6, 4])  # class 0 carries no signal; 3/1 : 4/2 = 3 : 2, i.e. 6 : 4 of 10


def test_options_training_configuration_and_key():
    for bad in ((1.0,), (1.0, -1.0), (0.0, 0.0), ("a", 1.0), (1.0, float("nan"))):
        with pytest.raises(ValueError, match="WeightedLoss weights"):
            WeightedLoss(weights=bad)
    assert WeightedLoss(weights=[1, 2]).weights == (1.0, 2.0)
    assert WeightedLoss().train_config(TrainConfig()).class_weighted
    defense = make_defense("weighted_loss", weights=[1, 2])
    assert defense.key() == {"defense": "weighted_loss", "weights": [1.0, 2.0]} and defense.stage == "training"


def test_the_label_tells_given_weights_apart():
    assert WeightedLoss().label == "weighted loss"  # the study's label: unchanged
    one, other = WeightedLoss(weights=(1.0, 2.0, 3.0)), WeightedLoss(weights=(1.0, 2.0, 3.000001))
    assert one.label.startswith("weighted loss (given weights ") and one.label != other.label
    assert WeightedLoss(weights=[1, 2, 3]).label == one.label  # equal weights, equal label
    assert len({WeightedLoss(weights=(1.0, w)).label for w in np.linspace(0.5, 5, 50)}) == 50


def test_training_under_the_weighted_loss_records_and_uses_its_weights():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 12, 2)).astype(np.float32), rng.integers(0, 4, 40)
    base = TrainConfig(epochs=1, batch_size=10, lr=1e-2)
    runs = {}
    for key, cfg in {
        "inverse": TrainConfig(**{**base.as_dict(), "defense": WeightedLoss()}),
        "explicit": TrainConfig(**{**base.as_dict(), "defense": WeightedLoss(weights=tuple(class_weights(y, 4)))}),
        "flag": TrainConfig(**{**base.as_dict(), "class_weighted": True}),
        "other": TrainConfig(**{**base.as_dict(), "defense": WeightedLoss(weights=WEIGHTS)}),
    }.items():
        model = tiny()
        runs[key] = (train_model(model, x, y, cfg, progress=False), model.class_weights)
    np.testing.assert_allclose(runs["inverse"][1], class_weights(y, 4))
    assert runs["inverse"] == runs["flag"] and runs["inverse"][0] == runs["explicit"][0]
    assert runs["other"][1] == WEIGHTS and runs["other"][0] != runs["inverse"][0]
