"""Client updates: closed form == autograd, FedAvg identity, LDP, model untouched, bad input."""

import numpy as np
import pytest
import torch

from leakage_core.models import MODELS, build_model, zero_last_layer
from leakage_core.federated import (
    LDP,
    LastLayerUpdate,
    client_features,
    fedavg_update,
    fedsgd_update,
    last_layer_gradients,
    privatize,
    update_from_features,
)

RNG = np.random.default_rng(0)


def batch(n=16, channels=3, classes=9, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 50, channels)).astype(np.float32), rng.integers(0, classes, n)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("channels,classes", [(12, 19), (3, 9)])
def test_closed_form_equals_autograd(name, mode, channels, classes):
    model = build_model(name, channels, classes, seed=0)
    x, y = batch(16, channels, classes)
    fast = fedsgd_update(model, x, y, mode=mode, method="closed_form", seed=5)
    slow = fedsgd_update(model, x, y, mode=mode, method="autograd", seed=5)
    scale = np.abs(slow.weight_grad).max()
    np.testing.assert_allclose(fast.weight_grad, slow.weight_grad, atol=1e-6 * max(scale, 1e-3))
    np.testing.assert_allclose(fast.bias_grad, slow.bias_grad, atol=1e-7)
    assert fast.n_windows == 16 and fast.n_steps == 1


@pytest.mark.parametrize("name", MODELS)
def test_softmax_identities(name):
    model = build_model(name, 3, 9, seed=1)
    x, y = batch(32)
    u = fedsgd_update(model, x, y)
    assert abs(u.bias_grad.sum()) < 1e-7
    assert abs(u.weight_grad.sum(axis=0)).max() < 1e-6


@pytest.mark.parametrize("name", MODELS)
def test_zero_last_layer_bias_oracle(name):
    model = zero_last_layer(build_model(name, 3, 9, seed=0))
    x, y = batch(40)
    u = fedsgd_update(model, x, y)
    np.testing.assert_allclose(u.bias_grad, 1 / 9 - np.bincount(y, minlength=9) / 40, atol=1e-7)


def test_builders_leave_the_server_model_untouched():
    model = build_model("tinyhar", 3, 9, seed=0).eval()
    before = [p.detach().clone() for p in model.parameters()]
    buffers = [b.clone() for b in model.buffers()]
    x, y = batch(20)
    fedsgd_update(model, x, y, method="autograd")
    fedsgd_update(model, x, y, method="closed_form")
    fedavg_update(model, x, y, n_steps=4, lr=0.1)
    client_features(model, x, mode="train")
    assert not model.training
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert all(p.grad is None for p in model.parameters())
    # BatchNorm running statistics are part of the server's model too
    assert all(torch.equal(a, b) for a, b in zip(buffers, model.buffers()))


def test_client_mode_is_public_and_puts_the_model_and_the_rng_back():
    import leakage_core.federated.client as client
    from leakage_core.federated import client_mode

    assert client_mode is client.client_mode and not hasattr(client, "_client_mode")
    model = build_model("tinyhar", 3, 9, seed=0).eval()
    buffers = [b.clone() for b in model.buffers()]
    state = torch.get_rng_state()
    x, _ = batch(8)
    with client_mode(model, "train", seed=3):
        assert model.training
        first = model(torch.as_tensor(x))
    with client_mode(model, "train", seed=3):
        again = model(torch.as_tensor(x))
    torch.testing.assert_close(first, again)  # dropout seeded
    assert not model.training and torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(a, b) for a, b in zip(buffers, model.buffers()))
    with pytest.raises(ValueError, match="mode"):
        with client_mode(model, "test", seed=0):
            pass


def test_train_mode_dropout_is_seeded_and_differs_from_eval():
    model = build_model("deepconvlstm", 3, 9, seed=0)
    x, y = batch(20)
    a = fedsgd_update(model, x, y, mode="train", seed=1)
    b = fedsgd_update(model, x, y, mode="train", seed=1)
    c = fedsgd_update(model, x, y, mode="train", seed=2)
    e = fedsgd_update(model, x, y, mode="eval")
    np.testing.assert_array_equal(a.weight_grad, b.weight_grad)
    assert not np.allclose(a.weight_grad, c.weight_grad)
    assert not np.allclose(a.weight_grad, e.weight_grad)


