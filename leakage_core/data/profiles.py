"""Dataset profiles: class names, channels and the label-timeline statistics the generator imitates.

Contract: :data:`PROFILES` holds one :class:`Profile` per dataset (what the generator and the loader need);
:data:`TARGETS` holds, per dataset and statistic, ``(real value, low, high)``: the band the generator's
statistics (:func:`leakage_core.data.label_statistics`) must fall in, the real value with a stated tolerance.
The real values come from the datasets (Chapter 2): WEAR (Bock et al., 2024; 18-subject pre-release) and
Wetlab (Scholl et al., 2015).
"""

from __future__ import annotations

from dataclasses import dataclass, field

WEAR_CLASSES: tuple[str, ...] = (
    "null",
    "jogging",
    "jogging (rotating arms)",
    "jogging (skipping)",
    "jogging (sidesteps)",
    "jogging (butt-kicks)",
    "stretching (triceps)",
    "stretching (lunging)",
    "stretching (shoulders)",
    "stretching (hamstrings)",
    "stretching (lumbar rotation)",
    "push-ups",
    "push-ups (complex)",
    "sit-ups",
    "sit-ups (complex)",
    "burpees",
    "lunges",
    "lunges (complex)",
    "bench-dips",
)
WEAR_CHANNELS: tuple[str, ...] = tuple(
    f"{loc}_acc_{ax}" for loc in ("right_arm", "right_leg", "left_leg", "left_arm") for ax in "xyz"
)
WETLAB_CLASSES: tuple[str, ...] = (
    "null",
    "cutting",
    "inverting",
    "peeling",
    "pestling",
    "pipetting",
    "pouring",
    "stirring",
    "transfer",
)
WETLAB_CHANNELS: tuple[str, ...] = ("acc_x", "acc_y", "acc_z")


@dataclass(frozen=True)
class Profile:
    """Everything the generator and the real loader need to know about one dataset.

    Attributes
    ----------
    name, class_names, channels : identity of the dataset (index 0 = NULL).
    n_subjects : int
        Subjects of the real dataset (the generator's default).
    gravity : float
        1 g in the dataset's unit (1.0 for WEAR in g, 9.81 for Wetlab in m/s^2).
    structure : {"blocks", "actions"}
        ``blocks`` (WEAR): every activity once, as a block of 1-3 NULL-separated bouts, in a
        subject-specific order. ``actions`` (Wetlab): many short NULL-flanked actions, the next action
        repeating the previous one with probability ``repeat_prob`` (protocol steps).
    bout_mean_s : dict
        Mean activity bout length per class, seconds (log-normal, ``bout_sigma``).
    null_gap_mean_s, null_gap_sigma : float
        Mean and log-normal sigma of NULL gaps between bouts.
    class_weights : dict
        ``actions`` only: relative share of samples per class (the real shares).
    minutes_range : tuple
        Real per-subject recording length, minutes (min, max).
    subject_scale_sigma : float
        Log-normal sigma of the per-subject scaling of NULL gaps (subject-to-subject variation).
    families : dict
        Class -> family name; classes of one family get similar motion patterns.
    """

    name: str
    class_names: tuple[str, ...]
    channels: tuple[str, ...]
    n_subjects: int
    gravity: float
    structure: str
    bout_mean_s: dict[str, float]
    bout_sigma: float
    null_gap_mean_s: float
    null_gap_sigma: float
    minutes_range: tuple[float, float]
    subject_scale_sigma: float
    families: dict[str, str]
    class_weights: dict[str, float] = field(default_factory=dict)
    repeat_prob: float = 0.0
    bouts_per_activity: tuple[float, float, float] = (0.4, 0.4, 0.2)

    @property
    def n_classes(self) -> int:
        """Number of classes including NULL."""
        return len(self.class_names)


def _wear_family(name: str) -> str:
    for fam in ("jogging", "stretching", "push-ups", "sit-ups", "lunges"):
        if name.startswith(fam):
            return fam
    return name


def _wear_bout_mean(name: str) -> float:
    fam = _wear_family(name)
    return {"jogging": 54.0, "stretching": 84.0, "lunges": 69.0}.get(fam, 36.0)


