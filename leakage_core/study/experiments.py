"""Pipeline stage 5 (study): run attacks over a client's batches and score them.

Introduced in Chapter 4; every later chapter's tables come from these functions or from the grid
built on them (:mod:`leakage_core.study.grid`). How a client forms its batches and updates is one
:class:`~leakage_core.federated.ClientSetting`; the attacked client and the server's data are a
leave-one-subject-out split (:meth:`leakage_core.data.HARDataset.loso`), guarded by :func:`check_unseen`.
Attacks are used only through the registry (:mod:`leakage_core.attacks.registry`): built and prepared once
per client, ``count`` per update.
"""

from __future__ import annotations

import time
from dataclasses import fields as dataclass_fields
from dataclasses import replace
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..attacks import ATTACKS, PAPER_ATTACKS, Attack, AttackSpec, is_blind, resolve_attacks
from ..federated import LDP, SAMPLERS, ClientSetting, LastLayerUpdate, defended_update, privatize
from ..metrics import ADVANTAGE_METRICS, METRICS, advantage, summarize
from ..validation import AllOf, InstanceOf, Integer, NonEmpty, Optional, SubsetOf, check_params

AttackList = Iterable[str] | Mapping[str, Mapping[str, Any]]


def needs_aux(specs: Sequence[AttackSpec]) -> bool:
    """Whether any of these attacks needs auxiliary labelled data."""
    return any(ATTACKS[s.name].requires(**s.kwargs).aux for s in specs)


def prepare_attacks(specs: Sequence[AttackSpec], model=None, aux=None) -> list[tuple[AttackSpec, Attack]]:
    """Build every attack and run its ``prepare`` once (what depends on the model and auxiliary data only).

    Each attack receives the server's ``model`` and ``aux`` and uses what its options need; the prepared
    attacks are passed to :func:`count_all` for every update of the client.
    """
    return [(s, s.build(ATTACKS).prepare(model, aux)) for s in specs]


def count_all(update: LastLayerUpdate, prepared: Sequence[tuple[AttackSpec, Attack]]) -> dict[str, np.ndarray]:
    """Every prepared attack's counts for one update, keyed by the attack's result key.

    Attacks that read the bias gradient are left out for the update of a classifier without bias (they
    would refuse it): their rows are absent from the grid's results.
    """
    return {s.key: attack.count(update) for s, attack in prepared if update.has_bias or not attack.reads_bias}


def run_attacks(
    update: LastLayerUpdate,
    attacks: AttackList = PAPER_ATTACKS,
    model=None,
    aux=None,
    options: dict[str, dict] | None = None,
) -> dict[str, np.ndarray]:
    """Apply several attacks to one update; ``options`` maps an attack key to extra keyword options.

    Every name in ``attacks`` and every key of ``options`` is run. Variants
    are named ``"name:label"``, e.g. ``{"llbg:empirical": {"impact": "empirical"}}`` runs LLBG with that
    option under the key ``llbg:empirical``. Each attack gets the server's ``model`` and ``aux`` and
    uses what it needs.
    """
    return count_all(update, prepare_attacks(resolve_attacks(ATTACKS, attacks, options), model, aux))


def batch_updates(
    model,
    windows: np.ndarray,
    labels: np.ndarray,
    batches: Sequence[np.ndarray],
    setting: ClientSetting,
    ldps: Sequence[LDP | None] | None = None,
    timings: dict[str, float] | None = None,
):
    """Yield ``(b, true_counts, [update per LDP variant])`` for every batch, one client pass per batch.

    The clean update of batch ``b`` is built once under ``setting``
    (:func:`~leakage_core.federated.clean_update`: dropout seeded by ``setting.batch_seed(b)``); every LDP
    variant of ``ldps`` (default: the setting's own ``ldp``) is post-processing of it, its noise seeded the
    same way. Only when a variant clips on all layers' norm is the other layers' gradient computed, in the
    same pass. ``timings`` (optional) accumulates the seconds spent in the client's passes under ``"client"``.

    ``labels`` are the client's true labels: ``true_counts`` count them. Under ``setting.defense`` the update is
    computed on the labels the client has (:meth:`~leakage_core.federated.ClientSetting.client_labels`, once for
    all its windows) by :func:`~leakage_core.federated.defended_update`, and the LDP variants apply after the
    defence.
    """
    ldps = (setting.ldp,) if ldps is None else tuple(ldps)
    n_classes = model.classifier.out_features
    rest = any(ldp is not None and ldp.scope == "all" and ldp.rho is not None for ldp in ldps)
    own = setting.client_labels(labels, n_classes)
    for b, idx in enumerate(batches):
        t0 = time.perf_counter()
        clean, rest_sq = defended_update(model, windows[idx], own[idx], setting, b, rest_norm=rest)
        if timings is not None:
            timings["client"] = timings.get("client", 0.0) + time.perf_counter() - t0
        seed = setting.batch_seed(b)
        updates = [clean if ldp is None else privatize(clean, ldp, seed=seed, rest_sq_norm=rest_sq) for ldp in ldps]
        yield b, np.bincount(labels[idx], minlength=n_classes), updates


