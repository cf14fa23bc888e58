"""The experiment engine: a grid of settings x clients, cached, resumable and parallel.

Introduced in Chapter 8: the study chapters (8 sampling, 9 trained models, 10 multi-step updates, 11 local
DP, 12 the paper reproduced) are written on it, through the precomputed grids of :mod:`leakage_core.study.results`.
The paper's study is a grid (datasets x models x untrained/trained x samplers
x (N, S) x LDP variants x attacks x every leave-one-subject-out client). :func:`run_grid` runs it so
that each expensive thing happens once:

- one client pass per batch (FedSGD: a forward pass and the closed form; FedAvg: the ``S`` local
  steps), shared by every LDP variant (post-processing of the clean update) and every attack;
- each attack's ``prepare`` (LLG*/LLG+ impacts, LLBG's confidences, iLRG's classifier) once per
  (model state, client);
- each LOSO model trained once and kept as a checkpoint (:func:`leakage_core.models.fold_model`);
- a client-side defence (``Setting.defense``, :mod:`leakage_core.defenses`) composes through its hooks only
  (the grid never names one): the model is built or trained under it, the client's labels and updates pass
  through it (:func:`~leakage_core.federated.defended_update`), the LDP variants apply after it;
- each (client, setting) result stored in ``cache_dir`` under a stable hash of the setting, the data
  and the package version, written to a temporary name and renamed: an interrupted grid resumes where
  it stopped, and a damaged file is reported and recomputed.

Tasks (one per client and model state) run through joblib, so ``n_jobs`` uses local cores and
``joblib.parallel_config(backend="dask")`` (or ``"ray"``) sends them to a cluster without code change.
The grid knows attacks only through the registry (:data:`leakage_core.attacks.ATTACKS`).
"""

from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import asdict, dataclass, fields, replace
from functools import partial
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..attacks import ATTACKS, BLIND, PAPER_ATTACKS, AttackSpec, counts_only_update, resolve_attacks
from ..cache import CorruptCacheError, cache_root, read_json_checked, stable_hash, write_json_atomic
from ..data.scaling import scale_batch
from ..defenses.base import Defense, defense_label
from ..federated import LDP, SAMPLERS, ClientSetting, ldp_label
from ..metrics import ln_acc
from ..validation import (
    AllOf,
    AnyOf,
    Constraint,
    Directory,
    InstanceOf,
    Integer,
    NonEmpty,
    OneOf,
    Optional,
    Real,
    SubsetOf,
    check_params,
)
from .experiments import attack_batches, check_unseen, client_scores, client_spread, needs_aux, prepare_attacks

from ..models.training import TrainConfig

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

STATES: tuple[str, ...] = ("untrained", "trained")


