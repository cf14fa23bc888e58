"""The interactive explorer: one client's batch, attacked under a setting the reader picks.

Top of the pipeline, beside :mod:`leakage_core.book.plots` (data -> federated -> attacks -> metrics -> study ->
**book**). It only calls the public functions of the earlier stages: :func:`~leakage_core.data.make_synthetic`
for a small embedded dataset and its leave-one-subject-out splits (:meth:`~leakage_core.data.HARDataset.loso`),
:func:`~leakage_core.models.build_model` or :func:`~leakage_core.models.fold_model` for the server's model,
a :class:`~leakage_core.federated.ClientSetting` (which checks the client's arguments),
:func:`~leakage_core.federated.clean_update` and :func:`~leakage_core.federated.privatize` for the update,
the LOSO guard :func:`~leakage_core.study.check_unseen`, the attack registry
:data:`~leakage_core.attacks.ATTACKS`, and :mod:`leakage_core.metrics`.

Three layers, introduced in Chapter 13:

- :func:`explore` — a plain function: settings in, an :class:`ExplorerView` of plain values out;
- :func:`plot_explorer` — draws a view (true vs recovered histogram beside the blind guesses, bias gradient,
  metrics with the blind guess's and the advantage over it); :func:`views_table` puts several views' scores,
  blind scores and advantages in one table;
- :func:`explorer_panel` — ipywidgets controls that call the two on every change.

Expensive objects (the dataset, the server's model, each attack's preparation, each batch's clean
update) are cached in memory with :func:`functools.lru_cache`, keyed by plain values, so moving a
control recomputes only what it changes; LDP is post-processing of the cached clean update. Trained
models are the engine's leave-one-subject-out checkpoints, cached on disk as well.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Mapping, NamedTuple

import numpy as np

from ..federated import LDP, ClientSetting
from ..metrics import METRIC_LABELS
from ..study.grid import STATES
from ..validation import Integer, OneOf, Optional, Real, check_params

#: the small embedded dataset the explorer attacks (per profile): 4 subjects of 5 minutes each (read-only:
#: the in-memory caches are keyed by the other arguments only)
EXPLORER_DATA: Mapping[str, Any] = MappingProxyType({"n_subjects": 4, "minutes": 5, "seed": 0})
#: training of the ``state="trained"`` models: a few epochs with a larger learning rate than the
#: paper's 1e-4, so that a leave-one-subject-out model trains in seconds on a CPU
EXPLORER_TRAINING: Mapping[str, Any] = MappingProxyType({"epochs": 3, "lr": 1e-3})
#: local learning rate of multi-step (FedAvg) updates, the paper's
FEDAVG_LR = 1e-4


class Scores(NamedTuple):
    """LnAcc, LeAcc, ClassAcc and count-F1 of one batch (a named tuple of floats; None: undefined).

    The score fields of :class:`ExplorerView` hold it. ClassAcc and count-F1
    are computed over this one batch (:func:`leakage_core.metrics.class_acc`,
    :func:`leakage_core.metrics.count_f1` of a one-batch client). A list of them makes a pandas
    DataFrame with one column per metric. The fields are those of
    :data:`leakage_core.metrics.ADVANTAGE_METRICS`, in the same order.
    """

    ln_acc: float | None
    le_acc: float | None
    class_acc: float | None
    count_f1: float | None


def batch_scores(true_counts, pred_counts) -> Scores:
    """The :class:`Scores` of one batch's reconstruction."""
    from ..metrics import class_acc, count_f1, le_acc, ln_acc

    t, p = np.asarray(true_counts)[None, :], np.asarray(pred_counts)[None, :]
    return Scores(ln_acc(t[0], p[0]), le_acc(t[0], p[0]), class_acc(t, p), count_f1(t, p))


