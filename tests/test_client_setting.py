"""The client's setting: one validated object, its batches and seeds, its clean update; the LOSO split."""

from dataclasses import FrozenInstanceError, fields

import numpy as np
import pytest

from leakage_core.data import make_synthetic
from leakage_core.federated import (
    LDP,
    SAMPLERS,
    ClientSetting,
    clean_update,
    client_update,
    fedavg_update,
    fedsgd_update,
    make_batches,
)
from leakage_core.models import build_model
from leakage_core.study import SETTING_COLUMNS, Setting


@pytest.fixture(scope="module")
def data():
    return make_synthetic("wetlab", n_subjects=3, minutes=2, seed=0)


def test_defaults_are_the_papers_single_step_and_frozen():
    s = ClientSetting()
    assert (s.sampler, s.batch_size, s.n_steps, s.lr, s.ldp, s.scaling, s.seed, s.mode) == (
        "shuffle",
        100,
        1,
        1e-4,
        None,
        "none",
        0,
        "train",
    )
    with pytest.raises(FrozenInstanceError):
        s.batch_size = 5
    with pytest.raises(TypeError):
        ClientSetting("sequential")  # keyword-only: no silent mix-up of positions
    assert hash(ClientSetting(ldp=LDP(sigma=0.1))) == hash(ClientSetting(ldp=LDP(sigma=0.1)))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sampler": "random"}, r"sampler must be one of \('shuffle', 'sequential', 'balanced'\), got 'random'\."),
        ({"batch_size": 0}, "batch_size must be a positive integer, got 0"),
        ({"batch_size": 10.0}, "batch_size must be a positive integer, got 10.0"),
        ({"n_steps": 3}, "n_steps=3 must divide batch_size=100"),
        ({"lr": -1e-3}, "lr must be a positive number, got -0.001"),
        ({"ldp": 0.1}, "ldp must be None or a leakage_core.federated.LDP"),
        ({"scaling": "zscore"}, "scaling must be one of"),
        ({"seed": True}, "seed must be an integer >= 0, got True"),
        ({"mode": "test"}, "mode must be one of"),
    ],
)
def test_bad_field_gives_one_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message) as err:
        ClientSetting(**kwargs)
    assert "\n" not in str(err.value)


def test_study_setting_extends_it_with_one_check_per_field():
    assert {f.name for f in fields(ClientSetting)} < {f.name for f in fields(Setting)}
    assert set(SETTING_COLUMNS) == {f.name for f in fields(Setting)} and len(SETTING_COLUMNS) == len(fields(Setting))
    st = Setting("tinyhar", sampler="sequential")
    assert isinstance(st, ClientSetting) and st.batches(np.zeros(250, dtype=np.int64))[1][0] == 100
    with pytest.raises(ValueError, match="sampler must be one of"):  # the client's check, reached through Setting
        Setting("tinyhar", sampler="random")
    with pytest.raises(ValueError, match="class_weighted must be True or False"):
        Setting("tinyhar", class_weighted="yes")


def test_ldp_clipping_all_layers_is_refused_as_a_defence_when_built():
    from leakage_core.models import TrainConfig

    all_layers = LDP(sigma=0.1, rho=0.1, scope="all")
    builds = (
        lambda: ClientSetting(defense=all_layers),
        lambda: Setting("tinyhar", defense=all_layers),
        lambda: Setting("tinyhar", state="trained", defense=LDP(rho=0.1, scope="all")),
        lambda: TrainConfig(defense=all_layers),
    )
    for build in builds:
        with pytest.raises(ValueError, match=r"scope='all'.*Use the setting's ldp=.*scope='last_layer'") as err:
            build()
        assert "\n" not in str(err.value) and "rest_norm" not in str(err.value)
    # where it belongs, as the setting's ldp, it is accepted; so are the last layer's clipping and noise alone
    assert ClientSetting(ldp=all_layers).ldp == all_layers
    assert Setting("tinyhar", ldp=all_layers).ldp == all_layers
    assert ClientSetting(defense=LDP(sigma=0.1, rho=0.1)).defense == LDP(sigma=0.1, rho=0.1)
    assert TrainConfig(defense=LDP(sigma=0.1, scope="all")).defense.scope == "all"  # no clipping: nothing missing


def test_batches_and_seeds_follow_the_sampler(data):
    labels = data.subjects[1].labels
    for sampler in SAMPLERS:
        s = ClientSetting(sampler=sampler, batch_size=50, seed=3)
        got, want = s.batches(labels), make_batches(labels, 50, sampler, seed=3)
        assert len(got) == len(want) and all(np.array_equal(a, b) for a, b in zip(got, want))
    assert ClientSetting(seed=3).batch_seed(4) == 7


def test_clean_update_is_the_clients_fedsgd_or_fedavg_update(data):
    model = build_model("tinyhar", data.n_channels, data.n_classes, seed=0)
    sub = data.subjects[2]
    x, y = sub.windows[:100], sub.labels[:100]
    sgd, rest = clean_update(model, x, y, ClientSetting(seed=1), batch=2)
    ref = fedsgd_update(model, x, y, seed=3)
    np.testing.assert_array_equal(sgd.bias_grad, ref.bias_grad)
    assert rest is None
    avg, rest = clean_update(model, x, y, ClientSetting(n_steps=2, lr=1e-3), batch=1, rest_norm=True)
    ref = fedavg_update(model, x, y, n_steps=2, lr=1e-3, seed=1)
    np.testing.assert_array_equal(avg.weight_grad, ref.weight_grad)
    assert rest == client_update(model, x, y, n_steps=2, lr=1e-3, seed=1)[1] > 0


def test_loso_split_is_the_client_and_the_others(data):
    split = data.loso(2)
    assert split.held_out == 2 and split.client is data.subjects[2] and split.others == (1, 3)
    x, y = split.aux
    want_x, want_y = data.windows_of([1, 3])
    np.testing.assert_array_equal(x, want_x)
    np.testing.assert_array_equal(y, want_y)
    assert split.aux is split.aux  # concatenated once
    with pytest.raises(ValueError, match=r"held_out must be one of the subjects \[1, 2, 3\], got 9"):
        data.loso(9)


@pytest.mark.parametrize("sampler", ["shuffle", "sequential", "balanced"])
def test_the_update_records_the_protocols_sampler(data, sampler):
    model = build_model("tinyhar", data.n_channels, data.n_classes)
    x, y = data.subjects[1].windows[:20], data.subjects[1].labels[:20]
    sgd, _ = clean_update(model, x, y, ClientSetting(sampler=sampler, batch_size=20), batch=0)
    avg, _ = clean_update(model, x, y, ClientSetting(sampler=sampler, batch_size=20, n_steps=2), batch=0)
    assert sgd.sampler == avg.sampler == sampler
    with pytest.raises(ValueError, match="sampler must be"):
        type(sgd)(sgd.weight_grad, sgd.bias_grad, 20, sampler=3)