@dataclass(frozen=True)
class Setting(ClientSetting):
    """One cell of the grid: how the client computes its update and which model it computes it on.

    Introduced in Chapter 8. A :class:`~leakage_core.federated.ClientSetting` (``sampler``, ``batch_size``,
    ``n_steps``, ``lr``, ``ldp``, ``scaling``, ``seed``, ``mode``, ``defense``: keyword-only, checked there) plus the
    server's model. Every field but ``model`` defaults to the paper's single-step setting; ``seed`` also
    seeds the model's initialisation and training.

    Attributes
    ----------
    model : str
        ``"deepconvlstm"`` or ``"tinyhar"``.
    state : {"untrained", "trained"}
        Untrained: the paper's initialisation (seeded by ``seed``). Trained: the LOSO model of the
        attacked client's fold, trained for ``epochs`` on every other subject (cached checkpoint).
    epochs, train_lr, class_weighted :
        Training of the LOSO model (``state="trained"`` only): epochs, Adam learning rate, and whether
        the cross-entropy is class-weighted (the paper trains unweighted).
    bias : bool
        Whether the model's classifier has a bias (``False``: the defence of Chapter 15, untrained or
        trained without it).
    defense : Defense or None
        The client-side defence (a :class:`~leakage_core.federated.ClientSetting` field, applied to the client's
        labels and updates there). Its model and training act here: an untrained model is built with its
        ``model_kwargs()``, a trained one is the LOSO model trained under it (:meth:`train_config`) unless it acts
        on the update only (stage ``"update"``: the model is the undefended one). A model-stage defence whose only
        change is ``bias=False`` is that setting: it becomes ``bias=False, defense=None`` (one representation);
        any ``bias=False`` in a defence's ``model_kwargs`` sets ``bias``.
    """

    model: str
    state: str = "untrained"
    epochs: int = TrainConfig.epochs
    train_lr: float = TrainConfig.lr
    class_weighted: bool = False
    bias: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        from ..models.architectures import MODELS

        constraints = {
            "model": OneOf(MODELS),
            "state": OneOf(STATES),
            "epochs": Integer(low=1),
            "train_lr": Real(gt=0),
            "class_weighted": InstanceOf((bool, np.bool_), "True or False"),
            "bias": InstanceOf((bool, np.bool_), "True or False"),
        }
        check_params({name: getattr(self, name) for name in constraints}, constraints)
        if self.defense is not None:
            self._normalise_defense()

    def _normalise_defense(self) -> None:
        """Fold a defence's ``bias=False`` into :attr:`bias`, and drop a model-stage defence that changes nothing
        else (so that a classifier without bias has one representation, whatever defence class asked for it)."""
        kwargs = self.defense.model_kwargs()
        if not isinstance(kwargs, dict):
            raise ValueError(f"{type(self.defense).__name__}.model_kwargs() must return a dict, got {kwargs!r}.")
        if "bias" not in kwargs:
            return
        if kwargs["bias"] is not False:
            raise ValueError(
                f"{type(self.defense).__name__}.model_kwargs() sets bias={kwargs['bias']!r}; a defence can only "
                "remove the classifier's bias (bias=False); the setting's own field `bias` says whether it has one."
            )
        object.__setattr__(self, "bias", False)
        if self.defense.stage == "model" and kwargs == {"bias": False}:
            object.__setattr__(self, "defense", None)

    def record(self) -> dict[str, Any]:
        """The setting as flat columns (``ldp`` as its label), as in :func:`run_grid`'s output.

        ``defense`` (its label, :func:`~leakage_core.defenses.defense_label`) only when the setting has one, so that
        the records of grids computed before the field existed stay what they were; :func:`run_grid`'s output has
        the column for every row (``"none"``).
        """
        out = {name: getattr(self, name) for name in SETTING_COLUMNS if name != "defense"}
        out["ldp"] = ldp_label(self.ldp)
        if self.defense is not None:
            out["defense"] = defense_label(self.defense)
        return out

    def key(self) -> dict[str, Any]:
        """What identifies the setting's results (training fields only for trained models; ``bias`` only
        when False and ``defense`` (its :meth:`~leakage_core.defenses.Defense.key`) only when set, so that results
        cached before the fields existed keep their keys)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "defense"}
        if self.bias:
            out.pop("bias")
        out["ldp"] = None if self.ldp is None else asdict(self.ldp)
        if self.defense is not None:
            out["defense"] = self.defense.key()
        if self.n_steps == 1:
            out.pop("lr")
        if self.state == "untrained":
            for name in ("epochs", "train_lr", "class_weighted"):
                out.pop(name)
        return out

    def model_defense(self) -> Defense | None:
        """The defence as far as it shapes the model, or None: trained, one whose stage is not ``"update"`` (the
        LOSO model is trained under it); untrained, one with ``model_kwargs()`` (the model is built with them)."""
        d = self.defense
        if d is None or (self.state == "trained" and d.stage == "update"):
            return None
        if self.state == "untrained" and not d.model_kwargs():
            return None
        return d

    def model_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~leakage_core.models.build_model` for this setting's model: ``bias`` and the
        defence's ``model_kwargs()``."""
        return {"bias": self.bias, **(self.defense.model_kwargs() if self.defense is not None else {})}

    def model_key(self) -> tuple:
        """What identifies the model and the attacks' preparation: one task per client and model key
        (the defence's key, as JSON, where it shapes the model: :meth:`model_defense`)."""
        k = self.key()
        out = tuple(
            (name, k[name])
            for name in ("model", "state", "seed", "scaling", "epochs", "train_lr", "class_weighted", "bias")
            if name in k
        )
        shaping = self.model_defense()
        if shaping is not None:
            out += (("defense", json.dumps(shaping.key(), sort_keys=True)),)
        return out

    def pass_key(self) -> tuple:
        """What identifies the client's passes (everything but the LDP variant; the defence included)."""
        return tuple((f.name, getattr(self, f.name)) for f in fields(self) if f.name != "ldp")

    def train_config(self) -> TrainConfig:
        """The :class:`~leakage_core.models.TrainConfig` of this trained setting's LOSO model.

        ``epochs``, ``train_lr``, ``class_weighted``, ``scaling``, ``seed`` and, unless it acts on the update only,
        the ``defense`` (:meth:`model_defense`); the other hyperparameters are the paper's. Raises ``ValueError``
        for an untrained setting (it has no training).
        """
        if self.state != "trained":
            raise ValueError(f"train_config() needs state='trained'; this setting is {self.state!r}.")
        fields_ = {"epochs": self.epochs, "lr": self.train_lr, "class_weighted": self.class_weighted}
        fields_.update(scaling=self.scaling, seed=self.seed)
        defense = self.model_defense()
        if defense is not None:
            fields_["defense"] = defense
        return TrainConfig(**fields_)


