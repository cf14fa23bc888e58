"""The committed study results (results/) are what the engine computes, and they say where they came from.

A random slice of (grid file, client, setting) cells is recomputed from scratch with the engine and
must give identical counts on >= 99 % of batches (the tolerance covers floating-point differences of
a retrained model on another machine; untrained cells are expected to match exactly). The slice is
drawn with a seed that changes every day, so over time every affordable cell gets checked; set
LEAKAGE_HAR_SLICE_SEED to replay a failing draw.
"""
from __future__ import annotations

import datetime as dt
import gzip
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leakage_core import study
from leakage_core.grid import Setting, run_grid
from leakage_core.updates import LDP

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
SETTING_COLUMNS = ["model", "state", "sampler", "batch_size", "n_steps", "lr", "ldp", "scaling", "seed", "epochs",
                   "train_lr", "class_weighted", "mode"]


def _seed() -> int:
    env = os.environ.get("LEAKAGE_HAR_SLICE_SEED")
    return int(env) if env else int(dt.date.today().strftime("%Y%m%d"))


def _setting_of(grid: study.StudyGrid, row: pd.Series) -> Setting:
    for st in grid.settings:
        rec = st.record()
        if all(rec[c] == row[c] for c in SETTING_COLUMNS):
            return st
    raise AssertionError(f"row {dict(row[SETTING_COLUMNS])} matches no setting of {grid.file}")


def test_provenance_records_every_results_file():
    prov = study.provenance(RESULTS)
    files = sorted(p.name for p in RESULTS.glob("*.csv.gz"))
    assert files and sorted(prov["grids"]) == files
    for name, rec in prov["grids"].items():
        grid = next(g for g in study.study_grids() if g.file == name)
        assert rec["settings"] == [s.record() for s in grid.settings], f"{name} was computed with other settings"
        assert rec["dataset_fingerprint"] == study.study_dataset(rec["dataset"], minutes=grid.minutes).fingerprint()
        assert rec["rows"] == len(pd.read_csv(RESULTS / name)) and rec["wall_time_s"] > 0
        for fold in rec["trained_folds"]:  # leave-one-subject-out: the attacked client is never trained on
            assert fold["held_out"] not in fold["training_subjects"]
    assert prov["versions"]["leakage_core"] and prov["git_revision"] and prov["machine"]["cpu_count"]


def test_results_are_small():
    total = sum(p.stat().st_size for p in RESULTS.iterdir())
    assert total < 8e6, f"results/ holds {total / 1e6:.1f} MB; keep committed results small"


@pytest.mark.parametrize("draw", range(3))
def test_random_slice_recomputes_identically(draw, tmp_path):
    """Recompute one random untrained cell (and, for draw 0, one trained TinyHAR Wetlab-like cell)."""
    rng = np.random.default_rng([_seed(), draw])
    grids = {g.file: g for g in study.study_grids()}
    name = sorted(grids)[rng.integers(len(grids))]
    grid = grids[name]
    table = study.load_results(grid.name, grid.profile, root=RESULTS)
    states = ["untrained"]
    if draw == 0 and grid.profile == "wetlab":
        states.append("trained")
    pool = table[table.state.isin(states) & ((table.state == "untrained") | (table.model == "tinyhar"))]
    cells = pool.drop_duplicates(["subject"] + SETTING_COLUMNS)
    cell = cells.iloc[rng.integers(len(cells))]
    setting = _setting_of(grid, cell)
    stored = pool[(pool.subject == cell.subject) & np.logical_and.reduce([pool[c] == cell[c] for c in SETTING_COLUMNS])]
    fresh = run_grid(study.study_dataset(grid.profile, minutes=grid.minutes), [setting], attacks=grid.attacks, subjects=[int(cell.subject)],
                     cache_dir=tmp_path, progress=False)
    assert len(fresh) == len(stored), f"{name}: {len(fresh)} rows recomputed vs {len(stored)} stored"
    merged = stored.merge(fresh, on=["attack", "batch"], suffixes=("_stored", "_fresh"))
    assert len(merged) == len(stored)
    same = [np.array_equal(a, b) and np.array_equal(c, d) for a, b, c, d in
            zip(merged.true_stored, merged.true_fresh, merged.pred_stored, merged.pred_fresh)]
    share = float(np.mean(same))
    assert share >= 0.99, f"{name} subject {cell.subject} {setting}: only {share:.1%} of batches identical"


def test_tidy_round_trip_and_clear_errors(tmp_path):
    df = pd.DataFrame({"subject": [1], "attack": ["llg"], "batch": [0], "true": [np.array([3, 0, 97])],
                       "pred": [np.array([2, 1, 97])]})
    tidy = study.to_tidy(df, "wear")
    assert tidy.loc[0, "true"] == "3 0 97" and tidy.loc[0, "dataset"] == "wear"
    back = study.from_tidy(tidy)
    assert back.loc[0, "pred"].dtype == np.int64 and back.loc[0, "pred"].tolist() == [2, 1, 97]
    with pytest.raises(FileNotFoundError, match="make results"):
        study.load_results("single_step", root=tmp_path)
    (tmp_path / "provenance.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="no results file single_step-wear.csv.gz"):
        study.load_results("single_step", "wear", root=tmp_path)


def test_study_grids_attack_only_unseen_clients_with_real_lengths():
    for profile in study.PROFILES:
        data = study.study_dataset(profile)
        minutes = [data.subjects[s].n_windows * data.window_step / data.sampling_rate / 60 for s in study.ATTACKED]
        assert min(minutes) >= 40, f"{profile}: attacked clients must have real recording lengths, got {minutes}"
    names = {g.file for g in study.study_grids()}
    assert len(names) == len(study.study_grids())
    assert any(isinstance(s.ldp, LDP) and s.ldp.scope == "all" for g in study.study_grids() for s in g.settings)
