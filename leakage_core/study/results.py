"""The study's grids (Chapters 8-12): what ``make results`` precomputes and how the chapters read it.

Not used in a chapter yet. The full grids behind the study chapters take about an hour on two CPU
cores, longer than a chapter may run in CI, so they are computed once with::

    python -m leakage_core.study --out results --jobs 2      # = make results

which runs :func:`leakage_core.study.run_grid` (cached per client and setting, resumable, parallel)
and writes one gzipped CSV per grid plus ``provenance.json`` (settings, attacks, data fingerprints,
package versions, git revision, wall time, machine, the trained folds' scores). The chapters load
them with :func:`load_results` and recompute a slice live; ``tests/test_results.py`` recomputes a
random slice and requires identical counts.

The study data: per dataset profile, :data:`N_SUBJECTS` generated subjects of *real* recording
length (36-60 minutes: a shuffled WEAR-like batch then holds as many distinct labels as a real one),
of which the :data:`ATTACKED` (every one longer than 40 minutes) are attacked. A trained model is the attacked client's
leave-one-subject-out model, trained on the other subjects for :data:`TRAIN_EPOCHS` epoch(s) with
Adam at :data:`TRAIN_LR` — far less than the paper's 100 epochs at 1e-4, which is ~100 CPU hours;
the chapters report the macro-F1 these models reach on their held-out client. The ``training_length``
grid follows the same folds for :data:`TRAINING_LENGTH_EPOCHS` epochs (snapshots of one training run);
:func:`training_length_table` and :func:`leakage_core.book.plot_training_length` summarise it.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..cache import atomic_write
from ..attacks import BLIND, PAPER_ATTACKS
from ..data.profiles import PROFILES
from ..data.source import results_dir
from ..models.architectures import MODELS
from .grid import STATES, Setting, add_blind_references, run_grid
from ..federated.sampling import SAMPLERS
from ..federated import LDP, ldp_label

#: subjects generated per dataset profile (real length each)
N_SUBJECTS: int = 6
#: the attacked clients (each with its own LOSO model when trained)
ATTACKED: tuple[int, ...] = (1, 2, 4, 5)
#: training of the LOSO models (the paper: 100 epochs, lr 1e-4; see the module docstring)
TRAIN_EPOCHS: int = 1
TRAIN_LR: float = 1e-3
#: the book's attacks, the two baselines and the two blind references (which read no gradient)
BOOK_ATTACKS: tuple[str, ...] = ("llg", "llg_star", "llbg", "ebi", "ilrg", "idlg", "existence", "blind_uniform",
                                 "blind_prior")
#: attacks that use the server's auxiliary data (the other subjects' windows), run on trained models
AUX_ATTACKS: dict[str, dict[str, Any]] = {"llbg:aux": {"confidence": "aux"}, "llg_plus": {},
                                          "blind_uniform": {}, "blind_prior": {}}
#: the attacks as the seed paper's public code ran them (leakage_core.attacks.paper_code); EBI is unchanged
PAPER_CODE_ATTACKS: dict[str, dict[str, Any]] = {
    "llg:code": {"variant": "paper_code"}, "llg_star:code": {"variant": "paper_code"},
    "llbg:code": {"variant": "paper_code"}, "ebi": {}, "ilrg:code": {"variant": "paper_code"},
    "blind_uniform": {}, "blind_prior": {},
}
#: numbers of training epochs of the ``training_length`` grid (snapshots of one run per fold)
TRAINING_LENGTH_EPOCHS: tuple[int, ...] = (1, 3, 10)
#: profiles of the ``training_length`` grid (WEAR-like DeepConvLSTM folds cost ~3x more per epoch)
TRAINING_LENGTH_PROFILES: tuple[str, ...] = ("wetlab",)
#: minutes per client of the reconciliation's short-client grid
SHORT_MINUTES: float = 10.0
#: (N, S) of the multi-step grid (S = 1 is the single-step grid)
MULTI_STEP: tuple[tuple[int, int], ...] = ((100, 2), (100, 5), (500, 5))
#: the paper's three defences; clipping on the last layer's norm (text) and on all layers' (code)
LDP_VARIANTS: tuple[LDP, ...] = (
    LDP(sigma=0.1), LDP(rho=0.1), LDP(sigma=0.1, rho=0.1),
    LDP(rho=0.1, scope="all"), LDP(sigma=0.1, rho=0.1, scope="all"),
)
FORMAT = 1


@dataclass(frozen=True)
class StudyGrid:
    """One precomputed grid: a name, the settings, the attacks and the attacked clients of one profile.

    Not used in a chapter yet.
    """

    name: str
    profile: str
    settings: tuple[Setting, ...]
    attacks: tuple[str, ...] | Mapping[str, Mapping[str, Any]]
    subjects: tuple[int, ...] = ATTACKED
    minutes: float | None = None

    @property
    def file(self) -> str:
        """The results file name, ``<name>-<profile>.csv.gz``."""
        return f"{self.name}-{self.profile}.csv.gz"


def study_dataset(profile: str, seed: int = 0, minutes: float | None = None):
    """The study's clients of one profile: :data:`N_SUBJECTS` subjects of real recording length.

    Introduced in Chapter 8. ``minutes`` shortens every recording (the reconciliation's short-client
    grid: 10 minutes, as in the excerpts that Chapters 1-7 imitate). With ``$LEAKAGE_HAR_SOURCE=real``
    and the data downloaded, the first :data:`N_SUBJECTS` real subjects (see
    :func:`leakage_core.data.book_dataset`).
    """
    from ..data import book_dataset

    return book_dataset(profile, n_subjects=N_SUBJECTS, minutes=minutes, seed=seed)


def _setting(model: str, state: str, **fields) -> Setting:
    return Setting(model, state=state, epochs=TRAIN_EPOCHS, train_lr=TRAIN_LR, **fields)


def study_grids(attacks: Sequence[str] | Mapping[str, Mapping[str, Any]] = BOOK_ATTACKS) -> list[StudyGrid]:
    """Every grid of the study, in the order ``make results`` runs them.

    Not used in a chapter yet.

    - ``single_step`` (Chapters 8, 9, 12): both models x untrained/trained x the three samplers, N=100;
    - ``multi_step`` (Chapter 10): (N, S) in :data:`MULTI_STEP`, both states, the three samplers;
      TinyHAR on both profiles and DeepConvLSTM on the Wetlab-like one (DeepConvLSTM's 12-channel
      WEAR-like FedAvg passes alone would take another hour on two cores);
    - ``ldp`` (Chapter 11): DeepConvLSTM, both states, the three samplers, :data:`LDP_VARIANTS` (clipping
      of all layers' norm, which needs a backward pass per batch, on the Wetlab-like clients only);
    - ``single_step_aux`` (Chapter 9): trained models, the attacks of :data:`AUX_ATTACKS` (LLBG with
      confidences and LLG+ with impacts estimated on the other subjects' windows);
    - ``reconcile`` (Chapter 12): the single-step settings with :data:`PAPER_CODE_ATTACKS`, plus untrained
      models with the paper code's per-batch min-max input scaling (book and paper-code attacks);
    - ``short_clients`` (Chapter 12): untrained single-step settings on clients of :data:`SHORT_MINUTES`;
    - ``training_length``: trained models after each of :data:`TRAINING_LENGTH_EPOCHS` epochs (snapshots of
      one training run per fold, see :func:`leakage_core.models.fold_snapshots`), both models, the three
      samplers, N=100, on the profiles of :data:`TRAINING_LENGTH_PROFILES`.
    """
    grids = []
    for profile in PROFILES:
        single = [_setting(m, st, sampler=sp) for m in MODELS for st in STATES for sp in SAMPLERS]
        grids.append(StudyGrid("single_step", profile, tuple(single), attacks))
    for profile in PROFILES:
        models = MODELS if profile == "wetlab" else ("tinyhar",)
        multi = [_setting(m, st, sampler=sp, batch_size=n, n_steps=s)
                 for m in models for st in STATES for sp in SAMPLERS for n, s in MULTI_STEP]
        grids.append(StudyGrid("multi_step", profile, tuple(multi), attacks))
    for profile in PROFILES:  # all-layer clipping needs a backward pass per batch: Wetlab-like only
        variants = LDP_VARIANTS if profile == "wetlab" else tuple(v for v in LDP_VARIANTS if v.scope != "all")
        ldp = [_setting("deepconvlstm", st, sampler=sp, ldp=v) for st in STATES for sp in SAMPLERS
               for v in variants]
        grids.append(StudyGrid("ldp", profile, tuple(ldp), attacks))
    for profile in PROFILES:
        aux = [_setting(m, "trained", sampler=sp) for m in MODELS for sp in SAMPLERS]
        grids.append(StudyGrid("single_step_aux", profile, tuple(aux), AUX_ATTACKS))
    both = {**{a: {} for a in PAPER_ATTACKS}, **PAPER_CODE_ATTACKS}  # the published attacks and the code's
    for profile in PROFILES:
        plain = [_setting(m, st, sampler=sp) for m in MODELS for st in STATES for sp in SAMPLERS]
        scaled = [_setting(m, "untrained", sampler=sp, scaling="batch_minmax") for m in MODELS for sp in SAMPLERS]
        grids.append(StudyGrid("reconcile", profile, tuple(plain), PAPER_CODE_ATTACKS))
        grids.append(StudyGrid("reconcile_minmax", profile, tuple(scaled), both))
    for profile in PROFILES:
        short = [_setting(m, "untrained", sampler=sp) for m in MODELS for sp in SAMPLERS]
        grids.append(StudyGrid("short_clients", profile, tuple(short), BOOK_ATTACKS, minutes=SHORT_MINUTES))
    for profile in TRAINING_LENGTH_PROFILES:
        length = [replace(_setting(m, "trained", sampler=sp), epochs=e)
                  for m in MODELS for e in TRAINING_LENGTH_EPOCHS for sp in SAMPLERS]
        grids.append(StudyGrid("training_length", profile, tuple(length), attacks))
    return grids


# ---------------------------------------------------------------------------------------------
# writing and reading results

_COUNT_COLUMNS = ("true", "pred")


def _encode(counts: np.ndarray) -> str:
    return " ".join(str(int(v)) for v in counts)


def _decode(text: str) -> np.ndarray:
    return np.array([int(v) for v in str(text).split()], dtype=np.int64)


def to_tidy(results: pd.DataFrame, profile: str) -> pd.DataFrame:
    """``run_grid`` rows as a flat table: count arrays as space-separated integers, a ``dataset`` column.

    Not used in a chapter yet.
    """
    out = results.copy()
    for col in _COUNT_COLUMNS:
        out[col] = out[col].map(_encode)
    out.insert(0, "dataset", profile)
    return out


def from_tidy(table: pd.DataFrame) -> pd.DataFrame:
    """The inverse of :func:`to_tidy`: count columns back to int64 arrays. Not used in a chapter yet."""
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
            raise FileNotFoundError(f"no results file {path.name} in {folder} (it has {known}); "
                                    "run `make results` to compute it.")
        frames.append(pd.read_csv(path, keep_default_na=False))
    return from_tidy(pd.concat(frames, ignore_index=True))


def provenance(root: str | os.PathLike | None = None) -> dict:
    """The provenance record written with the results (see :func:`run_study`). Introduced in Chapter 8."""
    return json.loads((results_dir(root) / "provenance.json").read_text(encoding="utf-8"))


def recompute_slice(results: pd.DataFrame, subject: int, grid: str | None = None, progress: bool = False,
                    **setting_fields) -> pd.DataFrame:
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
        raise ValueError(f"the selection matches {len(cells)} settings of the results; add fields to pick exactly one "
                         f"(e.g. model=, state=, sampler=, ldp=, batch_size=, n_steps=, scaling=).")
    record = cells.iloc[0]
    ldp = next((v for v in LDP_VARIANTS if ldp_label(v) == record["ldp"]), None)
    setting = Setting(**{n: (ldp if n == "ldp" else _plain(record[n])) for n in names})
    wanted = set(rows.attack)
    candidates = [g for g in study_grids() if g.profile == dataset and setting in g.settings
                  and (grid is None or g.name == grid) and wanted <= set(g.attacks)]
    if not candidates:
        raise ValueError(f"no study grid of {dataset!r} has the setting {setting} with the attacks {sorted(wanted)}.")
    if len({g.minutes for g in candidates}) > 1:
        raise ValueError(f"grids {[g.name for g in candidates]} share this setting on different data; pass grid=.")
    grid_spec = candidates[0]
    attacks = grid_spec.attacks if not isinstance(grid_spec.attacks, Mapping) else {
        k: v for k, v in grid_spec.attacks.items() if k in set(rows.attack)}
    fresh = run_grid(study_dataset(dataset, minutes=grid_spec.minutes), [setting], attacks=attacks,
                     subjects=[int(subject)], progress=progress)
    merged = rows.merge(fresh[["attack", "batch", "true", "pred"]], on=["attack", "batch"], how="left",
                        suffixes=("_stored", "_fresh"))
    merged["same"] = [isinstance(tf, np.ndarray) and np.array_equal(ts, tf) and np.array_equal(ps, pf)
                      for ts, tf, ps, pf in zip(merged.true_stored, merged.true_fresh,
                                                merged.pred_stored, merged.pred_fresh)]
    out = merged[["attack", "batch", "same"]].reset_index(drop=True)
    out.attrs["share_identical"] = float(out["same"].mean()) if len(out) else 0.0
    return out


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def distinct_labels_table(results: pd.DataFrame) -> pd.DataFrame:
    """Mean distinct labels per batch of the results' clients, per dataset and sampler, next to the real data's.

    Introduced in Chapter 9. Computed from the ``true`` counts of one model, state and attack (the batches
    do not depend on them); the real datasets' figures are those the generator is calibrated to
    (:data:`leakage_core.data.profiles.TARGETS`, for batches of 100 windows; NaN where the dataset papers
    give none or for other batch sizes). Batches of one size only: pass rows of one ``batch_size``.
    """
    from ..data.profiles import TARGETS
    from ..federated.sampling import batch_composition

    if results["batch_size"].nunique() != 1:
        raise ValueError("pass the rows of one batch size (e.g. results[results.batch_size == 100]).")
    first = results[["model", "state", "attack"]].iloc[0]
    one = results[(results.model == first.model) & (results.state == first.state) & (results.attack == first.attack)]
    study_values = one.groupby(["dataset", "sampler"])["true"].apply(
        lambda t: float(batch_composition(np.stack(t.to_list()))["distinct"].mean()))
    n = int(results["batch_size"].iloc[0])  # the real figures are for batches of 100 windows
    real = {(d, s): TARGETS[d].get(f"distinct_labels_{s}", (np.nan,))[0] if n == 100 else np.nan
            for d, s in study_values.index}
    return (pd.DataFrame({"study clients": study_values, "real dataset": pd.Series(real)})
            .rename_axis(["dataset", "sampler"]))


def leakage_table(summary: pd.DataFrame, metric: str = "class_acc") -> pd.DataFrame:
    """One metric of a :func:`leakage_core.study.score` summary next to the blind guess and the advantage over it.

    Introduced in Chapter 7. Columns: ``score`` (mean over clients) and ``± sd`` (their standard
    deviation), ``blind`` (the better blind reference's mean score on the same batches), ``advantage``
    (mean of the per-client advantage) with ``adv min`` and ``adv max`` over clients, and ``beyond blind``:
    True when the advantage is above 0 for *every* client (the gradient told the server more than it could
    guess, whatever the client), False when it is at or below 0 for every client, NaN when clients
    disagree or no blind reference was run. The index is the summary's.
    """
    if (f"adv_{metric}", "mean") not in summary.columns:
        raise ValueError(f"the summary has no advantage for {metric!r}: run the blind references "
                         f"({', '.join(BLIND)}) with the attacks (they are in BOOK_ATTACKS).")
    adv = summary[f"adv_{metric}"]
    verdict = np.where(adv["min"] > 0, 1.0, np.where(adv["max"] <= 0, 0.0, np.nan))
    out = pd.DataFrame({
        "score": summary[(metric, "mean")], "± sd": summary[(metric, "std")],
        "blind": summary[(f"blind_{metric}", "mean")], "advantage": adv["mean"],
        "adv min": adv["min"], "adv max": adv["max"],
        "beyond blind": pd.Series(verdict, index=summary.index).map({1.0: True, 0.0: False}),
    }, index=summary.index)
    return out


#: the quantities of :func:`training_length_table`, in its order
TRAINING_LENGTH_METRICS: tuple[str, ...] = ("macro_f1", "ln_acc", "class_acc")


def _fold_records(provenance: Mapping[str, Any], grid: str, datasets: Sequence[str]) -> list[dict]:
    """The trained-fold records of ``<grid>-<dataset>`` in a provenance record (or of one grid's record)."""
    if "trained_folds" in provenance:
        return list(provenance["trained_folds"])
    grids = provenance.get("grids", {})
    if not datasets:
        raise ValueError("results without a dataset column: pass one grid's record (with trained_folds).")
    files = [f"{grid}-{d}.csv.gz" for d in datasets]
    missing = [f for f in files if f not in grids]
    if missing:
        raise ValueError(f"the provenance record has no grid {missing}; it has {sorted(grids)}.")
    return [fold for f in files for fold in grids[f]["trained_folds"]]


def training_length_table(results: pd.DataFrame, provenance: Mapping[str, Any],
                          by: Sequence[str] = ("model", "epochs"), grid: str = "training_length") -> pd.DataFrame:
    """Held-out macro-F1 and every attack's LnAcc and ClassAcc per training length: mean and std over folds.

    Introduced in Chapter 9. One fold is one attacked client with its leave-one-subject-out model. Per
    client, LnAcc and ClassAcc are computed over all its batches with :func:`leakage_core.study.score`
    (``per_client=True``; the samplers are pooled unless ``"sampler"`` is in ``by``), and the macro-F1 of
    its model on it is looked up in the trained folds of ``provenance``; then mean, std (``ddof=1``) and
    the number of clients are taken over the clients.

    Parameters
    ----------
    results : pandas.DataFrame
        Trained rows, e.g. ``load_results("training_length", "wetlab")`` (or :func:`run_grid` output).
    provenance : mapping
        :func:`provenance` (the folds of ``<grid>-<dataset>.csv.gz`` are used) or one grid's record
        (a mapping with ``trained_folds``).
    by : sequence of str
        Grouping columns of ``results`` besides ``dataset`` (default: model and epochs).

    Returns
    -------
    pandas.DataFrame
        Tidy: columns ``[dataset,] *by, metric, attack, mean, std, n``; ``metric`` is ``"macro_f1"``
        (``attack`` empty), ``"ln_acc"`` or ``"class_acc"``; sorted by ``by``, metric and attack.
    """
    from .grid import score

    if results.empty or (results["state"] != "trained").any():
        raise ValueError("pass the rows of trained models only (macro-F1 exists for trained models).")
    keys = (["dataset"] if "dataset" in results.columns else []) + [c for c in by if c != "dataset"]
    per = score(results, by=keys + ["attack"], per_client=True)
    match = [c for c in ("dataset", "model", "epochs", "train_lr") if c in results.columns] + ["subject"]
    folds = pd.DataFrame(_fold_records(provenance, grid, sorted(set(results.get("dataset", [])))))
    folds = folds.rename(columns={"held_out": "subject"})[match + ["macro_f1"]].drop_duplicates(match)
    models = results[list(dict.fromkeys(keys + match))].drop_duplicates()
    f1 = models.merge(folds, on=match, how="left")
    if f1["macro_f1"].isna().any():
        lost = f1.loc[f1["macro_f1"].isna(), match].drop_duplicates().to_dict("records")
        raise ValueError(f"no trained-fold record (macro-F1) for {lost[:3]}{' ...' if len(lost) > 3 else ''}.")
    f1 = f1.groupby(keys + ["subject"], as_index=False)["macro_f1"].mean()
    long = [f1.rename(columns={"macro_f1": "value"}).assign(metric="macro_f1", attack="")]
    for metric in TRAINING_LENGTH_METRICS[1:]:
        long.append(per[keys + ["attack", "subject", metric]].rename(columns={metric: "value"}).assign(metric=metric))
    tidy = pd.concat(long, ignore_index=True)
    table = tidy.groupby(keys + ["metric", "attack"], sort=False)["value"].agg(
        mean="mean", std=lambda v: v.std(ddof=1), n="count").reset_index()
    attack_order = {a: i for i, a in enumerate([""] + list(dict.fromkeys(results["attack"])))}
    table["_m"] = table["metric"].map(TRAINING_LENGTH_METRICS.index)
    table["_a"] = table["attack"].map(attack_order)
    return table.sort_values(keys + ["_m", "_a"], ignore_index=True).drop(columns=["_m", "_a"])


def _git_revision() -> str:
    here = Path(__file__).resolve().parents[1]
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "leakage_core"], cwd=here, capture_output=True,
                               text=True, check=True).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _versions() -> dict[str, str]:
    import joblib
    import torch

    from .. import __version__

    return {"leakage_core": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "pandas": pd.__version__, "torch": str(torch.__version__), "joblib": joblib.__version__}


def _machine() -> dict[str, Any]:
    from .costs import cpu_info

    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            **cpu_info()}


def _fold_scores(dataset, grid: StudyGrid, cache_dir) -> list[dict]:
    """Macro-F1 and accuracy of every trained model the grid used (from the checkpoints' records).

    One record per distinct trained model and held-out subject: every number of epochs, learning rate,
    weighting, scaling and seed of the grid's trained settings gets its own (the samplers share a model).
    ``wall_time_s`` is the training time of all the model's epochs (those of the run it continued too).
    """
    from ..models.training import fold_model

    out = []
    seen = set()
    for st in grid.settings:
        if st.state != "trained":
            continue
        config = st.train_config()
        if (st.model, config) in seen:
            continue
        seen.add((st.model, config))
        for s in grid.subjects:
            info = fold_model(dataset, st.model, s, config, cache_dir=cache_dir, progress=False).checkpoint_info
            out.append({"dataset": dataset.name, "model": st.model, "held_out": s, "epochs": st.epochs,
                        "train_lr": st.train_lr, "macro_f1": info["macro_f1"], "accuracy": info["accuracy"],
                        "seconds_per_epoch": info["seconds_per_epoch"], "wall_time_s": info["wall_time_s"],
                        "resumed_from": info.get("resumed_from", 0), "n_train_windows": info["n_train_windows"],
                        "training_subjects": info["training_subjects"]})
    return out


def _training_seconds(folds: Sequence[Mapping[str, Any]]) -> float:
    """Seconds spent training the grid's LOSO models, whenever and in however many sessions they were trained.

    Snapshots of one run record the time of all their epochs, so each run counts once, with its longest snapshot.
    """
    longest: dict[tuple, float] = {}
    for f in folds:
        key = (f["dataset"], f["model"], f["held_out"], f["train_lr"])
        longest[key] = max(longest.get(key, 0.0), float(f.get("wall_time_s", 0.0)))
    return round(sum(longest.values()), 1)


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
    record = {"format": FORMAT, "command": "python -m leakage_core.study --out results", "n_subjects": N_SUBJECTS,
              "attacked": list(ATTACKED), "train_epochs": TRAIN_EPOCHS, "train_lr": TRAIN_LR,
              "git_revision": latest.get("git_revision"), "versions": latest.get("versions"),
              "machine": latest.get("machine"),
              "total_wall_time_s": round(sum(g["wall_time_s"] for g in grids.values()), 1),
              "grids": grids}
    _write_json(folder / "provenance.json", record)
    return record


def run_study(out: str | os.PathLike = "results", grids: Sequence[StudyGrid] | None = None,
              cache_dir: str | os.PathLike | None = None, n_jobs: int = 1, progress: bool = True) -> dict:
    """Compute the study's grids into ``out``: one ``<grid>-<profile>.csv.gz`` each and ``provenance.json``.

    Not used in a chapter yet. Every (client, setting) result is cached by the engine in ``cache_dir``
    (default: the user cache), so an interrupted run resumes; each results file and its record
    (``<grid>-<profile>.json``: settings, attacks, data fingerprint, versions, git revision, machine,
    wall time, the trained folds' scores) are written to a temporary name and renamed, and
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
        results = run_grid(data, list(grid.settings), attacks=grid.attacks, subjects=list(grid.subjects),
                           cache_dir=cache, n_jobs=n_jobs, progress=progress)
        wall = time.perf_counter() - t0
        tidy = to_tidy(results, grid.profile)
        timings = {k: round(v, 1) for k, v in results.attrs["timings"].items()}
        sidecar = folder / grid.file.replace(".csv.gz", ".json")
        folds = _fold_scores(data, grid, cache)
        if timings["client"] == 0 and sidecar.is_file():  # everything came from the cache: keep the real cost
            previous = json.loads(sidecar.read_text(encoding="utf-8"))
            wall, timings = previous["wall_time_s"], previous["engine_timings_s"]
        entry = {
            "grid": grid.name, "dataset": grid.profile, "subjects": list(grid.subjects), "minutes": grid.minutes,
            "dataset_fingerprint": data.fingerprint(), "data_source": data.source,
            "minutes_per_subject": {
                str(s): round(data.subjects[s].n_windows * data.window_step / data.sampling_rate / 60, 1)
                for s in data.subject_ids},
            "attacks": list(grid.attacks) if not isinstance(grid.attacks, Mapping) else
            {k: dict(v) for k, v in grid.attacks.items()},
            "settings": [s.record() for s in grid.settings], "rows": int(len(tidy)),
            "wall_time_s": round(wall, 1), "engine_timings_s": timings,
            "trained_folds": folds, "training_time_s": _training_seconds(folds),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "git_revision": _git_revision(), "versions": _versions(), "machine": _machine(),
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

    Not used in a chapter yet. For every study grid in ``out`` whose file lacks them, the rows follow from the
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
            raise ValueError(f"{path.name} was computed on other data (fingerprint {entry['dataset_fingerprint']}, "
                             f"now {data.fingerprint()}); recompute it with `make results`.")
        augmented = add_blind_references(results, data)
        if len(augmented) == len(results):
            continue
        tidy = to_tidy(augmented, grid.profile)
        atomic_write(path, lambda p, tidy=tidy: tidy.to_csv(p, index=False, compression="gzip"))
        os.chmod(path, 0o644)
        entry.update(rows=int(len(tidy)), attacks=list(grid.attacks) if not isinstance(grid.attacks, Mapping) else
                     {k: dict(v) for k, v in grid.attacks.items()},
                     blind_references_added={"command": "python -m leakage_core.study --add-blind",
                                             "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                             "git_revision": _git_revision()})
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
    parser.add_argument("--only", nargs="*", default=None,
                        help="grid files to compute, e.g. single_step-wear (default: all)")
    parser.add_argument("--add-blind", action="store_true",
                        help="only add the blind references' rows to the committed grids that lack them")
    args = parser.parse_args(argv)
    if args.add_blind:
        add_blind_to_results(args.out)
        return 0
    grids = study_grids()
    if args.only:
        wanted = {w.removesuffix(".csv.gz") for w in args.only}
        unknown = wanted - {g.file.removesuffix(".csv.gz") for g in grids}
        if unknown:
            parser.error(f"unknown grid(s) {sorted(unknown)}; "
                         f"choose from {[g.file.removesuffix('.csv.gz') for g in grids]}")
        grids = [g for g in grids if g.file.removesuffix(".csv.gz") in wanted]
    try:
        run_study(args.out, grids, cache_dir=args.cache, n_jobs=args.jobs)
    except KeyboardInterrupt:
        print("\nInterrupted: finished (client, setting) results are cached; run the same command again to resume.",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
