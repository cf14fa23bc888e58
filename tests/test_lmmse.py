"""Our own count attack ``lmmse`` (the Bayes-linear estimate of the counts): oracles, reference, options, bad input.

Checked here: with no information in the statistic it returns the blind prior exactly; when the statistic is an
exact identity of the counts it recovers them; it agrees with a direct numpy transcription of the estimator on
20 random heads; it simulates with the update's sampler unless the option overrides it; a bias-free update is
read through the weight rows; bad input gets one clear error; the server's model is left as it was.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from leakage_core.attacks import ATTACKS, LMMSE, NoBiasError, blind_prior, label_shares, lmmse
from leakage_core.counts import round_to_total
from leakage_core.federated import LastLayerUpdate, fedsgd_update, last_layer_gradients, make_batches
from leakage_core.models import build_model

from attack_helpers import LinearHead, largest_remainder


class ZeroFeatures(LinearHead):
    """A head whose classifier input is identically zero: no statistic of its weight rows can vary."""

    def features(self, x):
        return torch.zeros(torch.as_tensor(x).shape[0], self.classifier.in_features)


def _constant_head(n_channels: int, n_classes: int, seed: int = 0) -> LinearHead:
    """A head with zero classifier weight: every window gets the probabilities ``softmax(bias)``."""
    model = LinearHead(n_channels, n_classes, seed=seed)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.linspace(-1.0, 1.0, n_classes))
    return model


def _runs(rng, n: int, n_classes: int, run: int) -> np.ndarray:
    """Labels in activity runs of length ``run`` (a stream where sequential batches hold few classes)."""
    return np.repeat(rng.integers(0, n_classes, n // run + 1), run)[:n].astype(np.int64)


def _windows(rng, model, n: int) -> np.ndarray:
    return rng.normal(size=(n, model.window_size, model.n_channels)).astype(np.float32)


# ---- no information -> the blind prior ------------------------------------------------------------------------


@pytest.mark.parametrize("sampler", ["shuffle", "sequential"])
def test_a_statistic_without_information_gives_the_blind_prior(sampler):
    rng = np.random.default_rng(0)
    model = ZeroFeatures(2, 5, seed=1)
    aux_labels = rng.choice(5, size=300, p=[0.4, 0.3, 0.15, 0.1, 0.05])
    aux = (_windows(rng, model, 300), aux_labels)
    shares = label_shares(aux_labels, 5)
    attack = LMMSE(row="weight", sampler=sampler, n_sim=50).prepare(model, aux)
    for n in (1, 7, 20, 50):
        labels = rng.integers(0, 5, n)
        update = fedsgd_update(model, _windows(rng, model, n), labels)
        assert not np.any(update.weight_grad)  # the premise: the weight rows carry nothing
        assert attack.count(update).tolist() == blind_prior(update, shares).tolist()
        zero = LastLayerUpdate(np.zeros((5, 8)), np.zeros(5), n)
        assert attack.count(zero).tolist() == blind_prior(zero, shares).tolist()
    assert not np.any(attack.regression(update, attack.preparation).beta)
    # not a tautology: the bias row of the same model is informative (every window has softmax(bias)) and moves
    truth = np.bincount(labels, minlength=5)
    assert lmmse(update, model=model, aux=aux, sampler=sampler, n_sim=50).tolist() == truth.tolist()
    assert blind_prior(update, shares).tolist() != truth.tolist()


# ---- exact identity -> the truth ------------------------------------------------------------------------------


@pytest.mark.parametrize("sampler", ["shuffle", "sequential", "balanced"])
def test_an_exact_identity_recovers_the_counts(sampler):
    rng = np.random.default_rng(1)
    model = _constant_head(3, 6, seed=2)
    aux = (_windows(rng, model, 400), _runs(rng, 400, 6, 7))
    attack = LMMSE(sampler=sampler, n_sim=200, seed=3).prepare(model, aux)
    shares = label_shares(aux[1], 6)
    client = _runs(rng, 240, 6, 5)  # another subject's stream, cut by the same sampler
    missed = 0
    for n in (60, 30, 16, 10):
        for k, idx in enumerate(make_batches(client, n, sampler=sampler, seed=11)[:3]):
            update = fedsgd_update(model, _windows(rng, model, n), client[idx], seed=k)
            truth = np.bincount(client[idx], minlength=6)
            assert attack.count(update).tolist() == truth.tolist()
            missed += blind_prior(update, shares).tolist() != truth.tolist()
    # N = 10: every count varies (also balanced's, 1 or 2), and the statistic is the count up to a constant
    np.testing.assert_allclose(attack.regression(update, attack.preparation).beta, 1.0, rtol=1e-9)
    assert missed > 0  # the prior alone does not get there


# ---- agreement with a direct transcription of the estimator -----------------------------------------------------


class IdentityHead(torch.nn.Module):
    """A model whose windows (one channel) are its classifier input, with a given classifier ``(W, b)``."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray) -> None:
        super().__init__()
        self.window_size, self.n_channels = weight.shape[1], 1
        self.classifier = torch.nn.Linear(weight.shape[1], weight.shape[0]).double()
        with torch.no_grad():
            self.classifier.weight.copy_(torch.as_tensor(weight))
            self.classifier.bias.copy_(torch.as_tensor(bias))

    def features(self, x):
        return torch.as_tensor(x).double().flatten(1)

    def forward(self, x):
        return self.classifier(self.features(x))


