"""``python -m leakage_core.study``: compute the study's grids into ``results/`` with their provenance.

    python -m leakage_core.study --out results --jobs 2      # = make results

:func:`run_study` runs every grid of :func:`~leakage_core.study.grids.study_grids` with
:func:`~leakage_core.study.run_grid` (cached per client and setting, resumable, parallel) and writes one CSV
per grid, a JSON record per grid and ``provenance.json`` (settings, attacks, data fingerprints, package
versions, git revision, wall time, machine, the trained folds' scores). :func:`add_blind_to_results` adds the
blind references' rows to grids computed without them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from tqdm.auto import tqdm

from ..cache import atomic_write
from .grid import add_blind_references, run_grid
from .grids import ATTACKED, N_SUBJECTS, TRAIN_EPOCHS, TRAIN_LR, StudyGrid, study_dataset, study_grids
from .results import FORMAT, from_tidy, to_tidy


def _git_revision() -> str:
    here = Path(__file__).resolve().parents[1]
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "leakage_core"], cwd=here, capture_output=True, text=True, check=True
        ).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _versions() -> dict[str, str]:
    import joblib
    import torch

    from .. import __version__

    return {
        "leakage_core": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "torch": str(torch.__version__),
        "joblib": joblib.__version__,
    }


def _machine() -> dict[str, Any]:
    from .costs import cpu_info

    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(), **cpu_info()}


def _fold_scores(dataset, grid: StudyGrid, cache_dir) -> list[dict]:
    """Macro-F1 and accuracy of every trained model the grid used (from the checkpoints' records).

    One record per distinct trained model and held-out subject: every number of epochs, learning rate,
    weighting, scaling, seed, classifier bias and defence of the grid's trained settings gets its own (the samplers
    share a model); ``bias`` is recorded only for a classifier without one (``False``), and for a model trained
    under a defence (:meth:`Setting.train_config`) ``defense`` (its label), ``defense_key`` and the ``epsilon`` and
    ``delta`` its training recorded (None where the defence gives no guarantee).
    ``wall_time_s`` is the training time of all the model's epochs (those of the run it continued too).
    """
    from ..models.training import fold_model

    out = []
    seen = set()
    for st, config, attacked in _trained_configs(grid):
        if (st.model, config, st.bias) in seen:
            continue
        seen.add((st.model, config, st.bias))
        for s in tqdm(grid.subjects, desc=f"{st.model} folds", leave=False):
            model = fold_model(dataset, st.model, s, config, cache_dir=cache_dir, progress=False, bias=st.bias)
            info = model.checkpoint_info
            out.append(
                {
                    "dataset": dataset.name,
                    "model": st.model,
                    **({} if st.bias else {"bias": False}),
                    **_fold_defense(config, info),
                    **({} if attacked else {"attacked": False}),
                    "held_out": s,
                    "epochs": st.epochs,
                    "train_lr": st.train_lr,
                    "macro_f1": info["macro_f1"],
                    "accuracy": info["accuracy"],
                    "seconds_per_epoch": info["seconds_per_epoch"],
                    "wall_time_s": info["wall_time_s"],
                    "resumed_from": info.get("resumed_from", 0),
                    "n_train_windows": info["n_train_windows"],
                    "training_subjects": info["training_subjects"],
                }
            )
    return out


def _trained_configs(grid: StudyGrid):
    """``(setting, TrainConfig, attacked)`` of every trained model the grid's provenance records.

    The attacked LOSO model of each trained setting, and for a setting whose defence acts on the update (stage
    ``"update"``: the attacked model is the undefended one, as in the paper) also the model trained with that defence
    applied at every training step (``attacked=False``). Training applies it through
    :meth:`~leakage_core.defenses.base.Defense.on_step`, which transforms the classifier's (last layer's) gradient
    only, the layers below train unchanged: this model's macro-F1 is the cost in accuracy of the defence on the
    last layer, not of compressing (top-k, sign, quantisation) or noising every layer of a real client's update.
    """
    from dataclasses import replace

    for st in grid.settings:
        if st.state != "trained":
            continue
        yield st, st.train_config(), True
        if st.defense is not None and st.model_defense() is None:
            yield st, replace(st.train_config(), defense=st.defense), False


def _fold_defense(config, info: Mapping[str, Any]) -> dict[str, Any]:
    """The defence a fold was trained under, for its provenance record (empty without one)."""
    from ..defenses.base import defense_label

    defense = getattr(config, "defense", None)
    if defense is None:
        return {}
    return {
        "defense": defense_label(defense),
        "defense_key": defense.key(),
        "epsilon": info.get("epsilon"),
        "delta": info.get("delta"),
    }


def _training_seconds(folds: Sequence[Mapping[str, Any]]) -> float:
    """Seconds spent training the grid's LOSO models, whenever and in however many sessions they were trained.

    Snapshots of one run record the time of all their epochs, so each run counts once, with its longest snapshot;
    runs with and without a classifier bias, or under different defences, are different runs.
    """
    longest: dict[tuple, float] = {}
    for f in folds:
        key = (f["dataset"], f["model"], f["held_out"], f["train_lr"], f.get("bias", True), f.get("defense"))
        longest[key] = max(longest.get(key, 0.0), float(f.get("wall_time_s", 0.0)))
    return round(sum(longest.values()), 1)


def _defenses_record(grid: StudyGrid) -> dict[str, Any]:
    """``{"defenses": [...]}``: every defence of the grid's settings with its stage, key and epsilon of one update at
    :data:`~leakage_core.defenses.accounting.DEFAULT_DELTA` (None where it gives no guarantee); empty for a grid
    without defences.

    The epsilon is ``defense.epsilon(delta, 1)`` under its default adjacency ``"replace"``: the guarantee for the
    contents of the unit the defence protects (a batch, a window, a label), not only for its presence."""
    from ..defenses.accounting import DEFAULT_DELTA
    from ..defenses.base import defense_label

    seen = {}
    for st in grid.settings:
        d = getattr(st, "defense", None)
        if d is not None and defense_label(d) not in seen:
            eps = d.epsilon(DEFAULT_DELTA, 1)
            seen[defense_label(d)] = {
                "defense": defense_label(d),
                "stage": d.stage,
                "key": d.key(),
                "epsilon_per_update": None if eps is None else float(eps),
                "delta": DEFAULT_DELTA,
            }
    return {"defenses": list(seen.values())} if seen else {}


def _write_json(path: Path, obj: Any) -> None:
    text = json.dumps(obj, indent=1, sort_keys=True, default=str)
    atomic_write(path, lambda p: Path(p).write_text(text, encoding="utf-8"))
    os.chmod(path, 0o644)  # committed files: readable by everyone


def _assemble_provenance(folder: Path) -> dict:
    """``provenance.json`` from the per-grid records next to the results files (safe with several runs)."""
    grids = {}
    for side in sorted(folder.glob("*.json")):
        if side.name != "provenance.json" and (folder / side.name.replace(".json", ".csv.gz")).is_file():
            grids[side.name.replace(".json", ".csv.gz")] = json.loads(side.read_text(encoding="utf-8"))
    latest = max(grids.values(), key=lambda g: g["finished"]) if grids else {}
    record = {
        "format": FORMAT,
        "command": "python -m leakage_core.study --out results",
        "n_subjects": N_SUBJECTS,
        "attacked": list(ATTACKED),
        "train_epochs": TRAIN_EPOCHS,
        "train_lr": TRAIN_LR,
        "git_revision": latest.get("git_revision"),
        "versions": latest.get("versions"),
        "machine": latest.get("machine"),
        "total_wall_time_s": round(sum(g["wall_time_s"] for g in grids.values()), 1),
        "grids": grids,
    }
    _write_json(folder / "provenance.json", record)
    return record


def run_study(
    out: str | os.PathLike = "results",
    grids: Sequence[StudyGrid] | None = None,
    cache_dir: str | os.PathLike | None = None,
    n_jobs: int = 1,
    progress: bool = True,
) -> dict:
    """Compute the study's grids into ``out``: one ``<grid>-<profile>.csv.gz`` each and ``provenance.json``.

    Every (client, setting) result is cached by the engine in ``cache_dir``
    (default: the user cache), so an interrupted run resumes; each results file and its record
    (``<grid>-<profile>.json``: settings, attacks, data fingerprint, versions, git revision, machine,
    wall time, the trained folds' scores, and for a grid with defences each defence's stage, key and epsilon
    per update) are written to a temporary name and renamed, and
    ``provenance.json`` is re-assembled from the records after every grid, so the folder never holds a
    half-written file and several runs on different grids can share it. A grid that comes entirely
    from the cache keeps the wall time recorded when it was computed; ``wall_time_s`` is the wall time of
    the session that finished the grid, while ``training_time_s`` adds up the training of its LOSO models
    as recorded in their checkpoints (across sessions). Returns the provenance record.
    """
    from ..cache import cache_root

    grids = study_grids() if grids is None else list(grids)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    cache = cache_root(cache_dir)
    datasets = {}
    for grid in grids:
        if (grid.profile, grid.minutes) not in datasets:
            datasets[grid.profile, grid.minutes] = study_dataset(grid.profile, minutes=grid.minutes)
        data = datasets[grid.profile, grid.minutes]
        t0 = time.perf_counter()
        results = run_grid(
            data,
            list(grid.settings),
            attacks=grid.attacks,
            subjects=list(grid.subjects),
            cache_dir=cache,
            n_jobs=n_jobs,
            progress=progress,
        )
        wall = time.perf_counter() - t0
        tidy = to_tidy(results, grid.profile)
        timings = {k: round(v, 1) for k, v in results.attrs["timings"].items()}
        sidecar = folder / grid.file.replace(".csv.gz", ".json")
        folds = _fold_scores(data, grid, cache)
        if timings["client"] == 0 and sidecar.is_file():  # everything came from the cache: keep the real cost
            previous = json.loads(sidecar.read_text(encoding="utf-8"))
            wall, timings = previous["wall_time_s"], previous["engine_timings_s"]
        entry = {
            "grid": grid.name,
            "dataset": grid.profile,
            "subjects": list(grid.subjects),
            "minutes": grid.minutes,
            "dataset_fingerprint": data.fingerprint(),
            "data_source": data.source,
            "minutes_per_subject": {
                str(s): round(data.subjects[s].n_windows * data.window_step / data.sampling_rate / 60, 1)
                for s in data.subject_ids
            },
            "attacks": list(grid.attacks)
            if not isinstance(grid.attacks, Mapping)
            else {k: dict(v) for k, v in grid.attacks.items()},
            "settings": [s.record() for s in grid.settings],
            **_defenses_record(grid),
            "rows": int(len(tidy)),
            "wall_time_s": round(wall, 1),
            "engine_timings_s": timings,
            "trained_folds": folds,
            "training_time_s": _training_seconds(folds),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "git_revision": _git_revision(),
            "versions": _versions(),
            "machine": _machine(),
        }
        atomic_write(folder / grid.file, lambda p, tidy=tidy: tidy.to_csv(p, index=False, compression="gzip"))
        os.chmod(folder / grid.file, 0o644)
        _write_json(sidecar, entry)
        _assemble_provenance(folder)  # provenance.json after every grid, so an interrupted run leaves it current
        if progress:
            print(f"{grid.file}: {len(tidy)} rows in {wall:.0f} s", flush=True)
    return _assemble_provenance(folder)


def add_blind_to_results(out: str | os.PathLike = "results", progress: bool = True) -> dict:
    """Add the blind references' rows to committed grids computed before they existed; returns the provenance.

    For every study grid in ``out`` whose file lacks them, the rows follow from the
    stored true counts and the study data (:func:`leakage_core.study.add_blind_references`); the data's
    fingerprint must match the one recorded with the grid. The file and its record are rewritten
    atomically (the record notes when and by which revision the rows were added), so the command can
    be interrupted and re-run. ``make results`` computes them with the grid directly.
    """
    folder = Path(out)
    datasets = {}
    for grid in study_grids():
        path, sidecar = folder / grid.file, folder / grid.file.replace(".csv.gz", ".json")
        if not (path.is_file() and sidecar.is_file()):
            continue
        results = from_tidy(pd.read_csv(path, keep_default_na=False)).drop(columns="dataset")
        if (grid.profile, grid.minutes) not in datasets:
            datasets[grid.profile, grid.minutes] = study_dataset(grid.profile, minutes=grid.minutes)
        data = datasets[grid.profile, grid.minutes]
        entry = json.loads(sidecar.read_text(encoding="utf-8"))
        if data.fingerprint() != entry["dataset_fingerprint"]:
            raise ValueError(
                f"{path.name} was computed on other data (fingerprint {entry['dataset_fingerprint']}, "
                f"now {data.fingerprint()}); recompute it with `make results`."
            )
        augmented = add_blind_references(results, data)
        if len(augmented) == len(results):
            continue
        tidy = to_tidy(augmented, grid.profile)
        atomic_write(path, lambda p, tidy=tidy: tidy.to_csv(p, index=False, compression="gzip"))
        os.chmod(path, 0o644)
        entry.update(
            rows=int(len(tidy)),
            attacks=list(grid.attacks)
            if not isinstance(grid.attacks, Mapping)
            else {k: dict(v) for k, v in grid.attacks.items()},
            blind_references_added={
                "command": "python -m leakage_core.study --add-blind",
                "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "git_revision": _git_revision(),
            },
        )
        _write_json(sidecar, entry)
        if progress:
            print(f"{grid.file}: blind references added ({len(tidy) - len(results)} rows)", flush=True)
    return _assemble_provenance(folder)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m leakage_core.study``: compute the study's results (see :func:`run_study`)."""
    parser = argparse.ArgumentParser(prog="python -m leakage_core.study", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="results", help="results folder (default: results)")
    parser.add_argument("--jobs", type=int, default=1, help="parallel grid tasks (default 1; -1 = all cores)")
    parser.add_argument("--cache", default=None, help="cache folder (default: $LEAKAGE_HAR_CACHE or the user cache)")
    parser.add_argument(
        "--only", nargs="*", default=None, help="grid files to compute, e.g. single_step-wear (default: all)"
    )
    parser.add_argument(
        "--add-blind",
        action="store_true",
        help="only add the blind references' rows to the committed grids that lack them",
    )
    args = parser.parse_args(argv)
    if args.add_blind:
        add_blind_to_results(args.out)
        return 0
    grids = study_grids()
    if args.only:
        wanted = {w.removesuffix(".csv.gz") for w in args.only}
        unknown = wanted - {g.file.removesuffix(".csv.gz") for g in grids}
        if unknown:
            parser.error(
                f"unknown grid(s) {sorted(unknown)}; choose from {[g.file.removesuffix('.csv.gz') for g in grids]}"
            )
        grids = [g for g in grids if g.file.removesuffix(".csv.gz") in wanted]
    try:
        run_study(args.out, grids, cache_dir=args.cache, n_jobs=args.jobs)
    except KeyboardInterrupt:
        print(
            "\nInterrupted: finished (client, setting) results are cached; run the same command again to resume.",
            file=sys.stderr,
        )
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