def attack_batches(
    model,
    windows: np.ndarray,
    labels: np.ndarray,
    prepared: Sequence[tuple[AttackSpec, Attack]],
    setting: ClientSetting,
    ldps: Sequence[LDP | None] | None = None,
    max_batches: int | None = None,
    timings: dict[str, float] | None = None,
) -> list[dict]:
    """Rows ``{batch, ldp (index into ldps), attack, true, pred}`` of one client for prepared attacks.

    The inner loop shared by :func:`attack_client` and the grid: the client's batches under ``setting``
    (the first ``max_batches``), one pass per batch (:func:`batch_updates`), every LDP variant of ``ldps``
    (default: the setting's own). ``timings`` (optional) accumulates seconds under ``"client"`` (model
    passes) and ``"attacks"``. Under ``setting.defense`` the batches are drawn on the labels the client has
    (:meth:`~leakage_core.federated.ClientSetting.client_labels`; e.g. randomized), ``true`` counts the true labels.
    """
    batches = setting.batches(setting.client_labels(labels, model.classifier.out_features))[:max_batches]
    rows = []
    for b, true, updates in batch_updates(model, windows, labels, batches, setting, ldps, timings):
        t0 = time.perf_counter()
        for k, update in enumerate(updates):
            for key, pred in count_all(update, prepared).items():
                rows.append({"batch": b, "ldp": k, "attack": key, "true": true, "pred": pred})
        if timings is not None:
            timings["attacks"] = timings.get("attacks", 0.0) + time.perf_counter() - t0
    return rows


def check_unseen(model, subject: int | None, allow_seen: bool = False) -> None:
    """Refuse to attack a client the model was trained on (leave-one-subject-out): the one LOSO guard.

    Models from :func:`leakage_core.models.fold_model` and :func:`leakage_core.models.train_on_subjects`
    record ``model.training_subjects``; attacking one of them measures leakage on training data, which the
    paper's setting excludes. ``allow_seen=True`` permits it for an experiment that studies exactly that.
    """
    seen = tuple(getattr(model, "training_subjects", ()))
    if subject is not None and not allow_seen and int(subject) in seen:
        raise ValueError(
            f"subject {subject} is in the model's training data {list(seen)}: the attacked client must be unseen "
            "(leave-one-subject-out). Attack another subject, train a model without it, or pass allow_seen=True "
            "to study a seen client on purpose."
        )


_ATTACK_CLIENT_CONSTRAINTS = {
    "setting": InstanceOf(ClientSetting, "a leakage_core.federated.ClientSetting(sampler=..., batch_size=..., ...)"),
    "max_batches": Optional(Integer(low=1)),
}


