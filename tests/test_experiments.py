"""The experiments stage: running attacks over clients and scoring them."""

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
import pytest

from leakage_core.data import make_synthetic
from leakage_core.study import attack_client, attack_clients, check_unseen, mean_scores, run_attacks
from leakage_core.models import build_model, zero_last_layer
from leakage_core.book import plot_confusion
from leakage_core.federated import LDP, ClientSetting, fedsgd_update


@pytest.fixture(scope="module")
def setup():
    data = make_synthetic("wetlab", n_subjects=3, minutes=3, seed=0)
    model = zero_last_layer(build_model("tinyhar", data.n_channels, data.n_classes, seed=0))
    return data, model


def test_run_attacks_with_variants(setup):
    data, model = setup
    s = data.subjects[1]
    u = fedsgd_update(model, s.windows[:100], s.labels[:100])
    out = run_attacks(u, ["llbg", "ilrg"], model=model, options={"llbg:empirical": {"impact": "empirical"}})
    assert set(out) == {"llbg", "ilrg", "llbg:empirical"}
    truth = np.bincount(s.labels[:100], minlength=data.n_classes)
    np.testing.assert_array_equal(out["llbg"], truth)  # zero classifier: exact
    with pytest.raises(ValueError, match="unknown attack"):
        run_attacks(u, ["magic"])


def test_attack_client_rows_and_exactness(setup):
    data, model = setup
    s = data.subjects[1]
    df = attack_client(model, s.windows, s.labels, ClientSetting(sampler="sequential"), attacks=["llbg", "ilrg"])
    n_batches = s.n_windows // 100
    assert len(df) == 2 * n_batches and set(df.columns) >= {"batch", "attack", "true", "pred", "ln_acc"}
    assert (df["ln_acc"] == 1.0).all()
    multi = attack_client(
        model, s.windows, s.labels, ClientSetting(n_steps=5, lr=1e-8), attacks=["llbg"], max_batches=2
    )
    assert len(multi) == 2 and (multi["ln_acc"] == 1.0).all()
    noisy = attack_client(
        model, s.windows, s.labels, ClientSetting(ldp=LDP(sigma=1.0)), attacks=["llbg"], max_batches=2
    )
    assert (noisy["ln_acc"] < 1.0).any()
    with pytest.raises(ValueError, match="setting must be a leakage_core.federated.ClientSetting"):
        attack_client(model, s.windows, s.labels, {"sampler": "sequential"})


def test_attack_clients_and_mean_scores(setup):
    data, model = setup
    res = attack_clients(
        model,
        data,
        samplers=("shuffle", "sequential"),
        attacks=["llbg", "llg_plus", "llg_star"],
        aux_from_others=True,
        progress=False,
    )
    assert set(res["subject"]) == {1, 2, 3} and set(res["sampler"]) == {"shuffle", "sequential"}
    table = mean_scores(res, by=["sampler", "attack"])
    assert list(table.columns) == ["ln_acc", "le_acc", "le_recall", "class_acc", "count_f1"]
    assert table.loc[("shuffle", "llbg"), "class_acc"] == 1.0
    assert ((table >= 0) & (table <= 1)).all().all()


def test_mean_scores_averages_clients_not_batches():
    true = [np.array([10, 0]), np.array([5, 5]), np.array([5, 5])]
    pred = [np.array([10, 0]), np.array([10, 0]), np.array([10, 0])]
    df = pd.DataFrame({"attack": "a", "subject": [1, 2, 2], "true": true, "pred": pred})
    # client 1: LnAcc 1.0; client 2: LnAcc 0.5 on both batches -> mean over clients 0.75 (not 2/3)
    assert mean_scores(df).loc["a", "ln_acc"] == pytest.approx(0.75)


def test_plot_confusion():
    ax = plot_confusion(np.array([[3, 1], [0, 2]]), ["null", "a"], title="t")
    assert ax.get_title() == "t"
    with pytest.raises(ValueError, match="C x C"):
        plot_confusion(np.zeros((2, 3)), ["a", "b"])


def test_experiments_refuse_to_attack_a_training_subject(setup):
    from leakage_core.models import TrainConfig, train_on_subjects

    data, _ = setup
    model = build_model("tinyhar", data.n_channels, data.n_classes, seed=0)
    train_on_subjects(model, data, [1, 2], TrainConfig(epochs=1, lr=1e-3), progress=False)
    assert model.training_subjects == (1, 2)
    with pytest.raises(ValueError, match="subject 2 is in the model's training data"):
        attack_clients(model, data, subjects=[2, 3], attacks=["ebi"], progress=False)
    with pytest.raises(ValueError, match="must be unseen"):
        check_unseen(model, 1)
    check_unseen(model, 1, allow_seen=True)
    check_unseen(model, 3)
    unseen = attack_clients(model, data, subjects=[3], samplers=("shuffle",), attacks=["ebi"], progress=False)
    assert set(unseen["subject"]) == {3}
    seen = attack_clients(
        model, data, subjects=[1], samplers=("shuffle",), attacks=["ebi"], progress=False, allow_seen=True
    )
    assert set(seen["subject"]) == {1}
    with pytest.raises(ValueError, match="non-empty list"):
        train_on_subjects(model, data, [9])


def test_mean_scores_is_the_mean_column_of_score():
    from leakage_core.study import score

    rng = np.random.default_rng(0)
    true = [rng.multinomial(10, [0.5, 0.3, 0.2]) for _ in range(12)]
    pred = [rng.multinomial(10, [0.4, 0.4, 0.2]) for _ in range(12)]
    df = pd.DataFrame(
        {
            "attack": ["b", "a", "blind_uniform"] * 4,
            "sampler": ["s"] * 6 + ["q"] * 6,
            "subject": [1, 1, 1, 2, 2, 2] * 2,
            "true": true,
            "pred": pred,
        }
    )
    means = mean_scores(df, by=["sampler", "attack"])
    assert list(means.index) == sorted(means.index) and "adv_ln_acc" in means.columns
    spread = score(df, by=["sampler", "attack"]).xs("mean", axis=1, level=1).loc[means.index]
    pd.testing.assert_frame_equal(means, spread)


def test_attack_clients_checks_its_options_before_any_work(setup):
    data, model = setup
    with pytest.raises(ValueError, match="attack_clients has no option 'batchsize'"):
        attack_clients(model, data, batchsize=50, progress=False)
    with pytest.raises(ValueError, match=r"samplers must be .* got \['random'\]"):
        attack_clients(model, data, samplers=["random"], progress=False)
    with pytest.raises(ValueError, match=r"subjects must be .* \(\[7\] not among them\)"):
        attack_clients(model, data, subjects=[7], progress=False)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        attack_clients(model, data, batch_size=0, progress=False)
