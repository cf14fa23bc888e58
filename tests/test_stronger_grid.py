"""Chapter 15's grid: its settings and attacks, and what the committed file holds."""

from __future__ import annotations

from pathlib import Path

from leakage_core.attacks import ATTACKS, parse_key, resolve_attacks
from leakage_core.study import (
    ATTACKED,
    STRONGER_ATTACKS,
    STRONGER_PROFILES,
    STRONGER_STEPS,
    load_results,
    provenance,
    study_grids,
)

RESULTS = Path(__file__).resolve().parents[1] / "results"


def _grids():
    return [g for g in study_grids() if g.name == "stronger"]


def test_the_grid_has_every_setting_and_attack_it_claims():
    grids = _grids()
    assert [g.profile for g in grids] == list(STRONGER_PROFILES)
    for grid in grids:
        cells = {(s.bias, s.batch_size, s.n_steps) for s in grid.settings}
        assert cells == {(b, n, s) for b, steps in STRONGER_STEPS.items() for n, s in steps}
        per_cell = {(s.model, s.state, s.sampler) for s in grid.settings}
        assert len(per_cell) == 12 and len(grid.settings) == 12 * len(cells)  # 2 models x 2 states x 3 samplers
        names = {s.name for s in resolve_attacks(ATTACKS, grid.attacks)}  # every key resolves in the registry
        assert {"llg", "llg_star", "llbg", "ebi", "ilrg", "geng", "dimitrov", "lmmse"} <= names
        assert {"blind_uniform", "blind_prior"} <= names


def test_the_committed_grid_leaves_out_exactly_the_attacks_that_read_the_bias():
    table = load_results("stronger", "wetlab", root=RESULTS)
    readers = {k for k, opts in STRONGER_ATTACKS.items() if ATTACKS[parse_key(k)[0]].build(**opts).reads_bias}
    assert readers == {"llbg", "ebi", "ilrg", "llbg:aux", "geng:bias", "dimitrov:bias"}
    assert set(table[table["bias"]].attack) == set(STRONGER_ATTACKS)
    assert set(table[~table["bias"]].attack) == set(STRONGER_ATTACKS) - readers
    assert sorted(table.subject.unique()) == list(ATTACKED)
    folds = provenance(RESULTS)["grids"]["stronger-wetlab.csv.gz"]["trained_folds"]
    without = [f for f in folds if f.get("bias") is False]
    assert len(without) == len(folds) / 2 == 2 * len(ATTACKED)  # both models, every fold, with and without bias
    assert all(f["held_out"] not in f["training_subjects"] for f in folds)
