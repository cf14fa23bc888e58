"""DP-SGD (leakage_core.defenses.dp_sgd): the DP-compatible models, per-window gradients, clipping, noise,
training with its accountant (resumable) and the client's update."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from opacus.accountants import RDPAccountant

from leakage_core.defenses import DPSGD, make_defense
from leakage_core.defenses.dp_sgd import clip_per_window, per_window_gradients
from leakage_core.federated import ClientSetting
from leakage_core.models import TrainConfig, build_model, count_parameters, train_model
from leakage_core.models.architectures import DeepConvLSTM, TinyHAR

#: tiny versions of both models: 2 channels, 3 classes, windows of 12 time steps
TINY = {
    "deepconvlstm": {"conv_filters": 4, "kernel": 3, "lstm_hidden": 5, "window_size": 12},
    "tinyhar": {"filters": 4, "kernel": 3, "window_size": 12},
}


def tiny(name: str, seed: int = 0, **kwargs) -> torch.nn.Module:
    return build_model(name, 2, 3, seed=seed, dp_compatible=True, **TINY[name], **kwargs)


def batch(n: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 12, 2)).astype(np.float32), np.arange(n) % 3


def loop_gradients(model: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> dict[str, torch.Tensor]:
    """The reference: one ordinary backward pass per window (eval mode: no dropout), stacked."""
    model.eval()
    params = dict(model.named_parameters())
    rows = []
    for i in range(len(y)):
        loss = torch.nn.functional.cross_entropy(model(torch.as_tensor(x[i : i + 1])), torch.as_tensor(y[i : i + 1]))
        rows.append(torch.autograd.grad(loss, list(params.values())))
    return {name: torch.stack([r[k] for r in rows]) for k, name in enumerate(params)}


# ------------------------------------------------------------------ the models
@pytest.mark.parametrize("cls", [DeepConvLSTM, TinyHAR])
def test_the_dp_variants_have_the_parameter_counts_their_docstrings_state(cls):
    for channels, classes in ((12, 19), (3, 9)):  # WEAR, Wetlab
        name = cls.__name__.lower()
        n_dp = count_parameters(build_model(name, channels, classes, dp_compatible=True))
        assert n_dp == count_parameters(build_model(name, channels, classes))
        assert f"{n_dp:,}" in cls.__doc__


def test_the_dp_deepconvlstm_computes_the_standard_function():
    standard, dp = build_model("deepconvlstm", 2, 3, **TINY["deepconvlstm"]), tiny("deepconvlstm", seed=5)
    missing = dp.load_state_dict(standard.state_dict(), strict=False).missing_keys  # DPLSTM's aliases only
    assert all(k.startswith("lstm.l") for k in missing)
    x = torch.as_tensor(batch()[0])
    torch.testing.assert_close(dp.eval()(x), standard.eval()(x), rtol=1e-5, atol=1e-6)


def test_the_dp_tinyhar_channel_attention_is_the_standard_encoder_layer():
    standard, dp = build_model("tinyhar", 2, 3, **TINY["tinyhar"]), tiny("tinyhar", seed=5)
    a, b = standard.channel_attention, dp.channel_attention
    with torch.no_grad():
        b.in_proj.weight.copy_(a.self_attn.in_proj_weight)
        b.in_proj.bias.copy_(a.self_attn.in_proj_bias)
        for part in ("out_proj", "linear1", "linear2", "norm1", "norm2"):
            src = getattr(a.self_attn, part) if part == "out_proj" else getattr(a, part)
            getattr(b, part).load_state_dict(src.state_dict())
    tokens = torch.randn(5, 7, 2, 4)  # (B, T', channels, filters)
    folded = a.eval()(tokens.reshape(35, 2, 4)).reshape(5, 7, 2, 4)  # the standard TinyHAR's folding
    torch.testing.assert_close(b(tokens), folded, rtol=1e-5, atol=1e-6)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in dp.modules())
    assert sum(isinstance(m, torch.nn.GroupNorm) for m in dp.modules()) == 4


# ------------------------------------------------------------------ per-window gradients and clipping
@pytest.mark.parametrize("name", list(TINY))
def test_per_window_gradients_equal_a_loop_of_backward_passes(name):
    model = tiny(name).double()
    x, y = batch()
    got = per_window_gradients(model, x.astype(np.float64), y, mode="eval")
    want = loop_gradients(model, x.astype(np.float64), y)
    assert set(got) == set(want) and len(got) == len(list(model.parameters()))
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=1e-9, atol=1e-12)
    assert all(p.grad is None and not hasattr(p, "grad_sample") for p in model.parameters())  # left as it was


def test_per_window_gradients_need_the_dp_compatible_model():
    standard = build_model("tinyhar", 2, 3, **TINY["tinyhar"])
    with pytest.raises(ValueError, match="dp_compatible=True"):
        per_window_gradients(standard, *batch())


def test_a_per_window_gradient_is_clipped_to_the_bound():
    x, y = batch(8)
    grads = per_window_gradients(tiny("tinyhar"), x, y, mode="eval")
    bound = 0.5
    clipped, norms = clip_per_window(grads, bound)
    after = torch.sqrt(sum((g.reshape(8, -1).double() ** 2).sum(dim=1) for g in clipped.values()))
    assert (norms > bound).any() and (after <= bound * (1 + 1e-6)).all()
    big = clip_per_window(grads, float(norms.max()) * 2)[0]  # a bound above every norm changes nothing
    assert all(torch.equal(big[k], grads[k]) for k in grads)


def test_opacus_dp_optimizer_clips_each_window_and_adds_noise_of_std_z_times_c():
    defense = DPSGD(noise_multiplier=0.7, max_grad_norm=0.3)
    layer = torch.nn.Linear(50, 40)  # 2,040 noised coordinates
    opt = defense.dp_optimizer(torch.optim.SGD(layer.parameters(), lr=1.0), expected_batch_size=10)
    for p in layer.parameters():  # one window with a gradient of norm >> C
        p.grad_sample = torch.full((1, *p.shape), 5.0)
    opt.clip_and_accumulate()
    summed = torch.sqrt(sum((p.summed_grad**2).sum() for p in layer.parameters()))
    assert summed <= defense.max_grad_norm * (1 + 1e-6)
    opt.zero_grad()
    torch.manual_seed(0)
    for p in layer.parameters():  # an empty batch: the step is noise alone, divided by the expected batch size
        p.grad_sample = torch.zeros((0, *p.shape))
    opt.pre_step()
    noise = torch.cat([p.grad.flatten() for p in layer.parameters()]) * 10
    assert float(noise.std()) == pytest.approx(defense.noise_std, rel=0.05)  # sd of the estimate ~1.6%


# ------------------------------------------------------------------ the client's update
def test_client_update_is_the_clipped_mean_plus_gaussian_noise_of_std_z_times_c():
    defense = DPSGD(noise_multiplier=1.5, max_grad_norm=0.05)  # a bound below the windows' norms
    model = tiny("deepconvlstm")
    setting = ClientSetting(batch_size=6, mode="eval")
    x, y = batch()
    ref = loop_gradients(model, x, y)  # the reference clipping: whole-model norms from the loop
    norms = torch.sqrt(sum((g.reshape(6, -1).double() ** 2).sum(dim=1) for g in ref.values()))
    assert (norms > defense.max_grad_norm).all()
    factor = (defense.max_grad_norm / norms).clamp(max=1.0)
    mean_w = (ref["classifier.weight"].double() * factor[:, None, None]).sum(0).numpy() / 6
    mean_b = (ref["classifier.bias"].double() * factor[:, None]).sum(0).numpy() / 6
    noise = []
    for b in range(40):
        update = defense.client_update(model, x, y, setting, batch=b)
        assert update.n_windows == 6 and update.sampler == "shuffle"
        noise.append(np.concatenate([(update.weight_grad - mean_w).ravel(), update.bias_grad - mean_b]) * 6)
    noise = np.concatenate(noise)  # 40 x 18 draws of N(0, (z C)^2)
    assert noise.std() == pytest.approx(defense.noise_std, rel=0.1) and abs(noise.mean()) < 0.1 * defense.noise_std
    again = defense.client_update(model, x, y, setting, batch=3)
    np.testing.assert_array_equal(again.weight_grad, defense.client_update(model, x, y, setting, 3).weight_grad)


def test_the_noise_has_a_stream_of_its_own_not_the_samplers_nor_the_next_seeds():
    # regression: the noise was drawn from default_rng(seed + batch), the stream that also draws the batches (batch 0)
    # and that seed + 1 draws at batch b - 1
    defense = DPSGD(noise_multiplier=1e4, max_grad_norm=1e-4)  # noise std 1 against a clipped sum of <= 6e-4
    model, (x, y) = tiny("tinyhar"), batch()
    a, b = ClientSetting(batch_size=6, seed=0), ClientSetting(batch_size=6, seed=1)
    noise = lambda s, k: defense.client_update(model, x, y, s, k).weight_grad.ravel() * 6  # noqa: E731
    first = np.random.default_rng(a.seed).normal(0.0, defense.noise_std, size=noise(a, 0).shape)
    assert np.allclose(noise(a, 0), noise(a, 0)) and noise(a, 0).std() == pytest.approx(1.0, rel=0.5)
    assert not np.allclose(noise(a, 0), first, atol=0.01)
    assert not np.allclose(noise(a, 1), noise(b, 0), atol=0.01)
    assert a.stream_seed("dp_noise", 0) != a.stream_seed("other", 0) != a.stream_seed("other", 1)
    with pytest.raises(ValueError, match="purpose"):
        a.stream_seed("", 0)


def test_client_update_refuses_fedavg_and_a_standard_model():
    x, y = batch()
    with pytest.raises(ValueError, match="n_steps=1"):
        DPSGD(1.0).client_update(tiny("tinyhar"), x, y, ClientSetting(batch_size=6, n_steps=2), 0)
    with pytest.raises(ValueError, match="dp_compatible"):
        DPSGD(1.0).client_update(build_model("tinyhar", 2, 3, **TINY["tinyhar"]), x, y, ClientSetting(), 0)


def test_a_bias_free_dp_model_gives_an_update_without_bias_row():
    update = DPSGD(1.0).client_update(tiny("tinyhar", bias=False), *batch(), ClientSetting(batch_size=6), 0)
    assert update.bias_grad is None and update.weight_grad.shape == (3, 8)


# ------------------------------------------------------------------ the guarantee
@pytest.mark.parametrize("adjacency, z", [("replace", 0.6), ("add_remove", 1.2)])
def test_epsilon_is_opacus_rdp_over_the_updates_at_sample_rate_one(adjacency, z):
    """One window replaced (the default: N stays the same) moves the clipped sum by up to 2C, so epsilon is Opacus's
    for half the noise multiplier; one window added or removed, by up to C: the noise multiplier itself."""
    defense = DPSGD(noise_multiplier=1.2, max_grad_norm=0.7)  # z is per C: the clipping bound does not matter
    accountant = RDPAccountant()
    for _ in range(5):
        accountant.step(noise_multiplier=z, sample_rate=1.0)
    eps = defense.epsilon(1e-5, updates=5, adjacency=adjacency)
    assert eps == pytest.approx(accountant.get_epsilon(1e-5), rel=1e-12)
    assert defense.epsilon(1e-5, 1, adjacency=adjacency) < eps < DPSGD(0.6).epsilon(1e-5, 5, adjacency=adjacency)
    if adjacency == "replace":
        assert defense.epsilon(1e-5, 5) == eps  # the default
    with pytest.raises(ValueError, match="updates"):
        defense.epsilon(1e-5, 0)
    with pytest.raises(ValueError, match="adjacency"):
        defense.epsilon(1e-5, adjacency="bounded")


def test_the_update_of_a_batch_with_one_window_replaced_moves_by_at_most_2c_before_noise():
    """The sensitivity replace adjacency assumes: the clipped sums of two batches that differ in one window (its
    content and label) differ by at most 2C, and the batch size stays N."""
    model = tiny("tinyhar")
    x, y = batch()
    grads = per_window_gradients(model, x, y, mode="eval")
    x2, y2 = x.copy(), y.copy()
    x2[0], y2[0] = -3 * x[0], (y[0] + 1) % 3
    grads2 = per_window_gradients(model, x2, y2, mode="eval")
    gap = 0.0
    for c in (0.05, 1.0):
        a, _ = clip_per_window(grads, c)
        b, _ = clip_per_window(grads2, c)
        gap = float(sum(((a[k].sum(0) - b[k].sum(0)).double() ** 2).sum() for k in a).sqrt())
        assert gap <= 2 * c * (1 + 1e-6)
    assert gap > 0  # the test can fail: the replaced window changes the sum


@pytest.mark.parametrize(
    "options,match",
    [({"noise_multiplier": 0}, "noise_multiplier"), ({"noise_multiplier": 1, "max_grad_norm": -1}, "max_grad_norm"),
     ({"noise_multiplier": 1, "delta": 1.0}, "delta")],
)  # fmt: skip
def test_options_are_checked(options, match):
    with pytest.raises(ValueError, match=match):
        DPSGD(**options)


def test_the_label_names_a_delta_other_than_the_default():
    from leakage_core.defenses.accounting import DEFAULT_DELTA

    assert DPSGD(1).delta == DEFAULT_DELTA == 1e-5
    assert DPSGD(1).label == DPSGD(1, delta=1e-5).label == "DP-SGD z=1, C=1"  # the study's labels: unchanged
    assert DPSGD(1, delta=1e-6).label == "DP-SGD z=1, C=1, delta=1e-06"
    assert len({DPSGD(1, delta=d).label for d in (1e-5, 1e-6, 1e-7, 1e-3)}) == 4


@pytest.mark.parametrize("delta, updates, word", [(5.0, 1, "delta"), (0, 1, "delta"), (1e-5, -3, "updates"),
                                                  (1e-5, 1.5, "updates"), (True, 1, "delta")])  # fmt: skip
def test_epsilon_checks_delta_and_updates_as_every_defence_does(delta, updates, word):
    from leakage_core.defenses import RandomizedResponse
    from leakage_core.federated import LDP

    for defense in (DPSGD(1.0), RandomizedResponse(2.0), LDP(sigma=0.1, rho=0.1)):
        with pytest.raises(ValueError, match=word):
            defense.epsilon(delta, updates)


def test_the_key_round_trips_and_asks_for_the_dp_model():
    defense = make_defense("dp_sgd", noise_multiplier=2, max_grad_norm=0.5)
    assert defense.key() == {"defense": "dp_sgd", "noise_multiplier": 2.0, "max_grad_norm": 0.5, "delta": 1e-5}
    assert defense.model_kwargs() == {"dp_compatible": True} and defense.stage == "training"


# ------------------------------------------------------------------ training
def test_dp_sgd_training_records_the_accountants_epsilon_and_resumes_exactly(tmp_path):
    defense = DPSGD(noise_multiplier=1.0, max_grad_norm=1.0)
    x, y = batch(40)
    cfg = TrainConfig(epochs=2, batch_size=10, lr=1e-2, defense=defense)
    full = tiny("deepconvlstm")
    history = train_model(full, x, y, cfg, progress=False)
    accountant = RDPAccountant()  # 2 epochs of ceil(40/10) Poisson steps at q = 10/40
    for _ in range(8):
        accountant.step(noise_multiplier=1.0, sample_rate=0.25)
    assert full.dp_epsilon == pytest.approx(accountant.get_epsilon(1e-5)) and full.dp_delta == 1e-5
    assert len(history) == 2 and all(np.isfinite(history))
    assert all(not hasattr(p, "grad_sample") and not hasattr(p, "summed_grad") for p in full.parameters())
    assert not full._forward_hooks and not any(m._forward_hooks for m in full.modules())  # Opacus's hooks gone

    def stop(epoch, loss):
        raise KeyboardInterrupt

    state = tmp_path / "state.pt"
    with pytest.raises(KeyboardInterrupt):
        train_model(tiny("deepconvlstm"), x, y, cfg, progress=False, state_path=state, on_epoch=stop)
    resumed = tiny("deepconvlstm")
    assert train_model(resumed, x, y, cfg, progress=False, state_path=state) == history
    assert resumed.dp_epsilon == full.dp_epsilon  # the accountant's history came back with the state
    for key, value in full.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=0, atol=0)
    other = tiny("deepconvlstm")
    train_model(other, x, y, TrainConfig(epochs=2, batch_size=10, lr=1e-2, seed=1, defense=defense), progress=False)
    assert not torch.equal(other.classifier.weight, full.classifier.weight)  # the seed drives sampling and noise


def test_dp_sgd_training_refuses_a_standard_model_and_a_weighted_loss():
    x, y = batch(20)
    cfg = TrainConfig(epochs=1, batch_size=10, defense=DPSGD(1.0))
    with pytest.raises(ValueError, match="dp_compatible"):
        train_model(build_model("tinyhar", 2, 3, **TINY["tinyhar"]), x, y, cfg, progress=False)
    with pytest.raises(ValueError, match="class_weighted"):
        train_model(tiny("tinyhar"), x, y, TrainConfig(epochs=1, class_weighted=True, defense=DPSGD(1.0)))
