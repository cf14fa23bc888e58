"""The book's study grids (Chapters 8-12 and 15): which settings, attacks and clients, on which data.

The study data: per dataset profile, :data:`N_SUBJECTS` generated subjects of *real* recording length
(36-60 minutes: a shuffled WEAR-like batch then holds as many distinct labels as a real one), of which the
:data:`ATTACKED` (every one longer than 40 minutes) are attacked. A trained model is the attacked client's
leave-one-subject-out model, trained on the other subjects for :data:`TRAIN_EPOCHS` epoch(s) with Adam at
:data:`TRAIN_LR` (the paper: 100 epochs at 1e-4, ~100 CPU hours; Chapter 9 reports what these models reach).
:func:`study_grids` lists the grids; :mod:`~leakage_core.study.run` computes them. The defences grid names its
defences by registry name and options (:data:`DEFENSE_STRENGTHS`); they are made from the registry of
:mod:`leakage_core.defenses` when the grid is used.
"""

from __future__ import annotations

from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence


from ..attacks import PAPER_ATTACKS
from ..data.profiles import PROFILES
from ..models.architectures import MODELS
from .grid import STATES, Setting
from ..federated.sampling import SAMPLERS
from ..federated import LDP

if TYPE_CHECKING:  # pragma: no cover
    from ..defenses.base import Defense


#: subjects generated per dataset profile (real length each)
N_SUBJECTS: int = 6
#: the attacked clients (each with its own LOSO model when trained)
ATTACKED: tuple[int, ...] = (1, 2, 4, 5)
#: training of the LOSO models (the paper: 100 epochs, lr 1e-4; see the module docstring)
TRAIN_EPOCHS: int = 1
TRAIN_LR: float = 1e-3
#: the book's attacks, the two baselines and the two blind references (which read no gradient)
BOOK_ATTACKS: tuple[str, ...] = (
    "llg",
    "llg_star",
    "llbg",
    "ebi",
    "ilrg",
    "idlg",
    "existence",
    "blind_uniform",
    "blind_prior",
)
#: attacks that use the server's auxiliary data (the other subjects' windows), run on trained models
AUX_ATTACKS: dict[str, dict[str, Any]] = {
    "llbg:aux": {"confidence": "aux"},
    "llg_plus": {},
    "blind_uniform": {},
    "blind_prior": {},
}
#: the attacks as the seed paper's public code ran them (leakage_core.attacks.paper_code); EBI is unchanged
PAPER_CODE_ATTACKS: dict[str, dict[str, Any]] = {
    "llg:code": {"variant": "paper_code"},
    "llg_star:code": {"variant": "paper_code"},
    "llbg:code": {"variant": "paper_code"},
    "ebi": {},
    "ilrg:code": {"variant": "paper_code"},
    "blind_uniform": {},
    "blind_prior": {},
}
#: numbers of training epochs of the ``training_length`` grid (snapshots of one run per fold)
TRAINING_LENGTH_EPOCHS: tuple[int, ...] = (1, 3, 10)
#: profiles of the ``training_length`` grid (WEAR-like DeepConvLSTM folds cost ~3x more per epoch)
TRAINING_LENGTH_PROFILES: tuple[str, ...] = ("wetlab",)
#: minutes per client of the reconciliation's short-client grid
SHORT_MINUTES: float = 10.0
#: (N, S) of the multi-step grid (S = 1 is the single-step grid)
MULTI_STEP: tuple[tuple[int, int], ...] = ((100, 2), (100, 5), (500, 5))
#: the attacks of Chapter 15's grid: the paper's five, the aux-data extensions, the count attacks of Geng et al.
#: and Dimitrov et al. (their originals: statistics from Gaussian dummies, weight rows; and from auxiliary windows,
#: bias rows), our own (lmmse) and the two blind references
STRONGER_ATTACKS: dict[str, dict[str, Any]] = {
    "llg": {},
    "llg_star": {},
    "llbg": {},
    "ebi": {},
    "ilrg": {},
    "llbg:aux": {"confidence": "aux"},
    "llg_plus": {},
    "geng": {},
    "geng:aux": {"stats": "aux"},
    "geng:bias": {"stats": "aux", "row": "bias"},
    "dimitrov": {},
    "dimitrov:bias": {"stats": "aux", "row": "bias"},
    "lmmse": {},
    "blind_uniform": {},
    "blind_prior": {},
}
#: (N, S) of Chapter 15's grid with and without a classifier bias
STRONGER_STEPS: dict[bool, tuple[tuple[int, int], ...]] = {
    True: ((100, 1), (100, 2), (100, 5), (500, 5)),
    False: ((100, 1), (100, 5)),
}
#: profiles of Chapter 15's grid (the WEAR-like one costs ~8x more in the aux-data attacks' preparation)
STRONGER_PROFILES: tuple[str, ...] = ("wetlab",)
#: the paper's three defences; clipping on the last layer's norm (text) and on all layers' (code)
LDP_VARIANTS: tuple[LDP, ...] = (
    LDP(sigma=0.1),
    LDP(rho=0.1),
    LDP(sigma=0.1, rho=0.1),
    LDP(rho=0.1, scope="all"),
    LDP(sigma=0.1, rho=0.1, scope="all"),
)

