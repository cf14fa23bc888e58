"""Pipeline stage 1: HAR data — the synthetic generator, the real-data loader, windowing, statistics.

Contract: both sources (the seeded generator and the loader of the real files) return a :class:`HARDataset`,
one client per subject, windowed as in the paper (50 samples, step 25). References: WEAR (Bock et al., 2024)
and Wetlab (Scholl et al., 2015), the datasets the generator imitates and the loader reads (Chapter 2).
"""

from __future__ import annotations

from .dataset import HARDataset, LOSOSplit, SubjectData
from .profiles import PROFILES, REAL_TIMELINES, TARGETS, Profile, get_profile
from .scaling import SCALINGS, check_scaling, scale_batch
from .real import (
    DATA_ENV,
    EXCERPT_FILES,
    data_dir,
    find_subject_files,
    load_excerpts,
    load_real,
    read_excerpt_csv,
    read_subject_csv,
    write_real,
)
from .source import (
    RESULTS_ENV,
    SOURCE_ENV,
    SOURCES,
    book_dataset,
    data_source,
    first_minutes,
    real_data_available,
    results_dir,
)
from .stats import (
    bout_table,
    class_share_table,
    class_shares,
    distinct_per_batch,
    label_statistics,
    summary_table,
    summary_text,
)
from .synthetic import label_timeline, make_synthetic
from .windowing import sliding_windows

__all__ = [
    "HARDataset",
    "LOSOSplit",
    "SubjectData",
    "DATA_ENV",
    "EXCERPT_FILES",
    "data_dir",
    "load_excerpts",
    "read_excerpt_csv",
    "write_real",
    "RESULTS_ENV",
    "results_dir",
    "SOURCE_ENV",
    "SOURCES",
    "book_dataset",
    "data_source",
    "first_minutes",
    "real_data_available",
    "PROFILES",
    "REAL_TIMELINES",
    "TARGETS",
    "Profile",
    "get_profile",
    "find_subject_files",
    "load_real",
    "read_subject_csv",
    "bout_table",
    "class_share_table",
    "class_shares",
    "distinct_per_batch",
    "label_statistics",
    "summary_table",
    "summary_text",
    "label_timeline",
    "make_synthetic",
    "SCALINGS",
    "check_scaling",
    "scale_batch",
    "sliding_windows",
    "load_dataset",
]


def load_dataset(source: str = "synthetic", profile: str = "wear", **kwargs) -> HARDataset:
    """One entry point: ``source="synthetic"`` generates data, any other value is a folder to load.

    ``kwargs`` go to :func:`make_synthetic` or :func:`load_real`.
    """
    if source == "synthetic":
        return make_synthetic(profile, **kwargs)
    return load_real(source, dataset=profile, **kwargs)