def advantage_scores(scores: Scores, blind: Scores) -> Scores:
    """Per metric, :func:`leakage_core.metrics.advantage` of ``scores`` over ``blind``; None where the blind
    score is 1 (no room to leak beyond the guess)."""
    from ..metrics import advantage

    out = []
    for m, b in zip(scores, blind):
        a = advantage(m, b)
        out.append(None if math.isnan(a) else a)
    return Scores(*out)


@dataclass(frozen=True)
class ExplorerView:
    """One attacked batch: the setting, what the server saw, what the attack recovered, and the scores.

    Not imported by a chapter (it is what :func:`explore` returns). Every field is a plain Python value
    (str, int, float, tuples of them, or None), so a view can be compared, hashed and printed.

    Attributes
    ----------
    profile, model, state, sampler, attack : str
        The setting (see :func:`explore`).
    batch_size, n_steps, client, batch, seed : int
        ``N``, ``S``, the attacked subject, the batch index and the seed.
    sigma, rho : float or None
        LDP noise and clipping applied by the client (None: off).
    class_names : tuple of str
        Class names, index 0 = NULL.
    true_counts, recovered_counts : tuple of int
        The batch's label histogram and the attack's reconstruction (both sum to ``N``).
    bias_grad : tuple of float
        The last-layer bias gradient the server received (after LDP).
    ln_acc, le_acc, class_acc, count_f1 : float
        LnAcc and LeAcc of the batch, and ClassAcc and count-F1 computed over this one batch (every class
        present in the batch weighs equally; Chapter 7's ClassAcc averages over all of a client's batches).
    blind_uniform_counts, blind_prior_counts : tuple of int
        The two guesses that read no gradient (attacks ``"blind_uniform"`` and ``"blind_prior"``):
        ``round(N / C)`` per class, and ``N`` times the class shares of the other subjects (those a
        leave-one-subject-out server trained on). Both sum to ``N`` and depend on neither the attack, the
        model nor LDP.
    blind_uniform_scores, blind_prior_scores : Scores
        The two guesses' scores on the batch.
    blind_scores : Scores
        The blind guess: per metric, the better of the two (as :func:`leakage_core.study.score` does).
    advantage : Scores
        The attack's advantage over the blind guess per metric, ``(M - M_blind) / (1 - M_blind)``
        (:func:`leakage_core.metrics.advantage`): 0 = no better than guessing, 1 = perfect, below 0 =
        worse than guessing; None where the blind guess already scores 1.
    n_batches : int
        How many batches of ``N`` windows the client has under this sampler.
    training_subjects : tuple of int
        Subjects the server's model was trained on (empty for an untrained model); never ``client``.
    model_macro_f1 : float or None
        Macro-F1 of the trained model on the attacked (held-out) client; None when untrained.
    """

    profile: str
    model: str
    state: str
    sampler: str
    batch_size: int
    n_steps: int
    sigma: float | None
    rho: float | None
    attack: str
    client: int
    batch: int
    seed: int
    class_names: tuple[str, ...]
    true_counts: tuple[int, ...]
    recovered_counts: tuple[int, ...]
    bias_grad: tuple[float, ...]
    ln_acc: float
    le_acc: float
    class_acc: float
    count_f1: float
    blind_uniform_counts: tuple[int, ...]
    blind_prior_counts: tuple[int, ...]
    blind_uniform_scores: Scores
    blind_prior_scores: Scores
    blind_scores: Scores
    advantage: Scores
    n_batches: int
    training_subjects: tuple[int, ...]
    model_macro_f1: float | None

    @property
    def scores(self) -> Scores:
        """The attack's :class:`Scores` (``ln_acc``, ``le_acc``, ``class_acc``, ``count_f1``)."""
        return Scores(self.ln_acc, self.le_acc, self.class_acc, self.count_f1)

    def score_table(self):
        """The attack's scores, both blind guesses', the blind guess (the better per metric) and the advantage.

        A pandas DataFrame: one row each, one column per metric (LnAcc, LeAcc, ClassAcc, count-F1);
        an advantage that is None (the blind guess already scores 1) shows as NaN.
        """
        import pandas as pd

        rows = {
            self.attack: self.scores,
            "blind: uniform": self.blind_uniform_scores,
            "blind: prior": self.blind_prior_scores,
            "blind guess (better of the two)": self.blind_scores,
            "advantage over the blind guess": self.advantage,
        }
        table = pd.DataFrame(
            [[np.nan if v is None else v for v in r] for r in rows.values()],
            index=list(rows),
            columns=[METRIC_LABELS[m] for m in Scores._fields],
        )
        return table.rename_axis(f"client {self.client}, batch {self.batch}")

    @property
    def ldp_label(self) -> str:
        """``"no LDP"`` or the defence's :attr:`~leakage_core.federated.LDP.label`, e.g. ``"clip 0.1 + noise 0.01"``."""
        from ..federated import LDP

        return "no LDP" if self.sigma is None and self.rho is None else LDP(sigma=self.sigma, rho=self.rho).label