#: profiles of the defences grid
DEFENSE_PROFILES: tuple[str, ...] = ("wetlab",)
#: the attacked clients of the defences grid
DEFENSE_SUBJECTS: tuple[int, ...] = ATTACKED
#: the attacks of the defences grid: the paper's five, the strongest of Chapter 15's, the defence-aware attack on
#: the two that read different rows (it de-biases their counts for the defence the update records), the blind
#: references
DEFENSE_ATTACKS: dict[str, dict[str, Any]] = {
    **{
        name: dict(STRONGER_ATTACKS[name])
        for name in ("llg", "llg_star", "llbg", "ebi", "ilrg", "llbg:aux", "lmmse", "geng:bias", "dimitrov:bias")
    },
    "aware:lmmse": {"base": "lmmse"},
    "aware:llbg": {"base": "llbg"},
    **{name: dict(STRONGER_ATTACKS[name]) for name in ("blind_uniform", "blind_prior")},
}
#: the defences of the defences grid and their strengths, by registry name and options (made into
#: :class:`~leakage_core.defenses.Defense` objects only when the grid is built, :func:`defense_instances`): the
#: paper's LDP (clip rho = 0.1, noise sigma = 0.1, 0.4, 1: noise multipliers sigma / rho = 1, 4, 10), top-k
#: sparsification keeping 10 % and 1 %, sign, 8-bit quantisation, label randomized response at epsilon 1, 2, 4,
#: the class-weighted loss, no classifier bias, DP-SGD at noise multipliers 0.6, 1 and 2
DEFENSE_STRENGTHS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("ldp", {"sigma": 0.1, "rho": 0.1}),
    ("ldp", {"sigma": 0.4, "rho": 0.1}),
    ("ldp", {"sigma": 1.0, "rho": 0.1}),
    ("topk", {"fraction": 0.1}),
    ("topk", {"fraction": 0.01}),
    ("sign", {}),
    ("quantize", {"bits": 8}),
    ("label_dp", {"eps": 1.0}),
    ("label_dp", {"eps": 2.0}),
    ("label_dp", {"eps": 4.0}),
    ("weighted_loss", {}),
    ("no_bias", {}),
    ("dp_sgd", {"noise_multiplier": 0.6}),
    ("dp_sgd", {"noise_multiplier": 1.0}),
    ("dp_sgd", {"noise_multiplier": 2.0}),
)
#: the models a defence is measured on where not both, in the ``defenses`` grid: DP-SGD (per-window gradients through
#: Opacus's DP LSTM, a Python loop over time steps) has grids of its own
DEFENSE_MODELS: dict[str, tuple[str, ...]] = {"dp_sgd": ()}
#: the DP-SGD grid (``defenses_dpsgd``): both models (one DP-SGD epoch of one fold takes ~30 s for TinyHAR and
#: ~250 s for DeepConvLSTM on two cores), the defences grid's clients
DPSGD_MODELS: tuple[str, ...] = MODELS
DPSGD_SUBJECTS: tuple[int, ...] = DEFENSE_SUBJECTS
#: DP-SGD trained longer (``defenses_dpsgd_long``): after one epoch its models are close to answering NULL, so
#: TinyHAR is trained for DPSGD_LONG_EPOCHS epochs at the noise multipliers DPSGD_LONG_NOISE (the undefended models
#: of as many epochs are the ``training_length`` grid's)
DPSGD_LONG_MODELS: tuple[str, ...] = ("tinyhar",)
DPSGD_LONG_NOISE: tuple[float, ...] = (1.0,)
DPSGD_LONG_EPOCHS: int = 10
#: the stages of the defences that are measured on untrained models too (they need no training to act)
UNTRAINED_STAGES: tuple[str, ...] = ("update", "labels")


