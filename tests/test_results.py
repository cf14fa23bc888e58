"""The committed study results (results/) are what the engine computes, and they say where they came from.

A random slice of untrained (grid file, client, setting) cells is recomputed from scratch with the engine
and must give identical counts on >= 99 % of batches (the tolerance covers floating-point differences
between machines). Trained cells depend on the cached LOSO checkpoints (see ``_affordable_cells``). The slice is
drawn with a fixed seed, so every run checks the same cells and a failure replays; set
LEAKAGE_HAR_SLICE_SEED to another integer to check another slice.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leakage_core import study
from leakage_core.data import PROFILES
from leakage_core.study import Setting
from leakage_core.federated import LDP

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
SETTING_COLUMNS = list(study.SETTING_COLUMNS)  # the one list, every field of Setting


def _seed() -> int:
    env = os.environ.get("LEAKAGE_HAR_SLICE_SEED")
    return int(env) if env else 0


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
    # 20 grids hold ~11 MB (Chapter 17's defences grid alone 3.9 MB); a bound, so that a grid of raw floats or a
    # forgotten debugging dump does not slip into the repository
    assert total < 12e6, f"results/ holds {total / 1e6:.1f} MB; keep committed results small"


def _affordable_cells() -> list[tuple[study.StudyGrid, pd.Series]]:
    """Every (grid, client, setting) cell that can be recomputed bit for bit in CI: the untrained ones.

    Trained cells need the LOSO checkpoint the results were computed with: a model retrained on another
    machine or with another number of torch threads differs in its last bits, and its counts differ on many
    batches (measured: a TinyHAR fold retrained with 2 threads instead of 1 matched on 16 % of batches).
    """
    out = []
    for grid in study.study_grids():
        if not (RESULTS / grid.file).is_file():  # a grid not computed yet (e.g. the defences grid before its run)
            continue
        table = study.load_results(grid.name, grid.profile, root=RESULTS)
        ok = table.state == "untrained"
        for _, cell in table[ok].drop_duplicates(["subject"] + SETTING_COLUMNS).iterrows():
            out.append((grid, cell))
    return out


@pytest.mark.parametrize("draw", range(3))
def test_random_slice_recomputes_identically(draw):
    """Recompute a random untrained cell of the committed results from scratch."""
    rng = np.random.default_rng([_seed(), draw])
    cells = _affordable_cells()
    grid, cell = cells[rng.integers(len(cells))]
    table = study.load_results(grid.name, grid.profile, root=RESULTS)
    check = study.recompute_slice(
        table, int(cell.subject), grid=grid.name, dataset=grid.profile, **{c: _plain(cell[c]) for c in SETTING_COLUMNS}
    )
    share = check.attrs["share_identical"]
    assert len(check) > 0 and share >= 0.99, (
        f"{grid.file} subject {cell.subject} {dict(cell[SETTING_COLUMNS])}: only {share:.1%} of batches identical"
    )


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


def test_recompute_slice_detects_a_changed_count():
    table = study.load_results("short_clients", "wetlab", root=RESULTS)
    pick = dict(dataset="wetlab", model="tinyhar", state="untrained", sampler="sequential")
    rows = table[(table.subject == study.ATTACKED[0]) & (table.model == "tinyhar") & (table.sampler == "sequential")]
    tampered = table.copy()
    k = rows.index[0]
    pred = tampered.at[k, "pred"].copy()
    pred[0], pred[1] = pred[0] - 1 if pred[0] else pred[0] + 1, pred[1] + 1 if pred[0] else pred[1] - 1
    tampered.at[k, "pred"] = pred
    with pytest.raises(ValueError, match="pass grid="):
        study.recompute_slice(table, study.ATTACKED[0], **pick)
    assert study.recompute_slice(table, study.ATTACKED[0], grid="short_clients", **pick).attrs["share_identical"] == 1.0
    bad = study.recompute_slice(tampered, study.ATTACKED[0], grid="short_clients", **pick)
    assert not bad["same"].all() and bad.attrs["share_identical"] == pytest.approx(1 - 1 / len(rows))
    with pytest.raises(ValueError, match="exactly one"):
        study.recompute_slice(table, study.ATTACKED[0], dataset="wetlab", state="untrained")


def test_tidy_round_trip_and_clear_errors(tmp_path):
    df = pd.DataFrame(
        {
            "subject": [1],
            "attack": ["llg"],
            "batch": [0],
            "true": [np.array([3, 0, 97])],
            "pred": [np.array([2, 1, 97])],
        }
    )
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
    for profile in PROFILES:
        data = study.study_dataset(profile)
        minutes = [data.subjects[s].n_windows * data.window_step / data.sampling_rate / 60 for s in study.ATTACKED]
        assert min(minutes) >= 40, f"{profile}: attacked clients must have real recording lengths, got {minutes}"
    names = {g.file for g in study.study_grids()}
    assert len(names) == len(study.study_grids())
    assert any(isinstance(s.ldp, LDP) and s.ldp.scope == "all" for g in study.study_grids() for s in g.settings)


def _length_grids() -> list[study.StudyGrid]:
    return [g for g in study.study_grids() if g.name == "training_length"]


@pytest.mark.parametrize("grid", _length_grids(), ids=lambda g: g.file)
def test_training_length_grid_checks_that_hold_on_any_cpu(grid):
    """What of the trained-only grid does not depend on the CPU's vector kernels: batches, folds, the table.

    Its counts come from trained models (never recomputed here, see ``_affordable_cells``), but the true
    counts of every batch depend only on the data and the sampler, and its provenance must hold one
    record per snapshot (model, epochs, held-out client) with the time spent training up to it.
    """
    table = study.load_results(grid.name, grid.profile, root=RESULTS)
    assert (table.state == "trained").all() and set(table.epochs) == {s.epochs for s in grid.settings}
    first = table[
        (table.model == table.model.iloc[0])
        & (table.epochs == table.epochs.iloc[0])
        & (table.attack == table.attack.iloc[0])
    ]
    key = ["subject", "sampler", "batch"]
    reference = {tuple(r[key]): r["true"].tolist() for _, r in first.iterrows()}
    assert all(reference[tuple(r[key])] == r["true"].tolist() for _, r in table.iterrows())
    single = study.load_results("single_step", grid.profile, root=RESULTS)
    single = single[
        (single.state == "untrained")
        & (single.attack == table.attack.iloc[0])
        & (single.model == table.model.iloc[0])
        & single.subject.isin(grid.subjects)
    ]
    assert {tuple(r[key]): r["true"].tolist() for _, r in single.iterrows()} == reference

    folds = pd.DataFrame(study.provenance(RESULTS)["grids"][grid.file]["trained_folds"])
    wanted = {(s.model, s.epochs, k) for s in grid.settings for k in grid.subjects}
    assert sorted(zip(folds.model, folds.epochs, folds.held_out)) == sorted(wanted)
    assert folds.macro_f1.between(0, 1).all() and (folds.resumed_from < folds.epochs).all()
    for _, fold in folds.groupby(["model", "held_out"]):
        assert fold.sort_values("epochs").wall_time_s.is_monotonic_increasing  # snapshots of one run
    assert study.provenance(RESULTS)["grids"][grid.file]["training_time_s"] >= folds.wall_time_s.max()
    summary = study.training_length_table(table, study.provenance(RESULTS))
    assert (summary["n"] == len(grid.subjects)).all() and summary["mean"].between(0, 1).all()
