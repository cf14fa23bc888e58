"""Loaders for the real data: the WEAR / Wetlab processed format (one ``sbj_<k>.csv`` per subject) and
the four public 10-minute excerpts (no header, one wrist's three accelerometer axes).

Both read from one data folder (:func:`data_dir`): ``$LEAKAGE_HAR_DATA`` if set, otherwise
``$XDG_DATA_HOME/leakage_har`` (by default ``~/.local/share/leakage_har``), laid out as ::

    <data_dir>/wear/sbj_<k>.csv        (18 subjects, 12 channels)
    <data_dir>/wetlab/sbj_<k>.csv      (22 subjects, 3 channels)
    <data_dir>/excerpts/wear_0_10.csv, wear_10_20.csv, wetlab_0_10.csv, wetlab_10_20.csv

which is where ``python data_download.py {wear,wetlab,excerpts}`` puts them. Contract: every loader returns a
:class:`~leakage_core.data.HARDataset` or raises one ``ValueError`` / ``FileNotFoundError`` naming the file and
the fix. References: WEAR (Bock et al., 2024), Wetlab (Scholl et al., 2015); the excerpts are from
github.com/mariusbock/video_assisted_annotation (``sensor_data/``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .dataset import HARDataset, SubjectData
from .profiles import get_profile
from .windowing import sliding_windows

NULL_SPELLINGS = ("null", "null_class", "")
LABEL_ALIASES = {"pour catalysator": "pouring"}
#: environment variable that overrides the data folder
DATA_ENV = "LEAKAGE_HAR_DATA"
#: the four public excerpts (mariusbock/video_assisted_annotation, sensor_data/), by dataset
EXCERPT_FILES = {"wear": ("wear_0_10.csv", "wear_10_20.csv"), "wetlab": ("wetlab_0_10.csv", "wetlab_10_20.csv")}
EXCERPT_CHANNELS = ("acc_x", "acc_y", "acc_z")
_LAYOUTS = ("", "raw/inertial/50hz", "raw/inertial", "data/{name}/raw/inertial/50hz", "data/{name}/raw/inertial")


def data_dir(root: str | os.PathLike | None = None) -> Path:
    """The data folder: ``root`` if given, else ``$LEAKAGE_HAR_DATA``, else ``$XDG_DATA_HOME/leakage_har``.

    Introduced in Chapter 14. Nothing is created here (no work at import or lookup).
    """
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "leakage_har"


def find_subject_files(root: str | Path, dataset: str) -> list[Path]:
    """The ``sbj_<k>.csv`` files of a dataset folder, in numeric subject order.

    ``root`` may be the folder with the CSVs or a release folder holding
    ``raw/inertial/50hz/``, ``raw/inertial/`` or ``data/<dataset>/raw/inertial[/50hz]/``.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"dataset folder {root} does not exist; download the {dataset} data (python data_download.py "
            f"{dataset}) or pass the folder that holds sbj_<k>.csv (or its raw/inertial/ parent)."
        )
    for layout in _LAYOUTS:
        folder = root / layout.format(name=dataset) if layout else root
        files = (
            [p for p in folder.glob("sbj_*.csv") if re.fullmatch(r"sbj_\d+\.csv", p.name)] if folder.is_dir() else []
        )
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

    Sensor columns are all columns except ``sbj_id`` and ``label``, taken
    by position; their number must match the dataset (12 for WEAR, 3 for Wetlab).
    """
    path = Path(path)
    prof = get_profile(dataset)
    df = pd.read_csv(path, keep_default_na=False, na_values=[""], low_memory=False)
    if "label" not in df.columns:
        raise ValueError(
            f"{path}: no 'label' column (columns: {list(df.columns)[:6]}...); the processed "
            "format has sbj_id, the sensor columns and a string label column."
        )
    sensors = [c for c in df.columns if c not in ("sbj_id", "label")]
    if len(sensors) != len(prof.channels):
        raise ValueError(
            f"{path}: {len(sensors)} sensor columns, but {dataset} has {len(prof.channels)} "
            f"({', '.join(prof.channels)}); check the dataset name or the file."
        )
    values = df[sensors].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        raise ValueError(
            f"{path}: {int(bad.sum())} rows with missing or non-numeric sensor values (first at "
            f"data row {int(np.flatnonzero(bad)[0]) + 1}); clean or interpolate them before loading."
        )
    return values.astype(np.float32), _label_ids(df["label"], prof.class_names, path)


def load_real(
    root: str | Path | None = None,
    dataset: str = "wear",
    subjects: list[int] | None = None,
    window_size: int = 50,
    window_step: int = 25,
) -> HARDataset:
    """Load the real WEAR or Wetlab data into the same dataset object the generator returns.

    Introduced in Chapter 14.

    Parameters
    ----------
    root : path, optional
        Folder with ``sbj_<k>.csv`` files, or a release folder (see :func:`find_subject_files`);
        default ``data_dir() / dataset``, where ``python data_download.py <dataset>`` puts them.
    dataset : {"wear", "wetlab"}
        Which class list and channel count to expect.
    subjects : list of int, optional
        Subject ids to load (default: all found).
    window_size, window_step : int
        Windowing (paper: 50 and 25 samples at 50 Hz).
    """
    prof = get_profile(dataset)
    root = data_dir() / prof.name if root is None else Path(root)
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
    return HARDataset(
        prof.name, prof.class_names, prof.channels, 50, window_size, window_step, data, source=str(Path(root))
    )


def write_real(data: HARDataset, folder: str | Path, null_label: str = "null") -> list[Path]:
    """Write a dataset in the processed real format, one ``sbj_<k>.csv`` per subject: the inverse of :func:`load_real`.

    Columns ``sbj_id``, the channels, ``label`` (class names; NULL written as
    ``null_label``: ``"null"``, ``""`` or ``"null_class"``, the spellings of the releases). Each file is
    written to a temporary name and renamed. Use it to try the real-data path with other data, or to
    export generated clients for another tool.
    """
    from ..cache import atomic_write

    if null_label.strip().lower() not in NULL_SPELLINGS:
        raise ValueError(f"null_label must be one of {NULL_SPELLINGS}, got {null_label!r}.")
    folder = Path(folder)
    names = np.array([null_label, *data.class_names[1:]], dtype=object)
    paths = []
    for k in data.subject_ids:
        sub = data.subjects[k]
        df = pd.DataFrame(sub.signals, columns=list(data.channels))
        df.insert(0, "sbj_id", k)
        df["label"] = names[sub.sample_labels]
        paths.append(atomic_write(folder / f"sbj_{k}.csv", lambda tmp, df=df: df.to_csv(tmp, index=False)))
    return paths


def read_excerpt_csv(path: str | Path, dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """Read one public excerpt: ``(signals (T, 3) float32, labels (T,) int64)``.

    The files have no header. WEAR excerpts: ``idx, time, acc_x, acc_y,
    acc_z, label`` (one wrist, in g; an empty label is NULL). Wetlab excerpts: ``idx, time, sbj, acc_x,
    acc_y, acc_z, action, task`` (the wrist, in m/s^2; NULL is ``null_class``); the label is ``action``.
    """
    path = Path(path)
    prof = get_profile(dataset)
    n_cols, sensors, label = {"wear": (6, [2, 3, 4], 5), "wetlab": (8, [3, 4, 5], 6)}[prof.name]
    try:
        df = pd.read_csv(path, header=None, keep_default_na=False, na_values=[""], dtype={label: str}, low_memory=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ValueError(
            f"{path}: not a readable CSV ({err}); download it again (python data_download.py excerpts --force)."
        ) from None
    if df.shape[1] != n_cols or df.empty:
        header = (
            "idx, time, acc_x, acc_y, acc_z, label"
            if prof.name == "wear"
            else "idx, time, sbj, acc_x, acc_y, acc_z, action, task"
        )
        raise ValueError(
            f"{path}: {df.shape[1]} columns, but a {prof.name} excerpt has {n_cols} and no header "
            f"({header}); check the dataset name or download the file again "
            "(python data_download.py excerpts --force)."
        )
    values = df[sensors].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        raise ValueError(
            f"{path}: {int(bad.sum())} rows with missing or non-numeric acceleration values (first at "
            f"row {int(np.flatnonzero(bad)[0]) + 1}); download the file again "
            "(python data_download.py excerpts --force)."
        )
    return values.astype(np.float32), _label_ids(df[label], prof.class_names, path)


def load_excerpts(
    root: str | Path | None = None, dataset: str = "wear", window_size: int = 50, window_step: int = 25
) -> HARDataset:
    """Load the two public 10-minute excerpts of one dataset as a 3-channel :class:`HARDataset`.

    Introduced in Chapter 14. Each file becomes one client (ids 1 and 2, minutes 0-10 and 10-20 of
    the *same* recording, so the two clients are one person: never train on one and call the other
    unseen). The excerpts hold one wrist's three axes, also for WEAR (whose full data has 12 channels):
    a model for them is built with ``data.n_channels == 3``.

    Parameters
    ----------
    root : path, optional
        Folder holding the excerpt CSVs (or gzip-compressed ``<name>.csv.gz`` copies, as the book's
        ``chapters/data/real_excerpts/``); default ``data_dir() / "excerpts"`` (where
        ``python data_download.py excerpts`` puts them).
    dataset : {"wear", "wetlab"}
        Which excerpts (and class list).
    window_size, window_step : int
        Windowing (paper: 50 and 25 samples at 50 Hz).
    """
    prof = get_profile(dataset)
    root = data_dir() / "excerpts" if root is None else Path(root)
    paths = [
        root / name if (root / name).is_file() or not (root / f"{name}.gz").is_file() else root / f"{name}.gz"
        for name in EXCERPT_FILES[prof.name]
    ]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"excerpt files {missing} not found in {root}; download them with "
            "python data_download.py excerpts (or pass the folder that holds them)."
        )
    data = {}
    for k, path in enumerate(paths, start=1):
        sig, lab = read_excerpt_csv(path, prof.name)
        win, wlab = sliding_windows(sig, lab, window_size, window_step)
        data[k] = SubjectData(k, sig, lab, win, wlab)
    return HARDataset(
        f"{prof.name}-excerpts",
        prof.class_names,
        EXCERPT_CHANNELS,
        50,
        window_size,
        window_step,
        data,
        source=str(root),
    )