def _reference(update, w, b, h, y, sampler, bias_row, n_sim, seed):
    """The estimator written out: simulate batches, per class regress the count on the statistic, round."""
    n, s, c = update.n_windows, update.n_steps, w.shape[0]
    z = h @ w.T + b
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    onehot = np.zeros((len(y), c))
    onehot[np.arange(len(y)), y] = 1.0
    term = (onehot - p) * (1.0 if bias_row else h.sum(axis=1, keepdims=True))
    if sampler == "sequential":
        starts = np.random.default_rng(seed).integers(0, len(y) - n + 1, size=n_sim)
        batches = [np.arange(a, a + n) for a in starts]
    else:
        batches, k = [], 0
        while len(batches) < n_sim:
            batches += make_batches(y, n, sampler=sampler, seed=seed + k)
            k += 1
        batches = batches[:n_sim]
    counts = np.array([onehot[i].sum(axis=0) for i in batches])
    stats = np.array([term[i].sum(axis=0) for i in batches])
    g = update.bias_grad if bias_row else update.weight_grad.sum(axis=1)
    x = -n / s * g
    est = np.zeros(c)
    for j in range(c):
        var = np.var(stats[:, j])
        beta = (
            np.cov(counts[:, j], stats[:, j], bias=True)[0, 1] / var if var > 1e-10 * np.mean(stats[:, j] ** 2) else 0
        )
        if sampler == "balanced":
            mean_n, mean_x = counts[:, j].mean(), stats[:, j].mean()
        else:
            mean_n, mean_x = n * np.mean(y == j), n * term[:, j].mean()
        est[j] = mean_n + beta * (x[j] - mean_x)
    return largest_remainder(est, n)


@pytest.mark.parametrize("seed", range(20))
def test_lmmse_agrees_with_a_transcription_of_the_estimator(seed):
    rng = np.random.default_rng(100 + seed)
    c, d = int(rng.integers(3, 9)), int(rng.integers(2, 10))
    w, b = rng.normal(scale=0.7, size=(c, d)), rng.normal(scale=0.7, size=c)
    n_aux = int(rng.integers(80, 300))
    h = rng.normal(size=(n_aux, d)).astype(np.float32).astype(np.float64)  # the model's features are these windows
    y = _runs(rng, n_aux, c, int(rng.integers(1, 12)))
    steps = int(rng.choice([1, 2, 5]))
    n = steps * int(rng.integers(1, 12))
    sampler, bias_row = str(rng.choice(["shuffle", "sequential", "balanced"])), bool(rng.integers(0, 2))
    n_sim, sim_seed = int(rng.integers(20, 120)), int(rng.integers(0, 5))
    batch_h, batch_y = rng.normal(size=(n, d)), rng.integers(0, c, n)
    dw, db = last_layer_gradients(batch_h, batch_y, w, b)
    update = LastLayerUpdate(steps * dw + rng.normal(scale=0.01, size=dw.shape), steps * db, n, n_steps=steps, lr=0.1)
    model, aux = IdentityHead(w, b), (h[:, :, None], y)
    got = lmmse(
        update,
        model=model,
        aux=aux,
        row="bias" if bias_row else "weight",
        sampler=sampler,
        n_sim=n_sim,
        seed=sim_seed,
        mode="eval",
    )
    assert got.tolist() == _reference(update, w, b, h, y, sampler, bias_row, n_sim, sim_seed).tolist()


# ---- the sampler: the update's, unless the option overrides it -------------------------------------------------