WEAR = Profile(
    name="wear",
    class_names=WEAR_CLASSES,
    channels=WEAR_CHANNELS,
    n_subjects=18,
    gravity=1.0,
    structure="blocks",
    bout_mean_s={c: _wear_bout_mean(c) for c in WEAR_CLASSES[1:]},
    bout_sigma=0.35,
    null_gap_mean_s=23.0,
    null_gap_sigma=0.6,
    minutes_range=(36.0, 59.0),
    subject_scale_sigma=0.25,
    families={c: _wear_family(c) for c in WEAR_CLASSES[1:]},
)

# Wetlab: the real mean action lengths (pouring ~5 s ... pestling ~45 s) and NULL runs (mean 28 s)
# cannot all hold together with ~2.7 label changes per minute and 74 % NULL when every action is
# NULL-flanked; the generator keeps the real class shares and *ratios* between action lengths and scales
# the action lengths so that the expected NULL share and change rate are the real ones (Chapter 2).
_WETLAB_SHARE = {
    "cutting": 3.1,
    "inverting": 1.34,
    "peeling": 1.09,
    "pestling": 7.7,
    "pipetting": 6.6,
    "pouring": 1.35,
    "stirring": 4.5,
    "transfer": 0.60,
}
_WETLAB_LEN = {
    "cutting": 17.0,
    "inverting": 8.0,
    "peeling": 12.0,
    "pestling": 45.0,
    "pipetting": 18.0,
    "pouring": 5.0,
    "stirring": 20.0,
    "transfer": 6.0,
}
_WETLAB_LEN_SCALE = 0.70

#: Real timeline figures that no band checks, because the generator gives them up by design (Chapter 2):
#: Wetlab's mean action length per class and its mean NULL run, in seconds. With every action flanked by
#: NULL they cannot hold together with Wetlab's NULL share and change rate (``TARGETS``). The generator
#: keeps the class shares (``PROFILES["wetlab"].class_weights``, % of the recording) and the ratios between
#: the action lengths, and multiplies every action length by one common factor
#: (``PROFILES["wetlab"].bout_mean_s[c] / REAL_TIMELINES["wetlab"]["action_mean_s"][c]``).
REAL_TIMELINES: dict[str, dict] = {"wetlab": {"action_mean_s": dict(_WETLAB_LEN), "null_gap_mean_s": 28.0}}

WETLAB = Profile(
    name="wetlab",
    class_names=WETLAB_CLASSES,
    channels=WETLAB_CHANNELS,
    n_subjects=22,
    gravity=9.81,
    structure="actions",
    bout_mean_s={c: _WETLAB_LEN_SCALE * v for c, v in _WETLAB_LEN.items()},
    bout_sigma=0.45,
    null_gap_mean_s=31.0,
    null_gap_sigma=1.1,
    minutes_range=(34.0, 60.0),
    subject_scale_sigma=0.3,
    families={c: c for c in WETLAB_CLASSES[1:]},
    class_weights=_WETLAB_SHARE,
    repeat_prob=0.1,
)

PROFILES: dict[str, Profile] = {"wear": WEAR, "wetlab": WETLAB}

# Real values (from the dataset statistics) and the bands the generator must meet, as
# (real value, low, high). Tolerances: about +-20 % of the real value, wider where the real data
# itself varies a lot between subjects.
TARGETS: dict[str, dict[str, tuple[float, float, float]]] = {
    "wear": {
        "null_share": (0.308, 0.24, 0.38),
        "distinct_labels_sequential": (1.96, 1.6, 2.4),
        "distinct_labels_shuffle": (18.4, 15.0, 19.0),
        "label_changes_per_min": (71 / 45, 1.1, 2.2),
        "null_flanked_fraction": (1.0, 0.99, 1.0),
        "minutes_full": (45.0, 36.0, 59.0),
    },
    "wetlab": {
        "null_share": (0.737, 0.66, 0.80),
        "distinct_labels_sequential": (2.4, 2.0, 2.9),
        "label_changes_per_min": (2.7, 2.1, 3.3),
        "null_flanked_fraction": (1.0, 0.99, 1.0),
        "minutes_full": (48.0, 34.0, 60.0),
    },
}


def get_profile(name: str) -> Profile:
    """Look up a profile by name (``"wear"`` or ``"wetlab"``); an unknown name raises ``ValueError``."""
    key = str(name).lower()
    if key not in PROFILES:
        raise ValueError(f"unknown dataset profile {name!r}; choose one of {tuple(PROFILES)}.")
    return PROFILES[key]
