import numpy as np
import pytest
import torch

from leakage_core.models import MODELS, build_model, count_parameters, zero_last_layer
from leakage_core.models import TrainConfig, class_weights, predict, train_model


@pytest.mark.parametrize("channels,classes,expected", [(12, 19, 705_747), (3, 9, 409_545)])
def test_deepconvlstm_parameter_count(channels, classes, expected):
    assert count_parameters(build_model("deepconvlstm", channels, classes)) == expected


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("channels,classes", [(12, 19), (3, 9)])
def test_shapes_and_features_feed_the_classifier(name, channels, classes):
    model = build_model(name, channels, classes, seed=0).eval()
    x = torch.randn(5, 50, channels)
    seen = {}

    def hook(module, inputs, output):
        seen["h"] = inputs[0]

    model.classifier.register_forward_hook(hook)
    out = model(x)
    assert out.shape == (5, classes)
    torch.testing.assert_close(model.features(x), seen["h"])
    assert isinstance(model.classifier, torch.nn.Linear) and model.classifier.bias is not None


@pytest.mark.parametrize("name", MODELS)
def test_init_is_seeded_and_leaves_global_rng_alone(name):
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = build_model(name, 3, 9, seed=1)
    after = torch.rand(1)
    b = build_model(name, 3, 9, seed=1)
    c = build_model(name, 3, 9, seed=2)
    assert torch.equal(before, after)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert not torch.equal(a.classifier.weight, c.classifier.weight)
    assert torch.count_nonzero(a.classifier.bias) == 0  # zero biases (paper init)


def test_zero_last_layer_gives_uniform_probabilities():
    model = zero_last_layer(build_model("tinyhar", 3, 9))
    p = predict(model, np.random.default_rng(0).normal(size=(4, 50, 3)).astype(np.float32))
    np.testing.assert_allclose(p, 1 / 9)


def test_wrong_input_shape_and_unknown_model():
    model = build_model("deepconvlstm", 12, 19)
    with pytest.raises(ValueError, match=r"expects windows shaped \(B, 50, 12\)"):
        model(torch.zeros(2, 50, 3))
    with pytest.raises(ValueError, match="unknown model"):
        build_model("resnet", 3, 9)


def test_class_weights():
    w = class_weights(np.array([0, 0, 0, 1]), 3)
    np.testing.assert_allclose(w, [4 / 6, 2.0, 0.0])


def test_deepconvlstm_learns_a_small_problem():
    rng = np.random.default_rng(0)
    t = np.arange(50) / 50
    y = rng.integers(0, 3, 300)
    x = np.sin(2 * np.pi * (1 + 2 * y)[:, None] * t + rng.uniform(0, 6, (300, 1)))[..., None]
    x = (x + rng.normal(0, 0.3, x.shape)).astype(np.float32)
    model = build_model("deepconvlstm", 1, 3, seed=0)
    train_model(model, x[:200], y[:200], TrainConfig(epochs=8, lr=3e-3, batch_size=50), progress=False)
    acc = np.mean(predict(model, x[200:]).argmax(1) == y[200:])
    assert acc > 0.8, acc
