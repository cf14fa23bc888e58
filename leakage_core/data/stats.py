"""Label statistics of a dataset: what the generator is calibrated to, what Chapter 2 plots, and the
per-dataset summary that ``python data_download.py`` prints (Chapter 14).

Contract: pure functions of :class:`~leakage_core.data.HARDataset` objects or label arrays; nothing is
read or written.
"""

from __future__ import annotations

from typing import Mapping

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
    return pd.DataFrame(
        {
            "label": y[starts],
            "start_s": starts / sampling_rate,
            "end_s": ends / sampling_rate,
            "duration_s": (ends - starts) / sampling_rate,
        }
    )


def distinct_per_batch(labels: np.ndarray, batch_size: int = 100, shuffle: bool = False, seed: int = 0) -> float:
    """Mean number of distinct labels per complete batch of consecutive (or shuffled) windows (NaN: no batch)."""
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
        flanked = (
            np.mean([bt["label"].iat[i - 1] == 0 and bt["label"].iat[i + 1] == 0 for i in inner]) if inner else np.nan
        )
        minutes = s.sample_labels.size / dataset.sampling_rate / 60
        gaps = bt.loc[bt["label"] == 0, "duration_s"]
        rows.append(
            {
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
            }
        )
    return pd.DataFrame(rows).set_index("subject")


def class_shares(dataset: HARDataset) -> pd.Series:
    """Share of samples per class name over all subjects. Introduced in Chapter 2."""
    counts = np.zeros(dataset.n_classes)
    for s in dataset.subjects.values():
        counts += np.bincount(s.sample_labels, minlength=dataset.n_classes)
    return pd.Series(counts / counts.sum(), index=list(dataset.class_names), name="share")


def summary_table(datasets: Mapping[str, HARDataset]) -> pd.DataFrame:
    """One row per dataset: subjects, minutes (total, shortest and longest subject), windows, classes, NULL share.

    Introduced in Chapter 14. ``datasets`` maps a label to a dataset, e.g.
    :func:`leakage_core.download.load_downloaded`'s result.
    """
    rows = []
    for label, d in datasets.items():
        minutes = np.array([d.subjects[k].sample_labels.size for k in d.subject_ids]) / d.sampling_rate / 60
        labels = np.concatenate([d.subjects[k].sample_labels for k in d.subject_ids])
        rows.append(
            {
                "dataset": label,
                "subjects": len(d.subject_ids),
                "minutes": float(minutes.sum()),
                "min_minutes": float(minutes.min()),
                "max_minutes": float(minutes.max()),
                "windows": int(sum(d.subjects[k].n_windows for k in d.subject_ids)),
                "classes_present": int(np.unique(labels).size),
                "classes": d.n_classes,
                "null_share": float(np.mean(labels == 0)),
            }
        )
    return pd.DataFrame(rows).set_index("dataset")


def class_share_table(datasets: Mapping[str, HARDataset]) -> dict[str, pd.Series]:
    """:func:`class_shares` per dataset (the input :func:`leakage_core.book.plot_class_shares` takes)."""
    return {label: class_shares(d) for label, d in datasets.items()}


def summary_text(datasets: Mapping[str, HARDataset]) -> str:
    """:func:`summary_table` as text, then each dataset's class shares (present classes, largest first)."""
    lines = [summary_table(datasets).to_string(float_format=lambda v: f"{v:.2f}"), "Class shares (share of samples):"]
    for label, shares in class_share_table(datasets).items():
        present = shares[shares > 0].sort_values(ascending=False)
        lines.append(f"  {label}: " + ", ".join(f"{name} {100 * v:.1f} %" for name, v in present.items()))
    return "\n".join(lines)