class DeferredSettings(SequenceABC):
    """A grid's settings, built on first use (a sequence of :class:`Setting`).

    The defences grid makes its defences from the registry when it is used, not when the grids are listed:
    listing, filtering or running the other grids never needs them.
    """

    def __init__(self, build: Callable[[], Sequence[Setting]]) -> None:
        self._build = build
        self._items: tuple[Setting, ...] | None = None

    def _settings(self) -> tuple[Setting, ...]:
        if self._items is None:
            self._items = tuple(self._build())
        return self._items

    def __getitem__(self, index):
        return self._settings()[index]

    def __len__(self) -> int:
        return len(self._settings())

    def __iter__(self) -> Iterator[Setting]:
        return iter(self._settings())

    def __contains__(self, setting: object) -> bool:
        return setting in self._settings()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SequenceABC) and tuple(self) == tuple(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"DeferredSettings({'built' if self._items is not None else 'not built yet'})"


def defense_instances(strengths: Sequence[tuple[str, Mapping[str, Any]]] = DEFENSE_STRENGTHS) -> list["Defense"]:
    """The defences of ``strengths`` (registry name and options each) as objects, from the defence registry.

    Raises ``ValueError`` naming the defence when a name is not registered or its options do not fit.
    """
    from .. import defenses  # noqa: F401  (importing the package registers every defence)
    from ..defenses.base import DEFENSES, make_defense

    out = []
    for name, options in strengths:
        if name not in DEFENSES:
            raise ValueError(
                f"the defences grid needs the defence {name!r}, which is not registered (registered: "
                f"{sorted(DEFENSES)}); its module in leakage_core.defenses must be imported by that package."
            )
        out.append(make_defense(name, **dict(options)))
    return out


def defense_settings(
    defenses: Sequence["Defense"], models: Mapping[str, Sequence[str]] | None = None, baseline: bool = True
) -> list[Setting]:
    """The defences grid's settings: the undefended baseline and one setting per defence, for both models, the three
    samplers, N = 100, S = 1; trained models, and untrained ones too for defences of :data:`UNTRAINED_STAGES`
    (the baseline: both). Trained models are the study's LOSO models (:data:`TRAIN_EPOCHS` at :data:`TRAIN_LR`),
    trained under the defence where it shapes the model (:meth:`Setting.model_defense`).

    ``models`` maps a defence's registry name to the models it is measured on (default: both; see
    :data:`DEFENSE_MODELS`); ``baseline=False`` leaves out the undefended settings.

    Raises ``ValueError`` when two defences give the same setting.
    """
    models = {} if models is None else models
    out = []
    for defense in ((None,) if baseline else ()) + tuple(defenses):
        states = STATES if defense is None or defense.stage in UNTRAINED_STAGES else ("trained",)
        names = MODELS if defense is None else tuple(models.get(defense.name, MODELS))
        out += [_setting(m, st, sampler=sp, defense=defense) for m in names for st in states for sp in SAMPLERS]
    if len(set(out)) != len(out):
        raise ValueError("the defences give the same setting twice (two equal defences, or one equal to no defence).")
    return out


def _dpsgd_settings(models: Sequence[str]) -> list[Setting]:
    """The DP-SGD settings of :data:`DEFENSE_STRENGTHS` on ``models`` (trained; no undefended baseline)."""
    defenses = [d for d in defense_instances(DEFENSE_STRENGTHS) if d.name == "dp_sgd"]
    return defense_settings(defenses, {"dp_sgd": tuple(models)}, baseline=False)


def _dpsgd_long_settings() -> list[Setting]:
    """DP-SGD trained for :data:`DPSGD_LONG_EPOCHS` epochs: :data:`DPSGD_LONG_MODELS` x :data:`DPSGD_LONG_NOISE`."""
    return [
        replace(s, epochs=DPSGD_LONG_EPOCHS)
        for s in _dpsgd_settings(DPSGD_LONG_MODELS)
        if s.defense.noise_multiplier in DPSGD_LONG_NOISE
    ]


@dataclass(frozen=True)
class StudyGrid:
    """One precomputed grid: a name, the settings, the attacks and the attacked clients of one profile.

    ``settings`` is a tuple, or for the defences grid a :class:`DeferredSettings` (built on first use).
    """

    name: str
    profile: str
    settings: Sequence[Setting]
    attacks: tuple[str, ...] | Mapping[str, Mapping[str, Any]]
    subjects: tuple[int, ...] = ATTACKED
    minutes: float | None = None

    @property
    def file(self) -> str:
        """The results file name, ``<name>-<profile>.csv.gz``."""
        return f"{self.name}-{self.profile}.csv.gz"


def study_dataset(profile: str, seed: int = 0, minutes: float | None = None):
    """The study's clients of one profile: :data:`N_SUBJECTS` subjects of real recording length.

    Introduced in Chapter 8. ``minutes`` shortens every recording (the reconciliation's short-client
    grid: 10 minutes, as in the excerpts that Chapters 1-7 imitate). With ``$LEAKAGE_HAR_SOURCE=real``
    and the data downloaded, the first :data:`N_SUBJECTS` real subjects (see
    :func:`leakage_core.data.book_dataset`).
    """
    from ..data import book_dataset

    return book_dataset(profile, n_subjects=N_SUBJECTS, minutes=minutes, seed=seed)


def _setting(model: str, state: str, **fields) -> Setting:
    return Setting(model, state=state, epochs=TRAIN_EPOCHS, train_lr=TRAIN_LR, **fields)


def study_grids(attacks: Sequence[str] | Mapping[str, Mapping[str, Any]] = BOOK_ATTACKS) -> list[StudyGrid]:
    """Every grid of the study, in the order ``make results`` runs them.

    - ``single_step`` (Chapters 8, 9, 12): both models x untrained/trained x the three samplers, N=100;
    - ``multi_step`` (Chapter 10): (N, S) in :data:`MULTI_STEP`, both states, the three samplers;
      TinyHAR on both profiles and DeepConvLSTM on the Wetlab-like one (DeepConvLSTM's 12-channel
      WEAR-like FedAvg passes alone would take another hour on two cores);
    - ``ldp`` (Chapter 11): DeepConvLSTM, both states, the three samplers, :data:`LDP_VARIANTS` (clipping
      of all layers' norm, which needs a backward pass per batch, on the Wetlab-like clients only);
    - ``single_step_aux`` (Chapter 9): trained models, the attacks of :data:`AUX_ATTACKS` (LLBG with
      confidences and LLG+ with impacts estimated on the other subjects' windows);
    - ``reconcile`` (Chapter 12): the single-step settings with :data:`PAPER_CODE_ATTACKS`, plus untrained
      models with the paper code's per-batch min-max input scaling (book and paper-code attacks);
    - ``short_clients`` (Chapter 12): untrained single-step settings on clients of :data:`SHORT_MINUTES`;
    - ``stronger`` (Chapter 15): every attack of :data:`STRONGER_ATTACKS`, both models, both states, the three
      samplers, with a classifier bias at the (N, S) of :data:`STRONGER_STEPS` and without one, on the profiles
      of :data:`STRONGER_PROFILES`;
    - ``training_length``: trained models after each of :data:`TRAINING_LENGTH_EPOCHS` epochs (snapshots of
      one training run per fold, see :func:`leakage_core.models.fold_snapshots`), both models, the three
      samplers, N=100, on the profiles of :data:`TRAINING_LENGTH_PROFILES`;
    - ``defenses``: :func:`defense_settings` of the defences of :data:`DEFENSE_STRENGTHS` with the attacks of
      :data:`DEFENSE_ATTACKS`, clients :data:`DEFENSE_SUBJECTS`, on the profiles of :data:`DEFENSE_PROFILES`; its
      settings are built when first used (:class:`DeferredSettings`), so the defences are needed only then;
      a defence is measured on the models :data:`DEFENSE_MODELS` names for it (DP-SGD: none, it has its own grids);
    - ``defenses_dpsgd``: DP-SGD's settings on :data:`DPSGD_MODELS` and clients :data:`DPSGD_SUBJECTS` (its
      per-window gradients of every layer make it the slowest defence; a grid of its own keeps it apart);
      ``defenses_dpsgd_long``: DP-SGD trained for :data:`DPSGD_LONG_EPOCHS` epochs (:func:`_dpsgd_long_settings`).
    """
    grids = []
    for profile in PROFILES:
        single = [_setting(m, st, sampler=sp) for m in MODELS for st in STATES for sp in SAMPLERS]
        grids.append(StudyGrid("single_step", profile, tuple(single), attacks))
    for profile in PROFILES:
        models = MODELS if profile == "wetlab" else ("tinyhar",)
        multi = [
            _setting(m, st, sampler=sp, batch_size=n, n_steps=s)
            for m in models
            for st in STATES
            for sp in SAMPLERS
            for n, s in MULTI_STEP
        ]
        grids.append(StudyGrid("multi_step", profile, tuple(multi), attacks))
    for profile in PROFILES:  # all-layer clipping needs a backward pass per batch: Wetlab-like only
        variants = LDP_VARIANTS if profile == "wetlab" else tuple(v for v in LDP_VARIANTS if v.scope != "all")
        ldp = [_setting("deepconvlstm", st, sampler=sp, ldp=v) for st in STATES for sp in SAMPLERS for v in variants]
        grids.append(StudyGrid("ldp", profile, tuple(ldp), attacks))
    for profile in PROFILES:
        aux = [_setting(m, "trained", sampler=sp) for m in MODELS for sp in SAMPLERS]
        grids.append(StudyGrid("single_step_aux", profile, tuple(aux), AUX_ATTACKS))
    both = {**{a: {} for a in PAPER_ATTACKS}, **PAPER_CODE_ATTACKS}  # the published attacks and the code's
    for profile in PROFILES:
        plain = [_setting(m, st, sampler=sp) for m in MODELS for st in STATES for sp in SAMPLERS]
        scaled = [_setting(m, "untrained", sampler=sp, scaling="batch_minmax") for m in MODELS for sp in SAMPLERS]
        grids.append(StudyGrid("reconcile", profile, tuple(plain), PAPER_CODE_ATTACKS))
        grids.append(StudyGrid("reconcile_minmax", profile, tuple(scaled), both))
    for profile in PROFILES:
        short = [_setting(m, "untrained", sampler=sp) for m in MODELS for sp in SAMPLERS]
        grids.append(StudyGrid("short_clients", profile, tuple(short), BOOK_ATTACKS, minutes=SHORT_MINUTES))
    for profile in STRONGER_PROFILES:
        stronger = [
            _setting(m, st, sampler=sp, batch_size=n, n_steps=s, bias=bias)
            for bias, steps in STRONGER_STEPS.items()
            for n, s in steps
            for m in MODELS
            for st in STATES
            for sp in SAMPLERS
        ]
        grids.append(StudyGrid("stronger", profile, tuple(stronger), STRONGER_ATTACKS))
    for profile in TRAINING_LENGTH_PROFILES:
        length = [
            replace(_setting(m, "trained", sampler=sp), epochs=e)
            for m in MODELS
            for e in TRAINING_LENGTH_EPOCHS
            for sp in SAMPLERS
        ]
        grids.append(StudyGrid("training_length", profile, tuple(length), attacks))
    for profile in DEFENSE_PROFILES:
        deferred = DeferredSettings(lambda: defense_settings(defense_instances(DEFENSE_STRENGTHS), DEFENSE_MODELS))
        grids.append(StudyGrid("defenses", profile, deferred, DEFENSE_ATTACKS, subjects=DEFENSE_SUBJECTS))
        dpsgd = DeferredSettings(lambda: _dpsgd_settings(DPSGD_MODELS))
        grids.append(StudyGrid("defenses_dpsgd", profile, dpsgd, DEFENSE_ATTACKS, subjects=DPSGD_SUBJECTS))
        long = DeferredSettings(_dpsgd_long_settings)
        grids.append(StudyGrid("defenses_dpsgd_long", profile, long, DEFENSE_ATTACKS, subjects=DPSGD_SUBJECTS))
    return grids
