"""The count attacks of Geng et al. (2021) and Dimitrov et al. (2022): exact oracle, reduction, published formula.

Checked here: Geng recovers the counts exactly when every window has the same feature sum and the same
probabilities; Dimitrov equals Geng at S = 1; both agree with a direct numpy transcription of the
published formulas on 20 random heads; bad input gets one clear error; the server's model is left as it was.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from leakage_core.attacks import ATTACKS
from leakage_core.attacks.count.dimitrov import dimitrov
from leakage_core.attacks.count.geng import geng
from leakage_core.federated import LastLayerUpdate, fedavg_update, fedsgd_update, last_layer_gradients
from leakage_core.models import build_model

from attack_helpers import LinearHead, largest_remainder


class FeatureHead(torch.nn.Module):
    """A model whose classifier input is ``h0 + (flattened window) @ proj``, with a given classifier ``(W, b)``.

    ``window_size = n_in`` and one channel; with ``proj = I`` (and ``h0 = 0``) the windows *are* the features.
    """

    def __init__(self, weight: np.ndarray, bias: np.ndarray, proj: np.ndarray, h0: np.ndarray | None = None) -> None:
        super().__init__()
        self.window_size, self.n_channels = proj.shape[0], 1
        self.register_buffer("proj", torch.as_tensor(proj, dtype=torch.float64))
        self.register_buffer("h0", torch.as_tensor(np.zeros(proj.shape[1]) if h0 is None else h0, dtype=torch.float64))
        self.classifier = torch.nn.Linear(weight.shape[1], weight.shape[0]).double()
        with torch.no_grad():
            self.classifier.weight.copy_(torch.as_tensor(weight))
            self.classifier.bias.copy_(torch.as_tensor(bias))

    def features(self, x):
        return (self.h0 + torch.as_tensor(x).double().flatten(1) @ self.proj).float()

    def forward(self, x):
        return self.classifier(self.features(x).double())


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# ---- the exact oracle: equal feature sums and equal probabilities --------------------------------------------


def _constant_feature_head(seed: int, c: int = 5, d: int = 12, n_in: int = 9):
    """A head where every window's features sum to the same Obar != 0 and give the same probabilities.

    The input is projected onto the null space of ``[W; 1^T]``, so ``W h`` and ``1^T h`` do not depend on it.
    """
    rng = np.random.default_rng(seed)
    w, b = rng.normal(size=(c, d)), rng.normal(size=c)
    basis = np.linalg.svd(np.vstack([w, np.ones(d)]))[2][c + 1 :]  # rows span the null space
    proj = rng.normal(size=(n_in, basis.shape[0])) @ basis
    h0 = rng.uniform(0.2, 1.0, size=d)
    return FeatureHead(w, b, proj, h0), rng


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("row", ["weight", "bias"])
def test_geng_is_exact_when_every_window_has_the_same_feature_sum_and_probabilities(seed, row):
    model, rng = _constant_feature_head(seed)
    windows = rng.normal(size=(40, model.window_size, 1))
    feats = model.features(windows).double().numpy()
    assert np.ptp(feats.sum(axis=1)) < 1e-5 and feats.sum(axis=1).mean() > 1  # the oracle's premise
    labels = rng.choice(5, size=40, p=[0.4, 0.3, 0.2, 0.1, 0.0])
    update = fedsgd_update(model, windows, labels)
    counts = geng(update, model=model, row=row)
    assert counts.tolist() == np.bincount(labels, minlength=5).tolist()
    assert dimitrov(update, model=model, row=row).tolist() == counts.tolist()
    # not a tautology: a wrong Obar (another model's features) breaks it
    model.h0.mul_(3.0)
    if row == "weight":
        assert geng(update, model=model).tolist() != counts.tolist()


# ---- Dimitrov reduces to Geng at S = 1 ---------------------------------------------------------------------


@pytest.mark.parametrize("options", [{}, {"row": "bias"}, {"dummy": "uniform", "n_probe": 17, "seed": 3}])
def test_dimitrov_equals_geng_at_one_step(options):
    rng = np.random.default_rng(0)
    model = LinearHead(3, 6, seed=1)
    windows = rng.normal(size=(30, model.window_size, 3)).astype(np.float32)
    for k in range(3):
        labels = rng.integers(0, 6, 30)
        update = fedsgd_update(model, windows, labels, seed=k)
        expected = geng(update, model=model, **options)
        for interpolation in ("steps", "start", "end"):  # one step: one gradient, at the server's model
            assert dimitrov(update, model=model, interpolation=interpolation, **options).tolist() == expected.tolist()
    # with S > 1, "start" is Geng's formula (server's statistics, summed gradient over S)
    avg = fedavg_update(model, windows, labels, n_steps=5, lr=0.5)
    assert (
        dimitrov(avg, model=model, interpolation="start", **options).tolist()
        == geng(avg, model=model, **options).tolist()
    )


# ---- agreement with a transcription of the published formulas on 20 random heads ---------------------------


def _random_head(seed: int):
    rng = np.random.default_rng(seed)
    c, d = int(rng.integers(3, 10)), int(rng.integers(4, 20))
    w, b = rng.normal(scale=0.5, size=(c, d)), rng.normal(scale=0.5, size=c)
    # ReLU-like features (Obar away from 0), float32-exact as the model's features are float32
    probe = rng.uniform(0, 1, size=(int(rng.integers(5, 50)), d)).astype(np.float32).astype(np.float64)
    s = int(rng.choice([1, 2, 5]))
    n = s * int(rng.integers(1, 30))
    lr = float(rng.choice([1e-4, 0.05, 0.5]))
    h, y = rng.uniform(0, 1, size=(n, d)), rng.integers(0, c, n)
    dw, db = last_layer_gradients(h, y, w, b)
    g_w, g_b = s * dw + rng.normal(scale=0.01, size=dw.shape), s * db + rng.normal(scale=0.01, size=db.shape)
    update = LastLayerUpdate(g_w, g_b, n, n_steps=s, lr=lr if s > 1 else None)
    model = FeatureHead(w, b, np.eye(d))
    aux = (probe[:, :, None], np.zeros(len(probe), dtype=np.int64))
    return model, aux, update, (w, b, probe)


def _geng_reference(update, w, b, probe, bias_row=False):
    """Geng et al.: n = N pbar - N dW / (S Obar); the bias row with Obar = 1."""
    pbar = _softmax(probe @ w.T + b).mean(axis=0)
    obar = 1.0 if bias_row else probe.sum(axis=1).mean()
    dw = update.bias_grad if bias_row else update.weight_grad.sum(axis=1)
    n, s = update.n_windows, update.n_steps
    return n * pbar - n * dw / obar / s


def _dimitrov_reference(update, w, b, probe):
    """Dimitrov et al.: statistics at server and client (theta - lr G), interpolated at s/S, counts averaged."""
    n, s = update.n_windows, update.n_steps
    dw = update.weight_grad.sum(axis=1)
    lr = update.lr or 0.0
    w1, b1 = w - lr * update.weight_grad, b - lr * update.bias_grad
    ps_start, ps_end = _softmax(probe @ w.T + b).mean(axis=0), _softmax(probe @ w1.T + b1).mean(axis=0)
    o_start = o_end = probe.sum(axis=1).mean()
    raw = []
    for coef in np.arange(0, 1, 1 / s):
        ps = (1 - coef) * ps_start + coef * ps_end
        o = (1 - coef) * o_start + coef * o_end
        raw.append(n * ps - (n * dw) / o / s)
    return np.mean(raw, axis=0)


@pytest.mark.parametrize("seed", range(20))
def test_geng_and_dimitrov_agree_with_the_published_formulas(seed):
    from leakage_core.attacks.count.dimitrov import dimitrov_raw_counts
    from leakage_core.attacks.count.geng import Geng

    model, aux, update, (w, b, probe) = _random_head(seed)
    opts = {"model": model, "aux": aux, "stats": "aux", "n_probe": len(probe)}
    n = update.n_windows
    for bias_row in (False, True):
        row = "bias" if bias_row else "weight"
        ref = _geng_reference(update, w, b, probe, bias_row)
        assert geng(update, row=row, **opts).tolist() == largest_remainder(ref, n).tolist()
    ref = _dimitrov_reference(update, w, b, probe)
    prepared = Geng(stats="aux", n_probe=len(probe)).prepare(model, aux).preparation
    np.testing.assert_allclose(dimitrov_raw_counts(update, prepared), ref, rtol=1e-9, atol=1e-9)
    assert dimitrov(update, **opts).tolist() == largest_remainder(ref, n).tolist()
    if update.n_steps > 1 and update.lr >= 0.05:  # the interpolation matters: it is not Geng's formula
        assert not np.allclose(ref, _geng_reference(update, w, b, probe), atol=1e-6)


# ---- bad input: one clear error each ------------------------------------------------------------------------


def test_a_model_without_a_classifier_layer_is_refused():
    class NoHead(torch.nn.Module):
        window_size, n_channels = 4, 1

        def __init__(self):
            super().__init__()
            self.head = torch.nn.Linear(4, 3)

        def features(self, x):
            return torch.as_tensor(x).float().flatten(1)

    update = LastLayerUpdate(np.zeros((3, 4)), np.zeros(3), 6)
    for attack in (geng, dimitrov):
        with pytest.raises(ValueError, match="model.classifier"):
            attack(update, model=NoHead())


def test_a_classifier_that_does_not_fit_the_update_is_refused():
    model, _, _, _ = _random_head(0)
    c, d = model.classifier.weight.shape
    with pytest.raises(ValueError, match="classifier is"):
        geng(LastLayerUpdate(np.zeros((c + 1, d)), np.zeros(c + 1), 6), model=model)


def test_dimitrov_needs_the_local_learning_rate_of_a_fedavg_update():
    model, _, update, _ = _random_head(1)
    c, d = model.classifier.weight.shape
    no_lr = LastLayerUpdate(np.ones((c, d)), np.zeros(c), 10, n_steps=2)
    with pytest.raises(ValueError, match=r"local learning rate.*update\.lr is None"):
        dimitrov(no_lr, model=model)
    assert dimitrov(no_lr, model=model, interpolation="start").sum() == 10  # the server's statistics need no lr
    assert geng(no_lr, model=model).sum() == 10


def test_n_not_a_multiple_of_s_is_refused_before_any_attack_sees_it():
    with pytest.raises(ValueError, match="n_windows=10 is not divisible by n_steps=3"):
        LastLayerUpdate(np.ones((3, 4)), np.zeros(3), 10, n_steps=3, lr=0.1)


def test_bad_options_are_refused_by_name():
    for name, option, bad in [
        ("geng", "stats", "noise"),
        ("geng", "row", "both"),
        ("dimitrov", "interpolation", "mid"),
    ]:
        with pytest.raises(ValueError, match=f"{option}={bad!r}"):
            ATTACKS[name].build(**{option: bad})
    with pytest.raises(ValueError, match="needs aux"):
        ATTACKS["geng"].build(stats="aux").prepare(build_model("tinyhar", 3, 4), None)


# ---- the attack leaves the server's model untouched ----------------------------------------------------------


@pytest.mark.parametrize("name", ["tinyhar", "deepconvlstm"])
@pytest.mark.parametrize("training", [True, False])
def test_the_attacks_leave_the_model_untouched(name, training):
    rng = np.random.default_rng(0)
    model = build_model(name, 3, 4, seed=0).train(training)
    windows = rng.normal(size=(20, model.window_size, 3)).astype(np.float32)
    labels = rng.integers(0, 4, 20)
    update = fedavg_update(model, windows, labels, n_steps=2, lr=0.5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng_state = torch.get_rng_state()
    aux = (windows, labels)
    for attack in (geng, dimitrov):
        for stats in ("dummy", "aux"):
            attack(update, model=model, aux=aux, stats=stats, n_probe=8)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.training is training and all(m.training is training for m in model.modules())
    assert torch.equal(torch.get_rng_state(), rng_state)
