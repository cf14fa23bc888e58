"""Smoke tests of the figure helpers and the package's cheap, lazy import."""

import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
import pytest

from leakage_core.book import plots, setup_notebook


def test_plots_return_axes():
    names = ["null", "a", "b"]
    ax = plots.plot_count_estimate(np.array([5, 3, 0]), np.array([4.5, 3.2, 0.3]), names, title="t")
    assert len(ax.patches) == 6
    ax = plots.plot_value_histograms({"m": np.random.default_rng(0).normal(size=100)}, xlabel="x")
    assert ax.get_xlabel() == "x"
    ax = plots.plot_label_timelines({1: np.repeat([0, 1, 0, 2], 50)}, names, sampling_rate=50)
    assert len(ax.collections) == 3
    axes = plots.plot_class_shares({"d": pd.Series([0.7, 0.2, 0.1], index=names)})
    assert len(axes) == 1
    assert plots.class_colors(names)["null"] == (0.85, 0.85, 0.85, 1.0)


def test_plot_input_errors():
    with pytest.raises(ValueError, match="length C"):
        plots.plot_count_estimate(np.array([1, 2]), np.array([1, 2, 3]), ["a", "b"])


def test_import_is_cheap_and_lazy():
    code = "import sys, leakage_core; assert 'torch' not in sys.modules; leakage_core.LastLayerUpdate; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_top_level_exports_are_the_owners_objects():
    import importlib

    import leakage_core

    owners = {
        "HARDataset": "data",
        "SubjectData": "data",
        "load_dataset": "data",
        "load_real": "data",
        "make_synthetic": "data",
        "LastLayerUpdate": "federated",
        "make_batches": "federated",
        "build_model": "models",
        "ATTACKS": "attacks",
        "Setting": "study",
        "run_grid": "study",
        **{
            m: "metrics"
            for m in ("class_acc", "class_acc_per_class", "label_confusion", "le_acc", "le_recall", "ln_acc")
        },
    }
    assert set(leakage_core.__all__) == set(owners) | {"__version__"}
    for name, owner in owners.items():
        assert getattr(leakage_core, name) is getattr(importlib.import_module(f"leakage_core.{owner}"), name), name
    assert isinstance(leakage_core.__version__, str) and leakage_core.__version__
    with pytest.raises(AttributeError):
        _ = leakage_core.nope


def test_setup_notebook_seeds():
    import torch

    setup_notebook(seed=3)
    a = (np.random.rand(), torch.rand(1).item())
    setup_notebook(seed=3)
    assert a == (np.random.rand(), torch.rand(1).item())


def test_no_activity_shares_nulls_grey():
    names = ["null"] + [f"activity {k}" for k in range(18)]  # WEAR: 18 activities
    colors = plots.class_colors(names)
    assert colors["null"] == plots.NULL_COLOR
    activity = [colors[n] for n in names[1:]]
    assert len(set(activity)) == 18  # all distinct
    for r, g, b, _ in activity:
        assert max(r, g, b) - min(r, g, b) > 0.05, "an activity is drawn in a grey like NULL"