#: the setting columns of :func:`run_grid`'s output, in order (every field of :class:`Setting`; ``ldp`` and
#: ``defense`` as their labels)
SETTING_COLUMNS: tuple[str, ...] = (
    "model",
    "state",
    "sampler",
    "batch_size",
    "n_steps",
    "lr",
    "ldp",
    "scaling",
    "seed",
    "epochs",
    "train_lr",
    "class_weighted",
    "mode",
    "bias",
    "defense",
)


def paper_settings(model: str, ldp: bool = False, **overrides) -> list[Setting]:
    """The paper's single-step settings for one model: the three samplers (x the LDP variants).

    ``ldp=True`` adds the paper's three defences, noise 0.1, clipping 0.1 and
    both, with clipping on the last layer's norm (the paper's text); build :class:`Setting` objects
    with ``LDP(..., scope="all")`` for the paper's code. ``overrides`` set other fields.
    """
    variants = [None] + ([LDP(sigma=0.1), LDP(rho=0.1), LDP(sigma=0.1, rho=0.1)] if ldp else [])
    return [Setting(model, sampler=s, ldp=v, **overrides) for s in SAMPLERS for v in variants]


# ---------------------------------------------------------------------------------------------
# caching


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def _spec_record(spec: AttackSpec) -> dict:
    return {"name": spec.name, "options": {k: _jsonable(v) for k, v in spec.options}}


def cache_file(
    cache_dir: str | os.PathLike | None, dataset_name: str, subject: int, setting: Setting, data_id: str
) -> Path:
    """Where the result of one (client, setting) is cached.

    The name is a stable hash of the setting, the subject, the data's fingerprint and the package
    version: results of another dataset, another data version or another release are never mixed.
    """
    from .. import __version__

    key = stable_hash({"setting": setting.key(), "subject": int(subject), "data": data_id, "version": __version__})
    return cache_root(cache_dir) / "grid" / dataset_name / f"sbj{subject}-{setting.model}-{key}.json"


def _load_cached(path: Path, specs: Sequence[AttackSpec]) -> list[dict] | None:
    """The cached rows if the file exists, is intact and holds every requested attack; else None."""
    if not path.exists():
        return None
    try:
        payload = read_json_checked(path)
    except CorruptCacheError as err:
        warnings.warn(str(err), stacklevel=3)
        path.unlink(missing_ok=True)
        return None
    stored = payload["attacks"]
    if any(s.key not in stored or stored[s.key]["spec"] != _spec_record(s) for s in specs):
        return None
    rows = []
    true = payload["true"]
    for s in specs:
        for b, pred in enumerate(stored[s.key]["pred"]):
            if pred is None:  # not run on this batch (an attack that reads the bias, on a bias-free update)
                continue
            rows.append(
                {
                    "batch": b,
                    "attack": s.key,
                    "true": np.asarray(true[b], dtype=np.int64),
                    "pred": np.asarray(pred, dtype=np.int64),
                }
            )
    return rows


