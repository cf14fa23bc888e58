"""Pipeline stage 6: run attacks over a client's batches and score them.

Introduced in Chapter 4; every later chapter's tables come from these functions or from the grid
built on them (:mod:`leakage_core.study.grid`). Attacks are used only through the registry
(:mod:`leakage_core.attacks.registry`): built and prepared once per client, ``count`` per update.
"""
from __future__ import annotations

import time
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..attacks import ATTACKS, PAPER_ATTACKS, Attack, AttackSpec, is_blind, resolve_attacks
from ..metrics import ADVANTAGE_METRICS, advantage, summarize
from ..federated.sampling import make_batches
from ..federated import LDP, LastLayerUpdate, client_update, privatize

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
    """Every prepared attack's counts for one update, keyed by the attack's result key."""
    return {s.key: attack.count(update) for s, attack in prepared}


def run_attacks(
    update: LastLayerUpdate,
    attacks: AttackList = PAPER_ATTACKS,
    model=None,
    aux=None,
    options: dict[str, dict] | None = None,
) -> dict[str, np.ndarray]:
    """Apply several attacks to one update; ``options`` maps an attack key to extra keyword options.

    Not used in a chapter yet. Every name in ``attacks`` and every key of ``options`` is run. Variants
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
    ldps: Sequence[LDP | None] = (None,),
    n_steps: int = 1,
    lr: float = 1e-4,
    mode: str = "train",
    seed: int = 0,
    scaling: str = "none",
    timings: dict[str, float] | None = None,
):
    """Yield ``(b, true_counts, [update per LDP variant])`` for every batch, one client pass per batch.

    Not used in a chapter yet. The clean update of batch ``b`` is built once (FedSGD: one forward pass
    and the closed form; FedAvg: the ``S`` local steps), with dropout seeded by ``seed + b``; every LDP
    variant is post-processing of it (noise seeded by ``seed + b`` too). Only when a variant clips on
    all layers' norm is the other layers' gradient computed, in the same pass. ``timings`` (optional)
    accumulates the seconds spent in the client's passes under ``"client"``.
    """
    n_classes = model.classifier.out_features
    rest = any(ldp is not None and ldp.scope == "all" and ldp.rho is not None for ldp in ldps)
    for b, idx in enumerate(batches):
        t0 = time.perf_counter()
        clean, rest_sq = client_update(model, windows[idx], labels[idx], n_steps=n_steps, lr=lr, mode=mode,
                                       seed=seed + b, scaling=scaling, rest_norm=rest)
        if timings is not None:
            timings["client"] = timings.get("client", 0.0) + time.perf_counter() - t0
        updates = [clean if ldp is None else privatize(clean, ldp, seed=seed + b, rest_sq_norm=rest_sq) for ldp in ldps]
        yield b, np.bincount(labels[idx], minlength=n_classes), updates


def attack_batches(
    model,
    windows: np.ndarray,
    labels: np.ndarray,
    prepared: Sequence[tuple[AttackSpec, Attack]],
    sampler: str = "shuffle",
    batch_size: int = 100,
    ldps: Sequence[LDP | None] = (None,),
    n_steps: int = 1,
    lr: float = 1e-4,
    mode: str = "train",
    seed: int = 0,
    scaling: str = "none",
    max_batches: int | None = None,
    timings: dict[str, float] | None = None,
) -> list[dict]:
    """Rows ``{batch, ldp (index into ldps), attack, true, pred}`` of one client for prepared attacks.

    Not used in a chapter yet: the inner loop shared by :func:`attack_client` and the grid.
    ``timings`` (optional) accumulates seconds under ``"client"`` (model passes) and ``"attacks"``.
    """
    batches = make_batches(labels, batch_size, sampler, seed=seed)[:max_batches]
    rows = []
    for b, true, updates in batch_updates(model, windows, labels, batches, ldps, n_steps, lr, mode, seed,
                                          scaling, timings):
        t0 = time.perf_counter()
        for k, update in enumerate(updates):
            for key, pred in count_all(update, prepared).items():
                rows.append({"batch": b, "ldp": k, "attack": key, "true": true, "pred": pred})
        if timings is not None:
            timings["attacks"] = timings.get("attacks", 0.0) + time.perf_counter() - t0
    return rows


def check_unseen(model, subject: int | None, allow_seen: bool = False) -> None:
    """Refuse to attack a client the model was trained on (leave-one-subject-out).

    Not used in a chapter yet. Models from :func:`leakage_core.models.fold_model` and
    :func:`leakage_core.models.train_on_subjects` record ``model.training_subjects``; attacking one
    of them measures leakage on training data, which the paper's setting excludes. ``allow_seen=True``
    permits it for an experiment that studies exactly that.
    """
    seen = tuple(getattr(model, "training_subjects", ()))
    if subject is not None and not allow_seen and int(subject) in seen:
        raise ValueError(
            f"subject {subject} is in the model's training data {list(seen)}: the attacked client must be unseen "
            "(leave-one-subject-out). Attack another subject, train a model without it, or pass allow_seen=True "
            "to study a seen client on purpose."
        )


def attack_client(
    model,
    windows: np.ndarray,
    labels: np.ndarray,
    sampler: str = "shuffle",
    batch_size: int = 100,
    attacks: AttackList = PAPER_ATTACKS,
    aux=None,
    options: dict[str, dict] | None = None,
    mode: str = "train",
    n_steps: int = 1,
    lr: float = 1e-4,
    ldp: LDP | None = None,
    seed: int = 0,
    max_batches: int | None = None,
    scaling: str = "none",
    subject: int | None = None,
    allow_seen: bool = False,
) -> pd.DataFrame:
    """Every batch of one client: build the update, run the attacks, keep true and predicted counts.

    Not used in a chapter yet. ``n_steps > 1`` builds FedAvg updates (``lr``), otherwise FedSGD
    (closed form). Attacks are prepared once for the client (LLG*/LLG+ impacts, LLBG confidences)
    and counted per batch. Returns one row per (batch, attack) with columns ``batch, attack, true,
    pred`` (count arrays) and ``ln_acc``. With ``subject`` given, a model trained on that subject is
    refused (:func:`check_unseen`).
    """
    check_unseen(model, subject, allow_seen)
    prepared = prepare_attacks(resolve_attacks(ATTACKS, attacks, options), model, aux)
    rows = attack_batches(model, windows, labels, prepared, sampler, batch_size, [ldp], n_steps, lr, mode, seed,
                          scaling, max_batches)
    df = pd.DataFrame(rows, columns=["batch", "ldp", "attack", "true", "pred"]).drop(columns="ldp")
    df["ln_acc"] = [float(np.minimum(t, p).sum() / t.sum()) for t, p in zip(df["true"], df["pred"])]
    return df


def attack_clients(
    model,
    dataset,
    subjects: Iterable[int] | None = None,
    samplers: Iterable[str] = ("shuffle", "sequential", "balanced"),
    aux_from_others: bool = False,
    progress: bool = True,
    allow_seen: bool = False,
    **kwargs,
) -> pd.DataFrame:
    """:func:`attack_client` for several subjects and samplers, with ``subject`` and ``sampler`` columns.

    Introduced in Chapter 4. ``aux_from_others=True`` hands the attacker the other subjects' windows
    as auxiliary data (the leave-one-subject-out server's knowledge). A subject in the model's
    ``training_subjects`` is refused unless ``allow_seen=True`` (:func:`check_unseen`).
    """
    subjects = dataset.subject_ids if subjects is None else list(subjects)
    for s in subjects:
        check_unseen(model, s, allow_seen)
    jobs = [(s, sp) for s in subjects for sp in samplers]
    frames = []
    for s, sp in tqdm(jobs, desc="clients x samplers", disable=not progress):
        aux = dataset.windows_of([k for k in dataset.subject_ids if k != s]) if aux_from_others else None
        client = dataset.subjects[s]
        df = attack_client(model, client.windows, client.labels, sampler=sp, aux=aux, subject=s,
                           allow_seen=allow_seen, **kwargs)
        frames.append(df.assign(subject=s, sampler=sp))
    return pd.concat(frames, ignore_index=True)


def client_scores(results: pd.DataFrame, by: Iterable[str] = ("attack",)) -> pd.DataFrame:
    """LnAcc, LeAcc, LeRecall, ClassAcc and count-F1 of every client (one row per ``by`` group and subject).

    Introduced in Chapter 5. ClassAcc and count-F1 are computed over a client's batches, so they are
    per-client quantities; the other metrics are per batch, averaged over the client's batches. When
    the results hold the blind references, :func:`add_advantage` adds the advantage over them.
    """
    by = list(by)
    client_cols = by + (["subject"] if "subject" in results.columns else [])
    rows = []
    for key, grp in results.groupby(client_cols, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(client_cols, key)), **summarize(np.stack(grp["true"]), np.stack(grp["pred"]))})
    return add_advantage(pd.DataFrame(rows), by)


def add_advantage(per_client: pd.DataFrame, by: Iterable[str] = ("attack",)) -> pd.DataFrame:
    """Per-client scores with ``blind_<m>`` and ``adv_<m>`` for every metric of ``ADVANTAGE_METRICS``.

    Not used in a chapter yet. ``blind_<m>`` is the better of the blind references' scores for the same
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


def mean_scores(results: pd.DataFrame, by: Iterable[str] = ("attack",)) -> pd.DataFrame:
    """LnAcc, LeAcc, LeRecall, ClassAcc, count-F1 (and the advantage over the blind guess, when the
    blind references were run): per client first, then the mean over clients.

    Introduced in Chapter 4. ``results`` comes from :func:`attack_clients` (or has its columns);
    ``by`` are the grouping columns kept in the output besides the client. For the spread over
    clients use :func:`leakage_core.study.score`.
    """
    by = list(by)
    per_client = client_scores(results, by)
    return per_client.groupby(by).mean(numeric_only=True).drop(columns=["subject"], errors="ignore")
