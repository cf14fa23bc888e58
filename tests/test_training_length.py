"""The training-length grid: snapshots per fold in the provenance, the chapter's table and figure."""

import matplotlib

matplotlib.use("Agg")
import pandas as pd
import pytest
import torch

from leakage_core.book import plots
from leakage_core import study
from leakage_core.models import MODELS
from leakage_core.study import run as study_run
from leakage_core.data import make_synthetic
from leakage_core.study import Setting, run_grid, score

EPOCHS = (1, 2)
ATTACKS = ("llbg", "ebi")


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny trained grid (TinyHAR, 2 numbers of epochs, 2 samplers, 2 attacked clients) and its fold records."""
    cache = tmp_path_factory.mktemp("cache")
    data = make_synthetic("wetlab", n_subjects=3, minutes=2, seed=0)
    settings = tuple(
        Setting("tinyhar", state="trained", sampler=sp, epochs=e, train_lr=1e-3)
        for e in EPOCHS
        for sp in ("shuffle", "sequential")
    )
    grid = study.StudyGrid("training_length", "wetlab", settings, ATTACKS, subjects=(1, 2))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        results = run_grid(data, list(settings), attacks=ATTACKS, subjects=[1, 2], cache_dir=cache, progress=False)
        folds = study_run._fold_scores(data, grid, cache)
    finally:
        torch.set_num_threads(threads)
    return results.assign(dataset="wetlab"), {"trained_folds": folds}


def test_the_grid_is_registered_with_every_snapshot():
    grids = [g for g in study.study_grids() if g.name == "training_length"]
    assert [g.profile for g in grids] == list(study.TRAINING_LENGTH_PROFILES)
    for g in grids:
        assert {s.epochs for s in g.settings} == set(study.TRAINING_LENGTH_EPOCHS)
        assert {s.state for s in g.settings} == {"trained"} and g.subjects == study.ATTACKED
        assert len(g.settings) == len(MODELS) * len(study.TRAINING_LENGTH_EPOCHS) * 3


def test_only_flag_selects_the_grid(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(study_run, "run_study", lambda out, grids, **kw: seen.extend(g.file for g in grids))
    assert study_run.main(["--out", str(tmp_path), "--only", "training_length-wetlab"]) == 0
    assert seen == ["training_length-wetlab.csv.gz"]


def test_fold_scores_keep_every_number_of_epochs(tiny):
    _, prov = tiny
    folds = pd.DataFrame(prov["trained_folds"])
    assert sorted(zip(folds.epochs, folds.held_out)) == sorted((e, s) for e in EPOCHS for s in (1, 2))
    assert folds["macro_f1"].between(0, 1).all() and (folds["wall_time_s"] > 0).all()
    assert all(s not in t for s, t in zip(folds.held_out, folds.training_subjects))
    longer = folds[folds.epochs == max(EPOCHS)]
    assert (longer["resumed_from"] == min(EPOCHS)).all()  # the 2-epoch models continued the 1-epoch ones


def test_training_length_table(tiny):
    results, prov = tiny
    table = study.training_length_table(results, prov)
    assert list(table.columns) == ["dataset", "model", "epochs", "metric", "attack", "mean", "std", "n"]
    assert len(table) == len(EPOCHS) * (1 + 2 * len(ATTACKS)) and (table["n"] == 2).all()
    assert list(table["metric"][: 1 + 2 * len(ATTACKS)]) == ["macro_f1"] + ["ln_acc"] * 2 + ["class_acc"] * 2
    folds = pd.DataFrame(prov["trained_folds"])
    for e in EPOCHS:
        f1 = table[(table.epochs == e) & (table.metric == "macro_f1")].iloc[0]
        values = folds.loc[folds.epochs == e, "macro_f1"]
        assert f1["mean"] == pytest.approx(values.mean()) and f1["std"] == pytest.approx(values.std(ddof=1))
        per = score(results[results.epochs == e], by=["attack"], per_client=True)
        for attack in ATTACKS:
            row = table[(table.epochs == e) & (table.metric == "ln_acc") & (table.attack == attack)].iloc[0]
            assert row["mean"] == pytest.approx(per.loc[per.attack == attack, "ln_acc"].mean())
    by_sampler = study.training_length_table(results, prov, by=("model", "epochs", "sampler"))
    assert set(by_sampler["sampler"]) == {"shuffle", "sequential"}
    with pytest.raises(ValueError, match="trained"):
        study.training_length_table(results.assign(state="untrained"), prov)
    with pytest.raises(ValueError, match="no trained-fold record"):
        study.training_length_table(results, {"trained_folds": prov["trained_folds"][:1]})
    with pytest.raises(ValueError, match="has no grid"):
        study.training_length_table(results, {"grids": {}})


def test_plot_training_length(tiny):
    results, prov = tiny
    table = study.training_length_table(results, prov)
    fig, axes = plots.plot_training_length(table)
    assert axes.shape == (3, 1) and axes[0, 0].get_xscale() == "log" and axes[0, 0].get_title() == "tinyhar"
    assert len(axes[0, 0].containers) == 1 and len(axes[1, 0].containers) == len(ATTACKS)  # errorbar containers
    assert [t.get_text() for t in fig.legends[0].texts] == list(ATTACKS)
    two = pd.concat([table, table.assign(model="deepconvlstm")])
    fig, axes = plots.plot_training_length(two, attacks=["ebi"], models=["deepconvlstm", "tinyhar"])
    assert axes.shape == (3, 2) and len(axes[2, 1].containers) == 1
    with pytest.raises(ValueError, match="several datasets"):
        plots.plot_training_length(pd.concat([table, table.assign(dataset="wear")]))
    matplotlib.pyplot.close("all")


def test_training_seconds_count_each_run_once(tiny):
    _, prov = tiny
    folds = pd.DataFrame(prov["trained_folds"])
    longest = folds[folds.epochs == max(EPOCHS)]  # the 2-epoch snapshots hold the 1-epoch ones' seconds too
    assert study_run._training_seconds(prov["trained_folds"]) == pytest.approx(longest.wall_time_s.sum(), abs=0.1)
    assert study_run._training_seconds([]) == 0.0