def _store(path: Path, rows: list[dict], specs: Sequence[AttackSpec], setting: Setting, subject: int) -> None:
    n_batches = 1 + max((r["batch"] for r in rows), default=-1)
    true = [None] * n_batches
    preds: dict[str, list] = {s.key: [None] * n_batches for s in specs}
    for r in rows:
        true[r["batch"]] = r["true"].tolist()
        preds[r["attack"]][r["batch"]] = r["pred"].tolist()
    old = {}
    if path.exists():  # keep other attacks already stored for this (client, setting)
        try:
            old = read_json_checked(path)["attacks"]
        except CorruptCacheError:
            old = {}
    attacks = {**old, **{s.key: {"spec": _spec_record(s), "pred": preds[s.key]} for s in specs}}
    write_json_atomic(path, {"setting": setting.key(), "subject": int(subject), "true": true, "attacks": attacks})


# ---------------------------------------------------------------------------------------------
# one task: one client, one model state, every setting that shares them


def _scaled(windows: np.ndarray, scaling: str, chunk: int = 100) -> np.ndarray:
    """Windows scaled as a client would, batch by batch in chunks of ``chunk`` (auxiliary data)."""
    if scaling == "none":
        return windows
    return np.concatenate([scale_batch(windows[i : i + chunk], scaling) for i in range(0, len(windows), chunk)])


def _run_task(task: dict) -> tuple[list[tuple[int, list[dict]]], dict[str, float]]:
    """Compute the settings of one (client, model state); returns ``([(setting index, rows)], timings)``.

    Runs in a joblib worker: it limits torch's threads to its share of the cores, prepares the
    attacks once, runs one client pass per batch for each (sampler, N, S) and stores each setting's
    result as soon as it is complete.
    """
    import torch

    threads = task["threads"]
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        model, subject, specs = task["model"], task["subject"], task["specs"]
        check_unseen(model, subject)
        timings = {"prepare": 0.0, "client": 0.0, "attacks": 0.0}
        t0 = time.perf_counter()
        aux = task["aux"]
        if aux is not None:
            aux = (_scaled(aux[0], task["scaling"]), aux[1])
        prepared = prepare_attacks(specs, model, aux)
        timings["prepare"] += time.perf_counter() - t0
        out = []
        for group in task["groups"]:  # settings sharing one client pass per batch
            first = group[0][1]  # the settings of a group differ in their LDP variant only
            rows = attack_batches(
                model, task["windows"], task["labels"], prepared, first, [s.ldp for _, s in group], timings=timings
            )
            for k, (index, setting) in enumerate(group):
                mine = [{key: r[key] for key in ("batch", "attack", "true", "pred")} for r in rows if r["ldp"] == k]
                if task["paths"][index] is not None:
                    _store(task["paths"][index], mine, specs, setting, subject)
                out.append((index, mine))
        return out, timings
    finally:
        torch.set_num_threads(old_threads)


# ---------------------------------------------------------------------------------------------
# the grid


