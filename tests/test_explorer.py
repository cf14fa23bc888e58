"""The explorer (Chapter 13): its plain function agrees with the public pipeline, and its view and panel work.

The reference in every comparison is computed with the public API directly (``build_model`` /
``fold_model``, ``attack_client``, ``fedsgd_update`` / ``fedavg_update``, the metrics), never with the
explorer's own helpers.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leakage_core.book import explorer
from leakage_core.attacks import ATTACKS, BLIND, blind_prior, blind_uniform, label_shares, counts_only_update
from leakage_core.data import make_synthetic
from leakage_core.study import attack_client
from leakage_core.book import (
    EXPLORER_DATA,
    EXPLORER_TRAINING,
    ExplorerView,
    Scores,
    advantage_scores,
    explore,
    plot_explorer,
    views_table,
)
from leakage_core.metrics import ADVANTAGE_METRICS, advantage, class_acc, count_f1, le_acc, ln_acc
from leakage_core.models import build_model
from leakage_core.federated import LDP, ClientSetting, fedavg_update, fedsgd_update


def _reference(view: ExplorerView, model) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True counts, predicted counts and bias gradient of the view's batch, via the public pipeline."""
    data = make_synthetic(view.profile, **EXPLORER_DATA)
    client = data.subjects[view.client]
    ldp = None if view.sigma is None and view.rho is None else LDP(sigma=view.sigma, rho=view.rho)
    aux = data.windows_of([s for s in data.subject_ids if s != view.client])
    setting = ClientSetting(
        sampler=view.sampler,
        batch_size=view.batch_size,
        n_steps=view.n_steps,
        lr=explorer.FEDAVG_LR,
        ldp=ldp,
        seed=view.seed,
    )
    df = attack_client(
        model, client.windows, client.labels, setting, attacks=[view.attack], aux=aux, max_batches=view.batch + 1
    )
    row = df[df["batch"] == view.batch].iloc[0]
    from leakage_core.federated import make_batches

    idx = make_batches(client.labels, view.batch_size, view.sampler, seed=view.seed)[view.batch]
    x, y = client.windows[idx], client.labels[idx]
    if view.n_steps == 1:
        update = fedsgd_update(model, x, y, seed=view.seed + view.batch, ldp=ldp)
    else:
        update = fedavg_update(
            model, x, y, n_steps=view.n_steps, lr=explorer.FEDAVG_LR, seed=view.seed + view.batch, ldp=ldp
        )
    return row["true"], row["pred"], update.bias_grad


def _check_against_reference(view: ExplorerView, model) -> None:
    true, pred, bias = _reference(view, model)
    assert view.true_counts == tuple(int(v) for v in true)
    assert view.recovered_counts == tuple(int(v) for v in pred)
    np.testing.assert_allclose(view.bias_grad, bias, rtol=0, atol=1e-12)
    assert view.ln_acc == ln_acc(true, pred)
    assert view.le_acc == le_acc(true, pred)
    assert view.class_acc == class_acc(true[None, :], pred[None, :])
    assert view.count_f1 == count_f1(true[None, :], pred[None, :])


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(sampler="sequential", attack="ebi", batch=2, n_steps=2),
        dict(profile="wear", model="tinyhar", attack="llg_star", sigma=0.01, rho=0.1, client=3, batch_size=50, batch=4),
        dict(attack="llg_plus", sampler="balanced", seed=2, batch=1),  # needs the server's auxiliary data
        dict(attack="ilrg", n_steps=5, sigma=0.003, client=2),
    ],
)
def test_explore_equals_the_public_pipeline_untrained(kwargs):
    view = explore(**kwargs)
    data = make_synthetic(view.profile, **EXPLORER_DATA)
    model = build_model(view.model, data.n_channels, data.n_classes, seed=view.seed)
    _check_against_reference(view, model)
    assert view.training_subjects == () and view.model_macro_f1 is None
    assert view.n_batches == data.subjects[view.client].n_windows // view.batch_size