# ---------------------------------------------------------------------------------------------
# input checks: one clear ValueError per bad argument


def _ldp_value(name: str, value: Any) -> float | None:
    """An LDP parameter, checked: None or 0 switch the mechanism off (None), otherwise a positive number."""
    check_params({name: value}, {name: Optional(Real(ge=0))}, {name: "None or 0 switch it off"})
    return float(value) if value else None


def _check(
    profile, model, state, attack, client, batch, sigma, rho, sampler, batch_size, n_steps, seed
) -> ClientSetting:
    """The arguments of :func:`explore` as the client's setting, or one ValueError naming the first bad one.

    The client's own fields are checked by :class:`~leakage_core.federated.ClientSetting` itself.
    """
    from ..attacks import ATTACKS
    from ..data import PROFILES
    from ..models.architectures import MODELS

    check_params(
        {"profile": profile, "model": model, "state": state, "attack": attack, "client": client, "batch": batch},
        {
            "profile": OneOf(tuple(PROFILES)),
            "model": OneOf(tuple(MODELS)),
            "state": OneOf(STATES),
            "attack": OneOf(tuple(ATTACKS)),
            "client": Integer(low=0),
            "batch": Integer(low=0),
        },
    )
    sigma, rho = _ldp_value("sigma", sigma), _ldp_value("rho", rho)
    ldp = None if sigma is None and rho is None else LDP(sigma=sigma, rho=rho)
    return ClientSetting(sampler=sampler, batch_size=batch_size, n_steps=n_steps, lr=FEDAVG_LR, ldp=ldp, seed=seed)


# ---------------------------------------------------------------------------------------------
# cached stages (keys are plain values only)


@functools.lru_cache(maxsize=2)
def _dataset(profile: str):
    from ..data import book_dataset

    return book_dataset(profile, **EXPLORER_DATA)


def _client_ids(profile: str) -> list[int]:
    return _dataset(profile).subject_ids


@functools.lru_cache(maxsize=16)
def _server_model(profile: str, model: str, state: str, client: int | None, seed: int, cache_dir: str | None):
    """The model the server sends: untrained (``client`` is None) or the LOSO model of ``client``."""
    data = _dataset(profile)
    if state == "untrained":
        from ..models.architectures import build_model

        return build_model(model, data.n_channels, data.n_classes, seed=seed)
    from ..models import training

    config = training.TrainConfig(seed=seed, **EXPLORER_TRAINING)
    return training.fold_model(data, model, held_out=client, config=config, cache_dir=cache_dir, progress=False)


def _model_for(profile, model, state, client, seed, cache_dir):
    """The server's model for this client, checked never to have seen the client (LOSO)."""
    from ..study.experiments import check_unseen

    net = _server_model(profile, model, state, client if state == "trained" else None, seed, cache_dir)
    check_unseen(net, client)  # raises if the attacked client is in the model's training data
    return net


