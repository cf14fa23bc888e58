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

from .dataset import HARDataset, SubjectData
from .profiles import get_profile
from .real import data_dir, find_subject_files, load_real
from .synthetic import make_synthetic
from .windowing import sliding_windows

#: environment variable that selects the data of every experiment chapter
SOURCE_ENV = "LEAKAGE_HAR_SOURCE"
SOURCES = ("synthetic", "real")


def data_source() -> str:
    """``"synthetic"`` or ``"real"``: the value of ``$LEAKAGE_HAR_SOURCE`` (default ``"synthetic"``).

    Introduced in Chapter 14.
    """
    value = os.environ.get(SOURCE_ENV, "synthetic").strip().lower() or "synthetic"
    if value not in SOURCES:
        raise ValueError(f"${SOURCE_ENV}={value!r} is not a data source; use one of {SOURCES} "
                         f"(unset it for the embedded generator).")
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
    """Every subject's first ``minutes`` of recording, windowed again (a shorter client of the same person).

    Not used in a chapter yet.
    """
    if not minutes > 0:
        raise ValueError(f"minutes must be positive, got {minutes!r}.")
    n = int(round(minutes * 60 * data.sampling_rate))
    subjects = {}
    for k, sub in data.subjects.items():
        sig, lab = sub.signals[:n], sub.sample_labels[:n]
        win, wlab = sliding_windows(sig, lab, data.window_size, data.window_step)
        subjects[k] = SubjectData(k, sig, lab, win, wlab)
    return HARDataset(data.name, data.class_names, data.channels, data.sampling_rate, data.window_size,
                      data.window_step, subjects, source=data.source)


def book_dataset(profile: str = "wear", n_subjects: int | None = None, minutes: float | None = None,
                 seed: int = 0, **generator_options) -> HARDataset:
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
        print(f"Note: {SOURCE_ENV}=real, but no {name} data in {data_dir() / name}; using the embedded "
              f"generator. Get the data with: python data_download.py {name}")
    return make_synthetic(name, n_subjects=n_subjects, minutes=minutes, seed=seed, **generator_options)


__all__ = ["SOURCE_ENV", "SOURCES", "book_dataset", "data_source", "first_minutes",
           "real_data_available"]
