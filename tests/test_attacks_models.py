"""Attacks on updates built from the real HAR models (FedSGD and FedAvg)."""

import numpy as np
import pytest

from leakage_core.attacks import ATTACKS, ilrg, llbg
from leakage_core.data import make_synthetic
from leakage_core.models import MODELS, build_model, zero_last_layer
from leakage_core.federated import make_batches
from leakage_core.federated import fedavg_update, fedsgd_update


@pytest.fixture(scope="module")
def client():
    data = make_synthetic("wetlab", n_subjects=2, minutes=4, seed=0)
    return data


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("steps", [1, 2, 5])
def test_zero_classifier_exact_on_real_models_fedavg(client, name, steps):
    s = client.subjects[1]
    idx = make_batches(s.labels, 100, "shuffle", seed=0)[0]
    model = zero_last_layer(build_model(name, client.n_channels, client.n_classes, seed=0))
    # a tiny local learning rate keeps the classifier (numerically) zero during the S local steps
    update = fedavg_update(model, s.windows[idx], s.labels[idx], n_steps=steps, lr=1e-8, seed=0)
    truth = np.bincount(s.labels[idx], minlength=client.n_classes)
    np.testing.assert_array_equal(llbg(update), truth)
    np.testing.assert_array_equal(ilrg(update, probabilities="uniform"), truth)
    np.testing.assert_array_equal(ilrg(update, model=model), truth)


@pytest.mark.parametrize("name", MODELS)
def test_every_attack_runs_on_real_updates(client, name):
    s = client.subjects[1]
    model = build_model(name, client.n_channels, client.n_classes, seed=0)
    aux = client.windows_of([2])
    for sampler in ("shuffle", "sequential"):
        idx = make_batches(s.labels, 100, sampler, seed=0)[0]
        for update in (
            fedsgd_update(model, s.windows[idx], s.labels[idx]),
            fedavg_update(model, s.windows[idx], s.labels[idx], n_steps=5, lr=1e-4),
        ):
            for attack, fn in ATTACKS.items():
                out = fn(update, model=model, aux=aux)  # each attack uses what it needs
                assert out.sum() == 100 and out.min() >= 0 and out.shape == (client.n_classes,), attack


def test_bias_attacks_beat_weight_attacks_on_untrained_lstm_heads(client):
    s = client.subjects[1]
    model = build_model("deepconvlstm", client.n_channels, client.n_classes, seed=0)
    scores = {"llg": [], "ilrg": [], "llbg": []}
    for idx in make_batches(s.labels, 100, "shuffle", seed=1):
        u = fedsgd_update(model, s.windows[idx], s.labels[idx])
        truth = np.bincount(s.labels[idx], minlength=client.n_classes)
        for a in scores:
            pred = ATTACKS[a](u, model=model) if a == "ilrg" else ATTACKS[a](u)
            scores[a].append(np.minimum(pred, truth).sum() / 100)
    assert np.mean(scores["ilrg"]) > 0.9 and np.mean(scores["llbg"]) > 0.9
    assert np.mean(scores["ilrg"]) > np.mean(scores["llg"])


def test_model_with_other_class_count_is_rejected(client):
    s = client.subjects[1]
    model = build_model("tinyhar", client.n_channels, client.n_classes)
    other = build_model("tinyhar", client.n_channels, client.n_classes + 1)
    u = fedsgd_update(model, s.windows[:100], s.labels[:100])
    for attack in [a for a in ATTACKS if ATTACKS[a].requires() in ("model", "model+aux")]:
        with pytest.raises(ValueError, match="classifier is 10 x 40 but the update is 9 x 40"):
            kw = {"aux": client.windows_of([2])} if ATTACKS[attack].requires().aux else {}
            ATTACKS[attack](u, model=other, **kw)