def run_grid(
    dataset,
    settings: Sequence[Setting] | Setting,
    attacks: Iterable[str] | Mapping[str, Mapping[str, Any]] = PAPER_ATTACKS,
    subjects: Iterable[int] | None = None,
    cache_dir: str | os.PathLike | None = None,
    n_jobs: int = 1,
    progress: bool = True,
    models: Callable[[Setting, int], "nn.Module"] | None = None,
) -> pd.DataFrame:
    """Attack every client of ``dataset`` under every setting: one row per (subject, setting, attack, batch).

    Introduced in Chapter 8.

    Parameters
    ----------
    dataset : HARDataset
        The clients (subjects) and their windows.
    settings : Setting or sequence of Setting
        The grid's cells (see :func:`paper_settings`).
    attacks : names or mapping
        Attack names from :data:`~leakage_core.attacks.ATTACKS`, or a mapping ``key -> options`` where a
        key is a name or ``"name:label"`` (a variant). Attacks that need auxiliary data get the other
        subjects' windows (the LOSO server's knowledge).
    subjects : iterable of int or None
        The attacked clients (default: every subject).
    cache_dir : path or None
        Cache folder for results (``<cache_dir>/grid``) and trained checkpoints
        (``<cache_dir>/checkpoints``). ``None``: results are not cached and checkpoints go to the
        default cache (``$LEAKAGE_HAR_CACHE`` or the user's cache directory).
    n_jobs : int
        Parallel tasks (joblib; -1 = all cores). Each worker gets ``cores // n_jobs`` torch threads.
        With ``joblib.parallel_config(backend="dask")`` the tasks run on a Dask cluster instead.
    progress : bool
        tqdm progress bars over training and tasks.
    models : callable or None
        ``models(setting, held_out) -> nn.Module``: the model that client ``held_out`` is attacked with
        under ``setting``. Called once per attacked client and model (settings that differ only in the
        sampler, ``N``, ``S``, ``lr``, LDP or mode share one), and only for results not in the cache. The
        caller vouches that the model is the one ``setting`` describes (results are cached under the
        setting). A model whose ``training_subjects`` contain ``held_out`` is refused with ``ValueError``.
        ``None``: :func:`setting_model` (built, or the cached LOSO model of the client's fold).

    Returns
    -------
    pandas.DataFrame
        Columns ``subject, attack, batch, true, pred`` (int64 count arrays) and one per
        :class:`Setting` field (``ldp`` and ``defense`` as labels such as ``"clip 0.1 + noise 0.1"``, ``"none"``
        without one; ``true`` always counts the client's true labels, also under a defence that randomizes
        them); sorted by setting, subject, attack and batch whatever the order in which tasks finished.
        ``df.attrs["timings"]`` holds the seconds spent in attack preparation, client passes and
        attack counting (summed over tasks; 0 for cached results) and the wall time.
    """
    start = time.perf_counter()
    settings = [settings] if isinstance(settings, Setting) else list(settings)
    if not settings or not all(isinstance(s, Setting) for s in settings):
        raise ValueError("settings must be a non-empty list of leakage_core.study.Setting objects.")
    if len(set(settings)) != len(settings):
        raise ValueError("settings contain duplicates; each Setting must appear once.")
    specs = resolve_attacks(ATTACKS, attacks)
    subjects = dataset.subject_ids if subjects is None else list(subjects)
    check_params({"subjects": subjects, "cache_dir": cache_dir, "n_jobs": n_jobs}, _run_grid_constraints(dataset))
    subjects = [int(s) for s in subjects]
    _check_batch_sizes(dataset, subjects, settings)
    data_id = dataset.fingerprint()
    with_aux = needs_aux(specs)

    # which (subject, setting) results are cached already
    done: dict[tuple[int, int], list[dict]] = {}
    paths: dict[tuple[int, int], Path | None] = {}
    for s in subjects:
        for i, st in enumerate(settings):
            paths[s, i] = None if cache_dir is None else cache_file(cache_dir, dataset.name, s, st, data_id)
            rows = None if cache_dir is None else _load_cached(paths[s, i], specs)
            if rows is not None:
                done[s, i] = rows

    # tasks: one per (subject, model key) with missing settings, grouped by client pass
    todo: dict[tuple[int, tuple], list[int]] = {}
    for s in subjects:
        for i, st in enumerate(settings):
            if (s, i) not in done:
                todo.setdefault((s, st.model_key()), []).append(i)
    built = _models_for(dataset, settings, list(todo), models, cache_dir, progress)
    workers = _effective_jobs(n_jobs, len(todo))
    local = (os.cpu_count() or 1) if workers == -1 else workers
    threads = max(1, (os.cpu_count() or 1) // local) if workers != 1 else 0
    tasks = []
    for (s, mkey), indices in todo.items():
        groups: dict[tuple, list] = {}
        for i in indices:
            groups.setdefault(settings[i].pass_key(), []).append((i, settings[i]))
        split = dataset.loso(s)
        client, aux = split.client, (split.aux if with_aux else None)
        tasks.append(
            {
                "subject": s,
                "model": built[s, mkey],
                "specs": specs,
                "windows": client.windows,
                "labels": client.labels,
                "aux": aux,
                "scaling": settings[indices[0]].scaling,
                "groups": list(groups.values()),
                "paths": {i: paths[s, i] for i in indices},
                "threads": threads,
            }
        )

    timings = {"prepare": 0.0, "client": 0.0, "attacks": 0.0}
    for (s, _), (results, task_timings) in zip(todo, _execute(tasks, workers, progress)):
        for i, rows in results:
            done[s, i] = rows
        for k, v in task_timings.items():
            timings[k] += v
    timings["wall"] = time.perf_counter() - start
    return _assemble(done, settings, subjects, specs, timings)


def _run_grid_constraints(dataset) -> dict[str, Constraint]:
    """What :func:`run_grid`'s ``subjects``, ``cache_dir`` and ``n_jobs`` may be for this dataset."""
    return {
        "subjects": AllOf((NonEmpty("a non-empty list"), SubsetOf(tuple(dataset.subject_ids), "subject ids"))),
        "cache_dir": Optional(Directory()),
        "n_jobs": AnyOf((Integer(low=1), OneOf((-1,)))),
    }  # -1: all cores


def _check_batch_sizes(dataset, subjects: list[int], settings: Sequence[Setting]) -> None:
    """Refuse a ``batch_size`` above every attacked client's window count (no batch would be attacked)."""
    largest = max(subjects, key=lambda s: dataset.subjects[s].n_windows)
    n_max = dataset.subjects[largest].n_windows
    hint = (
        f"the largest attacked client, subject {largest}, has {n_max} windows, so no client would have a batch: "
        f"choose batch_size <= {n_max}"
    )
    for st in settings:
        check_params({"batch_size": st.batch_size}, {"batch_size": Integer(low=1, high=n_max)}, {"batch_size": hint})


def _effective_jobs(n_jobs: int, n_tasks: int) -> int:
    """Workers to start: ``n_jobs`` (checked by :func:`run_grid`) capped by the number of tasks; -1 (all of the
    backend's workers) stays -1."""
    if n_jobs == -1:
        return -1 if n_tasks > 1 else 1
    return max(1, min(int(n_jobs), n_tasks))


def _execute(tasks: list[dict], workers: int, progress: bool):
    """Run the tasks (joblib, in the tasks' order) with a progress bar; yields their results."""
    from joblib import Parallel, delayed

    bar = tqdm(total=len(tasks), desc="grid tasks (client x model)", disable=not progress or not tasks)
    if workers == 1:
        for task in tasks:
            yield _run_task(task)
            bar.update()
    else:
        # workers == -1 is passed through so that a cluster backend (Dask, Ray) uses all its workers
        for result in Parallel(n_jobs=workers, return_as="generator")(delayed(_run_task)(t) for t in tasks):
            yield result
            bar.update()
    bar.close()


def _default_model(
    dataset, setting: Setting, held_out: int, cache_dir: str | os.PathLike | None, progress: bool
) -> "nn.Module":
    """The model that :func:`run_grid` attacks client ``held_out`` with under ``setting`` when not given one.

    Untrained: ``build_model(setting.model, ..., seed=setting.seed, **setting.model_kwargs())`` (``bias`` and the
    defence's ``model_kwargs``). Trained: the LOSO model of the client's fold (:func:`leakage_core.models.fold_model`
    with :meth:`Setting.train_config`, under the defence where it shapes the model), trained on every other subject
    and kept in ``<cache_dir>/checkpoints`` (``None``: the default cache).
    """
    if setting.state == "untrained":
        from ..models.architectures import build_model

        kwargs = setting.model_kwargs()
        return build_model(setting.model, dataset.n_channels, dataset.n_classes, seed=setting.seed, **kwargs)
    from ..models.training import fold_model

    ckpt_dir = None if cache_dir is None else cache_root(cache_dir)
    return fold_model(
        dataset,
        setting.model,
        held_out=held_out,
        config=setting.train_config(),
        cache_dir=ckpt_dir,
        progress=progress,
        bias=setting.bias,
    )


def _models_for(
    dataset,
    settings: Sequence[Setting],
    keys: list[tuple[int, tuple]],
    models: Callable[[Setting, int], "nn.Module"] | None,
    cache_dir,
    progress: bool,
) -> dict:
    """The model of every (subject, model key), from ``models`` or the default; never one that saw the client."""
    get = models if models is not None else partial(_default_model, dataset, cache_dir=cache_dir, progress=progress)
    by_key = {st.model_key(): st for st in settings}
    # fewer epochs first (every client, then more epochs): a longer run of a fold continues the shorter
    # one's checkpoint, and an interrupted grid has its short runs complete (stable: clients keep their order)
    untrained = [(s, k) for s, k in keys if by_key[k].state == "untrained"]
    trained = sorted(((s, k) for s, k in keys if by_key[k].state == "trained"), key=lambda sk: by_key[sk[1]].epochs)
    out = {}
    for s, k in chain(untrained, tqdm(trained, desc="LOSO models", disable=not progress or not trained)):
        out[s, k] = get(by_key[k], s)
        check_unseen(out[s, k], s)
    return out


def _assemble(
    done: dict, settings: Sequence[Setting], subjects: list[int], specs: Sequence[AttackSpec], timings: dict
) -> pd.DataFrame:
    order = {s.key: k for k, s in enumerate(specs)}
    frames = []
    for i, st in enumerate(settings):
        record = {"defense": "none", **st.record()}
        for s in subjects:
            rows = sorted(done[s, i], key=lambda r: (order[r["attack"]], r["batch"]))
            if not rows:
                continue
            df = pd.DataFrame(rows, columns=["batch", "attack", "true", "pred"])
            frames.append(df.assign(subject=s, **record))
    columns = ["subject", "attack", "batch", "true", "pred"] + list(SETTING_COLUMNS)
    out = pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)
    out.attrs["timings"] = dict(timings)
    return out