@functools.lru_cache(maxsize=64)
def _prepared(profile, model, state, client, seed, cache_dir, attack):
    """The attack's preparation for this model (once per model and attack), with the LOSO server's data."""
    from ..attacks import ATTACKS

    net = _model_for(profile, model, state, client, seed, cache_dir)
    built = ATTACKS[attack].build()
    aux = _dataset(profile).loso(client).aux if built.needs.aux else None  # the server's own data
    return built.prepare(net, aux)


@functools.lru_cache(maxsize=32)
def _batches(profile: str, client: int, setting: ClientSetting) -> tuple:
    return tuple(setting.batches(_dataset(profile).subjects[client].labels))


@functools.lru_cache(maxsize=256)
def _clean_update(profile, model, state, client, seed, cache_dir, setting: ClientSetting, batch: int):
    """The client's un-privatized update of one batch (dropout seeded by ``seed + batch``, as the engine does)."""
    from ..federated import clean_update

    net = _model_for(profile, model, state, client, seed, cache_dir)
    sub = _dataset(profile).subjects[client]
    idx = _batches(profile, client, setting)[batch]
    update, _ = clean_update(net, sub.windows[idx], sub.labels[idx], setting, batch)
    return update, np.bincount(sub.labels[idx], minlength=net.classifier.out_features)


# ---------------------------------------------------------------------------------------------
# the plain function