def attack_client(
    model,
    windows: np.ndarray,
    labels: np.ndarray,
    setting: ClientSetting | None = None,
    attacks: AttackList = PAPER_ATTACKS,
    aux=None,
    options: dict[str, dict] | None = None,
    max_batches: int | None = None,
) -> pd.DataFrame:
    """Every batch of one client: build the update, run the attacks, keep true and predicted counts.

    Introduced in Chapter 15.

    ``setting`` says how the client forms its batches and updates (default: the paper's single-step
    :class:`~leakage_core.federated.ClientSetting`); ``n_steps > 1`` builds FedAvg updates, otherwise FedSGD
    (closed form). Attacks are prepared once for the client with the server's ``model`` and ``aux`` (LLG*/LLG+
    impacts, LLBG confidences) and counted per batch; ``max_batches`` keeps the first batches only. Returns
    one row per (batch, attack) with columns ``batch, attack, true, pred`` (count arrays) and ``ln_acc``.
    Whether the model has seen the client is the caller's check (:func:`check_unseen`).
    """
    setting = ClientSetting() if setting is None else setting
    check_params({"setting": setting, "max_batches": max_batches}, _ATTACK_CLIENT_CONSTRAINTS)
    prepared = prepare_attacks(resolve_attacks(ATTACKS, attacks, options), model, aux)
    rows = attack_batches(model, windows, labels, prepared, setting, max_batches=max_batches)
    df = pd.DataFrame(rows, columns=["batch", "ldp", "attack", "true", "pred"]).drop(columns="ldp")
    df["ln_acc"] = [float(np.minimum(t, p).sum() / t.sum()) for t, p in zip(df["true"], df["pred"])]
    return df


#: the keyword options of :func:`attack_clients` that go to :func:`attack_client` rather than the setting
_CLIENT_OPTIONS = ("attacks", "options", "max_batches")


def attack_clients(
    model,
    dataset,
    subjects: Iterable[int] | None = None,
    samplers: Iterable[str] = SAMPLERS,
    aux_from_others: bool = False,
    progress: bool = True,
    allow_seen: bool = False,
    **kwargs,
) -> pd.DataFrame:
    """:func:`attack_client` for several subjects and samplers, with ``subject`` and ``sampler`` columns.

    Introduced in Chapter 4. ``kwargs`` are :func:`attack_client`'s ``attacks``, ``options`` and
    ``max_batches`` and the fields of :class:`~leakage_core.federated.ClientSetting` but ``sampler``
    (``batch_size``, ``n_steps``, ``lr``, ``ldp``, ``scaling``, ``seed``, ``mode``, ``defense``), checked before any
    work. ``aux_from_others=True`` hands the attacker the other subjects' windows as auxiliary data (the
    leave-one-subject-out server's knowledge, :meth:`leakage_core.data.HARDataset.loso`). A subject in the
    model's ``training_subjects`` is refused unless ``allow_seen=True`` (:func:`check_unseen`).
    """
    subjects = dataset.subject_ids if subjects is None else list(subjects)
    samplers = list(samplers)
    check_params(
        {"subjects": subjects, "samplers": samplers},
        {
            "subjects": AllOf((NonEmpty("a non-empty list"), SubsetOf(tuple(dataset.subject_ids), "subject ids"))),
            "samplers": AllOf((NonEmpty("a non-empty list"), SubsetOf(SAMPLERS, "samplers"))),
        },
    )
    fields = [f.name for f in dataclass_fields(ClientSetting) if f.name != "sampler"]
    unknown = sorted(set(kwargs) - set(fields) - set(_CLIENT_OPTIONS))
    if unknown:
        raise ValueError(
            f"attack_clients has no option {unknown[0]!r}; it takes {list(_CLIENT_OPTIONS) + fields} "
            "(and samplers=, subjects=, aux_from_others=, progress=, allow_seen=)."
        )
    base = ClientSetting(**{k: v for k, v in kwargs.items() if k in fields})
    client_kwargs = {k: v for k, v in kwargs.items() if k in _CLIENT_OPTIONS}
    for s in subjects:
        check_unseen(model, s, allow_seen)
    jobs = [(s, sp) for s in subjects for sp in samplers]
    frames = []
    split = None
    for s, sp in tqdm(jobs, desc="clients x samplers", disable=not progress):
        split = split if split is not None and split.held_out == s else dataset.loso(s)
        aux = split.aux if aux_from_others else None
        df = attack_client(
            model, split.client.windows, split.client.labels, replace(base, sampler=sp), aux=aux, **client_kwargs
        )
        frames.append(df.assign(subject=s, sampler=sp))
    return pd.concat(frames, ignore_index=True)