def score(results: pd.DataFrame, by: Iterable[str] | None = None, per_client: bool = False) -> pd.DataFrame:
    """LnAcc, LeAcc, LeRecall, ClassAcc, count-F1 per client, then their mean and spread over clients.

    Introduced in Chapter 7.

    Parameters
    ----------
    results : pandas.DataFrame
        From :func:`run_grid` (or with columns ``subject, attack, true, pred`` and the ``by`` columns).
    by : iterable of str or None
        Grouping columns. ``None``: ``attack`` and every setting column that takes more than one value.
    per_client : bool
        Return the per-client table instead of the summary.

    Returns
    -------
    pandas.DataFrame
        Summary: indexed by ``by``; columns ``(metric, stat)`` with stat in ``mean, std, min, max``
        over clients (``std`` with ``ddof=1``; NaN for one client) and ``("clients", "n")``. When the
        results hold the blind references (:data:`leakage_core.attacks.BLIND`), also ``blind_<m>`` (the
        better reference's score) and ``adv_<m>`` (the advantage over it, per client first; see
        :func:`leakage_core.study.add_advantage`) for LnAcc, LeAcc, ClassAcc and count-F1.
    """
    if by is None:
        varying = [
            c for c in SETTING_COLUMNS if c in getattr(results, "columns", ()) and results[c].nunique(dropna=False) > 1
        ]
        by = varying + ["attack"]
    by = list(by)
    per = client_scores(results, by)  # checks results and by
    return per if per_client else client_spread(per, by)