def explore(
    profile: str = "wetlab",
    model: str = "deepconvlstm",
    state: str = "untrained",
    sampler: str = "shuffle",
    batch_size: int = 100,
    n_steps: int = 1,
    sigma: float | None = None,
    rho: float | None = None,
    attack: str = "llbg",
    client: int = 1,
    batch: int = 0,
    seed: int = 0,
    cache_dir: str | None = None,
) -> ExplorerView:
    """Attack one batch of one client under the given setting and score the reconstruction.

    Introduced in Chapter 13. The client (a subject of a small embedded synthetic dataset,
    :data:`EXPLORER_DATA`) cuts its windows into batches with ``sampler``, computes its update of the
    server's model on batch ``batch`` (FedSGD for ``S = 1``, otherwise FedAvg with ``S`` local steps at
    the paper's learning rate 1e-4), applies local DP (clipping to ``rho``, then Gaussian noise ``sigma``,
    on the last layer), and the server runs ``attack`` on what it receives. A trained server model is the
    leave-one-subject-out checkpoint of the attacked client (:func:`leakage_core.models.fold_model`,
    :data:`EXPLORER_TRAINING`): trained on the other subjects only, never on ``client`` (checked).
    Attacks that need auxiliary data get the other subjects' windows, the LOSO server's own data.

    Results are the same as :func:`leakage_core.study.attack_client` gives for that batch.

    Parameters
    ----------
    profile : {"wear", "wetlab"}
        Which dataset the synthetic clients imitate.
    model : {"deepconvlstm", "tinyhar"}
        The HAR classifier.
    state : {"untrained", "trained"}
        The paper's initialisation (seeded by ``seed``) or the client's LOSO model (trained once, then
        loaded from the checkpoint cache: the first call per client, model and seed takes seconds).
    sampler : {"shuffle", "sequential", "balanced"}
        How the client cuts its windows into batches.
    batch_size : int
        ``N``, windows per update.
    n_steps : int
        ``S``, local SGD steps (1 = FedSGD); must divide ``N``.
    sigma, rho : float or None
        LDP noise standard deviation and clipping bound; None or 0 switch them off.
    attack : str
        A name of :data:`leakage_core.attacks.ATTACKS` (e.g. ``"llbg"``, ``"ebi"``, ``"ilrg"``, ``"llg_star"``).
    client : int
        The attacked subject (1 to 4).
    batch : int
        Which of the client's batches (0 to ``n_batches - 1``).
    seed : int
        Seeds the model's initialisation and training, the sampler, dropout and the LDP noise.
    cache_dir : str or None
        Checkpoint cache folder (default: ``$LEAKAGE_HAR_CACHE`` or the user's cache directory).

    Returns
    -------
    ExplorerView
        Plain values: the setting, true and recovered counts, the bias gradient, LnAcc, LeAcc, ClassAcc,
        count-F1, and the same for the two blind guesses (uniform and prior, which read no gradient) with
        the attack's advantage over the better of them.

    Raises
    ------
    ValueError
        One clear message for the first bad argument (unknown name, ``S`` not dividing ``N``, a client or
        batch that does not exist), or if the server's model was trained on the attacked client.
    """
    from ..federated import privatize

    setting = _check(profile, model, state, attack, client, batch, sigma, rho, sampler, batch_size, n_steps, seed)
    clients = _client_ids(profile)
    if client not in clients:
        raise ValueError(f"client must be one of the subjects {clients}, got {client!r}.")
    client, batch, batch_size, n_steps, seed = int(client), int(batch), int(batch_size), int(n_steps), int(seed)
    cache_dir = None if cache_dir is None else str(cache_dir)
    clean_setting = replace(setting, ldp=None)  # the clean update is cached whatever the LDP
    n_batches = len(_batches(profile, client, clean_setting))
    if n_batches == 0:
        raise ValueError(
            f"batch_size (N) = {batch_size} is more than client {client}'s "
            f"{_dataset(profile).subjects[client].n_windows} windows: choose a smaller N."
        )
    if batch >= n_batches:
        n_windows = _dataset(profile).subjects[client].n_windows
        raise ValueError(
            f"batch must be below {n_batches}: client {client} has {n_windows} windows, i.e. "
            f"{n_batches} batches of N = {batch_size}; got batch {batch}."
        )
    key = (profile, model, state, client, seed, cache_dir)
    net = _model_for(*key)
    clean, true = _clean_update(*key, clean_setting, batch)
    ldp = setting.ldp  # local DP is post-processing of the cached clean update, as in the experiment engine
    update = clean if ldp is None else privatize(clean, ldp, seed=setting.batch_seed(batch))
    sigma, rho = (None, None) if ldp is None else (ldp.sigma, ldp.rho)
    pred = _prepared(*key, attack).count(update)
    scores = batch_scores(true, pred)
    # the blind guesses get the same update as the attack, and read only N and C from it (tested)
    uniform = _prepared(*key, "blind_uniform").count(update)
    prior = _prepared(*key, "blind_prior").count(update)
    uniform_scores, prior_scores = batch_scores(true, uniform), batch_scores(true, prior)
    blind = Scores(*(max(u, p) for u, p in zip(uniform_scores, prior_scores)))
    info = getattr(net, "checkpoint_info", None)
    return ExplorerView(
        profile=profile,
        model=model,
        state=state,
        sampler=sampler,
        batch_size=batch_size,
        n_steps=n_steps,
        sigma=sigma,
        rho=rho,
        attack=attack,
        client=client,
        batch=batch,
        seed=seed,
        class_names=tuple(_dataset(profile).class_names),
        true_counts=tuple(int(v) for v in true),
        recovered_counts=tuple(int(v) for v in pred),
        bias_grad=tuple(float(v) for v in update.bias_grad),
        ln_acc=scores.ln_acc,
        le_acc=scores.le_acc,
        class_acc=scores.class_acc,
        count_f1=scores.count_f1,
        blind_uniform_counts=tuple(int(v) for v in uniform),
        blind_prior_counts=tuple(int(v) for v in prior),
        blind_uniform_scores=uniform_scores,
        blind_prior_scores=prior_scores,
        blind_scores=blind,
        advantage=advantage_scores(scores, blind),
        n_batches=n_batches,
        training_subjects=tuple(int(s) for s in getattr(net, "training_subjects", ())),
        model_macro_f1=None if info is None else float(info["macro_f1"]),
    )


# ---------------------------------------------------------------------------------------------
# the view


_MODEL_NAMES = {"deepconvlstm": "DeepConvLSTM", "tinyhar": "TinyHAR"}


