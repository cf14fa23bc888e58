"""Label statistics of a dataset: what the generator is calibrated to, and what Chapter 2 plots."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .dataset import HARDataset


def bout_table(sample_labels: np.ndarray, sampling_rate: int = 50) -> pd.DataFrame:
    """Runs of constant label: ``label, start_s, end_s, duration_s`` (one row per run, NULL included).

    Introduced in Chapter 7.
    """
    y = np.asarray(sample_labels)
    if y.size == 0:
        return pd.DataFrame(columns=["label", "start_s", "end_s", "duration_s"])
    change = np.flatnonzero(np.diff(y)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [y.size]])
    return pd.DataFrame({"label": y[starts], "start_s": starts / sampling_rate, "end_s": ends / sampling_rate,
                         "duration_s": (ends - starts) / sampling_rate})


def distinct_per_batch(labels: np.ndarray, batch_size: int = 100, shuffle: bool = False, seed: int = 0) -> float:
    """Mean number of distinct labels per complete batch of consecutive (or shuffled) windows.

    Not used in a chapter yet.
    """
    y = np.asarray(labels)
    if shuffle:
        y = np.random.default_rng(seed).permutation(y)
    n = y.size // batch_size
    if n == 0:
        return float("nan")
    return float(np.mean([np.unique(y[i * batch_size : (i + 1) * batch_size]).size for i in range(n)]))


def label_statistics(dataset: HARDataset, batch_size: int = 100) -> pd.DataFrame:
    """One row per subject: the label-timeline statistics the generator is calibrated to.

    Introduced in Chapter 2. Columns: ``minutes, n_windows, null_share, n_bouts,
    label_changes_per_min, bout_mean_s, null_gap_mean_s, null_flanked_fraction,
    distinct_labels_sequential, distinct_labels_shuffle``.
    """
    rows = []
    for sid in dataset.subject_ids:
        s = dataset.subjects[sid]
        bt = bout_table(s.sample_labels, dataset.sampling_rate)
        act = bt.index[bt["label"] != 0]
        inner = [i for i in act if 0 < i < len(bt) - 1]
        flanked = (np.mean([bt["label"].iat[i - 1] == 0 and bt["label"].iat[i + 1] == 0 for i in inner])
                   if inner else np.nan)
        minutes = s.sample_labels.size / dataset.sampling_rate / 60
        gaps = bt.loc[bt["label"] == 0, "duration_s"]
        rows.append({
            "subject": sid,
            "minutes": minutes,
            "n_windows": s.n_windows,
            "null_share": float(np.mean(s.sample_labels == 0)),
            "n_bouts": len(act),
            "label_changes_per_min": (len(bt) - 1) / minutes,
            "bout_mean_s": float(bt.loc[act, "duration_s"].mean()) if len(act) else np.nan,
            "null_gap_mean_s": float(gaps.mean()) if len(gaps) else np.nan,
            "null_flanked_fraction": float(flanked),
            "distinct_labels_sequential": distinct_per_batch(s.labels, batch_size),
            "distinct_labels_shuffle": distinct_per_batch(s.labels, batch_size, shuffle=True),
        })
    return pd.DataFrame(rows).set_index("subject")


def class_shares(dataset: HARDataset) -> pd.Series:
    """Share of samples per class name over all subjects. Introduced in Chapter 2."""
    counts = np.zeros(dataset.num_classes)
    for s in dataset.subjects.values():
        counts += np.bincount(s.sample_labels, minlength=dataset.num_classes)
    return pd.Series(counts / counts.sum(), index=list(dataset.class_names), name="share")