def _blind_reference(view: ExplorerView) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The two blind guesses of the view's batch from the public functions: N, C and the other subjects' labels."""
    data = make_synthetic(view.profile, **EXPLORER_DATA)
    update = counts_only_update(view.batch_size, data.n_classes)  # zero gradients: only N and C
    others = data.windows_of([s for s in data.subject_ids if s != view.client])[1]
    uniform = blind_uniform(update)
    prior = blind_prior(update, label_shares(others, data.n_classes))
    return tuple(int(v) for v in uniform), tuple(int(v) for v in prior)


def test_blind_guesses_read_no_gradient():
    """Same blind histograms whatever the attack, the model, its state, S or LDP: they read only N and C."""
    base = explore()
    assert (base.blind_uniform_counts, base.blind_prior_counts) == _blind_reference(base)
    assert sum(base.blind_uniform_counts) == sum(base.blind_prior_counts) == base.batch_size
    for kwargs in (
        dict(attack="ebi"),
        dict(attack="ilrg", sigma=0.1),
        dict(rho=0.01, sigma=1.0),
        dict(model="tinyhar", n_steps=5),
        dict(state="trained", attack="llg_star"),
    ):
        view = explore(**kwargs)
        assert view.true_counts == base.true_counts
        assert (view.bias_grad != base.bias_grad) == (kwargs.keys() != {"attack"})  # another update, same guess
        assert view.blind_uniform_counts == base.blind_uniform_counts
        assert view.blind_prior_counts == base.blind_prior_counts
        assert (view.blind_uniform_scores, view.blind_prior_scores, view.blind_scores) == (
            base.blind_uniform_scores,
            base.blind_prior_scores,
            base.blind_scores,
        )
    # another batch and size: the guesses follow N, the prior the other subjects' shares
    other = explore(client=3, batch_size=50, batch=2, sampler="sequential")
    assert (other.blind_uniform_counts, other.blind_prior_counts) == _blind_reference(other)


def test_blind_scores_and_advantage():
    view = explore()  # LLBG on an untrained model recovers this batch exactly
    assert view.recovered_counts == view.true_counts
    assert view.scores == Scores(1.0, 1.0, 1.0, 1.0) and view.advantage == Scores(1.0, 1.0, 1.0, 1.0)
    assert Scores._fields == ADVANTAGE_METRICS
    true = np.array(view.true_counts)
    for counts, scores in (
        (view.blind_uniform_counts, view.blind_uniform_scores),
        (view.blind_prior_counts, view.blind_prior_scores),
    ):
        pred = np.array(counts)
        assert scores == Scores(
            ln_acc(true, pred), le_acc(true, pred), class_acc(true[None], pred[None]), count_f1(true[None], pred[None])
        )
    assert view.blind_scores == Scores(*map(max, view.blind_uniform_scores, view.blind_prior_scores))
    assert all(b < 1 for b in view.blind_scores)
    # a blind guess attacking the batch has no advantage over the better guess (0 where it is the better one)
    for name in BLIND:
        guess = explore(attack=name)
        own = guess.blind_uniform_scores if name == "blind_uniform" else guess.blind_prior_scores
        assert guess.scores == own and all(a <= 0 for a in guess.advantage)
        assert all(a == 0 for a, s, b in zip(guess.advantage, own, guess.blind_scores) if s == b)
    # a real attack: the advantage is metrics.advantage per metric
    ebi = explore(attack="ebi", batch=2)
    assert ebi.advantage == Scores(*map(advantage, ebi.scores, ebi.blind_scores))
    # no room beyond a perfect guess: None, not NaN (views stay comparable)
    adv = advantage_scores(Scores(1.0, 0.5, 0.9, 0.2), Scores(1.0, 0.0, 0.8, 0.6))
    assert adv.ln_acc is None and adv[1:] == pytest.approx((0.5, 0.5, -1.0))


def test_score_tables_hold_the_view_values():
    exact, ebi = explore(), explore(attack="ebi", batch=2)
    table = ebi.score_table()
    assert list(table.columns) == ["LnAcc", "LeAcc", "ClassAcc", "count-F1"]
    assert table.loc["ebi"].tolist() == list(ebi.scores)
    assert table.loc["blind guess (better of the two)"].tolist() == list(ebi.blind_scores)
    assert table.loc["advantage over the blind guess"].tolist() == list(ebi.advantage)
    both = views_table({"exact": exact, "ebi": ebi})
    assert list(both.index) == ["exact", "ebi"] and both.shape == (2, 9)
    assert both.loc["ebi", ("count-F1", "advantage")] == ebi.advantage.count_f1
    assert both.loc["exact", ("LnAcc", "blind")] == exact.blind_scores.ln_acc
    assert (both.xs("advantage", axis=1, level=1).loc["exact"] == 1).all()
    with pytest.raises(ValueError, match="metric"):
        views_table({"exact": exact}, metrics=("f1",))
    with pytest.raises(ValueError, match="ExplorerView"):
        views_table({"x": exact.scores})


def test_trained_state_is_the_loso_checkpoint_and_never_attacks_a_training_subject(tmp_path):
    from leakage_core.models import TrainConfig, fold_model

    view = explore(model="tinyhar", state="trained", client=2, batch=1, attack="ebi", cache_dir=tmp_path)
    data = make_synthetic(view.profile, **EXPLORER_DATA)
    assert 2 not in view.training_subjects
    assert view.training_subjects == tuple(s for s in data.subject_ids if s != 2)
    assert 0.0 <= view.model_macro_f1 <= 1.0
    model = fold_model(
        data, "tinyhar", held_out=2, config=TrainConfig(seed=0, **EXPLORER_TRAINING), cache_dir=tmp_path, progress=False
    )  # loaded from the checkpoint the explorer trained
    assert list((tmp_path / "checkpoints").glob("*.pt"))
    _check_against_reference(view, model)
    # another client gets its own model, which has not seen it either
    other = explore(model="tinyhar", state="trained", client=3, attack="ebi", cache_dir=tmp_path)
    assert 3 not in other.training_subjects and 2 in other.training_subjects


def test_a_model_that_saw_the_client_is_refused(tmp_path, monkeypatch):
    from leakage_core.models import training

    def seen_model(dataset, model_name, held_out, **_):
        net = build_model(model_name, dataset.n_channels, dataset.n_classes, seed=0)
        net.training_subjects = tuple(dataset.subject_ids)  # includes the attacked client
        return net

    monkeypatch.setattr(training, "fold_model", seen_model)
    with pytest.raises(ValueError, match="unseen"):
        explore(state="trained", client=1, cache_dir=tmp_path / "seen")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_counts_are_non_negative_integers_summing_to_n(draw):
    n = draw.draw(st.sampled_from([20, 50, 100]), label="N")
    kwargs = dict(
        profile=draw.draw(st.sampled_from(["wetlab", "wear"])),
        model=draw.draw(st.sampled_from(["deepconvlstm", "tinyhar"])),
        sampler=draw.draw(st.sampled_from(["shuffle", "sequential", "balanced"])),
        batch_size=n,
        n_steps=draw.draw(st.sampled_from([s for s in (1, 2, 5) if n % s == 0])),
        sigma=draw.draw(st.sampled_from([None, 0, 0.01, 0.1])),
        rho=draw.draw(st.sampled_from([None, 0, 0.1])),
        attack=draw.draw(st.sampled_from(sorted(ATTACKS))),
        client=draw.draw(st.integers(1, 4)),
        seed=draw.draw(st.integers(0, 2)),
    )
    kwargs["batch"] = draw.draw(st.integers(0, 599 // n - 1))
    view = explore(**kwargs)
    c = len(view.class_names)
    for counts in (view.true_counts, view.recovered_counts):
        assert len(counts) == c and all(isinstance(v, int) and v >= 0 for v in counts)
        assert sum(counts) == n
    assert len(view.bias_grad) == c and all(isinstance(v, float) and np.isfinite(v) for v in view.bias_grad)
    for counts in (view.blind_uniform_counts, view.blind_prior_counts):
        assert len(counts) == c and all(isinstance(v, int) and v >= 0 for v in counts) and sum(counts) == n
    for scores in (view.scores, view.blind_uniform_scores, view.blind_prior_scores, view.blind_scores):
        assert all(isinstance(m, float) and 0.0 <= m <= 1.0 for m in scores)
    assert all(a is None or (isinstance(a, float) and np.isfinite(a) and a <= 1.0) for a in view.advantage)
    assert view.sigma in (None, 0.01, 0.1) and view.rho in (None, 0.1)  # 0 means off
    hash(view)  # plain values only


@pytest.mark.parametrize(
    "kwargs, names",
    [
        (dict(profile="opportunity"), "profile"),
        (dict(model="resnet"), "model"),
        (dict(state="pretrained"), "state"),
        (dict(sampler="random"), "sampler"),
        (dict(attack="dlg"), "attack"),
        (dict(batch_size=0), "batch_size"),
        (dict(batch_size=10.0), "batch_size"),
        (dict(n_steps=3), "n_steps"),
        (dict(sigma=-0.1), "sigma"),
        (dict(rho=float("nan")), "rho"),
        (dict(client=7), "client"),
        (dict(batch=5), "batch"),
        (dict(batch=-1), "batch"),
        (dict(batch_size=1000), "batch_size"),
        (dict(seed=True), "seed"),
    ],
)
def test_bad_input_gives_one_clear_error(kwargs, names):
    with pytest.raises(ValueError, match=names) as err:
        explore(**kwargs)
    assert "\n" not in str(err.value)


def test_moving_a_dp_slider_reuses_the_cached_update():
    explore(batch=3)
    before = explorer._clean_update.cache_info()
    noisy = explore(batch=3, sigma=0.01)
    after = explorer._clean_update.cache_info()
    assert after.hits == before.hits + 1 and after.misses == before.misses
    assert noisy.true_counts == explore(batch=3).true_counts


def test_plot_explorer_draws_one_labelled_view():
    view = explore(attack="ebi")
    ax_h, ax_b = plot_explorer(view)
    c = len(view.class_names)
    assert len(ax_h.patches) == 2 * c + 1 and len(ax_b.patches) == c  # true, recovered, the uniform guess's step
    for ax in (ax_h, ax_b):
        assert ax.get_xlabel() and ax.get_ylabel()
    assert ax_h.get_legend() is not None and ax_b.get_legend() is None
    title = ax_h.get_title(loc="left")
    assert f"LnAcc {view.ln_acc:.2f}" in title and "blind guess" in title and "advantage" in title
    assert f"count-F1 {view.blind_scores.count_f1:.2f}" in title
    assert len(ax_h.lines) == 1 and ax_h.lines[0].get_ydata().tolist() == list(view.blind_prior_counts)  # prior
    assert ax_h.patches[0].get_facecolor() == (0.85, 0.85, 0.85, 1.0)  # NULL's colour
    plt.close("all")
    fig, axes = plt.subplots(2, 2)
    plot_explorer(view, axes=axes[0])
    plot_explorer(view, axes=axes[1], legend=False)
    assert sum(ax.get_legend() is not None for ax in axes.ravel()) == 1
    plt.close("all")
    with pytest.raises(ValueError, match="ExplorerView"):
        plot_explorer({"true_counts": (1,)})


def test_panel_controls_call_the_function():
    pytest.importorskip("ipywidgets")
    from leakage_core.book import explorer_panel

    panel = explorer_panel(attack="ebi", sigma=0.02)
    assert panel.state["error"] is None and panel.state["view"] == explore(attack="ebi", sigma=0.02)
    assert set(panel.controls) == {
        "profile",
        "model",
        "state",
        "sampler",
        "batch_size",
        "n_steps",
        "sigma",
        "rho",
        "attack",
        "client",
        "batch",
        "seed",
    }
    panel.controls["batch"].value = 4
    panel.controls["batch_size"].value = 300  # the client has one batch of 300: the slider follows
    assert panel.controls["batch"].max == 0 and panel.state["view"].batch == 0
    panel.controls["sampler"].value = "sequential"
    assert panel.state["view"] == explore(sampler="sequential", batch_size=300, attack="ebi", sigma=0.02)
    plt.close("all")
    broken = explorer_panel(n_steps=3)  # S = 3 does not divide N = 100: the panel says so instead of drawing
    assert broken.state["view"] is None and "divide" in broken.state["error"]
    with pytest.raises(ValueError, match="no control"):
        explorer_panel(colour="red")