def add_blind_references(results: pd.DataFrame, dataset) -> pd.DataFrame:
    """``results`` plus the rows of every blind reference (:data:`~leakage_core.attacks.BLIND`) not in them.

    Introduced in Chapter 7. A blind reference reads only ``N``, ``C`` and the other subjects' labels,
    so its rows follow from each stored batch's true counts: they are exactly what :func:`run_grid`
    computes when the blind references are among its attacks (tested). ``dataset`` must be the data the
    results were computed on (the other subjects' labels give the prior).
    """
    specs = [s for s in resolve_attacks(ATTACKS, BLIND) if s.key not in set(results["attack"])]
    if not specs or results.empty:
        return results
    base = results[results["attack"] == results["attack"].iloc[0]]
    frames = [results]
    for subject, rows in base.groupby("subject", sort=False):
        prepared = prepare_attacks(specs, None, dataset.loso(subject).aux)
        for spec, attack in prepared:
            preds = [attack.count(counts_only_update(int(t.sum()), t.size)) for t in rows["true"]]
            blind = rows.assign(attack=spec.key, pred=preds)
            if "ln_acc" in blind.columns:  # a per-row score column must describe the blind guess, not the attack
                blind["ln_acc"] = [ln_acc(t, p) for t, p in zip(blind["true"], blind["pred"])]
            frames.append(blind)
    return pd.concat(frames, ignore_index=True)


def with_setting(settings: Sequence[Setting], **changes) -> list[Setting]:
    """The same settings with some fields changed (e.g. ``state="trained", epochs=5``)."""
    return [replace(s, **changes) for s in settings]