def describe(view: ExplorerView) -> str:
    """A one-line summary of a view's setting, e.g. ``"wetlab, DeepConvLSTM (untrained), shuffle, N=100, S=1, no LDP"``.

    :func:`plot_explorer` puts it in its title.
    """
    state = view.state if view.model_macro_f1 is None else f"trained, macro-F1 {view.model_macro_f1:.2f}"
    return (
        f"{view.profile}, {_MODEL_NAMES.get(view.model, view.model)} ({state}), {view.sampler}, "
        f"N={view.batch_size}, S={view.n_steps}, {view.ldp_label}; client {view.client}, batch {view.batch}"
    )


def _score_line(label: str, scores: Scores) -> str:
    values = ", ".join(
        f"{METRIC_LABELS[m]} {'n/a' if v is None else f'{v:.2f}'}" for m, v in zip(Scores._fields, scores)
    )
    return f"{label}: {values}"


def views_table(views: Mapping[str, ExplorerView], metrics=("ln_acc", "class_acc", "count_f1")):
    """Several views side by side: per metric, the attack's score, the blind guess's and the advantage.

    Introduced in Chapter 13. ``views`` maps a row name to an :class:`ExplorerView`; ``metrics`` are
    fields of :class:`Scores`. Returns a pandas DataFrame with one row per view and columns
    ``(metric, "score" | "blind" | "advantage")``; the blind guess is the better of the two guesses per
    metric, and an undefined advantage (blind guess = 1) is NaN.
    """
    import pandas as pd

    unknown = [m for m in metrics if m not in Scores._fields]
    if unknown:
        raise ValueError(f"unknown metric {unknown[0]!r}; choose from {Scores._fields}.")
    rows = {}
    for name, view in views.items():
        if not isinstance(view, ExplorerView):
            raise ValueError(
                f"views_table takes ExplorerViews from explore(...), got {type(view).__name__} for {name!r}."
            )
        row = {}
        for m in metrics:
            adv = getattr(view.advantage, m)
            row[METRIC_LABELS[m], "score"] = getattr(view.scores, m)
            row[METRIC_LABELS[m], "blind"] = getattr(view.blind_scores, m)
            row[METRIC_LABELS[m], "advantage"] = np.nan if adv is None else adv
        rows[name] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    return table