def _runs_setup():
    """A confident head on a stream of long activity runs, and one update of a batch of two classes."""
    rng = np.random.default_rng(5)
    model = IdentityHead(1.5 * np.eye(4), np.zeros(4))

    def windows(labels):
        return (np.eye(4)[labels] + rng.normal(scale=0.8, size=(len(labels), 4))).astype(np.float32)[:, :, None]

    aux_labels = _runs(rng, 600, 4, 60)
    labels = np.repeat([1, 2], 10)
    return model, (windows(aux_labels), aux_labels), fedsgd_update(model, windows(labels), labels)


def test_the_sampler_option_changes_the_simulation():
    model, aux, update = _runs_setup()
    betas = {}
    for sampler in ("shuffle", "sequential", "balanced"):
        attack = LMMSE(sampler=sampler, n_sim=300).prepare(model, aux)
        betas[sampler] = attack.regression(update, attack.preparation).beta
        assert attack.sampler_of(update) == sampler
    # a sequential batch holds one or two runs: its counts swing far more than a shuffled batch's
    assert np.all(np.abs(betas["sequential"] - betas["shuffle"]) > 0.2)
    # a balanced batch of 20 over 4 classes holds 5 of each: the count is known, the gradient not read
    assert not np.any(betas["balanced"])
    assert LMMSE().prepare(model, aux).sampler_of(update) == "shuffle"  # no sampler known: shuffle


def test_the_updates_sampler_is_used_unless_the_option_overrides_it():
    model, aux, update = _runs_setup()
    sequential = dataclasses.replace(update, sampler="sequential")
    plain = LMMSE(n_sim=300).prepare(model, aux)
    assert plain.sampler_of(sequential) == "sequential"
    forced = LMMSE(sampler="sequential", n_sim=300).prepare(model, aux)
    assert plain.count(sequential).tolist() == forced.count(update).tolist()
    assert plain.count(sequential).tolist() != plain.count(update).tolist()  # shuffle when the update says nothing
    override = LMMSE(sampler="shuffle", n_sim=300).prepare(model, aux)
    assert override.sampler_of(sequential) == "shuffle"
    assert override.count(sequential).tolist() == plain.count(update).tolist()


# ---- a bias-free update ---------------------------------------------------------------------------------------


def test_a_bias_free_update_is_read_through_the_weight_rows():
    rng = np.random.default_rng(7)
    model = LinearHead(2, 5, seed=4, relu=True)
    aux = (_windows(rng, model, 200), rng.integers(0, 5, 200))
    update = fedsgd_update(model, _windows(rng, model, 30), rng.integers(0, 5, 30))
    no_bias = dataclasses.replace(update, bias_grad=None)
    auto = LMMSE(n_sim=100).prepare(model, aux)
    weight = LMMSE(row="weight", n_sim=100).prepare(model, aux)
    assert auto.count(no_bias).tolist() == weight.count(update).tolist()
    assert auto.count(update).tolist() == LMMSE(row="bias", n_sim=100).prepare(model, aux).count(update).tolist()
    assert not auto.reads_bias and LMMSE(row="bias").reads_bias
    with pytest.raises(NoBiasError, match=r"lmmse with row='auto' or 'weight'"):
        LMMSE(row="bias", n_sim=100).prepare(model, aux).count(no_bias)


def test_a_classifier_without_bias_is_attacked_end_to_end():
    rng = np.random.default_rng(10)
    model = build_model("tinyhar", 3, 4, seed=0, bias=False)
    windows, labels = rng.normal(size=(60, model.window_size, 3)).astype(np.float32), rng.integers(0, 4, 60)
    update = fedsgd_update(model, windows[:20], labels[:20])
    assert not update.has_bias
    counts = lmmse(update, model=model, aux=(windows, labels), n_sim=30)
    assert (
        counts.sum() == 20
        and counts.tolist() == lmmse(update, model=model, aux=(windows, labels), n_sim=30, row="weight").tolist()
    )


# ---- bad input: one clear error each; the model is untouched -------------------------------------------------