@pytest.mark.parametrize("name", MODELS)
def test_fedavg_is_minus_delta_over_lr_equals_sum_of_step_gradients(name):
    model = build_model(name, 3, 9, seed=0).double()
    x, y = batch(20)
    lr, steps = 0.05, 4
    u = fedavg_update(model, x.astype(np.float64), y, n_steps=steps, lr=lr, mode="eval")
    # replay: per-step autograd gradients at the successive parameters
    import copy

    replay = copy.deepcopy(model).eval()
    gw, gb = 0, 0
    for s in range(steps):
        xs = torch.as_tensor(x[s * 5 : (s + 1) * 5], dtype=torch.float64)
        loss = torch.nn.functional.cross_entropy(replay(xs), torch.as_tensor(y[s * 5 : (s + 1) * 5]))
        grads = torch.autograd.grad(loss, list(replay.parameters()))
        g = dict(zip([id(p) for p in replay.parameters()], grads))
        gw = gw + g[id(replay.classifier.weight)].numpy()
        gb = gb + g[id(replay.classifier.bias)].numpy()
        with torch.no_grad():
            for p, gp in zip(replay.parameters(), grads):
                p -= lr * gp
    np.testing.assert_allclose(u.weight_grad, gw, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(u.bias_grad, gb, rtol=1e-7, atol=1e-10)
    assert (u.n_windows, u.n_steps, u.lr, u.step_size) == (20, 4, lr, 5)


def test_fedavg_single_step_equals_fedsgd():
    model = build_model("deepconvlstm", 3, 9, seed=0)
    x, y = batch(10)
    a = fedavg_update(model, x, y, n_steps=1, lr=1e-3, mode="eval")
    b = fedsgd_update(model, x, y, mode="eval", method="autograd")
    np.testing.assert_allclose(a.bias_grad, b.bias_grad, atol=2e-4)
    np.testing.assert_allclose(a.weight_grad, b.weight_grad, atol=2e-4)


def test_cached_features_exact_in_eval_but_not_for_batchnorm_in_train():
    model = build_model("tinyhar", 3, 9, seed=0)
    x, y = batch(64)
    h_eval = client_features(model, x, mode="eval", batch_size=64)
    np.testing.assert_allclose(client_features(model, x[:16], mode="eval"), h_eval[:16], atol=1e-6)
    u = update_from_features(h_eval[:16], y[:16], model)
    v = fedsgd_update(model, x[:16], y[:16], mode="eval")
    np.testing.assert_allclose(u.weight_grad, v.weight_grad, atol=1e-6)
    h_train = client_features(model, x, mode="train", batch_size=64)
    assert not np.allclose(client_features(model, x[:16], mode="train"), h_train[:16], atol=1e-4)


def test_closed_form_function_against_manual_autograd():
    rng = np.random.default_rng(3)
    h, w, b = rng.normal(size=(7, 5)), rng.normal(size=(4, 5)), rng.normal(size=4)
    y = rng.integers(0, 4, 7)
    W = torch.tensor(w, requires_grad=True)
    B = torch.tensor(b, requires_grad=True)
    torch.nn.functional.cross_entropy(torch.tensor(h) @ W.T + B, torch.tensor(y)).backward()
    dw, db = last_layer_gradients(h, y, w, b)
    np.testing.assert_allclose(dw, W.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(db, B.grad.numpy(), atol=1e-12)


def test_labels_must_be_integers():
    model = build_model("deepconvlstm", 3, 9)
    x, y = batch(4)
    with pytest.raises(ValueError, match="integer"):
        fedsgd_update(model, x, y.astype(np.float32))
    with pytest.raises(ValueError, match="labels must lie"):
        last_layer_gradients(np.zeros((2, 3)), np.array([0, 5]), np.zeros((4, 3)), np.zeros(4))


def test_bad_arguments():
    model = build_model("deepconvlstm", 3, 9)
    x, y = batch(10)
    with pytest.raises(ValueError, match="mode"):
        fedsgd_update(model, x, y, mode="inference")
    with pytest.raises(ValueError, match="method"):
        fedsgd_update(model, x, y, method="fast")
    with pytest.raises(ValueError, match="dividing N=10"):
        fedavg_update(model, x, y, n_steps=3, lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        fedavg_update(model, x, y, n_steps=2, lr=0)
    with pytest.raises(ValueError, match="matching"):
        fedsgd_update(model, x, y[:5])


def test_last_layer_update_validation():
    with pytest.raises(ValueError, match="same classifier"):
        LastLayerUpdate(np.zeros((3, 4)), np.zeros(2), 10)
    with pytest.raises(ValueError, match="NaN or inf"):
        LastLayerUpdate(np.full((3, 4), np.nan), np.zeros(3), 10)
    with pytest.raises(ValueError, match="positive integer"):
        LastLayerUpdate(np.zeros((3, 4)), np.zeros(3), 0)
    with pytest.raises(ValueError, match="not divisible"):
        LastLayerUpdate(np.zeros((3, 4)), np.zeros(3), 10, n_steps=3)
    u = LastLayerUpdate(np.zeros((3, 4)), np.zeros(3), 10, n_steps=2, lr=0.1)
    assert (u.n_classes, u.feature_dim, u.step_size) == (3, 4, 5)
    with pytest.raises(ValueError):
        u.bias_grad[0] = 1.0  # read-only


# ---- local DP -----------------------------------------------------------------------------------


def big_update(scale=1.0):
    rng = np.random.default_rng(0)
    return LastLayerUpdate(scale * rng.normal(size=(20, 50)), scale * rng.normal(size=20), 100)


def test_clipping_scales_to_rho_only_when_above():
    u = big_update()
    c = privatize(u, LDP(rho=0.1))
    norm = np.sqrt((c.weight_grad**2).sum() + (c.bias_grad**2).sum())
    assert norm == pytest.approx(0.1)
    np.testing.assert_allclose(c.bias_grad / u.bias_grad, c.weight_grad[0, 0] / u.weight_grad[0, 0])
    small = big_update(1e-4)
    same = privatize(small, LDP(rho=0.1))
    np.testing.assert_array_equal(same.bias_grad, small.bias_grad)


def test_scope_all_clips_harder():
    u = big_update()
    last = privatize(u, LDP(rho=1.0))
    everything = privatize(u, LDP(rho=1.0, scope="all"), rest_sq_norm=500.0)
    assert np.abs(everything.bias_grad).sum() < np.abs(last.bias_grad).sum()


def test_noise_statistics_and_determinism():
    u = LastLayerUpdate(np.zeros((200, 500)), np.zeros(200), 100)
    n = privatize(u, LDP(sigma=0.1), seed=4)
    assert abs(n.weight_grad.mean()) < 1e-3 and n.weight_grad.std() == pytest.approx(0.1, rel=0.01)
    np.testing.assert_array_equal(n.weight_grad, privatize(u, LDP(sigma=0.1), seed=4).weight_grad)
    assert not np.array_equal(n.weight_grad, privatize(u, LDP(sigma=0.1), seed=5).weight_grad)


def test_builders_apply_ldp():
    model = build_model("deepconvlstm", 3, 9)
    x, y = batch(10)
    plain = fedsgd_update(model, x, y)
    clipped = fedsgd_update(model, x, y, ldp=LDP(rho=1e-3))
    everything = fedsgd_update(model, x, y, ldp=LDP(rho=1e-3, scope="all"))
    assert np.sqrt((clipped.weight_grad**2).sum() + (clipped.bias_grad**2).sum()) == pytest.approx(1e-3)
    assert np.abs(everything.bias_grad).sum() < np.abs(clipped.bias_grad).sum() < np.abs(plain.bias_grad).sum()
    avg = fedavg_update(model, x, y, n_steps=2, lr=0.01, ldp=LDP(sigma=1.0))
    assert np.abs(avg.bias_grad).mean() > 0.3


def test_invalid_ldp():
    with pytest.raises(ValueError, match="sigma"):
        LDP(sigma=-1)
    with pytest.raises(ValueError, match="rho"):
        LDP(rho=0)
    with pytest.raises(ValueError, match="scope"):
        LDP(rho=1, scope="model")