def plot_explorer(view: ExplorerView, axes=None, legend: bool = True, title: bool = True):
    """Draw a view: true vs recovered label histogram beside the blind guesses (left) and the bias gradient
    the server saw (right).

    Introduced in Chapter 13. Bars take the book's class colours (:func:`leakage_core.book.class_colors`;
    NULL in its own light grey): the true count filled, the recovered count hatched beside it. The two
    guesses that read no gradient are marked over each class: the uniform guess ``round(N / C)`` as a grey
    dashed step, the prior guess (``N`` times the other subjects' class shares) as a black tick. The
    histogram's title holds the setting, the attack's four scores, the blind guess's (per metric the better
    of the two guesses) and the attack's advantage over it.

    Parameters
    ----------
    view : ExplorerView
        From :func:`explore`.
    axes : pair of matplotlib Axes, optional
        Where to draw (histogram, bias gradient); a new figure if omitted.
    legend : bool
        Draw the legend (pass False for all but one row of a multi-row figure: one legend per figure).
    title : bool
        Put the setting and the scores in the histogram's title.

    Returns
    -------
    tuple of matplotlib Axes
        ``(histogram axes, bias-gradient axes)``.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from .plots import class_colors

    if not isinstance(view, ExplorerView):
        raise ValueError(f"plot_explorer draws an ExplorerView from explore(...), got {type(view).__name__}.")
    names = list(view.class_names)
    c_ = len(names)
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(max(10.0, 0.75 * c_), 4.4), gridspec_kw={"width_ratios": [1.5, 1]})
    ax_h, ax_b = axes
    colors = [class_colors(names)[n] for n in names]
    pos = np.arange(c_)
    ax_h.bar(pos - 0.2, view.true_counts, width=0.4, color=colors, edgecolor="0.25", linewidth=0.6)
    ax_h.bar(pos + 0.2, view.recovered_counts, width=0.4, color="white", edgecolor="0.15", hatch="////", linewidth=0.6)
    edges = np.r_[pos - 0.5, pos[-1] + 0.5]
    ax_h.stairs(view.blind_uniform_counts, edges, baseline=None, color="0.45", linestyle="--", linewidth=1.0)
    ax_h.plot(pos, view.blind_prior_counts, linestyle="none", marker="_", markersize=16, markeredgewidth=2.0, color="k")
    ax_h.set_xticks(pos, names, rotation=60, ha="right", fontsize=7)
    ax_h.set_xlabel("class")
    ax_h.set_ylabel(f"windows in batch (N = {view.batch_size})")
    if legend:
        handles = [
            Patch(facecolor="0.55", edgecolor="0.25", label="true count (secret)"),
            Patch(facecolor="white", edgecolor="0.15", hatch="////", label=f"recovered by {view.attack}"),
            Line2D([], [], color="0.45", linestyle="--", label="blind: uniform guess N/C"),
            Line2D(
                [],
                [],
                color="k",
                linestyle="none",
                marker="_",
                markersize=12,
                markeredgewidth=2.0,
                label="blind: prior guess (other subjects' shares)",
            ),
        ]
        ax_h.legend(handles=handles, frameon=False, fontsize=7.5, loc="upper right")
    if title:
        lines = [
            describe(view),
            _score_line(view.attack, view.scores),
            _score_line("blind guess (better of the two)", view.blind_scores),
            _score_line("advantage over it", view.advantage),
        ]
        ax_h.set_title("\n".join(lines), fontsize=8, loc="left")
    ax_b.bar(pos, view.bias_grad, color=colors, edgecolor="0.25", linewidth=0.6)
    ax_b.axhline(0, color="k", lw=0.7)
    ax_b.set_xticks(pos, names, rotation=60, ha="right", fontsize=7)
    ax_b.set_xlabel("class")
    ax_b.set_ylabel("bias gradient $\\partial L / \\partial b_c$")
    if title:
        ax_b.set_title("what the server received", fontsize=8.5, loc="left")
    ax_h.figure.tight_layout()
    return ax_h, ax_b


# ---------------------------------------------------------------------------------------------
# the control panel

#: choices offered by :func:`explorer_panel` (any other valid value can be passed to :func:`explore`)
PANEL_CHOICES: dict[str, tuple] = {
    "batch_size": (20, 50, 100, 200, 300),
    "n_steps": (1, 2, 5, 10),
    "sigma": (0.0, 0.001, 0.003, 0.01, 0.03, 0.1),
    "rho": (0.0, 0.01, 0.03, 0.1, 0.3, 1.0),
}


def explorer_panel(**initial):
    """An ipywidgets control panel over :func:`explore` and :func:`plot_explorer`, redrawn on every change.

    Introduced in Chapter 13. Controls: dataset profile, model, untrained / trained, sampler, ``N``,
    ``S``, LDP ``sigma`` and ``rho``, attack, client, batch and seed. A setting that cannot be shown
    (e.g. a batch the client does not have) prints the error instead of a figure. Needs ``ipywidgets``
    (installed in Colab and by the book's requirements).

    Parameters
    ----------
    **initial
        Starting values for :func:`explore`'s arguments (its defaults otherwise).

    Returns
    -------
    ipywidgets.VBox
        The panel; ``panel.controls`` maps each argument name to its widget and ``panel.state`` holds the
        last ``"view"`` (an :class:`ExplorerView`) or ``"error"`` (a message).
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    from ..attacks import ATTACKS
    from ..data import PROFILES
    from ..models.architectures import MODELS
    from ..federated.sampling import SAMPLERS

    values = {
        "profile": "wetlab",
        "model": "deepconvlstm",
        "state": "untrained",
        "sampler": "shuffle",
        "batch_size": 100,
        "n_steps": 1,
        "sigma": 0.0,
        "rho": 0.0,
        "attack": "llbg",
        "client": 1,
        "batch": 0,
        "seed": 0,
    }
    unknown = sorted(set(initial) - set(values) - {"cache_dir"})
    if unknown:
        raise ValueError(f"explorer_panel has no control {unknown[0]!r}; controls: {list(values)}.")
    cache_dir = initial.pop("cache_dir", None)
    values.update(initial)
    for name in ("sigma", "rho"):  # the sliders show "off" as 0
        values[name] = _ldp_value(name, values[name]) or 0.0

    def off(options):
        return [("off" if v == 0 else f"{v:g}", v) for v in options]

    def with_value(options, v):
        return tuple(sorted(set(options) | {v}))

    layout = widgets.Layout(width="250px")
    style = {"description_width": "70px"}
    controls = {
        "profile": widgets.Dropdown(options=tuple(PROFILES), description="dataset"),
        "model": widgets.Dropdown(options=tuple(MODELS), description="model"),
        "state": widgets.ToggleButtons(options=STATES, description="model state"),
        "sampler": widgets.Dropdown(options=SAMPLERS, description="sampler"),
        "batch_size": widgets.SelectionSlider(
            options=with_value(PANEL_CHOICES["batch_size"], values["batch_size"]), description="N"
        ),
        "n_steps": widgets.SelectionSlider(
            options=with_value(PANEL_CHOICES["n_steps"], values["n_steps"]), description="S"
        ),
        "sigma": widgets.SelectionSlider(
            options=off(with_value(PANEL_CHOICES["sigma"], values["sigma"])), description="LDP sigma"
        ),
        "rho": widgets.SelectionSlider(
            options=off(with_value(PANEL_CHOICES["rho"], values["rho"])), description="LDP rho"
        ),
        "attack": widgets.Dropdown(options=tuple(ATTACKS), description="attack"),
        "client": widgets.Dropdown(options=_client_ids(values["profile"]), description="client"),
        "batch": widgets.IntSlider(min=0, max=0, description="batch"),
        "seed": widgets.BoundedIntText(min=0, max=99, description="seed"),
    }
    for w in controls.values():
        w.style = style
        if not isinstance(w, widgets.ToggleButtons):
            w.layout = layout
        if hasattr(w, "continuous_update"):
            w.continuous_update = False
    out = widgets.Output()
    state: dict[str, Any] = {"view": None, "error": None, "busy": False}

    def set_batch_range():
        """The batch slider spans the client's batches (the same number for every sampler)."""
        v = controls
        n_windows = _dataset(v["profile"].value).subjects[v["client"].value].n_windows
        top = max(0, n_windows // v["batch_size"].value - 1)
        v["batch"].max = top
        v["batch"].value = min(v["batch"].value, top)

    def redraw(_change=None):
        if state["busy"]:
            return
        state["busy"] = True
        try:
            set_batch_range()
        finally:
            state["busy"] = False
        args = {k: w.value for k, w in controls.items()}
        with out:
            out.clear_output(wait=True)
            try:
                view = explore(**args, cache_dir=cache_dir)
            except ValueError as err:
                state.update(view=None, error=str(err))
                print(f"This setting cannot be shown: {err}")
                return
            state.update(view=view, error=None)
            plot_explorer(view)
            plt.show()

    state["busy"] = True  # set the starting values without drawing once per control
    try:
        for k, w in controls.items():
            if k != "batch":
                w.value = values[k]
        set_batch_range()
        controls["batch"].value = min(values["batch"], controls["batch"].max)
    finally:
        state["busy"] = False
    for w in controls.values():
        w.observe(redraw, names="value")
    columns = [
        ["profile", "model", "sampler", "attack"],
        ["batch_size", "n_steps", "sigma", "rho"],
        ["client", "batch", "seed"],
    ]
    grid = widgets.HBox([widgets.VBox([controls[k] for k in column]) for column in columns])
    panel = widgets.VBox([controls["state"], grid, out])
    panel.controls = controls
    panel.state = state
    redraw()
    return panel
