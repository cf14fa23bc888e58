"""Cost model of the paper's grid: measured per-window costs and the arithmetic that extrapolates them."""

import pandas as pd
import pytest

from leakage_core.study import REAL_SIZE, extrapolate_costs, measure_costs


def test_extrapolation_is_the_stated_arithmetic():
    measured = pd.DataFrame(
        {"update ms/window": [0.5, 0.1], "train ms/window": [2.0, 0.4]},
        index=pd.MultiIndex.from_tuples([("wear", "deepconvlstm"), ("wetlab", "tinyhar")], names=["dataset", "model"]),
    )
    out = extrapolate_costs(measured, epochs=10, samplers=3, states=2)
    w = REAL_SIZE["wear"]
    n = w["subjects"] * w["windows_per_subject"]
    assert out.loc[("wear", "deepconvlstm"), "windows (real size)"] == n
    assert out.loc[("wear", "deepconvlstm"), "grid h (extrapolated)"] == pytest.approx(n * 3 * 2 * 0.5 / 3.6e6)
    expected_train = w["subjects"] * 10 * (w["subjects"] - 1) * w["windows_per_subject"] * 2.0 / 3.6e6
    assert out.loc[("wear", "deepconvlstm"), "training h (extrapolated)"] == pytest.approx(expected_train)
    share = out["training h (extrapolated)"] / (out["training h (extrapolated)"] + out["grid h (extrapolated)"])
    pd.testing.assert_series_equal(out["training share"], share, check_names=False)
    fewer = extrapolate_costs(measured, epochs=10, folds={"wear": 4, "wetlab": 4})
    assert fewer.loc[("wear", "deepconvlstm"), "training h (extrapolated)"] == pytest.approx(expected_train * 4 / 18)


def test_measure_costs_returns_positive_per_window_costs():
    m = measure_costs(models=("tinyhar",), profiles=("wetlab",), train_batches=1, repeat=1, progress=False)
    assert list(m.index) == [("wetlab", "tinyhar")]
    row = m.iloc[0]
    assert row["channels"] == 3 and row["classes"] == 9
    assert row["update ms/window"] > 0 and row["train ms/window"] > 0