def client_scores(results: pd.DataFrame, by: Iterable[str] = ("attack",)) -> pd.DataFrame:
    """LnAcc, LeAcc, LeRecall, ClassAcc and count-F1 of every client (one row per ``by`` group and subject).

    Introduced in Chapter 5. ClassAcc and count-F1 are computed over a client's batches, so they are
    per-client quantities; the other metrics are per batch, averaged over the client's batches. When
    the results hold the blind references, :func:`add_advantage` adds the advantage over them.
    ``results`` must be a non-empty table with ``true`` and ``pred`` count columns and the ``by`` columns.
    """
    by = list(by)
    _check_results(results, by)
    client_cols = by + (["subject"] if "subject" in results.columns else [])
    rows = []
    for key, grp in results.groupby(client_cols, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(client_cols, key)), **summarize(np.stack(grp["true"]), np.stack(grp["pred"]))})
    return add_advantage(pd.DataFrame(rows), by)


def add_advantage(per_client: pd.DataFrame, by: Iterable[str] = ("attack",)) -> pd.DataFrame:
    """Per-client scores with ``blind_<m>`` and ``adv_<m>`` for every metric of ``ADVANTAGE_METRICS``.

    ``blind_<m>`` is the better of the blind references' scores for the same
    client and setting (the rows whose ``attack`` is a blind reference, see
    :data:`leakage_core.attacks.BLIND`), ``adv_<m>`` the attack's :func:`~leakage_core.metrics.advantage`
    over it. Returned unchanged when ``by`` has no ``attack`` column or no blind reference was run.
    """
    by = list(by)
    if "attack" not in by or per_client.empty:
        return per_client
    blind_rows = per_client["attack"].map(is_blind)
    if not blind_rows.any():
        return per_client
    keys = [c for c in by if c != "attack"] + (["subject"] if "subject" in per_client.columns else [])
    metrics = list(ADVANTAGE_METRICS)
    if keys:
        best = per_client[blind_rows].groupby(keys, dropna=False)[metrics].max()
        blind = per_client[keys].join(best, on=keys)[metrics]
    else:
        best = per_client.loc[blind_rows, metrics].max()
        blind = pd.DataFrame({m: best[m] for m in metrics}, index=per_client.index)
    out = per_client.copy()
    for m in metrics:
        out[f"blind_{m}"] = blind[m].to_numpy()
        out[f"adv_{m}"] = advantage(out[m], out[f"blind_{m}"])
    return out


def _check_results(results: pd.DataFrame, by: Sequence[str]) -> None:
    """Raise one clear error unless ``results`` is a non-empty table of attack rows with the ``by`` columns."""
    check_params(
        {"results": results},
        {
            "results": AllOf(
                (
                    InstanceOf(pd.DataFrame, "a pandas DataFrame of attack rows"),
                    NonEmpty("a non-empty table of attack rows (from run_grid or attack_clients)"),
                )
            )
        },
        hints={"results": "no batch was attacked: check that batch_size is at most the clients' window counts"},
    )
    check_params(
        {"by": by, "count columns": ["true", "pred"]},
        {
            "by": SubsetOf(tuple(results.columns), "columns of the results"),
            "count columns": SubsetOf(tuple(results.columns), "columns of the results"),
        },
    )


def client_spread(per_client: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Mean, std (``ddof=1``), min and max over clients of every score of :func:`client_scores`' table.

    Indexed by ``by`` (in the order the groups first appear); columns ``(metric, stat)`` for the
    :data:`~leakage_core.metrics.METRICS`, then the ``blind_<m>`` and ``adv_<m>`` columns when present, and
    ``("clients", "n")``, the number of clients of the group.
    """
    grouped = per_client.groupby(list(by), sort=False)
    columns = list(METRICS) + [c for c in per_client.columns if c.startswith(("blind_", "adv_"))]
    table = grouped[columns].agg(["mean", "std", "min", "max"])
    table[("clients", "n")] = grouped["subject"].nunique() if "subject" in per_client else 1
    return table


def mean_scores(results: pd.DataFrame, by: Iterable[str] = ("attack",)) -> pd.DataFrame:
    """LnAcc, LeAcc, LeRecall, ClassAcc, count-F1 (and the advantage over the blind guess, when the
    blind references were run): per client first, then the mean over clients.

    Introduced in Chapter 4. ``results`` comes from :func:`attack_clients` (or has its columns);
    ``by`` are the grouping columns kept in the output besides the client, which is sorted by them. The
    ``mean`` column of :func:`client_spread`; for the spread over clients use :func:`leakage_core.study.score`.
    """
    by = list(by)
    return client_spread(client_scores(results, by), by).xs("mean", axis=1, level=1).sort_index()
