"""The study's precomputed results: one gzipped tidy CSV per grid in ``results/``, read by the chapters.

:func:`to_tidy` / :func:`from_tidy` convert :func:`~leakage_core.study.run_grid`'s output to and from the
files' layout (count arrays as text); :func:`load_results` and :func:`provenance` read them (the folder is
:func:`~leakage_core.data.results_dir`); :func:`recompute_slice` recomputes one client's rows without any cache
and requires identical counts (the chapters run it live; ``tests/test_results.py`` too).
"""

from __future__ import annotations

import json
import os
from typing import Mapping

import numpy as np
import pandas as pd

from ..data.profiles import PROFILES
from ..data.source import results_dir
from .grid import Setting, run_grid
from ..defenses.base import defense_label
from ..federated import ldp_label
from .grids import LDP_VARIANTS, study_dataset, study_grids


#: version of the results files' layout (written into every record)
FORMAT = 1


# ---------------------------------------------------------------------------------------------
# writing and reading results

_COUNT_COLUMNS = ("true", "pred")


def _encode(counts: np.ndarray) -> str:
    return " ".join(str(int(v)) for v in counts)


def _decode(text: str) -> np.ndarray:
    return np.array([int(v) for v in str(text).split()], dtype=np.int64)


def to_tidy(results: pd.DataFrame, profile: str) -> pd.DataFrame:
    """``run_grid`` rows as a flat table: count arrays as space-separated integers, a ``dataset`` column."""
    out = results.copy()
    for col in _COUNT_COLUMNS:
        out[col] = out[col].map(_encode)
    out.insert(0, "dataset", profile)
    return out


def from_tidy(table: pd.DataFrame) -> pd.DataFrame:
    """The inverse of :func:`to_tidy`: count columns back to int64 arrays."""
    out = table.copy()
    for col in _COUNT_COLUMNS:
        out[col] = out[col].map(_decode)
    return out


def load_results(name: str, profile: str | None = None, root: str | os.PathLike | None = None) -> pd.DataFrame:
    """A precomputed grid as :func:`leakage_core.study.run_grid` returns it (plus a ``dataset`` column).

    Introduced in Chapter 7.

    Parameters
    ----------
    name : {"single_step", "multi_step", "ldp"}
    profile : {"wear", "wetlab"} or None
        One dataset profile, or both (concatenated).
    root : path, optional
        The results folder (default: :func:`results_dir`).
    """
    folder = results_dir(root)
    profiles = PROFILES if profile is None else (profile,)
    frames = []
    for p in profiles:
        path = folder / f"{name}-{p}.csv.gz"
        if not path.is_file():
            known = sorted(f.name for f in folder.glob("*.csv.gz"))
            raise FileNotFoundError(
                f"no results file {path.name} in {folder} (it has {known}); run `make results` to compute it."
            )
        frame = pd.read_csv(path, keep_default_na=False)
        if "bias" not in frame:  # grids computed before classifiers without bias existed
            frame["bias"] = True
        if "defense" not in frame:  # grids computed before defences existed
            frame["defense"] = "none"
        frames.append(frame)
    return from_tidy(pd.concat(frames, ignore_index=True))


def provenance(root: str | os.PathLike | None = None) -> dict:
    """The provenance record written with the results (see :func:`run_study`). Introduced in Chapter 8."""
    return json.loads((results_dir(root) / "provenance.json").read_text(encoding="utf-8"))


def recompute_slice(
    results: pd.DataFrame, subject: int, grid: str | None = None, progress: bool = False, **setting_fields
) -> pd.DataFrame:
    """Recompute one committed cell (a client under one setting) from scratch and compare it with ``results``.

    Introduced in Chapter 9. ``results`` is a table from :func:`load_results`; ``setting_fields`` pick
    exactly one setting of it (e.g. ``dataset="wetlab", model="tinyhar", state="untrained",
    sampler="sequential"``; fields not given must take one value in the selected rows). The cell is
    recomputed with :func:`leakage_core.study.run_grid` on the same study data, without any cache, and the
    stored and fresh rows are merged on ``attack`` and ``batch``.

    Returns
    -------
    pandas.DataFrame
        One row per stored (attack, batch) with ``same`` (True when true and reconstructed counts are
        identical); ``df.attrs["share_identical"]`` is the share of identical rows (0 when a stored row
        has no fresh partner).
    """
    from dataclasses import fields as dataclass_fields

    dataset = setting_fields.pop("dataset")
    rows = results[(results.dataset == dataset) & (results.subject == subject)]
    for key, value in setting_fields.items():
        rows = rows[rows[key] == value]
    names = [f.name for f in dataclass_fields(Setting)]
    cells = rows.drop_duplicates(names)
    if len(cells) != 1:
        raise ValueError(
            f"the selection matches {len(cells)} settings of the results; add fields to pick exactly one "
            f"(e.g. model=, state=, sampler=, ldp=, defense=, batch_size=, n_steps=, scaling=)."
        )
    record = cells.iloc[0]
    ldp = next((v for v in LDP_VARIANTS if ldp_label(v) == record["ldp"]), None)
    objects = {"ldp": ldp, "defense": _defense_named(record["defense"], dataset, grid)}
    setting = Setting(**{n: objects[n] if n in objects else _plain(record[n]) for n in names})
    wanted = set(rows.attack)
    candidates = [
        g
        for g in study_grids()
        if g.profile == dataset
        and (grid is None or g.name == grid)
        and wanted <= set(g.attacks)
        and setting in g.settings  # last: the defences grid builds its settings on first use
    ]
    if not candidates:
        raise ValueError(f"no study grid of {dataset!r} has the setting {setting} with the attacks {sorted(wanted)}.")
    if len({g.minutes for g in candidates}) > 1:
        raise ValueError(f"grids {[g.name for g in candidates]} share this setting on different data; pass grid=.")
    grid_spec = candidates[0]
    attacks = (
        grid_spec.attacks
        if not isinstance(grid_spec.attacks, Mapping)
        else {k: v for k, v in grid_spec.attacks.items() if k in set(rows.attack)}
    )
    fresh = run_grid(
        study_dataset(dataset, minutes=grid_spec.minutes),
        [setting],
        attacks=attacks,
        subjects=[int(subject)],
        progress=progress,
    )
    merged = rows.merge(
        fresh[["attack", "batch", "true", "pred"]], on=["attack", "batch"], how="left", suffixes=("_stored", "_fresh")
    )
    merged["same"] = [
        isinstance(tf, np.ndarray) and np.array_equal(ts, tf) and np.array_equal(ps, pf)
        for ts, tf, ps, pf in zip(merged.true_stored, merged.true_fresh, merged.pred_stored, merged.pred_fresh)
    ]
    out = merged[["attack", "batch", "same"]].reset_index(drop=True)
    out.attrs["share_identical"] = float(out["same"].mean()) if len(out) else 0.0
    return out


def _defense_named(label: str, dataset: str, grid: str | None):
    """The defence of the study grids (of ``dataset``, of ``grid`` if given) whose label is ``label``; None for
    ``"none"``."""
    if label == "none":
        return None
    for g in study_grids():
        if g.profile == dataset and (grid is None or g.name == grid):
            for st in g.settings:
                if st.defense is not None and defense_label(st.defense) == label:
                    return st.defense
    raise ValueError(f"no study grid of {dataset!r} has the defence {label!r}.")


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value
