"""The embedded default data: a seeded, HAR-like stream generator with WEAR and Wetlab profiles.

Two independent parts per subject: a **label timeline** calibrated to the real dataset's statistics
(NULL share, bout lengths, NULL-flanked bouts, label changes per minute, subject variation), and
**signals** with class-specific motion patterns under subject variation and noise.
"""

from __future__ import annotations

import math
import zlib

import numpy as np

from .dataset import HARDataset, SubjectData
from .profiles import Profile, get_profile
from .windowing import sliding_windows

SAMPLING_RATE = 50

_SIN = np.frompyfunc(math.sin, 1, 1)
_EXP = np.frompyfunc(math.exp, 1, 1)


def _sin(x):
    """``sin`` evaluated by the C library for every element, so the data are the same on every CPU.

    NumPy evaluates float64 ``sin``/``exp`` of arrays with its own AVX-512 kernels where the CPU has
    them and with the C library elsewhere; the two differ in the last bit for a few values, which made
    the generated windows (and every cache key and committed result that hashes them) depend on the
    machine. Element-wise ``math`` calls cost ~0.1 s per million values.
    """
    return _SIN(x).astype(np.float64) if np.ndim(x) else math.sin(x)


def _exp(x):
    """``exp`` evaluated by the C library for every element (see :func:`_sin`)."""
    return _EXP(x).astype(np.float64) if np.ndim(x) else math.exp(x)


def _rng(seed: int, *keys: object) -> np.random.Generator:
    """A generator keyed by (seed, keys): subject k's data never depends on how many subjects exist."""
    words = [int(seed) & 0xFFFFFFFF] + [zlib.crc32(str(k).encode()) for k in keys]
    return np.random.default_rng(np.random.SeedSequence(words))


def _lognormal(rng: np.random.Generator, mean: float, sigma: float, size=None) -> np.ndarray:
    """Log-normal draws with the given *mean* (not median)."""
    return rng.lognormal(math.log(mean) - sigma**2 / 2, sigma, size=size)


def label_timeline(profile: Profile, minutes: float | None, rng: np.random.Generator) -> np.ndarray:
    """One subject's label per sample at 50 Hz (0 = NULL), calibrated to ``profile``.

    Every activity bout is flanked by NULL. ``blocks`` profiles (WEAR) do
    every activity once as a block of 1-3 bouts in a subject-specific order; when ``minutes`` is shorter
    than that workout, the recording simply ends early, so a short recording holds a subject-specific
    subset of activities with realistic bout lengths (and longer requests add another workout round).
    ``actions`` profiles (Wetlab) draw short actions by the real class shares, repeating the previous
    action with ``repeat_prob`` (protocol steps). ``minutes=None`` gives the real-size recording.
    """
    gap_scale = float(_exp(rng.normal(0.0, profile.subject_scale_sigma)))
    bout_scale = float(_exp(rng.normal(0.0, 0.15)))
    if minutes is None:
        lo, hi = profile.minutes_range
        target_s = None if profile.structure == "blocks" else rng.uniform(lo, hi) * 60
    else:
        if not minutes > 0:
            raise ValueError(f"minutes must be positive (or None for the real size), got {minutes!r}.")
        target_s = float(minutes) * 60
    names = profile.class_names
    segments: list[tuple[int, float]] = []  # (class, seconds)
    total = 0.0

    def add(cls: int, seconds: float) -> None:
        nonlocal total
        segments.append((cls, seconds))
        total += seconds

    def gap() -> None:
        add(0, max(2.0, gap_scale * float(_lognormal(rng, profile.null_gap_mean_s, profile.null_gap_sigma))))

    def bout(cls: int) -> None:
        mean = bout_scale * profile.bout_mean_s[names[cls]]
        add(cls, max(2.0, float(_lognormal(rng, mean, profile.bout_sigma))))

    gap()
    if profile.structure == "blocks":
        rounds = 0
        while True:
            for cls in rng.permutation(np.arange(1, len(names))):
                for _ in range(rng.choice(3, p=profile.bouts_per_activity) + 1):
                    bout(int(cls))
                    gap()
                    if target_s is not None and total >= target_s:
                        break
                if target_s is not None and total >= target_s:
                    break
            rounds += 1
            if target_s is None or total >= target_s:
                break
    else:
        classes = np.arange(1, len(names))
        share = np.array([profile.class_weights[names[c]] for c in classes])
        rate = share / np.array([profile.bout_mean_s[names[c]] for c in classes])
        p = rate / rate.sum()  # choose actions so that time shares match the real class shares
        prev = None
        while total < target_s:
            cls = prev if prev is not None and rng.random() < profile.repeat_prob else int(rng.choice(classes, p=p))
            bout(cls)
            gap()
            prev = cls
    labels = np.concatenate([np.full(int(round(s * SAMPLING_RATE)), c, np.int64) for c, s in segments])
    if target_s is not None:
        n = int(round(target_s * SAMPLING_RATE))
        labels = labels[:n]
        if labels[-1] != 0:  # keep the last bout NULL-flanked: end the recording in NULL
            last = np.flatnonzero(labels == 0)
            tail = n - (last[-1] + 1) if last.size else 0
            labels[n - min(tail, n) :] = 0
    return labels


