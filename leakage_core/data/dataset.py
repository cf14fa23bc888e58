"""The one dataset object shared by the synthetic generator and the real loader.

Contract: a :class:`HARDataset` holds, per subject (= federated client), the continuous recording and its
windows (:class:`SubjectData`), plus what every later stage needs (class names with NULL at index 0,
channels, sampling rate, windowing). Frozen: no stage changes a dataset. Chapter 2 introduces it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class SubjectData:
    """One subject (= one federated client): its continuous recording and its windows.

    Attributes
    ----------
    subject_id : int
        Subject number as in the file name ``sbj_<k>.csv`` (or the generator's index).
    signals : numpy.ndarray
        ``(T, n_channels)`` float32 continuous recording at ``sampling_rate`` Hz.
    sample_labels : numpy.ndarray
        ``(T,)`` int64 label per sample (0 = NULL).
    windows : numpy.ndarray
        ``(n_windows, window_size, n_channels)`` float32 sliding windows.
    labels : numpy.ndarray
        ``(n_windows,)`` int64 window labels (label of each window's last sample).
    """

    subject_id: int
    signals: np.ndarray
    sample_labels: np.ndarray
    windows: np.ndarray
    labels: np.ndarray

    @property
    def n_windows(self) -> int:
        """Number of windows of this subject."""
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class HARDataset:
    """Per-subject windows and labels plus the metadata every later stage needs.

    Produced by :func:`leakage_core.data.make_synthetic` (the embedded default) and
    :func:`leakage_core.data.load_real` (WEAR / Wetlab).

    Attributes
    ----------
    name : str
        ``"wear"``, ``"wetlab"`` or a user-given name.
    class_names : tuple of str
        Class names; index 0 is the NULL class.
    channels : tuple of str
        Sensor channel names.
    sampling_rate : int
        Samples per second (50 for both datasets).
    window_size, window_step : int
        Sliding-window length and step in samples (50 and 25 in the paper).
    subjects : dict
        ``subject_id -> SubjectData``, in ascending subject order.
    source : str
        ``"synthetic"`` or the folder the real data was read from.
    """

    name: str
    class_names: tuple[str, ...]
    channels: tuple[str, ...]
    sampling_rate: int
    window_size: int
    window_step: int
    subjects: dict[int, SubjectData] = field(repr=False)
    source: str = "synthetic"

    @property
    def n_classes(self) -> int:
        """``C``, number of classes including NULL."""
        return len(self.class_names)

    @property
    def n_channels(self) -> int:
        """Number of sensor channels."""
        return len(self.channels)

    @property
    def subject_ids(self) -> list[int]:
        """Subject ids in ascending order."""
        return sorted(self.subjects)

    def windows_of(self, subject_ids: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Concatenate windows and labels of some subjects (all if ``None``)."""
        ids = self.subject_ids if subject_ids is None else list(subject_ids)
        missing = [s for s in ids if s not in self.subjects]
        if missing:
            raise ValueError(f"unknown subject ids {missing}; available: {self.subject_ids}")
        xs = [self.subjects[s].windows for s in ids]
        ys = [self.subjects[s].labels for s in ids]
        return np.concatenate(xs, axis=0), np.concatenate(ys, axis=0)

    def loso(self, held_out: int) -> "LOSOSplit":
        """The leave-one-subject-out split of client ``held_out``: the client and the other subjects' data."""
        if held_out not in self.subjects:
            raise ValueError(f"held_out must be one of the subjects {self.subject_ids}, got {held_out!r}.")
        return LOSOSplit(self, int(held_out))

    def fingerprint(self) -> str:
        """A short content hash of every subject's windows and labels (the data's identity in cache keys).

        Used in the study's cache keys (:func:`leakage_core.study.cache_file`). Two datasets with equal windows,
        labels, class names and channels have equal fingerprints, whatever their source; any changed value changes it.
        """
        import hashlib

        h = hashlib.blake2b(digest_size=12)
        h.update(repr((self.class_names, self.channels, self.window_size, self.window_step)).encode())
        for s in self.subject_ids:
            sub = self.subjects[s]
            h.update(str(s).encode())
            h.update(np.ascontiguousarray(sub.windows, dtype=np.float32).tobytes())
            h.update(np.ascontiguousarray(sub.labels, dtype=np.int64).tobytes())
        return h.hexdigest()

    def class_counts(self) -> "np.ndarray":
        """``(n_subjects, C)`` window counts per subject and class."""
        return np.stack([np.bincount(self.subjects[s].labels, minlength=self.n_classes) for s in self.subject_ids])


@dataclass(frozen=True)
class LOSOSplit:
    """One leave-one-subject-out split: the attacked client and what the server holds, the other subjects.

    Built by :meth:`HARDataset.loso`. The others' windows and labels (:attr:`aux`, the auxiliary data of an
    attack that needs labelled data) are concatenated on first use only.

    Attributes
    ----------
    dataset : HARDataset
        The clients.
    held_out : int
        The attacked (held-out) subject.
    """

    dataset: HARDataset = field(repr=False)
    held_out: int

    @property
    def client(self) -> SubjectData:
        """The attacked client's data."""
        return self.dataset.subjects[self.held_out]

    @property
    def others(self) -> tuple[int, ...]:
        """The other subjects' ids (those a LOSO server trains on), ascending."""
        return tuple(s for s in self.dataset.subject_ids if s != self.held_out)

    @cached_property
    def aux(self) -> tuple[np.ndarray, np.ndarray]:
        """The other subjects' windows and labels, concatenated in subject order."""
        return self.dataset.windows_of(list(self.others))
