"""Loader for the real WEAR / Wetlab processed format (one ``sbj_<k>.csv`` per subject)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from .dataset import HARDataset, SubjectData
from .profiles import get_profile
from .windowing import sliding_windows

NULL_SPELLINGS = ("null", "null_class", "")
LABEL_ALIASES = {"pour catalysator": "pouring"}
_LAYOUTS = ("", "raw/inertial/50hz", "raw/inertial", "data/{name}/raw/inertial/50hz", "data/{name}/raw/inertial")


def find_subject_files(root: str | Path, dataset: str) -> list[Path]:
    """The ``sbj_<k>.csv`` files of a dataset folder, in numeric subject order.

    Not used in a chapter yet. ``root`` may be the folder with the CSVs or a release folder holding
    ``raw/inertial/50hz/``, ``raw/inertial/`` or ``data/<dataset>/raw/inertial[/50hz]/``.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"dataset folder {root} does not exist; download the {dataset} data and pass the folder that "
            "holds sbj_<k>.csv (or its raw/inertial/ parent)."
        )
    for layout in _LAYOUTS:
        folder = root / layout.format(name=dataset) if layout else root
        files = [p for p in folder.glob("sbj_*.csv") if re.fullmatch(r"sbj_\d+\.csv", p.name)] if folder.is_dir() else []
        if files:
            return sorted(files, key=lambda p: int(p.stem.split("_")[1]))
    raise ValueError(
        f"no sbj_<k>.csv files found in {root} (also looked in raw/inertial/50hz/, raw/inertial/ and "
        f"data/{dataset}/raw/inertial/); point load_real at the folder holding the per-subject CSVs."
    )


def _label_ids(raw: pd.Series, class_names: tuple[str, ...], path: Path) -> np.ndarray:
    text = raw.fillna("").astype(str).str.strip().str.lower()
    text = text.replace({n: "null" for n in NULL_SPELLINGS}).replace(LABEL_ALIASES)
    lookup = {name.lower(): i for i, name in enumerate(class_names)}
    ids = text.map(lookup)
    if ids.isna().any():
        bad = sorted(text[ids.isna()].unique())[:5]
        raise ValueError(
            f"{path}: unknown label(s) {bad}; known classes are {list(class_names)} (NULL may be written "
            "null, null_class or empty). Check that you passed the right dataset name."
        )
    return ids.to_numpy(np.int64)


def read_subject_csv(path: str | Path, dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """Read one ``sbj_<k>.csv``: ``(signals (T, channels) float32, labels (T,) int64)``.

    Not used in a chapter yet. Sensor columns are all columns except ``sbj_id`` and ``label``, taken
    by position; their number must match the dataset (12 for WEAR, 3 for Wetlab).
    """
    path = Path(path)
    prof = get_profile(dataset)
    df = pd.read_csv(path, keep_default_na=False, na_values=[""], low_memory=False)
    if "label" not in df.columns:
        raise ValueError(f"{path}: no 'label' column (columns: {list(df.columns)[:6]}...); the processed "
                         "format has sbj_id, the sensor columns and a string label column.")
    sensors = [c for c in df.columns if c not in ("sbj_id", "label")]
    if len(sensors) != len(prof.channels):
        raise ValueError(f"{path}: {len(sensors)} sensor columns, but {dataset} has {len(prof.channels)} "
                         f"({', '.join(prof.channels)}); check the dataset name or the file.")
    values = df[sensors].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        raise ValueError(f"{path}: {int(bad.sum())} rows with missing or non-numeric sensor values (first at "
                         f"data row {int(np.flatnonzero(bad)[0]) + 1}); clean or interpolate them before loading.")
    return values.astype(np.float32), _label_ids(df["label"], prof.class_names, path)


def load_real(
    root: str | Path,
    dataset: str = "wear",
    subjects: list[int] | None = None,
    window_size: int = 50,
    window_step: int = 25,
) -> HARDataset:
    """Load the real WEAR or Wetlab data into the same dataset object the generator returns.

    Not used in a chapter yet.

    Parameters
    ----------
    root : path
        Folder with ``sbj_<k>.csv`` files, or a release folder (see :func:`find_subject_files`).
    dataset : {"wear", "wetlab"}
        Which class list and channel count to expect.
    subjects : list of int, optional
        Subject ids to load (default: all found).
    window_size, window_step : int
        Windowing (paper: 50 and 25 samples at 50 Hz).
    """
    prof = get_profile(dataset)
    files = {int(p.stem.split("_")[1]): p for p in find_subject_files(root, prof.name)}
    if subjects is not None:
        missing = sorted(set(subjects) - set(files))
        if missing:
            raise ValueError(f"subjects {missing} not found in {root}; available: {sorted(files)}.")
        files = {k: files[k] for k in sorted(subjects)}
    data = {}
    for k, path in files.items():
        sig, lab = read_subject_csv(path, prof.name)
        win, wlab = sliding_windows(sig, lab, window_size, window_step)
        data[k] = SubjectData(k, sig, lab, win, wlab)
    return HARDataset(prof.name, prof.class_names, prof.channels, 50, window_size, window_step, data,
                      source=str(Path(root)))
