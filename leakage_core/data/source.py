"""The book's one data switch: the embedded generator (default) or the real WEAR / Wetlab data.

Every experiment chapter gets its clients from :func:`book_dataset` (Chapters 1-7, 13) or from
:func:`leakage_core.study.study_dataset` (Chapters 8-12), and both read one environment variable::

    LEAKAGE_HAR_SOURCE=synthetic   # default: the seeded HAR-like generator (what CI and the web book run)
    LEAKAGE_HAR_SOURCE=real        # the real data in data_dir()/<dataset>, when it has been downloaded

With ``real`` and no downloaded data, the generator is used and a one-line note says so and how to get
the data (``python data_download.py <dataset>``). The real data are read with :func:`load_real`
(``$LEAKAGE_HAR_DATA`` moves the data folder).
"""

from __future__ import annotations

import os
from pathlib import Path

from .dataset import HARDataset, SubjectData
from .profiles import get_profile
from .real import data_dir, find_subject_files, load_real
from .synthetic import make_synthetic
from .windowing import sliding_windows

#: environment variable that selects the data of every experiment chapter
SOURCE_ENV = "LEAKAGE_HAR_SOURCE"
SOURCES = ("synthetic", "real")
#: environment variable that moves the folder of the committed results (see :func:`results_dir`)
RESULTS_ENV = "LEAKAGE_HAR_RESULTS"


def data_source() -> str:
    """``"synthetic"`` or ``"real"``: the value of ``$LEAKAGE_HAR_SOURCE`` (default ``"synthetic"``).

    Introduced in Chapter 14.
    """
    value = os.environ.get(SOURCE_ENV, "synthetic").strip().lower() or "synthetic"
    if value not in SOURCES:
        raise ValueError(
            f"${SOURCE_ENV}={value!r} is not a data source; use one of {SOURCES} (unset it for the embedded generator)."
        )
    return value


def real_data_available(profile: str) -> bool:
    """Whether ``data_dir()/<profile>`` holds per-subject CSVs that :func:`load_real` can read.

    Introduced in Chapter 14.
    """
    try:
        find_subject_files(data_dir() / get_profile(profile).name, get_profile(profile).name)
    except (FileNotFoundError, ValueError):
        return False
    return True


def first_minutes(data: HARDataset, minutes: float) -> HARDataset:
    """Every subject's first ``minutes`` of recording, windowed again (a shorter client of the same person)."""
    if not minutes > 0:
        raise ValueError(f"minutes must be positive, got {minutes!r}.")
    n = int(round(minutes * 60 * data.sampling_rate))
    subjects = {}
    for k, sub in data.subjects.items():
        sig, lab = sub.signals[:n], sub.sample_labels[:n]
        win, wlab = sliding_windows(sig, lab, data.window_size, data.window_step)
        subjects[k] = SubjectData(k, sig, lab, win, wlab)
    return HARDataset(
        data.name,
        data.class_names,
        data.channels,
        data.sampling_rate,
        data.window_size,
        data.window_step,
        subjects,
        source=data.source,
    )


def book_dataset(
    profile: str = "wear",
    n_subjects: int | None = None,
    minutes: float | None = None,
    seed: int = 0,
    **generator_options,
) -> HARDataset:
    """The clients an experiment chapter runs on, chosen by ``$LEAKAGE_HAR_SOURCE``.

    Introduced in Chapter 1.

    Parameters
    ----------
    profile : {"wear", "wetlab"}
        Which dataset (or which of the generator's profiles).
    n_subjects : int or None
        The first ``n_subjects`` subjects (real data: in subject-number order); ``None`` = all.
    minutes : float or None
        Each subject's first ``minutes`` of recording; ``None`` = the whole recording.
    seed, generator_options
        Passed to :func:`make_synthetic` when the generator is used (ignored for real data).
    """
    name = get_profile(profile).name
    if data_source() == "real":
        if real_data_available(name):
            files = find_subject_files(data_dir() / name, name)
            ids = sorted(int(p.stem.split("_")[1]) for p in files)
            keep = None if n_subjects is None else ids[: int(n_subjects)]  # read only the subjects kept
            data = load_real(dataset=name, subjects=keep)
            return data if minutes is None else first_minutes(data, minutes)
        print(
            f"Note: {SOURCE_ENV}=real, but no {name} data in {data_dir() / name}; using the embedded "
            f"generator. Get the data with: python data_download.py {name}"
        )
    return make_synthetic(name, n_subjects=n_subjects, minutes=minutes, seed=seed, **generator_options)


__all__ = [
    "RESULTS_ENV",
    "SOURCE_ENV",
    "SOURCES",
    "book_dataset",
    "data_source",
    "first_minutes",
    "real_data_available",
    "results_dir",
]


def results_dir(root: str | os.PathLike | None = None) -> Path:
    """Where the committed results are: ``root``, else ``$LEAKAGE_HAR_RESULTS``, else the repository's ``results/``.

    Not used in a chapter yet.

    The repository's folder is found next to the installed package (an
    editable install or a clone) or above the current folder (a chapter runs in ``chapters/``). With
    ``$LEAKAGE_HAR_SOURCE=real`` the default is ``results-real/`` instead: grids computed on the real
    data by ``LEAKAGE_HAR_SOURCE=real python -m leakage_core.study --out results-real``.
    """
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get(RESULTS_ENV):
        return Path(os.environ[RESULTS_ENV]).expanduser()
    folder = "results-real" if data_source() == "real" else "results"
    candidates = [Path(__file__).resolve().parents[2] / folder, Path.cwd() / folder, Path.cwd().parent / folder]
    for path in candidates:
        if (path / "provenance.json").is_file():
            return path
    if folder == "results-real":
        raise FileNotFoundError(
            f"${SOURCE_ENV}=real, but the study's grids on the real data were not found (looked in "
            + ", ".join(str(p) for p in candidates)
            + "). Download the data (python data_download.py all), then compute them once in the repository "
            f"folder with `{SOURCE_ENV}=real python -m leakage_core.study --out results-real --jobs 2` (hours on a "
            f"CPU; see Chapter 14), or set ${RESULTS_ENV} to a folder that holds them."
        )
    raise FileNotFoundError(
        "the study's precomputed results were not found (looked in "
        + ", ".join(str(p) for p in candidates)
        + "). Clone the book's repository (they are committed in results/), set "
        f"${RESULTS_ENV} to the folder, or recompute them with `make results`."
    )