def test_bad_input_gets_one_clear_error_each():
    rng = np.random.default_rng(8)
    model = LinearHead(2, 4, seed=0)
    aux = (_windows(rng, model, 50), rng.integers(0, 4, 50))
    update = fedsgd_update(model, _windows(rng, model, 10), rng.integers(0, 4, 10))
    with pytest.raises(ValueError, match="needs the server's model"):
        lmmse(update, aux=aux)
    with pytest.raises(ValueError, match="needs aux"):
        lmmse(update, model=model)
    with pytest.raises(ValueError, match=r"aux labels must be integers in \[0, 4\)"):
        lmmse(update, model=model, aux=(aux[0], np.full(50, 4)))
    with pytest.raises(ValueError, match="n_sim must be an integer >= 2"):
        LMMSE(n_sim=1)
    with pytest.raises(ValueError, match=r"sampler='random' is not supported"):
        ATTACKS["lmmse"].build(sampler="random")
    with pytest.raises(ValueError, match="row='both' is not supported"):
        LMMSE(row="both")
    with pytest.raises(ValueError, match="fewer than the update's N = 10"):
        lmmse(update, model=model, aux=(aux[0][:9], aux[1][:9]))
    with pytest.raises(ValueError, match="classifier is"):
        lmmse(LastLayerUpdate(np.zeros((5, 8)), np.zeros(5), 10), model=model, aux=aux)


@pytest.mark.parametrize("name", ["tinyhar", "deepconvlstm"])
@pytest.mark.parametrize("training", [True, False])
def test_the_model_is_untouched(name, training):
    rng = np.random.default_rng(9)
    model = build_model(name, 3, 4, seed=0).train(training)
    windows = rng.normal(size=(40, model.window_size, 3)).astype(np.float32)
    labels = rng.integers(0, 4, 40)
    update = fedsgd_update(model, windows[:10], labels[:10])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng_state = torch.get_rng_state()
    for mode in ("train", "eval"):
        assert lmmse(update, model=model, aux=(windows, labels), n_sim=20, mode=mode).sum() == 10
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.training is training and all(m.training is training for m in model.modules())
    assert torch.equal(torch.get_rng_state(), rng_state)


# ---- local DP: the noise option --------------------------------------------------------------------------------


def test_the_noise_option_shrinks_beta_by_the_noise_share_of_the_variance():
    rng = np.random.default_rng(5)
    model = LinearHead(3, 5, seed=1)
    aux = (_windows(rng, model, 500), _runs(rng, 500, 5, 9))
    plain = LMMSE(n_sim=300).prepare(model, aux)
    noisy = LMMSE(n_sim=300, noise=0.05).prepare(model, aux)
    update = fedsgd_update(model, _windows(rng, model, 40), _runs(rng, 40, 5, 4), seed=0)
    base = plain.regression(update, plain.preparation)
    shrunk = base.with_noise((40 * 0.05) ** 2)
    np.testing.assert_allclose(shrunk.beta, base.beta * base.var_x / (base.var_x + 4.0))
    assert np.all(shrunk.beta < base.beta) and np.all(shrunk.beta >= 0)
    stat = -(40 / 1) * update.bias_grad
    expected = round_to_total(np.clip(shrunk(stat), 0, 40), 40)
    assert noisy.count(update).tolist() == expected.tolist()
    assert LMMSE(n_sim=300, noise=0.0).prepare(model, aux).count(update).tolist() == plain.count(update).tolist()
    weight = LMMSE(n_sim=300, noise=0.05, row="weight").prepare(model, aux)
    base_w = weight.regression(update, weight.preparation)
    d = update.feature_dim  # a weight row sums d noisy entries: d times the variance
    expected_w = round_to_total(
        np.clip(base_w.with_noise(d * (40 * 0.05) ** 2)(-40 * update.weight_grad.sum(axis=1)), 0, 40), 40
    )
    assert weight.count(update).tolist() == expected_w.tolist()
    with pytest.raises(ValueError, match="noise must be the standard deviation"):
        LMMSE(noise=-0.1)


def test_knowing_the_noise_lowers_the_squared_error_on_noised_updates():
    """Gaussian noise on the update: the noise-aware estimate has less squared error than the plain one."""
    from leakage_core.federated import LDP, privatize

    rng = np.random.default_rng(6)
    model = _constant_head(3, 5, seed=3)
    aux = (_windows(rng, model, 600), _runs(rng, 600, 5, 3))
    sigma = 0.2
    plain = LMMSE(n_sim=300).prepare(model, aux)
    aware = LMMSE(n_sim=300, noise=sigma).prepare(model, aux)
    client = _runs(rng, 30 * 40, 5, 3)
    err_plain = err_aware = 0.0
    for k, idx in enumerate(make_batches(client, 30, sampler="shuffle", seed=2)):
        truth = np.bincount(client[idx], minlength=5)
        update = privatize(
            fedsgd_update(model, _windows(rng, model, 30), client[idx], seed=k), LDP(sigma=sigma), seed=k
        )
        err_plain += ((plain.count(update) - truth) ** 2).sum()
        err_aware += ((aware.count(update) - truth) ** 2).sum()
    assert err_aware < 0.8 * err_plain