def _class_patterns(profile: Profile, seed: int, difficulty: float) -> dict[str, np.ndarray]:
    """Per-class motion templates shared by all subjects (classes of a family are similar)."""
    rng = _rng(seed, profile.name, "patterns")
    ch, c = len(profile.channels), len(profile.class_names)
    fam_names = sorted(set(profile.families.values()))
    fam = {
        f: dict(
            freq=rng.uniform(0.6, 2.8),
            amp=rng.uniform(0.15, 0.9, ch),
            grav=rng.normal(0, 0.6, ch),
            phase=rng.uniform(0, 2 * np.pi, ch),
        )
        for f in fam_names
    }
    spread = 0.35 / max(difficulty, 1e-3)  # how different classes of one family are
    freq = np.zeros(c)
    amp, amp2, grav, phase = (np.zeros((c, ch)) for _ in range(4))
    burst = np.zeros(c)
    for k in range(1, c):
        f = fam[profile.families[profile.class_names[k]]]
        freq[k] = f["freq"] * _exp(rng.normal(0, 0.25 * spread))
        amp[k] = f["amp"] * _exp(rng.normal(0, spread, ch))
        amp2[k] = rng.uniform(0.0, 0.5, ch) * amp[k]
        grav[k] = f["grav"] + rng.normal(0, 0.3 * spread, ch)
        phase[k] = f["phase"] + rng.normal(0, spread, ch)
        burst[k] = rng.uniform(0, 1) < 0.3
    grav[0] = rng.normal(0, 0.3, ch)
    amp[0] = 0.05
    return dict(freq=freq, amp=amp, amp2=amp2, grav=grav, phase=phase, burst=burst)


def _signals(
    labels: np.ndarray, pat: dict, profile: Profile, rng: np.random.Generator, difficulty: float
) -> np.ndarray:
    """Continuous signals for one subject's label timeline (unit: the profile's; 1 g = gravity)."""
    ch = len(profile.channels)
    t_all = np.arange(labels.size) / SAMPLING_RATE
    f_scale = _exp(rng.normal(0, 0.08 * difficulty))
    a_scale = _exp(rng.normal(0, 0.2 * difficulty, ch))
    orient = rng.normal(0, 0.15 * difficulty, ch)
    out = np.empty((labels.size, ch))
    change = np.flatnonzero(np.diff(labels)) + 1
    for s, e in zip(np.concatenate([[0], change]), np.concatenate([change, [labels.size]])):
        k = labels[s]
        t = t_all[s:e, None] - t_all[s]
        if k == 0:  # NULL: slow irregular movement around a random posture
            walk = np.cumsum(rng.normal(0, 0.02, (e - s, ch)), axis=0)
            walk -= np.linspace(0, 1, e - s)[:, None] * walk[-1]
            out[s:e] = pat["grav"][0] + rng.normal(0, 0.2, ch) + walk
            continue
        f = pat["freq"][k] * f_scale * _exp(rng.normal(0, 0.04))
        ph = rng.uniform(0, 2 * np.pi)
        x = pat["amp"][k] * a_scale * _sin(2 * np.pi * f * t + pat["phase"][k] + ph)
        x = x + pat["amp2"][k] * a_scale * _sin(4 * np.pi * f * t + 2 * (pat["phase"][k] + ph))
        if pat["burst"][k]:  # exercise repetitions: motion comes in bursts
            x = x * (0.5 + 0.5 * _sin(np.pi * f / 3 * t) ** 2)
        out[s:e] = pat["grav"][k] + x
    out += orient
    drift = np.cumsum(rng.normal(0, 0.002, (labels.size, ch)), axis=0)
    out += drift - drift.mean(axis=0)
    out += rng.normal(0, 0.08 * difficulty, out.shape)
    return (out * profile.gravity).astype(np.float32)


def make_synthetic(
    profile: str = "wear",
    n_subjects: int | None = None,
    minutes: float | None = None,
    seed: int = 0,
    difficulty: float = 1.0,
    window_size: int = 50,
    window_step: int = 25,
) -> HARDataset:
    """Generate a HAR-like federated dataset: one continuous 50 Hz recording per subject.

    Introduced in Chapter 2.

    Parameters
    ----------
    profile : {"wear", "wetlab"}
        Which dataset to imitate (class names, channels, label-timeline statistics).
    n_subjects : int or None
        Number of subjects (clients), ids ``1..n``; ``None`` = the real dataset's (18 / 22).
    minutes : float or None
        Recording length per subject; ``None`` = real size (WEAR ~36-59 min, Wetlab 34-60 min).
    seed : int
        Seed; subject ``k``'s data depends only on ``(seed, profile, k, difficulty)``.
    difficulty : float
        Scales sensor noise and subject variation and shrinks the differences between classes of
        one family. 1.0 is learnable by DeepConvLSTM but not trivially.
    window_size, window_step : int
        Windowing (paper: 50 and 25 samples).
    """
    prof = get_profile(profile)
    n = prof.n_subjects if n_subjects is None else n_subjects
    if int(n) != n or n < 1:
        raise ValueError(f"n_subjects must be a positive integer or None, got {n_subjects!r}.")
    if not difficulty > 0:
        raise ValueError(f"difficulty must be positive, got {difficulty!r}.")
    pat = _class_patterns(prof, seed, difficulty)
    subjects = {}
    for k in range(1, int(n) + 1):
        labels = label_timeline(prof, minutes, _rng(seed, prof.name, k, "labels"))
        sig = _signals(labels, pat, prof, _rng(seed, prof.name, k, "signals", difficulty), difficulty)
        win, wlab = sliding_windows(sig, labels, window_size, window_step)
        subjects[k] = SubjectData(k, sig, labels, win, wlab)
    return HARDataset(
        prof.name,
        prof.class_names,
        prof.channels,
        SAMPLING_RATE,
        window_size,
        window_step,
        subjects,
        source="synthetic",
    )
